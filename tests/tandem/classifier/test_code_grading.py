"""Code grading: answers run against the task's tests in a separate, unprivileged process tree
(time, memory, processes, disk, no writes outside its scratch space, no network, the whole tree
killed at the deadline; passing means the tests ran to the end); HumanEval as a source."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from tandem.classifier.code_tasks import code_reference, grade_code, humaneval_records
from tandem.classifier.questions import (
    QuestionFileError,
    grade_output,
    load_questions,
    read_question_file,
)
from tandem.classifier.sandbox import (
    FAILED,
    MEMORY,
    PASSED,
    TIMEOUT,
    Limits,
    SandboxUnavailable,
    run_python,
)
from tandem.datasets import Split, TaskRecord

QUICK = Limits(timeout_s=3.0, cpu_s=2)
ADD = code_reference("def check(candidate):\n    assert candidate(2, 3) == 5\n", "add")


def test_passing_and_failing_answers() -> None:
    assert grade_code("def add(a, b):\n    return a + b\n", ADD, QUICK)
    assert not grade_code("def add(a, b):\n    return a - b\n", ADD, QUICK)
    assert not grade_code("def add(a, b) return", ADD, QUICK)  # a syntax error fails
    assert not grade_code(None, ADD, QUICK)


def test_a_body_continuing_the_prompt_is_graded_too() -> None:
    reference = code_reference(
        "def check(candidate):\n    assert candidate(4) == 16\n",
        "square",
        prompt='def square(x):\n    """x squared."""\n',
    )
    assert grade_code("    return x * x\n", reference, QUICK)


def test_a_loop_that_never_ends_is_stopped() -> None:
    result = run_python("while True:\n    pass\n", QUICK)
    assert result.outcome == TIMEOUT and not result.passed
    sleeper = run_python("import time\ntime.sleep(60)\n", QUICK)  # no CPU used: wall clock
    assert sleeper.outcome == TIMEOUT


ROOT_ONLY = pytest.mark.skipif(
    os.geteuid() != 0, reason="its own user id and mount namespace need root (as in CI)"
)


def test_exiting_early_with_status_zero_does_not_pass() -> None:
    wrong = "def add(a, b):\n    return a - b\n"
    for escape in (
        "import sys\nsys.exit(0)\n",
        "import os\nos._exit(0)\n",
        "raise SystemExit(0)\n",
        "exit()\n",
        "import __main__, os\nprint(vars(__main__).get('token'))\nos._exit(0)\n",
    ):
        assert not grade_code(wrong + escape, ADD, QUICK), escape
    result = run_python("print('fine')\nimport os\nos._exit(0)\n", QUICK)
    assert result.outcome == FAILED and result.returncode == 0


def test_the_completion_token_is_not_in_the_output() -> None:
    result = run_python("print('ok')", QUICK)
    assert result.outcome == PASSED and result.output.strip() == "ok"


@ROOT_ONLY
def test_writing_outside_the_scratch_space_is_refused(tmp_path: Path) -> None:
    tmp_path.chmod(0o777)  # even a world-writable directory of the grader's
    targets = [tmp_path / "escaped.txt", Path("/var/tmp/tandem-escaped"), Path("/dev/shm/esc")]
    for target in targets:
        for code in (
            f"open({str(target)!r}, 'w').write('x')",
            f"import os\nos.open({str(target)!r}, os.O_WRONLY | os.O_CREAT)",
            f"import pathlib\npathlib.Path({str(target)!r}).write_text('x')",
            # a program it runs is confined the same way (it runs as the same user)
            f"import os\nassert os.system('touch {target}') == 0",
        ):
            assert run_python(code, QUICK).outcome == FAILED
        assert not target.exists()
    inside = run_python("open('notes.txt', 'w').write('ok')\nprint(open('notes.txt').read())")
    assert inside.outcome == PASSED and inside.output.strip() == "ok"


@ROOT_ONLY
def test_the_scratch_space_is_bounded() -> None:
    code = "block = b'x' * (1 << 20)\nfor i in range(64):\n    open(f'f{i}', 'wb').write(block)"
    result = run_python(code, Limits(timeout_s=10, disk_mb=8, file_mb=4))
    assert result.outcome == FAILED and "No space left" in result.output


@ROOT_ONLY
def test_the_graders_state_is_out_of_reach() -> None:
    # Another user: the grader's environment, memory and signals are refused by the kernel.
    for code in (
        f"print(open('/proc/{os.getpid()}/environ').read())",
        f"print(open('/proc/{os.getpid()}/mem', 'rb').read(1))",
        f"import os\nos.kill({os.getpid()}, 15)",
    ):
        result = run_python(code, QUICK)
        assert result.outcome == FAILED and "PermissionError" in result.output, result.output


def test_no_network() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.5)
        port = server.getsockname()[1]
        result = run_python(f"import socket\nsocket.create_connection(('127.0.0.1', {port}))")
        with pytest.raises(TimeoutError):
            server.accept()
    assert (result.outcome == FAILED and "OSError" in result.output) or "Error" in result.output


def _gone(pid: int, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def test_a_setsid_grandchild_dies_at_the_deadline() -> None:
    code = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        print('grandchild', os.getpid(), flush=True)\n"
        "        while True:\n"
        "            time.sleep(0.1)\n"
        "    os._exit(0)\n"
        "time.sleep(60)\n"
    )
    result = run_python(code, QUICK)
    assert result.outcome == TIMEOUT
    (pid,) = [int(line.split()[1]) for line in result.output.splitlines() if "grandchild" in line]
    assert _gone(pid), f"grandchild {pid} outlived the sandbox"


def test_a_daemon_left_behind_by_a_passing_run_dies_too() -> None:
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    print('daemon', os.getpid(), flush=True)\n"
        "    while True:\n"
        "        time.sleep(0.1)\n"
        "time.sleep(0.5)\n"
    )
    result = run_python(code, QUICK)
    (pid,) = [int(line.split()[1]) for line in result.output.splitlines() if "daemon" in line]
    assert _gone(pid), f"daemon {pid} outlived the sandbox"


@ROOT_ONLY
def test_a_fork_bomb_stops_at_the_process_limit() -> None:
    code = (
        "import os, time\n"
        "started = 0\n"
        "try:\n"
        "    while True:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30)\n"
        "            os._exit(0)\n"
        "        started += 1\n"
        "except OSError as error:\n"
        "    print('stopped after', started, type(error).__name__, flush=True)\n"
    )
    result = run_python(code, Limits(timeout_s=5, cpu_s=2, processes=8))
    assert result.outcome == PASSED, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("stopped")]
    assert int(line.split()[2]) < 8


def test_memory_cpu_and_output_are_bounded() -> None:
    assert run_python("x = bytearray(8 * 1024 ** 3)", QUICK).outcome == MEMORY
    spinner = run_python("while True:\n    pass\n", Limits(timeout_s=30, cpu_s=1))
    assert spinner.outcome == TIMEOUT  # the CPU limit, well before the wall clock
    flood = run_python("while True:\n    print('x' * 10000)", Limits(timeout_s=5, file_mb=1))
    assert flood.outcome == FAILED and len(flood.output) <= 4000


def test_humaneval_canonical_solutions_pass_and_splits_partition() -> None:
    everything = humaneval_records(list(Split), None)
    assert len(everything) == 164 and len({r.id for r in everything}) == 164
    test = humaneval_records([Split.TEST], 3)
    assert [r.split for r in test] == [Split.TEST] * 3
    assert load_questions("humaneval", [Split.TEST], 3) == test
    for record in test:
        assert record.grader == "code" and record.domain == "code"
        reference = json.loads(record.reference)
        body = record.solution[len(reference["prompt"]) :]
        assert grade_code(body, record.reference)
        assert not grade_code("    return None\n", record.reference)


def test_grading_a_code_answer_extracts_its_block() -> None:
    record = TaskRecord("c", "code", Split.TEST, "add two numbers", ADD, "", "", "code")
    text = "Here it is:\n```python\ndef add(a, b):\n    return a + b\n```\nDone."
    assert grade_output(record, text) == ("def add(a, b):\n    return a + b", True)
    assert grade_output(record, "no code at all") == (None, False)


def test_a_user_file_with_a_bad_code_reference_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "code.jsonl"
    good = {"id": "c1", "domain": "code", "question": "q", "reference": ADD, "grader": "code"}
    bad = {**good, "id": "c2", "reference": "not json"}
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(QuestionFileError, match=r"code.jsonl:2: a code reference is JSON"):
        read_question_file(path)


@ROOT_ONLY
def test_a_sandbox_that_cannot_be_set_up_refuses_to_grade() -> None:
    # An invalid size makes the kernel refuse the scratch mount, as a container without
    # CAP_SYS_ADMIN refuses every mount: an error, not a silently failed (or unconfined) answer.
    with pytest.raises(SandboxUnavailable, match="sandbox setup"):
        run_python("print('never run')", Limits(disk_mb=-1))
