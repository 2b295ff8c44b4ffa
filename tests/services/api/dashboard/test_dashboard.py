"""The dashboard in a real headless Chromium, against a real API server, Postgres and Redis.

The browser is Debian's ``chromium`` driven by Debian's ``chromedriver`` (scripts/bootstrap
installs both); Selenium is given that driver's path, so it never looks for or downloads one.
Jobs are seeded through the API (admission and reservation) and finished the way the pipeline
does: state transitions with their events, model calls, then accounting's own settlement, which
charges the budget and adds the usage roll-ups the reports read.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from services.accounting.service import settle_job
from services.api.app import create_app
from services.api.settings import ApiSettings
from shared.db.models import JobStatus, ModelCall, Role
from shared.db.session import unit_of_work
from shared.jobs.service import fail_job, locked
from shared.jobs.states import add_event, transition
from shared.settings import DEV_ADMIN_KEY
from tests.conftest import ROOT
from tests.services.api.conftest import ServerThread, purge_queues

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"  # beside the other tests' artifacts
STATIC = ROOT / "services" / "api" / "static" / "dashboard"
CHARTS = ["chart-budget", "chart-cost", "chart-savings", "chart-truncation", "chart-status"]
COORDINATOR, EXECUTOR = "gemma3-270m", "smollm2-135m"
# The evaluation table the savings report falls back to (no llm_only jobs are seeded).
BASELINE_SOURCE = "llm_only on the test questions"
BASELINE_COST = {"math": Decimal("0.004"), "code": Decimal("0.003")}
BASELINE = {
    "source": BASELINE_SOURCE,
    "domains": {
        "math": {"mean_cost": str(BASELINE_COST["math"]), "sample_size": 200},
        "code": {"mean_cost": str(BASELINE_COST["code"]), "sample_size": 80},
    },
}


@dataclass(frozen=True)
class Call:
    role: Role
    model: str
    level: int
    cost: str


@dataclass
class Seeded:
    url: str
    key: str
    tenant_id: str
    name: str
    other_name: str
    cap: Decimal
    spent: Decimal = Decimal(0)
    jobs: dict[str, str] = field(default_factory=dict)  # job id -> its final status
    cost_by_model_role: dict[tuple[str, str], Decimal] = field(
        default_factory=lambda: defaultdict(Decimal)
    )
    savings: Decimal = Decimal(0)
    calls_of: dict[str, int] = field(default_factory=dict)


def money(amount: Decimal) -> str:
    """The dashboard's money format: exact, trailing zeros trimmed, at least two decimals."""
    whole, _, fraction = f"{amount:f}".partition(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    return f"${int(whole):,}.{fraction}"


def _tenant(admin: httpx.Client, **limits: Any) -> tuple[str, str, str]:
    name = f"dash-{uuid.uuid4().hex[:8]}"
    created = admin.post("/v1/admin/tenants", json={"name": name, **limits})
    assert created.status_code == 201, created.text
    tenant_id = created.json()["id"]
    issued = admin.post(f"/v1/admin/tenants/{tenant_id}/keys", json={"name": "dashboard"})
    assert issued.status_code == 201, issued.text
    return tenant_id, name, issued.json()["key"]


def _submit(url: str, key: str, question: str, domain: str) -> str:
    response = httpx.post(
        f"{url}/v1/jobs",
        json={"question": question, "domain": domain},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _record_calls(session: Any, job_id: str, calls: list[Call]) -> Decimal:
    for step, call in enumerate(calls):
        session.add(
            ModelCall(
                job_id=uuid.UUID(job_id),
                step=f"{call.role.value}-{step}",
                role=call.role.value,
                model=call.model,
                engine="test",
                level=call.level,
                prompt_tokens=40 + 10 * step,
                generated_tokens=25 + step,
                latency_ms=120.0 + 35 * step,
                flops_prompt=Decimal(2 * 135_000_000 * 40),
                flops_generated=Decimal(2 * 135_000_000 * 25),
                cost=Decimal(call.cost),
                finish_reason="eos_token",
            )
        )
    return sum((Decimal(c.cost) for c in calls), Decimal(0))


def _succeed(job_id: str, calls: list[Call], *, level: int, reason: str, levels: int) -> None:
    """Coordinate and score level by level, stop at ``level``, execute, then settle."""
    thresholds = [0.9, 0.8, 0.7, 0.6]
    with unit_of_work() as session:
        job = locked(session, job_id)
        job.started_at = datetime.now(UTC)
        transition(session, job, JobStatus.SCORING, level=0)
        scores = []
        for t in range(levels):
            if t > 0:
                transition(session, job, JobStatus.COORDINATING, level=t)
                transition(session, job, JobStatus.SCORING, level=t)
            stop = t == level
            entry = {
                "level": t,
                "score": 0.95 if stop and reason == "sufficient" else 0.3 + 0.1 * t,
                "threshold": thresholds[t],
                "insight_tokens": [0, 100, 500, 1000][t],
                "decision": "stop" if stop else "continue",
            }
            scores.append(entry)
            add_event(session, job, "score", level=t, score=entry["score"])
        job.scores = scores
        job.thresholds = thresholds
        job.classifier_version = "test-classifier"
        job.truncation_level = level
        job.truncation_tokens = [0, 100, 500, 1000][level]
        job.termination_reason = reason
        job.insights = "Goal: the sum. Planning: add." if level else ""
        job.insight_tokens = job.truncation_tokens
        add_event(session, job, "decision", level=level, reason=reason)
        transition(session, job, JobStatus.EXECUTING, level=level)
        _record_calls(session, job_id, calls)
        job.answer = "4"
        job.reasoning = "2 + 2 = 4"
        transition(session, job, JobStatus.SETTLING)
    settle_job(job_id)


def _fail(job_id: str, calls: list[Call]) -> None:
    with unit_of_work() as session:
        job = locked(session, job_id)
        job.started_at = datetime.now(UTC)
        transition(session, job, JobStatus.COORDINATING, level=1)
        _record_calls(session, job_id, calls)
    fail_job(job_id, "engine_error", "the coordinator engine kept answering 503")
    settle_job(job_id)


@pytest.fixture(scope="module")
def seeded(
    database_url: str, api_redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seeded]:
    """A server whose savings report has an evaluation table, a tenant with five jobs in
    every state the charts show, and a second tenant for the operator's top tenants."""
    baseline = tmp_path_factory.mktemp("dashboard") / "baseline.json"
    baseline.write_text(json.dumps(BASELINE))
    settings = ApiSettings(
        database_url=database_url, redis_url=api_redis_url, savings_baseline_file=baseline
    )
    with (
        ServerThread(create_app(settings)) as server,
        httpx.Client(base_url=server.url, headers={"X-Admin-Key": DEV_ADMIN_KEY}) as admin,
    ):
        cap = Decimal("0.01")
        tenant_id, name, key = _tenant(admin, budget_cap=str(cap), soft_alert_ratio="0.5")
        _, other_name, other_key = _tenant(admin, budget_cap="1")
        seeded = Seeded(server.url, key, tenant_id, name, other_name, cap)

        plans: list[tuple[str, list[Call], int, str, int]] = [
            (
                "math",
                [
                    Call(Role.SCORER, EXECUTOR, 0, "0.00008"),
                    Call(Role.COORDINATOR, COORDINATOR, 1, "0.0012"),
                    Call(Role.SCORER, EXECUTOR, 1, "0.00008"),
                    Call(Role.EXECUTOR, EXECUTOR, 1, "0.0004"),
                ],
                1,
                "sufficient",
                2,
            ),
            (
                "math",
                [
                    Call(Role.SCORER, EXECUTOR, 0, "0.00008"),
                    Call(Role.COORDINATOR, COORDINATOR, 1, "0.0009"),
                    Call(Role.SCORER, EXECUTOR, 1, "0.00008"),
                    Call(Role.COORDINATOR, COORDINATOR, 2, "0.0011"),
                    Call(Role.SCORER, EXECUTOR, 2, "0.00008"),
                    Call(Role.EXECUTOR, EXECUTOR, 2, "0.00045"),
                ],
                2,
                "max_level",
                3,
            ),
            (
                "code",
                [
                    Call(Role.SCORER, EXECUTOR, 0, "0.00006"),
                    Call(Role.EXECUTOR, EXECUTOR, 0, "0.0005"),
                ],
                0,
                "sufficient",
                1,
            ),
        ]
        succeeded_cost = Decimal(0)
        baseline_cost = Decimal(0)
        for index, (domain, calls, level, reason, levels) in enumerate(plans):
            job_id = _submit(server.url, key, f"What is {index} + 2?", domain)
            _succeed(job_id, calls, level=level, reason=reason, levels=levels)
            seeded.jobs[job_id] = "succeeded"
            seeded.calls_of[job_id] = len(calls)
            for call in calls:
                seeded.cost_by_model_role[call.model, call.role.value] += Decimal(call.cost)
            succeeded_cost += sum((Decimal(c.cost) for c in calls), Decimal(0))
            baseline_cost += BASELINE_COST[domain]
        failed = [Call(Role.COORDINATOR, COORDINATOR, 1, "0.0003")]
        job_id = _submit(server.url, key, "What is 7 * 6?", "math")
        _fail(job_id, failed)
        seeded.jobs[job_id] = "failed"
        seeded.cost_by_model_role[COORDINATOR, "coordinator"] += Decimal("0.0003")
        seeded.jobs[_submit(server.url, key, "What is 9 - 3?", "math")] = "queued"
        seeded.spent = succeeded_cost + Decimal("0.0003")
        seeded.savings = baseline_cost - succeeded_cost

        other_job = _submit(server.url, other_key, "What is 1 + 1?", "math")
        _succeed(
            other_job,
            [Call(Role.SCORER, EXECUTOR, 0, "0.0001"), Call(Role.EXECUTOR, EXECUTOR, 0, "0.002")],
            level=0,
            reason="sufficient",
            levels=1,
        )
        yield seeded
    purge_queues(settings.redis_url)


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(
            "the dashboard test needs Debian's chromium and chromium-driver: run scripts/bootstrap "
            "as root (or apt-get install chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the tests run as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1440,900",  # a laptop screen
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: webdriver.Chrome) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def errors_until(driver: webdriver.Chrome, needle: str) -> list[str]:
    """The console errors, read until one contains ``needle``: log entries arrive
    asynchronously (one of a request the previous page made may be reported now too)."""
    errors: list[str] = []

    def arrived(d: webdriver.Chrome) -> bool:
        errors.extend(console_errors(d))
        return any(needle in e for e in errors)

    WebDriverWait(driver, 30).until(arrived)
    return errors


def alert_rows(driver: webdriver.Chrome) -> list[str]:
    """The budget alerts panel's rows, once it has loaded (after the overview, its own call)."""
    card = driver.find_element(By.ID, "card-alerts")
    WebDriverWait(driver, 30).until(lambda _: card.get_attribute("data-state") == "ready")
    return [row.text for row in card.find_elements(By.CSS_SELECTOR, "tbody tr")]


def state(driver: webdriver.Chrome) -> str:
    return str(driver.find_element(By.TAG_NAME, "body").get_attribute("data-state"))


def wait_for_state(driver: webdriver.Chrome, *wanted: str) -> str:
    WebDriverWait(driver, 30).until(lambda d: state(d) in (*wanted, "error"))
    found = state(driver)
    if found not in wanted:
        screenshot(driver, "dashboard-failure.png")
        banner = driver.find_element(By.ID, "error").text
        raise AssertionError(f"page state {found!r}: {banner}; console: {console_errors(driver)}")
    return found


def sign_in(driver: webdriver.Chrome, url: str, key: str) -> None:
    driver.get(url)
    wait_for_state(driver, "login")
    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.ID, "open").click()
    wait_for_state(driver, "ready")


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    """The whole page, not only the window."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # Clipped to the window's full width: the page grows to its whole height for the capture,
    # so the scrollbar it had in the window is gone.
    width, height = driver.execute_script(
        "return [window.innerWidth, document.documentElement.scrollHeight];"
    )
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        },
    )
    path = ARTIFACTS / name
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def chart_data(driver: webdriver.Chrome, canvas_id: str) -> dict[str, Any]:
    """What Chart.js drew on a canvas, and how many of its pixels are painted."""
    result: dict[str, Any] = driver.execute_script(
        """
        const canvas = document.getElementById(arguments[0]);
        const chart = Chart.getChart(canvas);
        if (!chart) return null;
        const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let painted = 0;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
        return {
          type: chart.config.type,
          labels: chart.data.labels,
          datasets: chart.data.datasets.map((d) => ({label: d.label, data: d.data})),
          painted: painted,
          visible: canvas.offsetWidth > 0 && canvas.offsetHeight > 0,
        };
        """,
        canvas_id,
    )
    assert result is not None, f"no chart on #{canvas_id}"
    return result


def assert_drawn(driver: webdriver.Chrome, canvas_id: str) -> dict[str, Any]:
    data = chart_data(driver, canvas_id)
    assert data["visible"], f"#{canvas_id} is not on screen"
    assert data["painted"] > 2000, f"#{canvas_id} is (nearly) blank: {data['painted']} pixels"
    return data


def series(data: dict[str, Any], label: str) -> dict[str, Any]:
    found = next(d for d in data["datasets"] if d["label"] == label)
    return dict(zip(data["labels"], found["data"], strict=True))


def test_dashboard_is_served_by_the_api_alone(seeded: Seeded) -> None:
    page = httpx.get(f"{seeded.url}/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    # Nothing is fetched from elsewhere: every script and stylesheet is one of ours.
    for html in ("index.html", "job.html"):
        text = (STATIC / html).read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), html
        for asset in re.findall(r'(?:src|href)="/dashboard/static/([^"]+)"', text):
            assert httpx.get(f"{seeded.url}/dashboard/static/{asset}").status_code == 200
    vendored = httpx.get(f"{seeded.url}/dashboard/static/chart.umd.min.js")
    assert vendored.content == (STATIC / "vendor" / "chart.umd.min.js").read_bytes()
    assert vendored.headers["content-type"].startswith("text/javascript")
    for path, status in (
        ("/dashboard/static/..%2F..%2Fapp.py", 404),
        ("/dashboard/static/index.html", 404),
        ("/dashboard/jobs/not-a-uuid", 422),
    ):
        response = httpx.get(f"{seeded.url}{path}")
        assert response.status_code == status, path
        assert response.json()["error"]["code"], path
    job_id = next(iter(seeded.jobs))
    assert httpx.get(f"{seeded.url}/dashboard/jobs/{job_id}").status_code == 200


def test_tenant_dashboard_renders_the_seeded_data(
    seeded: Seeded, browser: webdriver.Chrome
) -> None:
    sign_in(browser, f"{seeded.url}/dashboard", seeded.key)
    find = browser.find_element

    for canvas_id in CHARTS:
        assert_drawn(browser, canvas_id)
    # Cost by model and role: what the seeded calls cost, per model, stacked by role.
    cost = chart_data(browser, "chart-cost")
    assert cost["labels"] == sorted({m for m, _ in seeded.cost_by_model_role})
    for (model, role), amount in seeded.cost_by_model_role.items():
        assert series(cost, role)[model] == pytest.approx(float(amount)), (model, role)
    status = chart_data(browser, "chart-status")
    assert series(status, "Jobs") == dict(Counter(seeded.jobs.values()))
    truncation = chart_data(browser, "chart-truncation")
    assert series(truncation, "math") == {"level 0": 0, "level 1": 1, "level 2": 1}
    assert series(truncation, "code") == {"level 0": 1, "level 1": 0, "level 2": 0}
    budget = chart_data(browser, "chart-budget")
    spent_line = [v for v in series(budget, "Spent (cumulative)").values() if v is not None]
    assert spent_line[-1] == pytest.approx(float(seeded.spent))
    days = len(budget["labels"])
    assert list(series(budget, "Cap").values()) == pytest.approx([float(seeded.cap)] * days)
    alert = list(series(budget, "Alert at 50%").values())
    assert alert == pytest.approx([float(seeded.cap) / 2] * days)
    savings = chart_data(browser, "chart-savings")
    assert series(savings, "Cost")["Coordinator alone (estimate)"] == pytest.approx(0.011)

    # The figures, as text.
    assert find(By.ID, "tile-spent").text == money(seeded.spent)
    assert f"of {money(seeded.cap)} cap" in find(By.ID, "tile-cap").text
    assert "over the alert threshold" in find(By.ID, "budget-note").text
    assert find(By.ID, "tile-jobs").text == str(len(seeded.jobs))
    assert find(By.ID, "tile-savings").text == money(seeded.savings)
    note = find(By.ID, "savings-note").text
    assert "offline table, sample of 280" in note and BASELINE_SOURCE in note
    shadow_note = find(By.ID, "savings-shadow").text
    assert shadow_note.startswith("Shadow runs: 0 of ") and "operator's account" in shadow_note
    assert find(By.ID, "lat-p50").text.endswith(("ms", "s"))
    # Operator-only parts stay hidden from a tenant.
    assert not find(By.ID, "card-tenants").is_displayed()
    assert not find(By.ID, "tenant-filter").is_displayed()
    # The seeded spend crossed half the cap once: one soft alert, listed, not sent (no URL).
    (alert_row,) = alert_rows(browser)
    assert "soft · 50%" in alert_row and "no alert URL" in alert_row
    # Recent jobs, newest first, each linking to its audit trail.
    links = find(By.ID, "jobs-table").find_elements(By.CSS_SELECTOR, "tbody a")
    assert {link.text for link in links} == set(seeded.jobs)
    assert all(
        link.get_attribute("href") == f"{seeded.url}/dashboard/jobs/{link.text}" for link in links
    )
    assert console_errors(browser) == []
    path = screenshot(browser, "dashboard-tenant.png")
    assert path.stat().st_size > 50_000

    # One job's audit trail, reached by its link.
    job_id = next(j for j, s in seeded.jobs.items() if s == "succeeded")
    find(By.LINK_TEXT, job_id).click()
    wait_for_state(browser, "ready")
    assert browser.current_url == f"{seeded.url}/dashboard/jobs/{job_id}"
    assert find(By.ID, "tile-status").text == "succeeded"
    assert find(By.ID, "question").text == "What is 0 + 2?"
    assert find(By.ID, "tile-level").text == "level 1"
    rows = find(By.ID, "calls-table").find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == seeded.calls_of[job_id]
    events = find(By.ID, "events-table").text
    assert "settled" in events and "decision" in events
    scores = assert_drawn(browser, "chart-scores")
    assert series(scores, "Score") == {"level 0": 0.3, "level 1": 0.95}
    assert_drawn(browser, "chart-usage")
    assert console_errors(browser) == []
    screenshot(browser, "dashboard-job.png")


def test_operator_dashboard_shows_top_tenants(seeded: Seeded, browser: webdriver.Chrome) -> None:
    sign_in(browser, f"{seeded.url}/dashboard", DEV_ADMIN_KEY)
    find = browser.find_element
    assert find(By.ID, "mode").text == "Operator · all tenants"
    assert find(By.ID, "card-tenants").is_displayed()
    tenants = assert_drawn(browser, "chart-tenants")
    top = series(tenants, "Cost")
    # Other test modules' tenants share this database: ours must be among the top ones.
    assert top[seeded.name] == pytest.approx(float(seeded.spent))
    assert top[seeded.other_name] == pytest.approx(0.0021)
    for canvas_id in CHARTS[1:]:
        assert_drawn(browser, canvas_id)
    budgets = find(By.ID, "budget-table").text
    assert seeded.name in budgets and money(seeded.spent) in budgets
    assert "per tenant" in find(By.ID, "jobs-note").text
    assert console_errors(browser) == []
    screenshot(browser, "dashboard-operator.png")

    # Narrowed to one tenant: that tenant's budget over its period.
    select = find(By.ID, "tenant-select")
    select.find_element(By.CSS_SELECTOR, f"option[value='{seeded.tenant_id}']").click()
    WebDriverWait(browser, 30).until(
        lambda d: d.find_element(By.ID, "mode").text == f"Operator · {seeded.name}"
    )
    wait_for_state(browser, "ready")
    assert find(By.ID, "tile-spent").text == money(seeded.spent)
    assert_drawn(browser, "chart-budget")
    (alert_row,) = alert_rows(browser)
    assert seeded.name in alert_row and "soft · 50%" in alert_row and "operator:" in alert_row
    assert console_errors(browser) == []


def test_a_refused_key_brings_back_the_key_form(seeded: Seeded, browser: webdriver.Chrome) -> None:
    for key, status in (("tdm_00000000_not-a-key", 401), ("not-the-admin-key", 403)):
        browser.get(f"{seeded.url}/dashboard")
        wait_for_state(browser, "login")
        browser.find_element(By.ID, "key").send_keys(key)
        browser.find_element(By.ID, "open").click()
        WebDriverWait(browser, 30).until(
            lambda d: d.find_element(By.ID, "login-error").is_displayed()
        )
        assert state(browser) == "login"
        assert "not accepted" in browser.find_element(By.ID, "login-error").text
        assert not browser.find_element(By.ID, "board").is_displayed()
        assert browser.execute_script("return sessionStorage.length") == 0
        # The refusal itself is the only kind of error the page logs.
        errors = errors_until(browser, f"status of {status}")
        refusals = re.compile(r"status of (401|403) \((Unauthorized|Forbidden)\)")
        assert all(refusals.search(e) for e in errors), errors


def key_rows(driver: webdriver.Chrome) -> list[str]:
    """The API keys panel's rows, once it has loaded (after the overview, its own call)."""
    card = driver.find_element(By.ID, "card-keys")
    WebDriverWait(driver, 30).until(lambda _: card.get_attribute("data-state") == "ready")
    return [row.text for row in card.find_elements(By.CSS_SELECTOR, "tbody tr")]


def test_the_keys_panel_shows_each_keys_spend_against_its_cap(
    seeded: Seeded, browser: webdriver.Chrome
) -> None:
    with httpx.Client(base_url=seeded.url, headers={"X-Admin-Key": DEV_ADMIN_KEY}) as admin:
        capped = admin.post(
            f"/v1/admin/tenants/{seeded.tenant_id}/keys",
            json={"name": "ci", "budget_cap": "0.005", "rate_limit_rpm": 120},
        ).json()
    sign_in(browser, f"{seeded.url}/dashboard", seeded.key)
    rows = key_rows(browser)
    # Every seeded job was submitted with the dashboard's key: its spend is the tenant's.
    (mine,) = [r for r in rows if "dashboard" in r]
    assert "active" in mine and money(seeded.spent) in mine and "no cap of its own" in mine
    (ci,) = [r for r in rows if capped["prefix"] in r]
    assert "$0.00" in ci and "$0.005" in ci and "0.0%" in ci and "120" in ci
    assert console_errors(browser) == []
    screenshot(browser, "dashboard-keys.png")

    browser.execute_script("sessionStorage.clear()")
    sign_in(browser, f"{seeded.url}/dashboard", DEV_ADMIN_KEY)
    key_rows(browser)
    assert browser.find_element(By.ID, "keys-note").text == "Choose a tenant to see its API keys."
    select = browser.find_element(By.ID, "tenant-select")
    select.find_element(By.CSS_SELECTOR, f"option[value='{seeded.tenant_id}']").click()
    WebDriverWait(browser, 30).until(
        lambda d: d.find_element(By.ID, "mode").text == f"Operator · {seeded.name}"
    )
    WebDriverWait(browser, 30).until(lambda d: len(key_rows(d)) == 2)
    assert any(capped["prefix"] in r and "$0.005" in r for r in key_rows(browser))
    assert console_errors(browser) == []
