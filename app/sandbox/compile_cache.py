"""Compiled artifacts keyed by a hash of (language, toolchain version, flags, every source file), bounded in size.

Safe under concurrent runs: a compile writes a private staging directory and publishes it with one
rename; when two runs compile the same source at once, the second rename loses and its copy is dropped.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from .languages import Language

# an entry used this recently is never evicted: a run may be about to bind-mount it
EVICTION_GRACE_SECONDS = 120


class CompileCache:
    def __init__(self, root: str | Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.staging_root = self.root / ".staging"
        self.staging_root.mkdir(parents=True, exist_ok=True)
        # the runs' uids must reach their artifacts, and nothing else here
        os.chmod(self.root, 0o711)

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

    def lookup(self, key: str) -> Path | None:
        """The artifacts directory for key, marked as just used, or None."""
        entry = self.root / key
        try:
            os.utime(entry)
        except FileNotFoundError:
            return None
        return entry

    def staging(self, owner: int | None) -> Path:
        """A fresh directory a compile step may write, owned by the run's uid."""
        directory = Path(tempfile.mkdtemp(dir=self.staging_root))
        os.chmod(directory, 0o755)
        if owner is not None:
            os.chown(directory, owner, owner)
        return directory

    def publish(self, key: str, staging: Path) -> Path:
        """Move a finished staging directory into the cache; returns the entry to use."""
        if os.geteuid() == 0:
            # the compile's uid must not be able to change what later runs execute
            for path in [staging, *staging.rglob("*")]:
                os.lchown(path, 0, 0)
        entry = self.root / key
        try:
            os.rename(staging, entry)
        except OSError:
            # another run published the same key first
            shutil.rmtree(staging, ignore_errors=True)
        self.evict()
        return entry

    def discard(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    def evict(self) -> None:
        """Remove least recently used entries until the cache fits max_bytes."""
        entries = []
        total = 0
        for entry in self.root.iterdir():
            if entry.name.startswith("."):
                continue
            size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
            entries.append((entry.stat().st_mtime, size, entry))
            total += size
        now = time.time()
        for used_at, size, entry in sorted(entries):
            if total <= self.max_bytes:
                break
            if now - used_at < EVICTION_GRACE_SECONDS:
                continue
            shutil.rmtree(entry, ignore_errors=True)
            total -= size
