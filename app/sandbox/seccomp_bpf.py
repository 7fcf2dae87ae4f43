"""The sandbox's syscall filter, built with libseccomp and written to stdout as BPF.

Run by the engine once at start-up with Debian's /usr/bin/python3, which has libseccomp's own Python
bindings (python3-seccomp); the engine's interpreter does not. Imports nothing of the engine.
Usage: /usr/bin/python3 -I seccomp_bpf.py > filter.bpf
"""
from __future__ import annotations

import errno
import sys

import seccomp

# refused with EPERM, as a process without the capability would be told (Docker's default profile
# and isolate refuse the same): each is kernel surface a learner's program has no use for
PRIVILEGED = {
    # kernel keyrings are not namespaced: a key added by one run is visible to the next one of its uid
    "add_key": "keyrings are not namespaced",
    "keyctl": "keyrings are not namespaced",
    "request_key": "keyrings are not namespaced",
    # the perf subsystem is a large, often exploited surface and a side channel on other runs
    "perf_event_open": "perf: side channels and a history of kernel bugs",
    # userfaultfd stalls kernel page faults at will: the classic way to win a kernel race
    "userfaultfd": "lets a program stall kernel page faults (exploit primitive)",
    # eBPF programs and maps: large verifier attack surface
    "bpf": "eBPF verifier attack surface",
    # loading kernels and modules
    "kexec_load": "loads a new kernel",
    "kexec_file_load": "loads a new kernel",
    "init_module": "loads a kernel module",
    "finit_module": "loads a kernel module",
    "delete_module": "unloads a kernel module",
    # new namespaces and mounts: bubblewrap has set up the only ones a run gets (and dropped the
    # capabilities); the filter only reaches the program, after bubblewrap's own setup
    "mount": "the run's mounts are fixed by bubblewrap",
    "umount2": "the run's mounts are fixed by bubblewrap",
    "pivot_root": "the run's mounts are fixed by bubblewrap",
    "fsopen": "new mount API",
    "fsconfig": "new mount API",
    "fsmount": "new mount API",
    "fspick": "new mount API",
    "move_mount": "new mount API",
    "open_tree": "new mount API",
    "mount_setattr": "new mount API",
    "unshare": "new namespaces: a run keeps the ones bubblewrap made",
    "setns": "joining namespaces",
    # debugging other processes: nothing to debug in a run, and a way around the filter on old kernels
    "ptrace": "no debugger in a run; cross-process access",
    "process_vm_readv": "cross-process memory access",
    "process_vm_writev": "cross-process memory access",
    "kcmp": "compares kernel objects across processes (a probe of kernel pointers)",
    # host administration, as in Docker's default profile
    "swapon": "host administration",
    "swapoff": "host administration",
    "reboot": "host administration",
    "acct": "host administration (process accounting)",
    "quotactl": "host administration (disk quotas)",
    "quotactl_fd": "host administration (disk quotas)",
    "settimeofday": "the host's clock",
    "clock_settime": "the host's clock",
    "clock_adjtime": "the host's clock",
    "adjtimex": "the host's clock",
    "syslog": "the kernel log",
    "vhangup": "terminal control of the host",
    "iopl": "raw I/O ports",
    "ioperm": "raw I/O ports",
    "lookup_dcookie": "kernel profiling",
    "open_by_handle_at": "opens files by handle, around the mount namespace",
    "name_to_handle_at": "file handles, used with open_by_handle_at",
    "fanotify_init": "filesystem-wide event monitoring",
    "uselib": "obsolete library loading",
    "ustat": "obsolete",
    "sysfs": "obsolete",
    "_sysctl": "obsolete",
}

# refused with ENOSYS, as on a kernel without them: runtimes that probe them (libuv's io_uring)
# fall back to what they do everywhere else
ABSENT = {
    "io_uring_setup": "io_uring runs socket and file operations outside the syscall filter",
    "io_uring_enter": "io_uring",
    "io_uring_register": "io_uring",
    # inotify sees other runs' opens of the shared read-only /usr: a cross-run channel
    "inotify_init": "a cross-run channel through /usr",
    "inotify_init1": "a cross-run channel through /usr",
    # POSIX message queues live in the IPC namespace, which a graded run's cases share, and cannot
    # be listed (and so emptied) without an mqueue mount: a channel from a hidden case to the next
    "mq_open": "a cross-case channel (POSIX message queues)",
}

# file locks on the shared read-only /usr are seen by every run: a cross-run channel. Every lock
# is refused, with the errno a filesystem without locks gives (see docs/security.md: SQLite)
LOCK_ERRNO = errno.ENOLCK
FCNTL_LOCK_COMMANDS = {
    "F_GETLK": 5,
    "F_SETLK": 6,
    "F_SETLKW": 7,
    "F_OFD_GETLK": 36,
    "F_OFD_SETLK": 37,
    "F_OFD_SETLKW": 38,
}

# socket families a program may open. Inside the run's empty network namespace AF_INET and
# AF_INET6 reach only the run's own loopback (learners' servers and clients talk to themselves);
# AF_NETLINK with NETLINK_ROUTE only (getaddrinfo and getifaddrs use it; it sees that loopback).
# Every other family (AF_VSOCK reaches the hypervisor, AF_PACKET, AF_ALG, ...) is refused
ALLOWED_FAMILIES = {"AF_UNIX": 1, "AF_INET": 2, "AF_INET6": 10, "AF_NETLINK": 16}
AF_NETLINK = 16
NETLINK_ROUTE = 0
# beyond every family the kernel knows (AF_MAX is 46): the kernel refuses larger ones itself
FAMILY_LIMIT = 64

# personality: the default (PER_LINUX, 0), PER_LINUX32 (8), UNAME26 (0x20000), both, and the
# query 0xffffffff, as Docker allows; other flags turn off address randomisation or make
# memory executable
PERSONALITY_BITS_ALLOWED = (3, 17)

LOW_32 = 0xFFFFFFFF


def _low32(value: int) -> seccomp.Arg:
    # the kernel reads these arguments as 32-bit ints: compare what it will see
    return seccomp.Arg(0, seccomp.MASKED_EQ, LOW_32, value)


def _personality_rules(syscall_filter: seccomp.SyscallFilter) -> None:
    """Refuse every personality value but the allowed ones, one comparison per rule.

    libseccomp allows one comparison per argument in a rule, so "not in the set" is spelled with
    bit pairs: a value outside the set has a refused bit set; going up from it (cyclically) the run
    of set bits ends at some bit i whose next bit is clear. A rule per i matches "bit i set, bit i+1
    clear"; for an allowed bit i it also asks bit i-1 set, so 0x8 and 0x20000 alone pass. The
    query 0xffffffff has no clear bit and passes.
    """
    for bit in range(32):
        following = 1 << ((bit + 1) % 32)
        if bit in PERSONALITY_BITS_ALLOWED:
            mask, datum = (1 << (bit - 1)) | (1 << bit) | following, (1 << (bit - 1)) | (1 << bit)
        else:
            mask, datum = (1 << bit) | following, 1 << bit
        syscall_filter.add_rule(seccomp.ERRNO(errno.EPERM), "personality", seccomp.Arg(0, seccomp.MASKED_EQ, mask, datum))


def build() -> seccomp.SyscallFilter:
    """The filter: allow by default, refuse the list above, kill any foreign syscall table."""
    syscall_filter = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    # only the native x86_64 table: a 32-bit (int 0x80) or x32 syscall kills the process, since
    # the rules above would not apply to those tables' numbers
    syscall_filter.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)
    # a binary tree over syscall numbers instead of a linear list: fewer BPF steps per syscall
    syscall_filter.set_attr(seccomp.Attr.CTL_OPTIMIZE, 2)
    for name in PRIVILEGED:
        syscall_filter.add_rule(seccomp.ERRNO(errno.EPERM), name)
    for name in ABSENT:
        syscall_filter.add_rule(seccomp.ERRNO(errno.ENOSYS), name)
    syscall_filter.add_rule(seccomp.ERRNO(LOCK_ERRNO), "flock")
    for command in FCNTL_LOCK_COMMANDS.values():
        syscall_filter.add_rule(
            seccomp.ERRNO(LOCK_ERRNO), "fcntl", seccomp.Arg(1, seccomp.MASKED_EQ, LOW_32, command)
        )
    allowed = set(ALLOWED_FAMILIES.values())
    for family in range(FAMILY_LIMIT):
        if family not in allowed:
            for call in ("socket", "socketpair"):
                syscall_filter.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), call, _low32(family))
    # any netlink protocol but NETLINK_ROUTE (audit, uevents, sock_diag, netfilter, xfrm, ...)
    syscall_filter.add_rule(
        seccomp.ERRNO(errno.EPROTONOSUPPORT), "socket", _low32(AF_NETLINK), seccomp.Arg(2, seccomp.NE, NETLINK_ROUTE)
    )
    _personality_rules(syscall_filter)
    return syscall_filter


if __name__ == "__main__":
    build().export_bpf(sys.stdout)
