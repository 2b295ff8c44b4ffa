"""Code grading: answers run against the task's tests in a confined subprocess (time, memory,
no writes outside its scratch directory, no network, no new processes); HumanEval as a source."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from shared.datasets import Split, TaskRecord
from tandem.classifier.code_tasks import code_reference, grade_code, humaneval_records
from tandem.classifier.questions import (
    QuestionFileError,
    grade_output,
    load_questions,
    read_question_file,
)
from tandem.classifier.sandbox import BLOCKED, FAILED, MEMORY, PASSED, TIMEOUT, Limits, run_python

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


def test_writing_outside_the_scratch_directory_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    for code in (
        f"open({str(target)!r}, 'w').write('x')",
        f"import os\nos.open({str(target)!r}, os.O_WRONLY | os.O_CREAT)",
        f"import pathlib\npathlib.Path({str(target)!r}).write_text('x')",
        f"import os\nos.rename('answer.py', {str(target)!r})",
    ):
        result = run_python(code, QUICK)
        assert result.outcome == BLOCKED, result.output
    assert not target.exists()
    inside = run_python("open('notes.txt', 'w').write('ok')\nprint(open('notes.txt').read())")
    assert inside.outcome == PASSED and inside.output.strip() == "ok"


def test_no_network_and_no_new_processes(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        result = run_python(f"import socket\nsocket.create_connection(('127.0.0.1', {port}))")
    assert result.outcome == BLOCKED
    marker = tmp_path / "spawned"
    for code in (f"import os\nos.system('touch {marker}')", "import subprocess", "import ctypes"):
        assert run_python(code, QUICK).outcome == BLOCKED
    assert not marker.exists()


def test_memory_and_output_are_bounded() -> None:
    assert run_python("x = bytearray(8 * 1024 ** 3)", QUICK).outcome == MEMORY
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
