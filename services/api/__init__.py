"""The job API (FastAPI): submission, status, results, tenants, reports, dashboard, metrics."""
