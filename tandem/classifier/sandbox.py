"""Run a model's code, with a task's tests, in a separate and confined Python process.

Never in the caller's process. The child is confined in layers, so that no single one has to
hold alone:

- limits (``setrlimit``): CPU seconds, address space, size of any file written, no core
  dumps; plus a wall-clock timeout after which its whole process group is killed;
- a scratch directory as its working directory and home, removed afterwards; its output goes to
  a file there (bounded by the file-size limit), never into the caller's memory;
- where the OS allows it, a network namespace of its own (no interface but a downed loopback)
  and, when started as root, the ``nobody`` user, so the filesystem's own permissions refuse
  writes outside the scratch directory (the standard modules answers commonly use are imported
  before that, since the interpreter's files may not be readable by ``nobody``);
- an audit hook (PEP 578) that refuses writes, renames and deletions outside the scratch
  directory, sockets, new processes and ``ctypes``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

PASSED, FAILED, TIMEOUT, BLOCKED, MEMORY = "passed", "failed", "timeout", "blocked", "memory"
NOBODY = 65534

# Runs in the child: limits, isolation, the audit hook, then the program. Kept free of the
# project's imports: the child starts with -I -S (no site-packages, no environment).
_GUARD = r"""
import os, resource, sys

scratch, program, cpu_s, memory_b, file_b, drop = (
    sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]),
    sys.argv[6] == "1",
)
resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
resource.setrlimit(resource.RLIMIT_AS, (memory_b, memory_b))
resource.setrlimit(resource.RLIMIT_FSIZE, (file_b, file_b))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
sys.dont_write_bytecode = True
with open(program, encoding="utf-8") as handle:
    source = handle.read()

# What answers and HumanEval's tests commonly import, loaded while the files are readable.
for name in ("abc", "array", "bisect", "calendar", "cmath", "collections", "contextlib",
             "copy", "dataclasses", "datetime", "decimal", "enum", "fractions", "functools",
             "hashlib", "heapq", "io", "itertools", "json", "math", "numbers", "operator",
             "pathlib", "random", "re", "statistics", "string", "struct", "textwrap", "time",
             "typing", "unicodedata", "warnings"):
    try:
        __import__(name)
    except ImportError:
        pass

try:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
    if libc.unshare(CLONE_NEWNET) != 0:
        libc.unshare(CLONE_NEWUSER | CLONE_NEWNET)
    del ctypes, libc
    for name in [n for n in sys.modules if n.startswith(("ctypes", "_ctypes"))]:
        del sys.modules[name]  # so that importing it again goes through the audit hook
except Exception:
    pass
if drop:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)

root = os.path.realpath(scratch)
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
PATH_EVENTS = {
    "os.chmod", "os.chown", "os.link", "os.mkdir", "os.remove", "os.rename", "os.rmdir",
    "os.symlink", "os.truncate", "os.utime", "shutil.rmtree", "os.chdir", "os.chroot",
}
DENIED = (
    "socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
    "os.fork", "os.forkpty", "pty.", "ctypes.", "os.kill", "os.killpg", "signal.pthread_kill",
    "sys.addaudithook", "os.startfile", "webbrowser.", "urllib.", "http.", "ftplib.",
    "smtplib.", "telnetlib.",
)
BLOCKED_IMPORTS = {"ctypes", "_ctypes", "_posixsubprocess", "subprocess", "socket", "_socket",
                   "multiprocessing", "pty"}


def inside(path):
    if isinstance(path, int):
        return True  # an open file descriptor: judged when it was opened
    try:
        real = os.path.realpath(os.fsdecode(path))
    except (TypeError, ValueError):
        return False
    return real == root or real.startswith(root + os.sep)


def hook(event, args):
    if event == "open":
        path, mode, flags = args
        writing = bool(mode and any(c in mode for c in "wax+")) or bool((flags or 0) & WRITE)
        if writing and path is not None and not inside(path):
            raise PermissionError(f"sandbox: no writing outside the scratch directory: {path}")
    elif event in PATH_EVENTS:
        for arg in args:
            if isinstance(arg, (str, bytes, os.PathLike)) and not inside(arg):
                raise PermissionError(f"sandbox: {event} outside the scratch directory: {arg}")
    elif event == "import" and args[0] in BLOCKED_IMPORTS:
        raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
    elif event.startswith(DENIED):
        raise PermissionError(f"sandbox: {event} is not allowed")


sys.addaudithook(hook)
del hook, resource
exec(compile(source, "answer.py", "exec"), {"__name__": "__main__"})
"""


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 1024
    file_mb: int = 16


@dataclass(frozen=True)
class SandboxResult:
    outcome: str  # passed, failed, timeout, blocked or memory
    returncode: int | None
    output: str  # the end of what the program printed

    @property
    def passed(self) -> bool:
        return self.outcome == PASSED


def _interpreter() -> str:
    """The real interpreter (not a virtualenv's launcher): the child needs no site-packages."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _outcome(returncode: int, output: str) -> str:
    if returncode == 0:
        return PASSED
    if "PermissionError: sandbox:" in output:
        return BLOCKED
    if "MemoryError" in output:
        return MEMORY
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return TIMEOUT
    return FAILED


def run_python(program: str, limits: Limits | None = None) -> SandboxResult:
    """Run ``program``; it passes when it exits 0 (a test's assertion failing exits 1)."""
    limits = limits or Limits()
    scratch = Path(tempfile.mkdtemp(prefix="tandem-sandbox-"))
    drop = os.geteuid() == 0
    try:
        (scratch / "guard.py").write_text(_GUARD, encoding="utf-8")
        (scratch / "answer.py").write_text(program, encoding="utf-8")
        if drop:
            for path in (scratch, *scratch.iterdir()):
                os.chown(path, NOBODY, NOBODY)
        log = scratch / "output.txt"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [
                    _interpreter(),
                    "-I",
                    "-S",
                    "-B",
                    str(scratch / "guard.py"),
                    str(scratch),
                    str(scratch / "answer.py"),
                    str(limits.cpu_s),
                    str(limits.memory_mb * 1024 * 1024),
                    str(limits.file_mb * 1024 * 1024),
                    "1" if drop else "0",
                ],
                cwd=scratch,
                env={"PATH": "/usr/bin:/bin", "HOME": str(scratch), "TMPDIR": str(scratch)},
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as a whole
            )
            try:
                returncode = process.wait(timeout=limits.timeout_s)
                timed_out = False
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                returncode = process.wait()
                timed_out = True
        with log.open("rb") as handle:
            handle.seek(max(0, log.stat().st_size - 4000))
            text = handle.read().decode("utf-8", "replace")
        outcome = TIMEOUT if timed_out else _outcome(returncode, text)
        return SandboxResult(outcome, returncode, text)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
