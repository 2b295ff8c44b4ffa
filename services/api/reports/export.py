"""CSV rendering of the usage report: a header of the group keys then the metrics, one line
per row."""

from __future__ import annotations

import csv
import io

from services.api.reports.params import GroupKey
from services.api.reports.schemas import UsageReport, UsageValue

METRIC_COLUMNS = ("calls", "prompt_tokens", "generated_tokens", "flops", "cost")
# A spreadsheet reads a cell starting with one of these as a formula (or, for tab and CR, strips
# them and then may): such cells get a leading apostrophe, which makes them text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: UsageValue) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def usage_csv(report: UsageReport) -> str:
    columns: list[str] = []
    for key in report.group_by:
        columns.append(key.value)
        if key is GroupKey.TENANT:
            columns.append("tenant_name")
        if key is GroupKey.KEY:
            columns.extend(("key_prefix", "key_name"))
    columns.extend(METRIC_COLUMNS)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in report.rows:
        writer.writerow([cell(row.get(c)) for c in columns])
    return buffer.getvalue()
