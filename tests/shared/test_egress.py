"""The egress policy: tenant-named destinations never reach the system's own network."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import httpx
import pytest

from shared.egress import (
    EgressBlocked,
    EgressRefused,
    EgressSettings,
    EgressTransport,
    check_url,
)

NOBODY = EgressSettings(egress_allow_hosts=[])

REFUSED = [
    "http://127.0.0.1/",
    "http://127.8.9.1:5432/",
    "http://localhost:8000/v1/admin/tenants",
    "http://LOCALHOST./",
    "http://api.localhost/",
    "http://0.0.0.0/",
    "http://0/",
    "http://[::]/",
    "http://[::1]:6379/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/",
    "http://10.1.2.3/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://[fc00::1]/",
    "http://2130706433/",  # 127.0.0.1 in decimal
    "http://0177.0.0.1/",  # octal
    "http://0x7f.1/",  # hex, short form
    "http://127.1/",
    "http://user:pass@127.0.0.1/",
    "ftp://example.com/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_local_and_special_destinations_are_refused(url: str) -> None:
    with pytest.raises(EgressRefused):
        check_url(url, NOBODY)


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/x", "http://93.184.216.34:8080/", "https://[2606:4700::1]/"]
)
def test_public_destinations_pass(url: str) -> None:
    check_url(url, NOBODY)


def test_the_operator_allowlist_opens_named_hosts_and_networks() -> None:
    allow = EgressSettings(egress_allow_hosts=["127.0.0.1", "hooks.internal", "10.1.0.0/16"])
    check_url("http://127.0.0.1:9000/", allow)
    check_url("http://HOOKS.internal./x", allow)
    check_url("http://10.1.200.3/", allow)
    with pytest.raises(EgressRefused):
        check_url("http://10.2.0.1/", allow)
    with pytest.raises(EgressRefused):
        check_url("http://localhost/", allow)


class _Seen(BaseHTTPRequestHandler):
    hosts: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        type(self).hosts.append(self.headers["Host"])
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def loopback_server() -> Iterator[int]:
    _Seen.hosts = []
    server = HTTPServer(("127.0.0.1", 0), _Seen)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def post(transport: EgressTransport, url: str) -> httpx.Response:
    with httpx.Client(transport=transport, timeout=5) as client:
        return client.post(url, content=b"{}")


def test_a_name_that_resolves_to_a_private_address_is_refused_at_connect(
    loopback_server: int,
) -> None:
    # The name passed the submission check; DNS now answers with loopback (rebinding).
    check_url(f"http://hooks.example.com:{loopback_server}/", NOBODY)
    transport = EgressTransport(NOBODY, resolver=lambda host, port: ["127.0.0.1"])
    with pytest.raises(EgressBlocked):
        post(transport, f"http://hooks.example.com:{loopback_server}/")
    mixed = EgressTransport(NOBODY, resolver=lambda host, port: ["93.184.216.34", "10.0.0.7"])
    with pytest.raises(EgressBlocked):
        post(mixed, f"http://hooks.example.com:{loopback_server}/")
    assert _Seen.hosts == []


def test_literal_local_addresses_are_refused_at_connect(loopback_server: int) -> None:
    transport = EgressTransport(NOBODY)
    for host in ("127.0.0.1", "[::ffff:127.0.0.1]", "2130706433"):
        with pytest.raises(EgressBlocked):
            post(transport, f"http://{host}:{loopback_server}/")
    assert _Seen.hosts == []


def test_the_connection_goes_to_the_checked_address_under_the_original_name(
    loopback_server: int,
) -> None:
    allow = EgressSettings(egress_allow_hosts=["127.0.0.1"])
    answers = iter([["127.0.0.1"], ["10.9.9.9"]])  # a second lookup would be refused
    transport = EgressTransport(allow, resolver=lambda host, port: next(answers))
    response = post(transport, f"http://hooks.example.com:{loopback_server}/x")
    assert response.status_code == 204
    assert _Seen.hosts == [f"hooks.example.com:{loopback_server}"]
