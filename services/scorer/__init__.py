"""The scorer service: a Celery worker consuming the `scorer` queue."""
