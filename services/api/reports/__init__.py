"""Cost and outcome reports (GET /v1/reports/...), read from the roll-ups that settlement
writes (shared.rollups), never from model_calls or by sorting jobs."""
