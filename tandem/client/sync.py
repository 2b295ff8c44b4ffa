"""The blocking client."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from types import TracebackType
from typing import TypeVar, Unpack

import httpx
from httpx_sse import connect_sse
from pydantic import BaseModel

from services.api.jobs.schemas import CancelOut, JobAccepted, JobAudit, JobOut
from tandem.client import calls
from tandem.client.calls import Call, Event, SubmitOptions
from tandem.client.errors import TandemClientError, WaitTimeout, error_from

T = TypeVar("T", bound=BaseModel)


class Client:
    """``Client(url, key)``: submit jobs, wait for them, follow their events, read audits.

    ``base_url`` and ``api_key`` default to ``TANDEM_URL`` and ``TANDEM_API_KEY``.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url, key = calls.settings_from_env(base_url, api_key)
        self._http = httpx.Client(
            base_url=url, headers=calls.auth_headers(key), timeout=timeout, transport=transport
        )

    def _send(self, call: Call[T]) -> T:
        response = self._http.request(call.method, call.path, json=call.body, headers=call.headers)
        return call.result(response)

    def submit(
        self,
        question: str,
        domain: str,
        *,
        idempotency_key: str | None = None,
        **options: Unpack[SubmitOptions],
    ) -> JobAccepted:
        """Admit a job (202); a retry with the same ``idempotency_key`` returns the same job."""
        return self._send(calls.submit(question, domain, idempotency_key, options))

    def get(self, job_id: uuid.UUID | str) -> JobOut:
        return self._send(calls.get(job_id))

    def audit(self, job_id: uuid.UUID | str) -> JobAudit:
        return self._send(calls.audit(job_id))

    def cancel(self, job_id: uuid.UUID | str) -> CancelOut:
        return self._send(calls.cancel(job_id))

    def events(
        self, job_id: uuid.UUID | str, *, after: int | None = None, timeout: float | None = None
    ) -> Iterator[Event]:
        """The job's events after event ``after``, ending with ``done``; a dropped connection
        is resumed after the last event seen. Past ``timeout`` seconds: :class:`WaitTimeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        failures = 0
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise WaitTimeout(f"job {job_id} was not over within {timeout} s")
            try:
                with connect_sse(
                    self._http,
                    "GET",
                    calls.events_path(job_id),
                    headers=calls.resume_headers(after),
                    timeout=calls.stream_timeout(remaining),
                ) as source:
                    if source.response.is_error:
                        source.response.read()
                        raise error_from(source.response)
                    for message in source.iter_sse():
                        event = calls.event_of(message)
                        failures = 0
                        after = event.id or after
                        yield event
                        if event.done:
                            return
            except (httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError) as exc:
                failures += 1
                if failures > calls.MAX_RECONNECTS:
                    raise TandemClientError(f"the event stream of job {job_id} broke") from exc

    def wait(self, job_id: uuid.UUID | str, *, timeout: float | None = None) -> JobOut:
        """The job once it is over (any final status), following its events until ``done``."""
        for _ in self.events(job_id, timeout=timeout):
            pass
        return self.get(job_id)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({str(self._http.base_url)!r})"
