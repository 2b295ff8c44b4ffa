from __future__ import annotations

import json
import logging

from shared.logging import JsonFormatter, log_context


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
