"""The demo job that ``tandem stack up --demo`` pushes through the running system.

It uses the public HTTP API only, as a new user would: the admin key makes a ``demo`` tenant
with a small monthly cap and a fresh API key, the key submits a math question, and the job is
followed until it ends; then the same question goes to the coordinator alone, to measure what
Tandem saved. What comes back (answer, truncation point, cost, FLOPs) is read from the API.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

DEMO_TENANT = "demo"
DEMO_CAP_USD = "5"
DEMO_QUESTION = (
    "A baker makes 12 loaves in the morning and 9 in the afternoon. She sells 15 of them. "
    "How many loaves are left?"
)
GIGA = Decimal(10**9)
TERMINAL = {"succeeded", "failed", "cancelled", "rejected"}


def demo_question(engines: str) -> str:
    """The lab pairs only know their own domains: pair v1 gets a catalogue test question,
    pairs v2 and v3 a shop test question that leaves one price out (so the coordinator writes one
    fact and the job can stop before the coordinator's last level); neither was trained on.
    Every other engine gets the general word problem."""
    from tandem.datasets import Split, generate
    from tandem.lab.configs import SEED

    if engines == "lab":
        return generate("catalog", Split.TEST, 1, seed=SEED)[0].question
    if engines in ("lab-v2", "lab-v3"):
        questions = generate("shop", Split.TEST, 50, seed=SEED)
        return next(q.question for q in questions if q.meta.get("missing_facts") == 1)
    return DEMO_QUESTION


@dataclass(frozen=True)
class DemoResult:
    job: dict[str, Any]
    url: str
    key: str  # the demo tenant's fresh key: it signs in to the dashboard too
    audit: dict[str, Any]  # the job's audit trail: each level's score against its threshold
    baseline: dict[str, Any] | None = None  # the same question answered by the coordinator alone


def _check(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        raise RuntimeError(
            f"{response.request.method} {response.request.url}: "
            f"HTTP {response.status_code} {response.text}"
        )
    body: dict[str, Any] = response.json()
    return body


def demo_key(client: httpx.Client, admin_key: str) -> str:
    """A fresh key of the demo tenant (keys are shown once, so each run makes one)."""
    admin = {"X-Admin-Key": admin_key}
    tenants = client.get("/v1/admin/tenants", headers=admin)
    found = [t for t in tenants.json() if t["name"] == DEMO_TENANT] if tenants.is_success else []
    if found:
        tenant_id = found[0]["id"]
    else:
        created = _check(
            client.post(
                "/v1/admin/tenants",
                headers=admin,
                json={"name": DEMO_TENANT, "budget_cap": DEMO_CAP_USD},
            )
        )
        tenant_id = created["id"]
    key = _check(
        client.post(
            f"/v1/admin/tenants/{tenant_id}/keys", headers=admin, json={"name": "stack-up demo"}
        )
    )
    return str(key["key"])


def _follow(
    client: httpx.Client, auth: dict[str, str], url: str, deadline: float
) -> dict[str, Any]:
    """The job at ``url`` once it is over (or as it is at ``deadline``)."""
    while True:
        job = _check(client.get(url, headers=auth))
        if job["status"] in TERMINAL or time.monotonic() > deadline:
            return job
        time.sleep(0.5)


def run_demo(api_url: str, admin_key: str, timeout_s: float, question: str) -> DemoResult:
    """The question as a Tandem job, then as the coordinator alone (``llm_only``), so the demo
    shows the saving measured on the same question, not estimated."""
    with httpx.Client(base_url=api_url, timeout=30) as client:
        key = demo_key(client, admin_key)
        auth = {"Authorization": f"Bearer {key}"}
        deadline = time.monotonic() + timeout_s
        body = {"question": question, "domain": "math"}
        accepted = _check(client.post("/v1/jobs", headers=auth, json=body))
        url = f"/v1/jobs/{accepted['id']}"
        job = _follow(client, auth, url, deadline)
        audit = client.get(f"{url}/audit", headers=auth)
        trail = audit.json() if audit.is_success else {}
        baseline = None
        if job["status"] == "succeeded":
            alone = _check(
                client.post("/v1/jobs", headers=auth, json={**body, "policy": "llm_only"})
            )
            baseline = _follow(client, auth, f"/v1/jobs/{alone['id']}", deadline)
        return DemoResult(job=job, url=f"{api_url}{url}", key=key, audit=trail, baseline=baseline)


def flops(job: dict[str, Any]) -> Decimal:
    """Every model call's FLOPs (prompt and generated, scoring passes included)."""
    return sum((Decimal(u["flops"]) for u in job.get("usage") or []), Decimal(0))


def saving_lines(job: dict[str, Any], baseline: dict[str, Any] | None) -> list[str]:
    """What the coordinator alone cost on the same question, and Tandem's share of it."""
    if baseline is None or baseline["status"] != "succeeded":
        return []
    cost, alone_cost = Decimal(job["cost"]), Decimal(baseline["cost"])
    work, alone_work = flops(job), flops(baseline)
    if not alone_cost or not alone_work:
        return []
    return [
        f"the coordinator alone on the same question: ${baseline['cost']}, "
        f"{alone_work / GIGA:.3f} GFLOPs (answer {baseline.get('answer')})",
        f"Tandem: {100 * cost / alone_cost:.0f}% of its cost, "
        f"{100 * work / alone_work:.0f}% of its FLOPs",
    ]
