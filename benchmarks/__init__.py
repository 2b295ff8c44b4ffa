"""Benchmarks of the job path, admission, reports, scoring and engines: run each as a script."""
