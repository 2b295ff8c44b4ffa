"""The accounting service: a Celery worker consuming the `accounting` queue."""
