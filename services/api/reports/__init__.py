"""Cost and outcome reports (GET /v1/reports/...), read from the roll-up table and the jobs'
covering indexes, never from model_calls."""
