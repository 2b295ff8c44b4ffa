"""CSV rendering of the usage report: a header of the group keys then the metrics, one line
per row."""

from __future__ import annotations

import csv
import io

from services.api.reports.params import GroupKey
from services.api.reports.schemas import UsageReport

METRIC_COLUMNS = ("calls", "prompt_tokens", "generated_tokens", "flops", "cost")


def usage_csv(report: UsageReport) -> str:
    columns: list[str] = []
    for key in report.group_by:
        columns.append(key.value)
        if key is GroupKey.TENANT:
            columns.append("tenant_name")
    columns.extend(METRIC_COLUMNS)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in report.rows:
        writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
    return buffer.getvalue()
