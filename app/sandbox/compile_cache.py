"""Compiled artifacts keyed by a hash of (language, toolchain version, flags, every source file), bounded in size.

Never larger than max_bytes plus the artifacts in use right now. A run holds a shared flock() on
its artifact's directory for as long as it may bind-mount it; eviction removes least recently used
entries that it can lock exclusively, so it never takes one from under a run, in this engine
process or another. An artifact larger than max_bytes by itself is never cached: it serves its one
run and is deleted.

Safe under concurrent runs: a compile writes a private staging directory and publishes it with one
rename; when two runs compile the same source at once, the second rename loses and its copy serves
its own run only.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .languages import Language

# staging directories older than this belong to an engine that died mid-compile (a compile and its
# run last seconds): removed when an engine starts
STALE_STAGING_SECONDS = 3600


@dataclass
class Artifact:
    """A compiled program a run may use until release(): locked in the cache, or a private copy."""

    path: Path
    # the directory's fd, holding the shared lock that keeps eviction away; -1 once released
    fd: int
    # False for a copy that is not in the cache (too large, or another run published first)
    cached: bool
    # called once released: the cache may now evict what it had to spare
    after_release: Callable[[], None] | None = None

    def release(self) -> None:
        """The run is over: let eviction have it (a private copy is deleted now)."""
        if self.fd < 0:
            return
        fd, self.fd = self.fd, -1
        os.close(fd)
        if not self.cached:
            shutil.rmtree(self.path, ignore_errors=True)
        if self.after_release is not None:
            self.after_release()


def _lock_directory(path: Path, exclusive: bool) -> int | None:
    """An fd of path's directory holding a flock, or None when it is gone or someone holds a conflicting lock."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        # still the directory at that path: an evictor may have renamed it away meanwhile
        held, now = os.fstat(fd), os.stat(path)
        if (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def _size(directory: Path) -> int:
    try:
        return sum(path.lstat().st_size for path in directory.rglob("*") if path.is_file())
    except OSError:
        return 0


class CompileCache:
    def __init__(self, root: str | Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.staging_root = self.root / ".staging"
        self.staging_root.mkdir(parents=True, exist_ok=True)
        # the runs' uids must reach their artifacts, and nothing else here
        os.chmod(self.root, 0o711)
        # set when an eviction had to spare artifacts in use and left the cache over its limit:
        # the next release evicts again (a release is otherwise free of scans)
        self._over_limit = False
        self._remove_stale_staging()

    def _remove_stale_staging(self) -> None:
        cutoff = time.time() - STALE_STAGING_SECONDS
        for directory in self.staging_root.iterdir():
            try:
                if directory.stat().st_mtime < cutoff:
                    shutil.rmtree(directory, ignore_errors=True)
            except OSError:
                continue

    def key(self, language: Language, source: bytes, files: tuple[tuple[str, bytes], ...] = ()) -> str:
        """The entry for this program: every one of its files, by name and content, counts."""
        digest = hashlib.sha256()
        for part in (language.name, language.version() or "", "\0".join(language.compile or ()), ""):
            digest.update(part.encode() + b"\0")
        digest.update(source)
        for name, content in files:
            # lengths first, so no two different sets of files hash alike
            digest.update(f"\0{len(name)}:{name}{len(content)}:".encode())
            digest.update(content)
        return digest.hexdigest()

    def acquire(self, key: str) -> Artifact | None:
        """The cached artifacts for key, marked as just used and held until released, or None."""
        entry = self.root / key
        fd = _lock_directory(entry, exclusive=False)
        if fd is None:
            return None
        try:
            os.utime(entry)
        except OSError:
            pass
        return Artifact(entry, fd, cached=True, after_release=self._released)

    def staging(self, owner: int | None) -> Path:
        """A fresh directory a compile step may write, owned by the run's uid."""
        directory = Path(tempfile.mkdtemp(dir=self.staging_root))
        os.chmod(directory, 0o755)
        if owner is not None:
            os.chown(directory, owner, owner)
        return directory

    def publish(self, key: str, staging: Path) -> Artifact:
        """Move a finished staging directory into the cache (when it fits) and hold it for the run."""
        if os.geteuid() == 0:
            # the compile's uid must not be able to change what later runs execute
            for path in [staging, *staging.rglob("*")]:
                os.lchown(path, 0, 0)
        # locked before the rename: the lock follows the directory, so no eviction can slip in
        fd = _lock_directory(staging, exclusive=False)
        if fd is None:
            raise OSError(f"cannot lock the compile's staging directory {staging}")
        if _size(staging) > self.max_bytes:
            return Artifact(staging, fd, cached=False)
        entry = self.root / key
        try:
            os.rename(staging, entry)
        except OSError:
            # another run published the same key first: this copy serves this run only
            return Artifact(staging, fd, cached=False)
        self.evict()
        return Artifact(entry, fd, cached=True, after_release=self._released)

    def discard(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    def entries(self) -> list[tuple[float, int, Path]]:
        """(last used, bytes, path) of every cached artifact."""
        found = []
        for entry in self.root.iterdir():
            if entry.name.startswith("."):
                continue
            try:
                used_at = entry.stat().st_mtime
            except OSError:
                continue
            found.append((used_at, _size(entry), entry))
        return found

    def size_bytes(self) -> int:
        return sum(size for _, size, _ in self.entries())

    def evict(self) -> None:
        """Remove least recently used entries no run holds until the cache fits max_bytes."""
        entries = self.entries()
        total = sum(size for _, size, _ in entries)
        for _, size, entry in sorted(entries):
            if total <= self.max_bytes:
                break
            fd = _lock_directory(entry, exclusive=True)
            if fd is None:
                # in use by a run right now (or already gone): it stays, and counts
                continue
            try:
                # out of the cache's namespace at once, then deleted at leisure
                doomed = Path(tempfile.mkdtemp(prefix="evicted-", dir=self.staging_root))
                os.rename(entry, doomed / "entry")
            except OSError:
                continue
            finally:
                os.close(fd)
            shutil.rmtree(doomed, ignore_errors=True)
            total -= size
        self._over_limit = total > self.max_bytes

    def _released(self) -> None:
        if self._over_limit:
            self.evict()

    def describe(self) -> dict[str, int]:
        """The cache's size and limit, for /health."""
        return {"bytes": self.size_bytes(), "max_bytes": self.max_bytes}
