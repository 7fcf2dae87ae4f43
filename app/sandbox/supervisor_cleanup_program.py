"""What the test supervisor does after every case, in its program text (supervisor_program.SOURCE):
empty the writable places, kill whatever the case left running, remove its System V IPC objects.

Text, not code the engine imports: pasted into the supervisor's program after its set-up (it uses
its names: LIBC, ZYGOTE_PID, SWEEP_ROUNDS...) and run by /usr/bin/python3 inside the sandbox.
"""

CLEANUP = r'''
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
        others = [int(name) for name in os.listdir("/proc") if name.isdigit() and int(name) not in (1, me, ZYGOTE_PID) and alive(name)]
        if not others:
            return
        for other in others:
            try:
                os.kill(other, _signal.SIGKILL)
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
            with open("/proc/sysvipc/" + kind, "rb") as table:
                rows = table.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            remove(int(row.split()[1]))


def kill_group(pid):
    try:
        os.killpg(pid, _signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


'''
