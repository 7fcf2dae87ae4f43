"""The test supervisor: a small program that runs inside one sandbox and starts each test case of a graded run.

It is never imported by the engine: its text is handed to `/usr/bin/python3 -I -u -B -c` inside the
sandbox (see grading.py). Protocol, over the SOCK_SEQPACKET socket at fd argv[1] (one message each):
  engine -> supervisor: a JSON case header {"index", "timeout_seconds", "cpu_seconds"} carrying
      three file descriptors (SCM_RIGHTS): the case's stdin, and the write ends of its stdout and
      stderr pipes. The engine holds the read ends: output never passes through this process.
  engine -> supervisor: {"kill": true} while a case runs (its output went past the cap).
  supervisor -> engine: {"index", "exit_code", "signal", "wall_ms", "cpu_ms", "max_rss_bytes",
      "timed_out"} once the case has ended; only this process holds the socket, the case's process
      closes its copy before the learner's code runs, so nothing the program does can forge it.
argv[5] is JSON: {"scratch": the other writable places, emptied after every case; "sweep": true
inside a PID namespace of its own, where every process but its init and this one is killed after
every case}.
For Python (argv[2] == "python") each case is a fork of this interpreter that resets __main__,
sys.argv, the working directory and the std streams and executes the program as a cold start would
(the traceback included); for every other language, a fork + exec of the run argv (argv[3], JSON).
The supervisor itself never runs learner code and is not dumpable (no ptrace, no /proc/<pid>/fd).
"""

SOURCE = r'''
import sys
_BASELINE = frozenset(sys.modules)
import os, json, signal, socket, select, time, resource, ctypes, io, importlib.machinery

PR_SET_DUMPABLE = 4
LIBC = ctypes.CDLL(None)
LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)

CONTROL = socket.socket(fileno=int(sys.argv[1]))
MODE = sys.argv[2]
RUN_ARGV = json.loads(sys.argv[3])
SOURCE_NAME = sys.argv[4]
HOME = os.getcwd()
with open(os.path.join(HOME, SOURCE_NAME), "rb") as _file:
    PROGRAM = _file.read()
ENV = dict(os.environ)
SETTINGS = json.loads(sys.argv[5])
# the writable places a case may leave files in (the sandbox's own tmpfs mounts)
SCRATCH = (HOME, *SETTINGS["scratch"])
# in a PID namespace of its own, every process but its init and this one belongs to a case
SWEEP = bool(SETTINGS["sweep"])
SWEEP_ROUNDS = 50
WAKE_READ, WAKE_WRITE = os.pipe()
os.set_blocking(WAKE_WRITE, False)
os.set_blocking(WAKE_READ, False)
signal.set_wakeup_fd(WAKE_WRITE)
signal.signal(signal.SIGCHLD, lambda number, frame: None)


def wipe(path):
    """Remove what a case left in a writable place, so the next case starts clean."""
    for entry in os.scandir(path):
        try:
            if entry.is_dir(follow_symlinks=False):
                wipe(entry.path)
                os.rmdir(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def run_python(case_dir):
    """In the case's process: run the program as a cold run's `python3 -E -s -u -B main.py` would, then exit."""
    for name in [name for name in sys.modules if name not in _BASELINE]:
        del sys.modules[name]
    # the script's folder comes first, as in a cold run; the supervisor itself (-I) never had it,
    # so it imports nothing a program wrote
    sys.path.insert(0, case_dir)
    path = os.path.join(case_dir, SOURCE_NAME)
    main = type(sys)("__main__")
    main.__dict__.update(__file__=path, __cached__=None, __builtins__=__builtins__, __annotations__={},
        __loader__=importlib.machinery.SourceFileLoader("__main__", path))
    sys.modules["__main__"] = main
    sys.argv[:] = [SOURCE_NAME]
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8", errors="strict")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="strict", write_through=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", write_through=True)
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
    code = 0
    try:
        exec(compile(PROGRAM, path, "exec"), main.__dict__)
    except SystemExit as stop:
        code = exit_code_of(stop)
    except BaseException as error:
        # the traceback a cold start prints: without this frame
        error.__traceback__ = error.__traceback__.tb_next
        sys.excepthook(type(error), error, error.__traceback__)
        code = 1
    try:
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()
        import atexit
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except SystemExit as stop:
        code = exit_code_of(stop)
    except BaseException:
        code = code or 1
    os._exit(code)


def exit_code_of(stop):
    value = stop.code
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    try:
        print(value, file=sys.stderr)
    except BaseException:
        pass
    return 1


def child(case_dir, fds, cpu_seconds):
    """The case's process: its own group, its std streams, its limits, nothing of the supervisor's."""
    try:
        os.setpgid(0, 0)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in (*fds, CONTROL.fileno(), WAKE_READ, WAKE_WRITE):
            os.close(fd)
        os.chdir(case_dir)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
        if MODE == "python":
            # the case's process is the learner's: dumpable again, as a cold start is (exec does
            # this by itself); it holds nothing of other cases
            LIBC.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
            run_python(case_dir)
        os.execve(RUN_ARGV[0], RUN_ARGV, ENV)
    except BaseException as error:
        try:
            os.write(2, f"the test could not start: {error}\n".encode())
        finally:
            os._exit(127)


def run_case(header, fds):
    index = int(header["index"])
    # the case runs where a cold run would (so its tracebacks name the same file), in a
    # directory emptied after the case before it
    case_dir = HOME
    with open(os.path.join(case_dir, SOURCE_NAME), "wb") as file:
        file.write(PROGRAM)
    started = time.monotonic()
    deadline = started + float(header["timeout_seconds"])
    pid = os.fork()
    if pid == 0:
        child(case_dir, fds, int(header["cpu_seconds"]))
    for fd in fds:
        os.close(fd)
    timed_out = killed = False
    status = rusage = None
    while status is None:
        done, status_value, usage = os.wait4(pid, os.WNOHANG)
        if done:
            status, rusage = status_value, usage
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            kill_group(pid)
            _, status, rusage = os.wait4(pid, 0)
            break
        ready, _, _ = select.select([CONTROL, WAKE_READ], [], [], remaining)
        if WAKE_READ in ready:
            try:
                os.read(WAKE_READ, 4096)
            except BlockingIOError:
                pass
        if CONTROL in ready:
            message = CONTROL.recv(65536)
            if not message:
                kill_group(pid)
                os._exit(0)
            if json.loads(message).get("kill"):
                killed = True
                kill_group(pid)
    wall_ms = int((time.monotonic() - started) * 1000)
    # whatever the case started and left running goes with it, even what left its group: nothing
    # of one case may watch the next (its /proc/<pid>/fd would show the next case's stdin)
    kill_group(pid)
    if SWEEP:
        sweep()
    for path in SCRATCH:
        wipe(path)
    clear_ipc()
    return {
        "index": index,
        "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "wall_ms": wall_ms,
        "cpu_ms": int((rusage.ru_utime + rusage.ru_stime) * 1000),
        "max_rss_bytes": rusage.ru_maxrss * 1024,
        "timed_out": timed_out,
        "killed": killed,
    }


def alive(pid):
    """False for a zombie (dead, its init collects it) or a process already gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def sweep():
    """Kill every process of the sandbox but its init and this supervisor, until none is left."""
    me = os.getpid()
    for _ in range(SWEEP_ROUNDS):
        others = [int(name) for name in os.listdir("/proc") if name.isdigit() and int(name) not in (1, me) and alive(name)]
        if not others:
            return
        for other in others:
            try:
                os.kill(other, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.001)


IPC_RMID = 0


def clear_ipc():
    """Remove every System V segment, semaphore set and message queue a case made: the cases share
    this sandbox's IPC namespace, and what a hidden case read must not reach the next case."""
    removers = (
        ("shm", lambda ident: LIBC.shmctl(ident, IPC_RMID, None)),
        ("sem", lambda ident: LIBC.semctl(ident, 0, IPC_RMID)),
        ("msg", lambda ident: LIBC.msgctl(ident, IPC_RMID, None)),
    )
    for kind, remove in removers:
        try:
            with open("/proc/sysvipc/" + kind) as table:
                rows = table.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            remove(int(row.split()[1]))


def kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def serve():
    CONTROL.send(b'{"ready": true}')
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(CONTROL, 65536, 3)
        except InterruptedError:
            continue
        if not message:
            return
        header = json.loads(message)
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            continue
        CONTROL.send(json.dumps(run_case(header, fds)).encode())


# the supervisor's own objects stay out of the cases' collections: fewer pages copied after each fork
import gc
gc.freeze()
serve()
'''
