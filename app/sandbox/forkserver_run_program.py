"""The run's own process in a fork server (PID 2 of the run's namespaces): part of the server's text.

Its text is appended to forkserver_program.SOURCE's definitions (one program, one namespace: it
uses the server's LIBC, WORKDIR, COLD_FLAGS, _BASELINE and stream encodings). It is the only code
that reads a learner's bytes (the run's bundle), and only after the fork, unprivileged: it prepares
what a cold start has before the program's first line while the run is not there yet, then writes
the program, sets the run's rlimits and environment and runs it as `python3 -E -s -u -B main.py`
would, or execs the run's command (running it as a cold start would: python_main_program.py).
"""
from .python_main_program import RUN_AS_MAIN

SOURCE = r'''
def read_bundle(fd):
    """The learner's part of the run, read only here, after the fork: {"names", "sizes", "args"} and contents."""
    with open(fd, "rb") as file:
        data = file.read()
    length = int.from_bytes(data[:8], "big")
    layout = json.loads(data[8 : 8 + length])
    offset = 8 + length
    contents = []
    for size in layout["sizes"]:
        contents.append(data[offset : offset + size])
        offset += size
    return layout, contents


def write_program(header, layout, contents):
    names = [header["source_file"], *layout["names"]]
    for name, content in zip(names, contents):
        path = os.path.join(WORKDIR, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as file:
            file.write(content)
    return contents[0]




def run_program(run_socket):
    """PID 2: waits, unprivileged, for its run; then runs the learner's program exactly as a cold start does."""
    try:
        LIBC.prctl(PR_SET_NAME, b"run-ready", 0, 0, 0)
        prepared = prepare_python()
        # the server hands out no run before its run is known to be ready
        run_socket.send(b"ready")
        message, fds, _, _ = socket.recv_fds(run_socket, 65536, 4)
        run_socket.close()
        if not message or len(fds) != 4:
            os._exit(126)
        header = json.loads(message)
        stdin, stdout, stderr, bundle = fds
        for target, fd in enumerate((stdin, stdout, stderr)):
            os.dup2(fd, target)
        for fd in (stdin, stdout, stderr):
            os.close(fd)
        layout, contents = read_bundle(bundle)
        source = write_program(header, layout, contents)
        for name, (soft, hard) in header["rlimits"].items():
            resource.setrlimit(getattr(resource, name), (soft, hard))
        # the program's process is the learner's: dumpable, as after any exec, and named as
        # the interpreter a cold start execs
        LIBC.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
        LIBC.prctl(PR_SET_NAME, b"python3", 0, 0, 0)
        os.environ.clear()
        os.environ.update(header["env"])
        if header["mode"] == "python":
            run_python(prepared, header["source_file"], layout["args"], source)
        argv = [*header["argv"], *layout["args"]]
        os.execve(argv[0], argv, header["env"])
    except BaseException as error:
        try:
            os.write(2, f"the program could not start: {error}\n".encode())
        finally:
            os._exit(127)


def prepare_python():
    """What a cold start has before the program's first line, done while the run is not yet there."""
    for name in [name for name in sys.modules if name not in _BASELINE]:
        del sys.modules[name]
    # the dispositions a starting interpreter sets
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main = type(sys)("__main__")
    # -c put "" first on sys.path; a cold start puts the script's directory
    sys.path[0] = WORKDIR
    gc.unfreeze()
    return main


def run_python(main, source_file, args, source):
    """Run source as `python3 -E -s -u -B main.py args...` would, then exit."""
    path = os.path.join(WORKDIR, source_file)
    main.__dict__.update(__file__=path, __cached__=None, __builtins__=__builtins__, __annotations__={},
        __loader__=importlib.machinery.SourceFileLoader("__main__", path))
    sys.modules["__main__"] = main
    sys.argv[:] = [source_file, *args]
    sys.orig_argv[:] = [*COLD_FLAGS, source_file, *args]
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding=STDIN_ENCODING, errors=STDIN_ERRORS, line_buffering=False)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding=STDOUT_ENCODING, errors=STDOUT_ERRORS, write_through=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding=STDOUT_ENCODING, errors="backslashreplace", write_through=True)
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
    run_as_main(main, compiled(source, path))


''' + RUN_AS_MAIN
