from __future__ import annotations

import json
import logging
import sys

from shared.logging import ContextTextFormatter, JsonFormatter, log_context, redact


def test_json_lines_carry_the_context() -> None:
    formatter = JsonFormatter("scorer")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "scored %s", ("level 2",), None)
    with log_context(job_id="j-1", tenant_id="t-9"):
        inside = json.loads(formatter.format(record))
    outside = json.loads(formatter.format(record))
    assert inside["message"] == "scored level 2"
    assert inside["job_id"] == "j-1" and inside["tenant_id"] == "t-9"
    assert inside["service"] == "scorer"
    assert "job_id" not in outside


def test_credentials_in_urls_are_redacted_in_every_line() -> None:
    secret = "s3cr3t-pa55"
    record = logging.LogRecord(
        "httpx",
        logging.INFO,
        __file__,
        1,
        "HTTP Request: %s %s",
        ("POST", f"http://hook-user:{secret}@hooks.example.com/x?a=1"),
        None,
    )
    try:
        raise ConnectionError(f"cannot reach redis://:{secret}@10.0.0.1:6379/0")
    except ConnectionError:
        failing = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    for formatter in (JsonFormatter("webhooks"), ContextTextFormatter("%(message)s")):
        for line in (formatter.format(record), formatter.format(failing)):
            assert secret not in line and "hook-user" not in line
        assert "http://***@hooks.example.com/x?a=1" in formatter.format(record)


def test_redact_leaves_other_text_alone() -> None:
    text = "mail ops@example.com about https://example.com/a@b and job 42"
    assert redact(text) == text
    assert (
        redact("postgresql+psycopg://tandem:pw@db:5432/t") == "postgresql+psycopg://***@db:5432/t"
    )
