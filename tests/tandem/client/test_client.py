"""``tandem.client`` against the real API: sync and async, events, audit, cancel, typed errors,
and webhook signatures made by the API's own signing code."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared.egress import EgressSettings
from shared.errors import TandemError
from shared.webhooks import SIGNATURE_HEADER, WebhookSettings, post_signed
from tandem.client import (
    AsyncClient,
    AuthenticationError,
    BudgetExceededError,
    Client,
    IdempotencyConflictError,
    InvalidRequestError,
    InvalidSignature,
    NotFoundError,
    RateLimitedError,
    TandemClientError,
    WaitTimeout,
    verify_webhook,
)
from tandem.client.errors import ERRORS, APIError
from tests.services.api.chat.conftest import Outcome, answer_for
from tests.services.api.conftest import TenantHandle

Make = Callable[..., TenantHandle]


def client_for(tenant: TenantHandle, key: str | None = None) -> Client:
    return Client(str(tenant.client.base_url), key or tenant.key)


def test_submit_wait_events_audit(make_tenant: Make, completer: dict[str, Outcome]) -> None:
    tenant = make_tenant()
    completer[str(tenant.id)] = Outcome()
    with client_for(tenant) as tandem:
        accepted = tandem.submit(
            "What is 17 * 3 - 4?", "math", idempotency_key="c-1", max_cost=Decimal("0.5")
        )
        assert accepted.status.value == "queued" and accepted.reserved > 0
        job = tandem.wait(accepted.id, timeout=30)
        assert job.status.value == "succeeded"
        assert job.answer == answer_for("What is 17 * 3 - 4?")
        assert job.max_cost == Decimal("0.5") and job.cost == Decimal("0.00011")
        events = list(tandem.events(accepted.id))
        kinds = [e.kind for e in events]
        assert kinds[0] == "submitted" and "answer" in kinds and kinds[-1] == "done"
        assert events[-1].status == "succeeded"
        answer = next(e for e in events if e.kind == "answer")
        assert answer.data["answer"] == job.answer and answer.created_at is not None
        resumed = list(tandem.events(accepted.id, after=answer.id))
        assert [e.kind for e in resumed] == kinds[kinds.index("answer") + 1 :]
        audit = tandem.audit(accepted.id)
        assert audit.job_id == accepted.id and len(audit.calls) == 2
        assert audit.cost == job.cost
        replay = tandem.submit("What is 17 * 3 - 4?", "math", idempotency_key="c-1", max_cost="0.5")
        assert replay.id == accepted.id


def test_async_client(make_tenant: Make, completer: dict[str, Outcome]) -> None:
    tenant = make_tenant()
    completer[str(tenant.id)] = Outcome()

    async def run() -> list[str | None]:
        async with AsyncClient(str(tenant.client.base_url), tenant.key) as tandem:
            accepted = await asyncio.gather(
                *(tandem.submit(f"q{i}", "general", policy="slm_only") for i in range(3))
            )
            async with asyncio.timeout(30):
                jobs = await asyncio.gather(*(tandem.wait(a.id) for a in accepted))
            kinds = [e.kind async for e in tandem.events(accepted[0].id)]
            assert kinds[-1] == "done"
            audit = await tandem.audit(accepted[0].id)
            assert audit.policy.value == "slm_only"
            return [job.answer for job in jobs]

    assert asyncio.run(run()) == [answer_for(f"q{i}") for i in range(3)]


def test_cancel_and_wait_timeout(make_tenant: Make) -> None:
    tenant = make_tenant()  # no completer: the job stays queued
    with client_for(tenant) as tandem:
        accepted = tandem.submit("q", "math")
        with pytest.raises(WaitTimeout):
            tandem.wait(accepted.id, timeout=0.5)
        cancelled = tandem.cancel(accepted.id)
        assert cancelled.status.value == "cancelled"
        assert tandem.wait(accepted.id, timeout=10).status.value == "cancelled"

    async def wait_briefly() -> None:
        async with AsyncClient(str(tenant.client.base_url), tenant.key) as tandem:
            queued = await tandem.submit("q", "math")
            async with asyncio.timeout(0.5):
                await tandem.wait(queued.id)

    with pytest.raises(TimeoutError):
        asyncio.run(wait_briefly())


def test_typed_errors(make_tenant: Make) -> None:
    tenant = make_tenant(budget_cap="0.0000001", rate_limit_rpm=6)
    with client_for(tenant) as tandem:
        with pytest.raises(BudgetExceededError) as refused:
            tandem.submit("q", "math")
        assert refused.value.status == 402 and refused.value.cap == Decimal("0.0000001")
        assert (refused.value.spent, refused.value.reserved) == (Decimal(0), Decimal(0))
        assert refused.value.requested > refused.value.cap
        assert refused.value.details["cap"] == "0.0000001"  # never 1.00000E-7
        with pytest.raises(NotFoundError):
            tandem.get(uuid.uuid4())
        with pytest.raises(InvalidRequestError) as invalid:
            tandem.submit("q", "astrology")
        assert invalid.value.field == "domain"
        with pytest.raises(RateLimitedError) as limited:
            for _ in range(10):
                with contextlib.suppress(NotFoundError):
                    tandem.get(uuid.uuid4())
        assert limited.value.retry_after_s and limited.value.retry_after_s > 0
    with pytest.raises(AuthenticationError), client_for(tenant, key="tdm_wrong") as stranger:
        stranger.get(uuid.uuid4())


def test_idempotency_conflict(make_tenant: Make) -> None:
    with client_for(make_tenant()) as tandem:
        tandem.submit("q", "math", idempotency_key="same")
        with pytest.raises(IdempotencyConflictError) as conflict:
            tandem.submit("another q", "math", idempotency_key="same")
        assert conflict.value.status == 409


def test_a_key_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TANDEM_API_KEY", raising=False)
    with pytest.raises(TandemClientError, match="TANDEM_API_KEY"):
        Client("http://127.0.0.1:1")


def test_every_api_error_code_has_its_class() -> None:
    """The client mirrors the API's codes: a new error code needs its class here."""
    import services.api.app  # noqa: F401  (every route's errors are imported with the app)

    def codes(kind: type[TandemError]) -> set[str]:
        found = {kind.code}
        for sub in kind.__subclasses__():
            found |= codes(sub)
        return found

    assert codes(TandemError) <= set(ERRORS)
    assert all(issubclass(kind, APIError) and kind is not APIError for kind in ERRORS.values())


class Receiver(http.server.BaseHTTPRequestHandler):
    received: list[tuple[bytes, str | None]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((body, self.headers.get(SIGNATURE_HEADER)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_verify_webhook_signed_by_the_api(make_tenant: Make, receiver: str) -> None:
    tenant = make_tenant()
    Receiver.received.clear()
    sent = post_signed(
        receiver,
        tenant.webhook_secret,
        {"type": "job.finished", "job": {"id": "j-1", "cost": "0.0000001"}},
        WebhookSettings(),
        EgressSettings(egress_allow_hosts=["127.0.0.1"]),
    )
    assert sent.delivered
    body, signature = Receiver.received[0]
    payload = verify_webhook(tenant.webhook_secret, body, signature)
    assert payload["job"] == {"id": "j-1", "cost": "0.0000001"}
    with pytest.raises(InvalidSignature):
        verify_webhook(tenant.webhook_secret, body.replace(b"j-1", b"j-2"), signature)
    with pytest.raises(InvalidSignature):
        verify_webhook("another tenant's secret", body, signature)
    with pytest.raises(InvalidSignature):
        verify_webhook(tenant.webhook_secret, body, None)
    later = datetime.now(UTC) + timedelta(minutes=10)
    with pytest.raises(InvalidSignature, match="replay"):
        verify_webhook(tenant.webhook_secret, body, signature, now=later)
    assert verify_webhook(tenant.webhook_secret, body, signature, tolerance_s=None, now=later)
