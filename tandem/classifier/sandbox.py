"""Run a model's code, with a task's tests, in a separate, unprivileged and confined process tree.

Nothing guards the code from inside its own interpreter (a hook there can be reached and
switched off by the code it guards); the confinement is the operating system's, set up by a
short launcher in the child before the program is read:

- its own user id, unused by anything else (when the grader runs as root, as the stack and CI
  do): the filesystem's permissions refuse writes outside its scratch space, it can signal no
  other process, and ``RLIMIT_NPROC`` counts exactly its own processes, so a fork bomb stops
  at ``Limits.processes``;
- a mount namespace of its own: its scratch space is a private ``tmpfs`` of ``Limits.disk_mb``
  mounted on ``/tmp`` (also its working directory and home), and the other world-writable
  places (``/var/tmp``, ``/dev/shm``, ``/run/lock``) are read-only and empty;
- a network namespace of its own: no interface but a downed loopback;
- limits (``setrlimit``): CPU seconds, address space, size of any file written, open files,
  no core dumps;
- a wall-clock deadline, at which (and after every run) every process of its user id is
  killed with one ``kill(-1, SIGKILL)`` sent as that user: a ``setsid()`` or double-forked
  grandchild dies with the rest. Without root, its process group is killed instead, and the
  user id, process count and private ``/tmp`` are not available (the network namespace is,
  through a user namespace, where the kernel allows it).

The program arrives on standard input, never in a file the child can read again, and passing
means reaching the end: the child prints a random completion token after the program has run
to its end, so ``sys.exit(0)`` or ``os._exit(0)`` in an answer does not pass. (The token lives
in the process it guards: code written to hunt for it through the launcher's frame could print
it; what such code can reach or damage is what the confinement above bounds.) Output goes to a
file of the grader's, bounded by the file-size limit, and only its end is read.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

PASSED, FAILED, TIMEOUT, MEMORY = "passed", "failed", "timeout", "memory"

# User ids of sandboxed runs: far above any the system allocates, one per run.
UID_BASE, UID_SPAN = 1 << 22, 1 << 20

# Runs in the child as root (or as the caller), before the program: namespaces, mounts,
# limits, the user id; then it reads the token and the program from stdin and runs it. Kept
# free of the project's imports: the child starts with -I -S (no site-packages, no env).
_LAUNCHER = r"""
import ctypes, os, resource, sys

uid, cpu_s, memory_b, file_b, disk_b, processes, SETUP_FAILED = (
    int(a) for a in sys.argv[1:8]
)
root = os.geteuid() == 0
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 1, 2, 4, 0x4000, 0x40000


def check(result, what):
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"sandbox setup: {what}: {os.strerror(error)}")


def mount(source, target, fstype, flags, data):
    check(libc.mount(source, target, fstype, flags, data), f"mount {target!r}")


def confine():
    check(libc.unshare(CLONE_NEWNS | CLONE_NEWNET), "unshare")
    mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None)
    options = f"size={disk_b},mode=0700,uid={uid},gid={uid}".encode()
    mount(b"tmpfs", b"/tmp", b"tmpfs", MS_NOSUID | MS_NODEV, options)
    for path in (b"/var/tmp", b"/dev/shm", b"/run/lock"):
        if os.path.isdir(path):
            mount(b"tmpfs", path, b"tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, b"size=4k")


if root:
    try:
        confine()
    except OSError as error:  # never run the program less confined than promised
        os.write(2, f"{error}\n".encode())
        os._exit(SETUP_FAILED)
    home = "/tmp"
else:
    libc.unshare(CLONE_NEWUSER | CLONE_NEWNET)  # best effort: not every kernel allows it
    home = os.getcwd()
os.chdir(home)
os.environ.clear()
os.environ.update({"PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": home})

# What answers and HumanEval's tests commonly import, loaded now: the interpreter's files may
# not be readable by the sandbox's user.
for name in ("abc", "array", "bisect", "calendar", "cmath", "collections", "contextlib",
             "copy", "dataclasses", "datetime", "decimal", "enum", "fractions", "functools",
             "hashlib", "heapq", "io", "itertools", "json", "math", "numbers", "operator",
             "pathlib", "random", "re", "statistics", "string", "struct", "textwrap", "time",
             "typing", "unicodedata", "warnings"):
    try:
        __import__(name)
    except ImportError:
        pass
del ctypes, libc, check, mount

resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
resource.setrlimit(resource.RLIMIT_AS, (memory_b, memory_b))
resource.setrlimit(resource.RLIMIT_FSIZE, (file_b, file_b))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
if root:
    resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
sys.dont_write_bytecode = True



def run():
    # The token is a local of this frame, not a global of the module the program can import
    # as __main__: reaching it takes deliberate frame walking, never an accidental exit.
    data = b""
    while chunk := os.read(0, 1 << 16):
        data += chunk
    os.close(0)
    token, _, source = data.partition(b"\n")
    code = compile(source.decode("utf-8", "replace"), "answer.py", "exec")
    del data, source
    finish = os.write
    exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
    sys.stdout.flush()
    sys.stderr.flush()
    finish(1, b"\n" + token + b"\n")


run()
"""


SETUP_FAILED = 71  # sysexits.h EX_OSERR: the launcher could not confine the child


class SandboxUnavailable(RuntimeError):
    """The OS refused the confinement (no mount or network namespace where root was expected,
    as in a container without CAP_SYS_ADMIN): nothing is graded rather than graded unconfined
    or failed for the wrong reason."""


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 1024
    file_mb: int = 16
    disk_mb: int = 32
    processes: int = 16


@dataclass(frozen=True)
class SandboxResult:
    outcome: str  # passed, failed, timeout or memory
    returncode: int | None
    output: str  # the end of what the program printed (without the completion token)

    @property
    def passed(self) -> bool:
        return self.outcome == PASSED


def _interpreter() -> str:
    """The real interpreter (not a virtualenv's launcher): the child needs no site-packages."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _kill_tree(pid: int, uid: int | None) -> None:
    """Kill everything the run started: as its user (every process of that uid, whatever
    session or group it moved to: ``kill(-1)`` reaches exactly the processes a user may
    signal), and its process group."""
    if uid is not None:
        # A forked child rather than a new program: the interpreter's files may not be
        # readable by that user. The child only makes system calls before it exits.
        killer = os.fork()
        if killer == 0:
            try:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(killer, 0)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _outcome(returncode: int, output: str, finished: bool) -> str:
    if returncode == 0 and finished:
        return PASSED
    if "MemoryError" in output:
        return MEMORY
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return TIMEOUT
    return FAILED


def run_python(program: str, limits: Limits | None = None) -> SandboxResult:
    """Run ``program``; it passes when it runs to its end and exits 0 (a test's assertion
    failing exits 1)."""
    limits = limits or Limits()
    scratch = Path(tempfile.mkdtemp(prefix="tandem-sandbox-"))
    uid = UID_BASE + secrets.randbelow(UID_SPAN) if os.geteuid() == 0 else None
    token = secrets.token_hex(16)
    workdir = scratch / "work"
    workdir.mkdir()
    log = scratch / "output.txt"
    process: subprocess.Popen[bytes] | None = None
    try:
        with log.open("wb") as output:
            process = subprocess.Popen(
                [
                    _interpreter(),
                    "-I",
                    "-S",
                    "-B",
                    "-c",
                    _LAUNCHER,
                    str(uid or 0),
                    str(limits.cpu_s),
                    str(limits.memory_mb << 20),
                    str(limits.file_mb << 20),
                    str(limits.disk_mb << 20),
                    str(limits.processes),
                    str(SETUP_FAILED),
                ],
                cwd=workdir,
                env={"PATH": "/usr/bin:/bin"},
                stdin=subprocess.PIPE,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group too
            )
            try:
                process.communicate(f"{token}\n{program}".encode(), timeout=limits.timeout_s)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_tree(process.pid, uid)
            returncode = process.wait()
        with log.open("rb") as handle:
            handle.seek(max(0, log.stat().st_size - 4000))
            text = handle.read().decode("utf-8", "replace")
        if returncode == SETUP_FAILED and "sandbox setup:" in text:
            raise SandboxUnavailable(text.strip())
        finished = text.rstrip("\n").endswith(token)
        text = text.replace(f"\n{token}\n", "").replace(token, "")
        outcome = TIMEOUT if timed_out else _outcome(returncode, text, finished)
        return SandboxResult(outcome, returncode, text)
    finally:
        if process is not None and process.poll() is None:
            _kill_tree(process.pid, uid)
        shutil.rmtree(scratch, ignore_errors=True)
