"""Start real engine servers (``tandem engine serve`` in a subprocess) on free loopback ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[3]
TGI_CLIENT_DIR = ROOT / ".tandem" / "tgi-client"
TGI_CLIENT_REQUIREMENT = "text-generation==0.7.0"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def engine_server(
    backend: str, model: str, *, env: dict[str, str] | None = None, start_timeout_s: float = 300
) -> Iterator[str]:
    """A running server's base URL; the process is stopped on exit."""
    port = free_port()
    log = ROOT / ".tandem" / "test-logs" / f"engine-{backend}-{model.replace('/', '_')}-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-c",
        "from tandem.cli import main; main()",
        "engine",
        "serve",
        "--backend",
        backend,
        "--model",
        model,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    process_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=process_env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"engine server exited: {log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"engine server not healthy in time: {log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ensure_tgi_client() -> Path:
    """TGI's own ``text-generation`` client, installed apart from the project.

    It pins ``huggingface-hub<1.0``, which the project's transformers cannot use, so it lives in
    its own target directory and runs in a subprocess with only that directory in front.
    """
    if not (TGI_CLIENT_DIR / "text_generation").is_dir():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--target",
                str(TGI_CLIENT_DIR),
                TGI_CLIENT_REQUIREMENT,
            ],
            check=True,
        )
    return TGI_CLIENT_DIR


def run_tgi_client(script: str, url: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (which reads the server URL from argv[1]) with the isolated client."""
    client_dir = ensure_tgi_client()
    env = {**os.environ, "PYTHONPATH": str(client_dir), "PYTHONNOUSERSITE": "1"}
    return subprocess.run(
        [sys.executable, "-c", script, url],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
