"""A Python client of the job API, sync (:class:`Client`) and async (:class:`AsyncClient`), on
httpx: submit, wait, follow events, read the audit, cancel; verify a webhook; typed errors.

    from tandem.client import Client

    with Client("http://127.0.0.1:8000", "tdm_...") as tandem:
        job = tandem.submit("What is 17 * 3 - 4?", "math", idempotency_key="q-1")
        print(tandem.wait(job.id, timeout=120).answer)
"""

from tandem.client.aio import AsyncClient
from tandem.client.calls import Event, SubmitOptions
from tandem.client.errors import (
    APIError,
    AuthenticationError,
    BudgetExceededError,
    ConflictError,
    IdempotencyConflictError,
    InvalidRequestError,
    InvalidSignature,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    ServiceUnavailableError,
    TandemClientError,
    WaitTimeout,
)
from tandem.client.sync import Client
from tandem.client.webhooks import SIGNATURE_HEADER, verify_webhook

__all__ = [
    "SIGNATURE_HEADER",
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "BudgetExceededError",
    "Client",
    "ConflictError",
    "Event",
    "IdempotencyConflictError",
    "InvalidRequestError",
    "InvalidSignature",
    "JobFailedError",
    "JobTimeoutError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ServerError",
    "ServiceUnavailableError",
    "SubmitOptions",
    "TandemClientError",
    "WaitTimeout",
    "verify_webhook",
]
