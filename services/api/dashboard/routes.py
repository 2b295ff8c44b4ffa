"""The built-in dashboard: static pages whose scripts call the JSON APIs from the browser.

The pages hold no data and need no session on the server: the browser keeps the API key in
``sessionStorage`` and sends it as ``Authorization: Bearer`` to the same endpoints any client
uses, so the dashboard can show nothing the key could not fetch by itself. Every file is served
from the package (the chart library is vendored), so it works without network access.
"""

from __future__ import annotations

import uuid
from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

from shared.errors import NotFoundError

router = APIRouter(prefix="/dashboard", tags=["dashboard"], include_in_schema=False)

# Scripts and styles only from this origin, no inline code, no framing: a page that holds an
# API key must not run anything it did not ship.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Pages and assets carry no version in their name: revalidate so a deploy is seen at once.
    "Cache-Control": "no-cache",
}

# The only files served (name in the URL -> file under static/dashboard, media type): a fixed
# list, so no path from a request ever reaches the filesystem.
ASSETS: dict[str, tuple[str, str]] = {
    "dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
    "common.js": ("common.js", "text/javascript; charset=utf-8"),
    "overview.js": ("overview.js", "text/javascript; charset=utf-8"),
    "job.js": ("job.js", "text/javascript; charset=utf-8"),
    "alerts.js": ("alerts.js", "text/javascript; charset=utf-8"),
    "keys.js": ("keys.js", "text/javascript; charset=utf-8"),
    "chart.umd.min.js": ("vendor/chart.umd.min.js", "text/javascript; charset=utf-8"),
    "favicon.svg": ("favicon.svg", "image/svg+xml"),
}
HTML = "text/html; charset=utf-8"


@cache
def _read(relative: str) -> bytes:
    return (resources.files("services.api") / "static" / "dashboard" / relative).read_bytes()


def _file(relative: str, media_type: str) -> Response:
    return Response(_read(relative), media_type=media_type, headers=SECURITY_HEADERS)


@router.get("")
async def overview() -> Response:
    """Spend, cost by model and role, savings, truncation, jobs and recent jobs."""
    return _file("index.html", HTML)


@router.get("/jobs/{job_id}")
async def job(job_id: uuid.UUID) -> Response:
    """One job's audit trail (the page reads the id from its own URL)."""
    return _file("job.html", HTML)


@router.get("/static/{name}")
async def asset(name: str) -> Response:
    if name not in ASSETS:
        raise NotFoundError(f"no dashboard file {name!r}", field="name")
    return _file(*ASSETS[name])
