"""The test supervisor: a small program that runs inside one sandbox and starts each test case of a graded run.

It is never imported by the engine: its text is handed to `/usr/bin/python3 -I -u -B -c` inside the
sandbox (see grading.py). Protocol, over the SOCK_SEQPACKET socket at fd argv[1] (one message each):
  supervisor -> engine: {"ready": true, "marks": {...}} once it can take a case.
  engine -> supervisor: b"case <index> <timeout seconds> <cpu seconds>" carrying three file
      descriptors (SCM_RIGHTS): the case's stdin, and the write ends of its stdout and stderr
      pipes. The engine holds the read ends: output never passes through this process.
  engine -> supervisor: b"kill" while a case runs (its output went past the cap).
  supervisor -> engine: JSON {"index", "exit_code", "signal", "wall_ms", "cpu_ms", "max_rss_bytes",
      "timed_out", "killed", "marks"} once the case has ended; only this process holds the socket,
      the case's process closes its copy before the learner's code runs, so nothing the program
      does can forge it.
argv[3] is the run argv (fields joined by US, \\x1f), argv[4] the source file's name, argv[5] the other
writable places (joined by US), emptied after every case, and argv[6] "1" inside a PID namespace of
its own, where every process but its init and this one is killed after every case.

Each case's process is forked ahead of its case, once the case before it has ended and been swept
away (nothing of a case sees the next one's process), and waits on a socket of its own for its
descriptors and limits. For Python (argv[2] == "python") it is a fork of this interpreter, which
readied once, at start, what every case needs (the program compiled, not run; a fresh __main__;
sys.argv, sys.path and the std streams of a cold start): the case only swaps in its descriptors and
executes the program as a cold start would (the traceback included). The forks are made by the
zygote, a copy of this process forked once after it readied the interpreter, which reports each
case's pid and end (wait4) on a socket of its own; this process forks no case, so its own work while
a case runs copies no page (a fork write-protects every page of the process that forks). For every
other language, it execs the run argv. The supervisor and the zygote never run learner code and are
not dumpable (no ptrace, no /proc/<pid>/fd); a case that kills or stops the zygote ends this sandbox
as if it had the supervisor (the engine goes on in a fresh one).

It imports as little as it can (no json, re, enum, socket.py or signal.py): every module it loads is
start-up time for every graded run, and memory that every fork copies.
"""
import importlib.util
import marshal

from .supervisor_case_program import CASE_PROCESS
from .supervisor_cleanup_program import CLEANUP

# one program text: the supervisor's set-up, the case's own process (supervisor_case_program.py), its loop
SOURCE = r'''
import sys, time
BEGUN = time.monotonic()
_BASELINE = frozenset(sys.modules)
import os, io, gc, _socket, _signal, select, resource, _ctypes, importlib.machinery
IMPORTED = time.monotonic()

PR_SET_DUMPABLE = 4


class c_int(_ctypes._SimpleCData):
    _type_ = "i"


class CFunction(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL
    _restype_ = c_int


class Libc:
    """The C library's functions (prctl, shmctl...), called with int or None arguments. _ctypes
    alone: the ctypes package would add ~1 ms to every start (its types, struct, its own imports)."""

    _handle = _ctypes.dlopen(None, 0)

    def __getattr__(self, name):
        function = CFunction((name, self))
        setattr(self, name, function)
        return function


LIBC = Libc()
LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)

CONTROL = _socket.socket(fileno=int(sys.argv[1]))
MODE = sys.argv[2]
RUN_ARGV = sys.argv[3].split("\x1f")
SOURCE_NAME = sys.argv[4]
HOME = os.getcwd()
with open(os.path.join(HOME, SOURCE_NAME), "rb") as _file:
    PROGRAM = _file.read()
ENV = dict(os.environ)
# the writable places a case may leave files in (the sandbox's own tmpfs mounts)
SCRATCH = (HOME, *[path for path in sys.argv[5].split("\x1f") if path])
# in a PID namespace of its own, every process but its init and this one belongs to a case
SWEEP = sys.argv[6] == "1"
SWEEP_ROUNDS = 50
# how long a discarded case's process may take to be reported gone by the zygote
DISCARD_SECONDS = 5.0
FD_BYTES = 4
WAKE_READ, WAKE_WRITE = os.pipe()
os.set_blocking(WAKE_WRITE, False)
os.set_blocking(WAKE_READ, False)
_signal.set_wakeup_fd(WAKE_WRITE)
_signal.signal(_signal.SIGCHLD, lambda number, frame: None)
# a case's soft CPU limit is set here for the moment of its spawn (see Spawned); never this process's end
_signal.signal(_signal.SIGXCPU, _signal.SIG_IGN)
# inherited from the engine; no case may inherit it
os.set_inheritable(CONTROL.fileno(), False)


def as_json(value):
    """JSON of the report's flat values (no json module: it would pull re into every start)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{key}": {as_json(item)}' for key, item in value.items()) + "}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def send_fds(sock, data, fds):
    ancillary = b"".join(fd.to_bytes(FD_BYTES, sys.byteorder, signed=True) for fd in fds)
    sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, ancillary)])


def recv_fds(sock, size, most):
    message, ancillary, _, _ = sock.recvmsg(size, _socket.CMSG_LEN(most * FD_BYTES))
    fds = []
    for level, kind, data in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            usable = len(data) - len(data) % FD_BYTES
            fds += [int.from_bytes(data[at:at + FD_BYTES], sys.byteorder, signed=True) for at in range(0, usable, FD_BYTES)]
    return message, fds


''' + CLEANUP + CASE_PROCESS + r'''

class Next:
    """Python: the next case's process, forked by the zygote (after the case before was swept away,
    while the engine judges it) and waiting for its case."""

    wake_fd = None

    def __init__(self):
        # the case runs where a cold run would (so its tracebacks name the same file), in a
        # directory emptied after the case before it
        with open(os.path.join(HOME, SOURCE_NAME), "wb") as file:
            file.write(PROGRAM)
        self.intake, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        try:
            send_fds(ZYGOTE, b"fork", [theirs.fileno()])
            self.pid = int(ZYGOTE.recv(32))
        except (OSError, ValueError):
            # the zygote is gone (a case killed it): this sandbox runs no more cases, the engine
            # goes on in a fresh one
            os._exit(70)
        finally:
            theirs.close()
        self.wake_fd = ZYGOTE.fileno()

    def ended(self, block):
        """(status, CPU seconds, max RSS KiB, minor faults, zygote CPU) once the zygote reaped the
        case; None while it runs (block: wait)."""
        if not block and not select.select([ZYGOTE], [], [], 0)[0]:
            return None
        message = ZYGOTE.recv(128)
        if not message:
            # the zygote died with the case: to the engine, a supervisor lost
            kill_group(self.pid)
            os._exit(0)
        status, cpu_us, rss, faults, zygote_cpu_us, zygote_faults = map(int, message.split())
        return status, cpu_us / 1e6, rss, faults, zygote_cpu_us / 1e6, zygote_faults

    def start(self, cpu_seconds, fds):
        """Hand the case its streams and CPU limit: from now on it is the case's process."""
        try:
            send_fds(self.intake, str(cpu_seconds).encode(), fds)
            return True
        except OSError:
            return False
        finally:
            self.intake.close()

    def discard(self):
        self.intake.close()
        kill_group(self.pid)
        if select.select([ZYGOTE], [], [], DISCARD_SECONDS)[0]:
            self.ended(True)
        else:
            os._exit(70)


class Spawned:
    """Every other language: the case's process is the run argv, started by posix_spawn (vfork and
    exec: none of this interpreter's pages are copied) in a group of its own, with the signal
    dispositions of a cold start and its own CPU limit."""

    wake_fd = WAKE_READ

    def __init__(self):
        self.pid = None

    def ended(self, block):
        done, status, usage = os.wait4(self.pid, 0 if block else os.WNOHANG)
        if not done:
            return None
        return status, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, usage.ru_minflt, 0.0, 0

    def start(self, cpu_seconds, fds):
        with open(os.path.join(HOME, SOURCE_NAME), "wb") as file:
            file.write(PROGRAM)
        soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        within = (lambda seconds: seconds) if hard == resource.RLIM_INFINITY else (lambda seconds: min(seconds, hard))
        # the soft limit is inherited at the exec, so it holds from the case's first instruction
        # (this process ignores SIGXCPU meanwhile); the hard one follows through prlimit
        resource.setrlimit(resource.RLIMIT_CPU, (within(cpu_seconds), hard))
        try:
            self.pid = os.posix_spawn(
                RUN_ARGV[0], RUN_ARGV, ENV,
                file_actions=[(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(fds)],
                setpgroup=0, setsigdef=(_signal.SIGPIPE, _signal.SIGXCPU, _signal.SIGXFSZ, _signal.SIGCHLD),
            )
        except OSError as error:
            # the case still ends as a case: a process that says why and exits 127, as a shell would
            os.write(fds[2], f"the test could not start: {error}\n".encode())
            self.pid = os.fork()
            if self.pid == 0:
                os._exit(127)
            return True
        finally:
            resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
        try:
            resource.prlimit(self.pid, resource.RLIMIT_CPU, (within(cpu_seconds), within(cpu_seconds + 1)))
        except OSError:
            pass
        return True

    def discard(self):
        pass


def run_case(index, timeout_seconds, cpu_seconds, fds, received, waiting):
    started = time.monotonic()
    deadline = started + timeout_seconds
    for fd in fds:
        # none of the engine's descriptors but the three the case gets (posix_spawn closes nothing)
        os.set_inheritable(fd, False)
    if not waiting.start(cpu_seconds, fds):
        # it died waiting (nothing of a case had run in it): a fresh one takes the case
        waiting.discard()
        waiting = Next()
        if not waiting.start(cpu_seconds, fds):
            # twice: something is wrong with this sandbox, and a case that never started must
            # not read as a clean exit; the engine goes on in a fresh one
            waiting.discard()
            os._exit(70)
    pid = waiting.pid
    handed = time.monotonic()
    for fd in fds:
        os.close(fd)
    timed_out = killed = False
    ended = None
    while ended is None:
        ended = waiting.ended(False)
        if ended is not None:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            kill_group(pid)
            ended = waiting.ended(True)
            break
        ready, _, _ = select.select([CONTROL, waiting.wake_fd], [], [], remaining)
        if WAKE_READ in ready:
            try:
                os.read(WAKE_READ, 4096)
            except BlockingIOError:
                pass
        if CONTROL in ready:
            message = CONTROL.recv(64)
            if not message:
                kill_group(pid)
                os._exit(0)
            if message == b"kill":
                killed = True
                kill_group(pid)
    reaped = time.monotonic()
    # whatever the case started and left running goes with it, even what left its group: nothing
    # of one case may watch the next (its /proc/<pid>/fd would show the next case's stdin)
    kill_group(pid)
    if SWEEP:
        sweep()
    for path in SCRATCH:
        wipe(path)
    clear_ipc()
    status, cpu, rss, faults, zygote_cpu, zygote_faults = ended
    return {
        "index": index,
        "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "wall_ms": int((reaped - started) * 1000),
        "cpu_ms": int(cpu * 1000),
        "max_rss_bytes": rss * 1024,
        "timed_out": timed_out,
        "killed": killed,
        # CLOCK_MONOTONIC, the engine's clock too (no time namespace): where a case's time goes
        "marks": {
            "received": received, "handed": handed, "reaped": reaped, "cleaned": time.monotonic(),
            "supervisor_cpu": time.process_time(), "zygote_cpu": zygote_cpu, "case_cpu": cpu,
            "case_faults": faults,
            "supervisor_faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt + zygote_faults,
        },
    }


def start_zygote():
    """Python: the process every case is forked from (zygote(), in the case's program text)."""
    ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        ours.close()
        zygote(theirs)
    theirs.close()
    return ours, pid


def serve():
    waiting = Next() if PREPARED is not None else Spawned()
    marks = {"begun": BEGUN, "imported": IMPORTED, "ready": time.monotonic()}
    CONTROL.send(as_json({"ready": True, "marks": marks}).encode())
    while True:
        message, fds = recv_fds(CONTROL, 256, 3)
        received = time.monotonic()
        if not message:
            waiting.discard()
            return
        fields = message.split()
        if len(fds) != 3 or len(fields) != 4 or fields[0] != b"case":
            for fd in fds:
                os.close(fd)
            continue
        report = run_case(int(fields[1]), float(fields[2]), int(fields[3]), fds, received, waiting)
        CONTROL.send(as_json(report).encode())
        # Python: the next case's process starts while the engine judges this one, after the
        # sweep, so nothing of this case sees it
        waiting = Next() if PREPARED is not None else Spawned()


PREPARED = ready_python() if MODE == "python" else None
# the supervisor's own objects stay out of the cases' collections: fewer pages copied after each fork
gc.freeze()
ZYGOTE, ZYGOTE_PID = start_zygote() if PREPARED is not None else (None, 0)
serve()
'''

# Its text comes in a memfd (the last argument, which the loader takes off argv), compiled once by
# the engine: compiling ~20 KB at every start cost ~1.8 ms. The code object is used only when the
# sandbox's interpreter has the engine's bytecode magic number; else the loader compiles the text.
# A short loader also keeps the cases' /proc/self/cmdline (theirs is the supervisor's) short.
LOADER = (
    "import sys, marshal\n"
    "exec((lambda blob, size: marshal.loads(blob[8:8 + size])"
    " if blob[:4] == sys.modules['_frozen_importlib_external'].MAGIC_NUMBER"
    " else compile(blob[8 + size:], '<string>', 'exec'))"
    "(*(lambda blob: (blob, int.from_bytes(blob[4:8], 'big')))(open(int(sys.argv.pop()), 'rb').read())))\n"
)
_CODE = marshal.dumps(compile(SOURCE, "<string>", "exec"))
BLOB = (
    importlib.util.MAGIC_NUMBER + len(_CODE).to_bytes(4, "big") + _CODE + SOURCE.encode()
)
