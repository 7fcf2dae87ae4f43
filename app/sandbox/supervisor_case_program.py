"""The case's own process, in the test supervisor's program text (supervisor_program.SOURCE): what a
forked case readies once (Python: the program compiled, __main__, argv, path, std streams of a cold
start), how it runs the learner's program as a cold start would, and how it reads its exit.

Text, not code the engine imports: it is pasted into the supervisor's program between its set-up
(the names it uses: _BASELINE, PREPARED, SOURCE_NAME, RUN_ARGV, HOME, ENV, FD_BYTES, recv_fds...)
and its loop, and run by /usr/bin/python3 inside the sandbox. Running the program as a cold start
would is python_main_program.py's, shared with the fork server.
"""
from .python_main_program import RUN_AS_MAIN

CASE_PROCESS = r'''def ready_python():
    """Once, in this process: what a cold run's `python3 -E -s -u -B main.py` does before the program's
    first line. Every case is a fork of it, so each gets these fresh; none of it runs the learner's
    code (compile() only parses; a compile error is kept and raised in each case, as a cold start would)."""
    for name in [name for name in sys.modules if name not in _BASELINE]:
        # still referenced by this program's own names: a case imports them afresh, as a cold run does
        del sys.modules[name]
    path = os.path.join(HOME, SOURCE_NAME)
    # a compile error is reported as a cold start would, once a case runs
    code = compiled(PROGRAM, path)
    main = type(sys)("__main__")
    main.__dict__.update(__file__=path, __cached__=None, __builtins__=__builtins__, __annotations__={},
        __loader__=importlib.machinery.SourceFileLoader("__main__", path))
    sys.modules["__main__"] = main
    sys.argv[:] = [SOURCE_NAME]
    # the std streams as `-u` makes them; a case's process swaps its own descriptors in under them
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8", errors="strict")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="strict", write_through=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", write_through=True)
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
    return main, code, frozenset(sys.modules)


def imported_since_ready():
    """In the zygote, before a fork: what it imported since the interpreter was readied (os.wait4
    imports resource from C at every call, so it stays), which the case drops. Listed here: the
    case iterating sys.modules itself would touch every key's refcount, ~40 pages copied after
    the fork."""
    modules = PREPARED[2]
    if len(sys.modules) == len(modules):
        return ()
    return tuple(name for name in sys.modules if name not in modules)


def run_python(main, code, modules, imported):
    """In the case's process: run the program as a cold start would, then exit."""
    # what the supervisor imported since it readied the interpreter is not in a cold start
    for name in imported:
        sys.modules.pop(name, None)
    if len(sys.modules) != len(modules):
        # anything else (nothing is expected): the same, the long way
        for name in [name for name in sys.modules if name not in modules]:
            del sys.modules[name]
    # the script's folder comes first, as in a cold run; only here, never in the supervisor (its
    # own imports, even those made from C, must never find what a case wrote there)
    sys.path.insert(0, HOME)
    run_as_main(main, code)


def zygote(sock):
    """The process every Python case is forked from: a copy of the readied interpreter, forked once
    by the supervisor, which then forks no case itself. A fork write-protects every page of the
    process that forks; the supervisor's own work while a case ran then copied ~200 of its pages
    (0.6 ms a case). This process does little between two forks. It never runs learner code and
    holds nothing of the engine's (no control socket; a case's streams go from the supervisor
    straight to the case); it tells the supervisor each case's pid and, once reaped, its end."""
    try:
        _signal.set_wakeup_fd(-1)
        # a cold start's dispositions, which each case inherits
        for number in (_signal.SIGCHLD, _signal.SIGXCPU):
            _signal.signal(number, _signal.SIG_DFL)
        for fd in (CONTROL.fileno(), WAKE_READ, WAKE_WRITE):
            os.close(fd)
        imported, known = (), -1
        while True:
            message, fds = recv_fds(sock, 16, 1)
            if not message or len(fds) != 1:
                os._exit(0)
            if len(sys.modules) != known:
                # os.wait4 imports resource from C at every call: listed again only when it changed
                imported, known = imported_since_ready(), len(sys.modules)
            pid = os.fork()
            if pid == 0:
                child(fds[0], imported, sock.fileno())
            os.close(fds[0])
            try:
                # set here as well: a kill of its group reaches it even before it has run
                os.setpgid(pid, pid)
            except OSError:
                pass
            sock.send(b"%d" % pid)
            _, status, usage = os.wait4(pid, 0)
            # its own CPU and faults too (bench/grading_profile.py); few objects: each page this
            # process writes between two forks is copied once more
            own = resource.getrusage(resource.RUSAGE_SELF)
            sock.send(b"%d %d %d %d %d %d" % (
                status, (usage.ru_utime + usage.ru_stime) * 1e6, usage.ru_maxrss, usage.ru_minflt,
                (own.ru_utime + own.ru_stime) * 1e6, own.ru_minflt,
            ))
    except BaseException:
        os._exit(70)


def child(intake_fd, imported, zygote_end):
    """The next case's process, forked by the zygote before its case arrives: its own group,
    nothing of the supervisor's or the zygote's; it waits on intake for its std streams and CPU
    limit, then becomes the case."""
    try:
        os.setpgid(0, 0)
        os.close(zygote_end)
        intake = _socket.socket(fileno=intake_fd)
        message, fds = recv_fds(intake, 64, 3)
        if not message or len(fds) != 3:
            os._exit(0)
        intake.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            os.close(fd)
        cpu_seconds = int(message)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
        # the case's process is the learner's: dumpable again, as a cold start is; it holds
        # nothing of other cases
        LIBC.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
        run_python(*PREPARED, imported)
    except BaseException as error:
        try:
            os.write(2, f"the test could not start: {error}\n".encode())
        finally:
            os._exit(127)
''' + RUN_AS_MAIN
