"""The fork server: a Python interpreter started once per slot that forks each run into fresh namespaces.

It is never imported by the engine: its text reaches `/usr/bin/python3 -E -s -u -B -c LOADER` (the
cold run's interpreter and flags) as a memfd, so that a run's /proc/1/cmdline shows a short
loader rather than this whole text, inside a bubblewrap sandbox started with CAP_SYS_ADMIN, CAP_SETPCAP
and CAP_NET_ADMIN in the sandbox's user namespace, and without the syscall filter (see forkserver.py
and docs/security.md, "The fork server"). argv: [this text's memfd, control socket fd, syscall
filter memfd or -1, the size of each run's tmpfs mounts in bytes].

Protocol over the SOCK_SEQPACKET control socket (one message each):
  engine -> server: a JSON header {"mode": "python" | "exec", "argv", "env", "source_file",
      "disk_bytes", "rlimits": {name: [soft, hard]}} carrying four descriptors (SCM_RIGHTS): the
      run's stdin, the write ends of its stdout and stderr pipes, and a memfd "bundle" holding the
      learner's program, files and arguments. The server never reads the bundle (nor any other
      learner data): only the run's own process does, after the fork, so no learner's bytes are
      ever in the memory the next run is forked from.
  engine -> server: {"kill": true} while a run goes on: its whole PID namespace is killed.
  server -> engine: {"ready": true} once started, then after each run {"returncode": int
      (negative: the signal that ended the run's init), "emptied": true, "doubt": str | null} once
      every process of the run is gone and the next run is prepared. Each carries (SCM_RIGHTS) the
      read end of the prepared run's status pipe: its init writes the program's exit code there
      (one byte, 128+N for signal N) the moment the program ends, straight to the engine, one
      process wake-up sooner than through this server. A doubt (an unexpected child, a failed
      setup) makes the engine restart the server before the slot's next run.

Each run: clone() with new PID, mount, IPC, UTS and network namespaces gives the run's init (PID 1
there); it mounts fresh sized tmpfs on /box, /tmp and /dev/shm and a /proc of the new PID namespace,
brings the new loopback up, drops every capability (bounding set and ambient too), sets
no_new_privs, loads the syscall filter, and forks the program (PID 2, as under bubblewrap's init).
When the program ends the init exits and the kernel kills whatever else is left in the namespace.

The program's own part (PID 2, the only code that reads a learner's bytes) is forkserver_run_program.py.
"""

from .forkserver_run_program import SOURCE as RUN_PROGRAM

_SERVER = r'''
import sys
_BASELINE = frozenset(sys.modules)
import os, json, signal, socket, select, resource, ctypes, io, importlib.machinery, fcntl, struct, gc, contextlib

LIBC = ctypes.CDLL(None, use_errno=True)
API = ctypes.pythonapi
PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
CAP_LAST = 63
SYS_CLONE = 56
SYS_CAPSET = 126
SYS_CLOSE_RANGE = 436
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x20000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
NAMESPACES = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
WORKDIR = "/box"
PREPARE_TIMEOUT_SECONDS = 5.0
# the interpreter and flags of a cold run, which this server was started with too
COLD_FLAGS = sys.orig_argv[: sys.orig_argv.index("-c")]

LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def low_copy(fd):
    """A passed descriptor keeps the engine's number, which may be past what select() takes (1023)."""
    low = os.dup(fd)
    os.close(fd)
    return low


CONTROL = socket.socket(fileno=low_copy(int(sys.argv[2])))
# each run's tmpfs size: the server's runs all have its limits
DISK_BYTES = int(sys.argv[4])
_filter_fd = int(sys.argv[3])
FILTER = b""
if _filter_fd >= 0:
    with open(_filter_fd, "rb") as _file:
        FILTER = _file.read()
del _filter_fd
WAKE_READ, WAKE_WRITE = os.pipe()
os.set_blocking(WAKE_WRITE, False)
os.set_blocking(WAKE_READ, False)
signal.set_wakeup_fd(WAKE_WRITE)
signal.signal(signal.SIGCHLD, lambda number, frame: None)


def check(result, what):
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def mount(source, target, kind, flags, data=None):
    check(LIBC.mount(source.encode(), target.encode(), kind.encode() if kind else None, flags,
                     data.encode() if data else None), f"mount {target}")


def fresh_filesystems(disk_bytes):
    """The run's own writable places and /proc; the read-only system stays the server's (a cold start's).

    The server's sandbox has bare directories where a run mounts its tmpfs (the server itself has
    nothing writable). The run's /proc (of its own PID namespace) is mounted over the server's,
    which bubblewrap's --disable-userns has locked in place: hidden, unreachable, but listed in
    the run's mount table below the run's own.
    """
    mount("none", "/", None, MS_REC | MS_PRIVATE)
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for place in ("/tmp", "/dev/shm", WORKDIR):
        mount("tmpfs", place, "tmpfs", MS_NOSUID | MS_NODEV, f"size={disk_bytes},mode=0755")


def loopback_up():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(probe.fileno(), SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(probe.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def drop_privileges():
    """No capability left anywhere (bounding, ambient, effective, permitted, inheritable), no_new_privs, the filter."""
    for cap in range(CAP_LAST + 1):
        LIBC.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    LIBC.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    # _LINUX_CAPABILITY_VERSION_3: a header and two empty data words
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    data = (ctypes.c_uint32 * 6)()
    check(LIBC.syscall(SYS_CAPSET, header, data), "capset")
    check(LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    if FILTER:
        program = ctypes.create_string_buffer(FILTER, len(FILTER))

        class SockFprog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        fprog = SockFprog(len(FILTER) // 8, ctypes.addressof(program))
        check(LIBC.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0), "seccomp")
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("CapEff:", "CapPrm:", "CapBnd:", "CapAmb:", "CapInh:")) and int(line.split()[1], 16):
                raise OSError(f"a capability is left: {line.strip()}")




def run_init(run_socket, status_write):
    """PID 1 of a run's fresh namespaces, prepared before its run arrives: set up, fork the program, wait.

    Everything here happens before any learner data exists in the process: the run's program,
    files and arguments reach only the program's process (PID 2), after it has lost every privilege.
    """
    try:
        # how the host tells a run's init, and a prepared run, from a run's own processes
        LIBC.prctl(PR_SET_NAME, b"run-init", 0, 0, 0)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        # signals from inside the namespace reach its init only through a handler: it has none
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        fresh_filesystems(DISK_BYTES)
        loopback_up()
        # only the run's socket and the status pipe go on: not the control socket, the filter
        os.dup2(run_socket, 3)
        os.dup2(status_write, 4)
        check(LIBC.syscall(SYS_CLOSE_RANGE, 5, 0xFFFFFFFF, 0), "close_range")
        os.chdir(WORKDIR)
        drop_privileges()
        # the run's session and process group are its init's, as under bubblewrap's init
        os.setsid()
        program = os.fork()
    except BaseException as error:
        try:
            os.write(2, f"the fork server could not prepare a run: {error}\n".encode())
        finally:
            os._exit(126)
    if program == 0:
        os.close(4)
        run_program(socket.socket(fileno=3))
    os.close(3)
    # the init keeps nothing of the run's streams: the program's tree alone holds them
    null = os.open("/dev/null", os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(null, target)
    os.close(null)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(126)
        if pid == program:
            # the way bubblewrap's init tells it, straight to the engine (which holds the pipe's
            # read end), before this init's exit and the namespaces' teardown; leaving kills the
            # rest of the namespace
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
            with contextlib.suppress(OSError):
                os.write(4, bytes([code]))
            os._exit(code)




def prepare():
    """The next run's init and program, in fresh namespaces, waiting for the run (off the run's path)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    status_read, status_write = os.pipe()
    # fork() into new namespaces (libc's fork takes no flags): the child is the run's init
    API.PyOS_BeforeFork()
    pid = LIBC.syscall(SYS_CLONE, NAMESPACES | signal.SIGCHLD, 0, 0, 0, 0)
    if pid == 0:
        API.PyOS_AfterFork_Child()
        run_init(theirs.fileno(), status_write)
    error = ctypes.get_errno()
    API.PyOS_AfterFork_Parent()
    theirs.close()
    os.close(status_write)
    if pid < 0:
        ours.close()
        os.close(status_read)
        raise OSError(error, os.strerror(error))
    # the run's setup failed if its program never says it is ready (the init said why on stderr)
    if not select.select([ours], [], [], PREPARE_TIMEOUT_SECONDS)[0] or ours.recv(16) != b"ready":
        kill(pid)
        os.waitpid(pid, 0)
        ours.close()
        os.close(status_read)
        raise OSError("a run could not be prepared")
    return pid, ours, status_read


def kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def serve_run(prepared, message, fds):
    """Hand one run to the prepared program and wait for its init to end: (its returncode, a doubt
    about the server or None). The init tells the engine the program's end itself, on the status
    pipe the engine was given with the run's preparation: this process is not on that path."""
    pid, run_socket = prepared
    try:
        socket.send_fds(run_socket, [message], fds)
    except OSError:
        pass
    finally:
        for fd in fds:
            os.close(fd)
        run_socket.close()
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        ready, _, _ = select.select([CONTROL, WAKE_READ], [], [])
        if WAKE_READ in ready:
            try:
                os.read(WAKE_READ, 4096)
            except BlockingIOError:
                pass
        if CONTROL in ready:
            message = CONTROL.recv(65536)
            if not message:
                kill(pid)
                os._exit(0)
            if json.loads(message).get("kill"):
                kill(pid)
    # the code the init told on the status pipe (it exits with it), or the signal that killed it
    returncode = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
    doubt = None
    try:
        # the run's init was this process's only child: anything else is a reason to start afresh
        other, _ = os.waitpid(-1, os.WNOHANG)
        if other:
            doubt = f"an unexpected child {other}"
    except ChildProcessError:
        pass
    return returncode, doubt


def report(message, status_read=None):
    """Send the engine a report, with the next prepared run's status pipe when there is one."""
    data = json.dumps(message).encode()
    if status_read is None:
        CONTROL.send(data)
        return
    try:
        socket.send_fds(CONTROL, [data], [status_read])
    finally:
        os.close(status_read)


def serve():
    try:
        pid, run_socket, status_read = prepare()
    except OSError as error:
        report({"ready": False, "error": str(error)})
        return
    prepared = pid, run_socket
    report({"ready": True}, status_read)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(CONTROL, 65536, 4)
        except InterruptedError:
            continue
        if not message:
            return
        if json.loads(message).get("kill"):
            # a stop that came after its run had ended
            continue
        if len(fds) != 4:
            for fd in fds:
                os.close(fd)
            report({"returncode": 126, "emptied": True, "doubt": "a run came without its descriptors"})
            continue
        returncode, doubt = serve_run(prepared, message, fds)
        # the run's end, the next run prepared (and its status pipe): one report
        status_read = None
        try:
            pid, run_socket, status_read = prepare()
            prepared = pid, run_socket
        except OSError as error:
            doubt = doubt or str(error)
            prepared = None
        report({"returncode": returncode, "emptied": True, "doubt": doubt}, status_read)
        if prepared is None:
            return


'''

_START = r'''
STDIN_ENCODING, STDIN_ERRORS = sys.stdin.encoding, sys.stdin.errors
STDOUT_ENCODING, STDOUT_ERRORS = sys.stdout.encoding, sys.stdout.errors
# the server's own objects stay out of the runs' collections: fewer pages copied after each fork
gc.freeze()
serve()
'''

# one program: the server's definitions, the run's program's, then the server starts
SOURCE = _SERVER + RUN_PROGRAM + _START
