"""The asyncio client: the same operations as :class:`tandem.client.Client`, awaited."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TypeVar, Unpack

import httpx
from httpx_sse import aconnect_sse
from pydantic import BaseModel

from services.api.jobs.schemas import CancelOut, JobAccepted, JobAudit, JobOut
from tandem.client import calls
from tandem.client.calls import Call, Event, SubmitOptions
from tandem.client.errors import TandemClientError, error_from

T = TypeVar("T", bound=BaseModel)


class AsyncClient:
    """``AsyncClient(url, key)``: submit jobs, wait for them, follow their events, read audits.

    ``base_url`` and ``api_key`` default to ``TANDEM_URL`` and ``TANDEM_API_KEY``.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        url, key = calls.settings_from_env(base_url, api_key)
        self._http = httpx.AsyncClient(
            base_url=url, headers=calls.auth_headers(key), timeout=timeout, transport=transport
        )

    async def _send(self, call: Call[T]) -> T:
        response = await self._http.request(
            call.method, call.path, json=call.body, headers=call.headers
        )
        return call.result(response)

    async def submit(
        self,
        question: str,
        domain: str,
        *,
        idempotency_key: str | None = None,
        **options: Unpack[SubmitOptions],
    ) -> JobAccepted:
        """Admit a job (202); a retry with the same ``idempotency_key`` returns the same job."""
        return await self._send(calls.submit(question, domain, idempotency_key, options))

    async def get(self, job_id: uuid.UUID | str) -> JobOut:
        return await self._send(calls.get(job_id))

    async def audit(self, job_id: uuid.UUID | str) -> JobAudit:
        return await self._send(calls.audit(job_id))

    async def cancel(self, job_id: uuid.UUID | str) -> CancelOut:
        return await self._send(calls.cancel(job_id))

    async def events(
        self, job_id: uuid.UUID | str, *, after: int | None = None
    ) -> AsyncIterator[Event]:
        """The job's events after event ``after``, ending with ``done``; a dropped connection
        is resumed after the last event seen."""
        failures = 0
        while True:
            try:
                async with aconnect_sse(
                    self._http,
                    "GET",
                    calls.events_path(job_id),
                    headers=calls.resume_headers(after),
                    timeout=calls.stream_timeout(None),
                ) as source:
                    if source.response.is_error:
                        await source.response.aread()
                        raise error_from(source.response)
                    async for message in source.aiter_sse():
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

    async def wait(self, job_id: uuid.UUID | str) -> JobOut:
        """The job once it is over (any final status), following its events until ``done``.
        Bound the wait with ``asyncio.timeout``; the job goes on when the wait is given up."""
        async for _ in self.events(job_id):
            pass
        return await self.get(job_id)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()
