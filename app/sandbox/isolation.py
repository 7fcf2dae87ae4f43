"""How a program is confined: bubblewrap namespaces plus rlimits, or (development only) rlimits alone."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .cgroups import SlotGroup
from .languages import Language
from .limits import Limits
from .spawn import Launch, SandboxError, readable

WORKDIR = "/box"
BUILD_DIR = "/build"
SEARCH_PATH = "/usr/local/bin:/usr/bin:/bin"
INFO_TIMEOUT_SECONDS = 5.0
NPROC_SLACK = 8
# what a fork server needs in its user namespace to give each run fresh namespaces and mounts
# (SYS_ADMIN), to empty each run's bounding set (SETPCAP) and to bring its loopback up (NET_ADMIN);
# each run drops all three before anything of the learner's is read
FORK_SERVER_CAPS = ("--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETPCAP", "--cap-add", "CAP_NET_ADMIN")


@dataclass(frozen=True)
class Step:
    """Which command of a language to launch: its compile step (writing build_dir) or its run."""

    compile: bool = False
    # compiled artifacts: written by the compile step, read-only to the run
    build_dir: Path | None = None
    # a warm start: the program will arrive on this inherited pipe
    control_fd: int | None = None
    # the program's other files beside its entry file: (relative path, content)
    files: tuple[tuple[str, bytes], ...] = ()
    # command-line arguments of the run (not of the compile step)
    args: tuple[str, ...] = ()
    # a command of the engine's own instead of the language's (the test supervisor of a graded
    # run, app/sandbox/grading.py), and the descriptors it inherits
    command: tuple[str, ...] | None = None
    extra_fds: tuple[int, ...] = ()
    # an interactive run: stdin stays open while the learner types
    interactive: bool = False
    # a fork server (forkserver.py): it keeps the capabilities that make each run's namespaces
    # and mounts inside its own user namespace, and loads the syscall filter in each run itself
    fork_server: bool = False

    def env(self, language: Language) -> dict[str, str]:
        """The environment this step adds to the language's own: the run's, not the compiler's nor a supervisor's."""
        if self.compile or self.control_fd is not None or self.command is not None:
            return {}
        return {**dict(language.run_env), **(dict(language.interactive_env) if self.interactive else {})}

    @property
    def inherited_fds(self) -> tuple[int, ...]:
        return (*(() if self.control_fd is None else (self.control_fd,)), *self.extra_fds)

    def argv(self, language: Language, build: str, memory_bytes: int) -> list[str]:
        if self.command is not None:
            return list(self.command)
        if self.control_fd is not None:
            return language.warm_argv(memory_bytes, self.control_fd)
        if self.compile:
            return language.compile_argv(build, memory_bytes, tuple(name for name, _ in self.files))
        return language.run_argv(build, memory_bytes, self.args)


def rlimit_prefix(limits: Limits, address_space: bool, cgroup: bool = False) -> list[str]:
    """prlimit argv that applies a run's rlimits to everything it execs."""
    cpu = max(1, int(limits.cpu_seconds))
    # with a pids cgroup in force, it is the limit (and the one that says it was hit);
    # the uid's RLIMIT_NPROC stays as a backstop a little above it
    nproc = limits.processes + NPROC_SLACK if cgroup else limits.processes
    argv = [
        "prlimit",
        # soft limit sends SIGXCPU, the hard one a second later SIGKILL
        f"--cpu={cpu}:{cpu + 1}",
        f"--nproc={nproc}",
        f"--fsize={limits.file_size_bytes}",
        f"--nofile={limits.open_files}",
        "--core=0",
    ]
    if address_space:
        argv.append(f"--as={limits.memory_bytes}")
    return [*argv, "--"]


def program_env(language: Language, home: str, step: Step = Step()) -> dict[str, str]:
    """The whole environment a program sees: nothing of the server's."""
    return {"PATH": SEARCH_PATH, "HOME": home, "LANG": "C.UTF-8", **dict(language.env), **step.env(language)}


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, 0)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _read_info(fd: int) -> dict[str, int]:
    """bwrap's --info-fd JSON, read against a deadline so a broken bwrap cannot hang a worker."""
    data = b""
    while True:
        chunk = os.read(fd, 4096) if readable(fd, INFO_TIMEOUT_SECONDS) else b""
        if not chunk:
            raise SandboxError("bubblewrap exited before the sandbox was ready")
        data += chunk
        try:
            return json.loads(data)
        except ValueError:
            continue


class Bubblewrap:
    """User, PID, network, mount, IPC and UTS namespaces from bubblewrap; rlimits from prlimit."""

    name = "bubblewrap"

    def __init__(self, executable: str | None = None, syscall_filter: bytes | None = None) -> None:
        self.executable = executable or shutil.which("bwrap")
        if not self.executable:
            raise SandboxError("bubblewrap (bwrap) is not installed")
        # BPF applied by bubblewrap right before it execs the program: every launch gets it,
        # whatever starts it (cold, warm, compile), after bubblewrap's own setup
        self.syscall_filter = syscall_filter

    def base_argv(self, language: Language, limits: Limits, step: Step = Step()) -> list[str]:
        argv = [
            self.executable,
            "--unshare-all",
            "--unshare-user",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
            "--cap-drop", "ALL",
            *(FORK_SERVER_CAPS if step.fork_server else ()),
            "--uid", "65534",
            "--gid", "65534",
            "--hostname", "sandbox",
            "--ro-bind", "/usr", "/usr",
            # symlinks only (java, and others installed through update-alternatives)
            "--ro-bind-try", "/etc/alternatives", "/etc/alternatives",
            # the dynamic linker's index of /usr's libraries: without it every start searches
            "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
        ]
        for link in ("bin", "lib", "lib64", "sbin"):
            target = os.readlink(f"/{link}") if os.path.islink(f"/{link}") else None
            if target:
                argv += ["--symlink", target, f"/{link}"]
        for path in language.extra_binds:
            argv += ["--ro-bind-try", path, path]
        argv += [
            "--proc", "/proc",
            "--dev", "/dev",
        ]
        for place in ("/tmp", "/dev/shm", WORKDIR):
            # a fork server mounts each run's own tmpfs there: it has nothing writable itself
            argv += ["--dir", place] if step.fork_server else ["--size", str(limits.disk_bytes), "--tmpfs", place]
        argv += [
            "--chdir", WORKDIR,
            "--clearenv",
        ]
        for key, value in program_env(language, WORKDIR, step).items():
            argv += ["--setenv", key, value]
        return argv

    @contextmanager
    def launch(
        self,
        language: Language,
        source: bytes,
        limits: Limits,
        user: int | None,
        group: SlotGroup | None,
        step: Step = Step(),
    ) -> Iterator[Launch]:
        open_fds: set[int] = set()

        def close(*fds: int) -> None:
            # each fd is closed once: a second close could hit a number another thread reuses
            for fd in fds:
                if fd in open_fds:
                    open_fds.discard(fd)
                    os.close(fd)

        child_fds: list[int] = []
        address_space = group is None and language.address_space_limit
        argv = rlimit_prefix(limits, address_space, cgroup=group is not None) + self.base_argv(language, limits, step)
        # bwrap makes a file's parent directories itself
        for name, content in ((language.source_file, source), *step.files):
            fd = _memfd("source", content)
            open_fds.add(fd)
            child_fds.append(fd)
            argv += ["--file", str(fd), f"{WORKDIR}/{name}"]
        if step.build_dir is not None:
            argv += ["--bind" if step.compile else "--ro-bind", str(step.build_dir), BUILD_DIR]
        # nothing else may be written: the root and /dev stay read-only, the RAM-backed
        # writable places are sized (bwrap's own root tmpfs would otherwise take any amount)
        argv += ["--remount-ro", "/dev", "--remount-ro", "/"]
        info_read, info_write = os.pipe()
        block_read, block_write = os.pipe()
        open_fds.update((info_read, info_write, block_read, block_write))
        child_fds += [info_write, block_read]
        argv += ["--info-fd", str(info_write), "--block-fd", str(block_read)]
        if self.syscall_filter is not None and not step.fork_server:
            # a memfd of its own per launch: bubblewrap reads it to the end, from its own offset
            filter_fd = _memfd("seccomp", self.syscall_filter)
            open_fds.add(filter_fd)
            child_fds.append(filter_fd)
            argv += ["--seccomp", str(filter_fd)]

        def release(process: subprocess.Popen[bytes]) -> int:
            # the program waits on block-fd until both bwrap processes are in the slot's groups
            close(info_write, block_read)
            inner_pid = int(_read_info(info_read)["child-pid"])
            if group is not None:
                group.add(process.pid)
                group.add(inner_pid)
            os.write(block_write, b"go")
            return inner_pid

        try:
            yield Launch(
                argv=[*argv, "--", *step.argv(language, BUILD_DIR, limits.memory_bytes)],
                env={"PATH": SEARCH_PATH},
                cwd="/",
                user=user,
                pass_fds=(*child_fds, *step.inherited_fds),
                release=release,
            )
        finally:
            close(*list(open_fds))


class Unconfined:
    """Development only: rlimits, a private temp directory and a scrubbed environment, no namespaces."""

    name = "none"

    def __init__(self, scratch_dir: str | None = None) -> None:
        self.scratch_dir = scratch_dir

    @contextmanager
    def launch(
        self,
        language: Language,
        source: bytes,
        limits: Limits,
        user: int | None,
        group: SlotGroup | None,
        step: Step = Step(),
    ) -> Iterator[Launch]:
        workdir = Path(tempfile.mkdtemp(prefix="run-", dir=self.scratch_dir))
        try:
            for name, content in ((language.source_file, source), *step.files):
                (workdir / name).parent.mkdir(parents=True, exist_ok=True)
                (workdir / name).write_bytes(content)
            if user is not None:
                for path in [workdir, *workdir.rglob("*")]:
                    os.chown(path, user, user)

            def release(process: subprocess.Popen[bytes]) -> None:
                if group is not None:
                    group.add(process.pid)
                return None

            yield Launch(
                argv=rlimit_prefix(limits, group is None and language.address_space_limit, cgroup=group is not None)
                + step.argv(language, str(step.build_dir or workdir), limits.memory_bytes),
                env=program_env(language, str(workdir), step),
                cwd=str(workdir),
                user=user,
                pass_fds=step.inherited_fds,
                release=release,
            )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
