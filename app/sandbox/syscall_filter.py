"""The syscall filter every sandboxed program runs under: built once at start-up, handed to each launch."""
from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from .spawn import SandboxError

# libseccomp's own Python bindings (Debian python3-seccomp) exist for the system interpreter only
SYSTEM_PYTHON = "/usr/bin/python3"
POLICY_SCRIPT = Path(__file__).with_name("seccomp_bpf.py")
BUILD_TIMEOUT_SECONDS = 30.0
# a classic BPF instruction is 8 bytes
BPF_INSTRUCTION_BYTES = 8


@functools.cache
def build_filter(python: str = SYSTEM_PYTHON) -> bytes:
    """The filter as BPF, built by libseccomp from the policy in seccomp_bpf.py; SandboxError if it cannot be.

    Built once per process (every engine of a process shares it): it depends on nothing but the policy.
    """
    try:
        done = subprocess.run(
            [python, "-I", str(POLICY_SCRIPT)], capture_output=True, timeout=BUILD_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SandboxError(f"the syscall filter could not be built: {error}") from error
    program = done.stdout
    if done.returncode != 0 or not program or len(program) % BPF_INSTRUCTION_BYTES:
        said = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["nothing"]
        raise SandboxError(
            f"the syscall filter could not be built (is python3-seccomp installed?): {said[0]}"
        )
    return program
