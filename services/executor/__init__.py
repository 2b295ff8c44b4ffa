"""The executor service: a Celery worker consuming the `executor` queue."""
