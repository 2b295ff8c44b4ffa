"""The coordinator service: a Celery worker consuming the `coordinator` queue."""
