"""How a forked Python process runs the learner's program as a cold `python3 -E -s -u -B main.py`
would, and exits: program text shared by the fork server's runs (forkserver_run_program.py) and the
test supervisor's cases (supervisor_case_program.py), each pasting it into its own program.
"""

RUN_AS_MAIN = r'''
# imported here, once, by the process every run or case is forked from (which then drops it from
# sys.modules, as a cold start has none): `import atexit` at each run's end was a real import
# through importlib, ~50 pages copied after the fork (~0.15 ms of every run). The callbacks live
# in the interpreter, not the module: a program's own `import atexit` registers where this runs
import atexit as _ATEXIT


def compiled(source, path):
    """The program's code object, or the error compiling it raised, kept without a frame of ours
    (raised in run_as_main, it reads as a cold start's)."""
    try:
        return compile(source, path, "exec", dont_inherit=True)
    except BaseException as error:
        error.__traceback__ = None
        return error


def run_as_main(main, code):
    """Execute code in main as a cold start would (its traceback, its exit status, threads joined,
    atexit run, streams flushed), then exit."""
    exit_code = 0
    try:
        if isinstance(code, BaseException):
            raise code
        exec(code, main.__dict__)
    except SystemExit as stop:
        exit_code = exit_code_of(stop)
    except BaseException as error:
        # the traceback a cold start prints: without this frame
        error.__traceback__ = error.__traceback__.tb_next
        sys.excepthook(type(error), error, error.__traceback__)
        exit_code = 1
    try:
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()
        _ATEXIT._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except SystemExit as stop:
        exit_code = exit_code_of(stop)
    except BaseException:
        exit_code = exit_code or 1
    os._exit(exit_code)


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


'''
