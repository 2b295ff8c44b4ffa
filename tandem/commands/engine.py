"""``tandem engine``: run the local TGI-compatible server, prepare its models, check engines."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(
    help="Inference engines: the local server and engine checks.", no_args_is_help=True
)


@app.command("serve")
def serve(
    backend: str = typer.Option(None, help="gguf (real small models) or sim (test double)."),
    model: str = typer.Option(
        None, help="smollm2-135m, gemma3-270m, a model directory, or sim-coordinator|sim-executor."
    ),
    host: str = typer.Option(None, help="Bind address."),
    port: int = typer.Option(None, help="Port."),
    model_id: str = typer.Option(None, help="Model id to report (default: --model as given)."),
    cache_dir: Path = typer.Option(None, help="Cache of assembled and converted models."),
    log_level: str = typer.Option("info", help="Uvicorn log level."),
) -> None:
    """Serve TGI's HTTP API on one backend (options override TANDEM_ENGINE_* settings)."""
    # This process only serves local weights: nothing in it may reach a model hub. (Set here,
    # for this process alone: in a worker, huggingface_hub's offline mode would block the
    # requests to its TGI engines too.)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import uvicorn

    from services.engine.app import create_app
    from services.engine.settings import EngineServerSettings

    overrides: dict[str, Any] = {
        "backend": backend,
        "model": model,
        "host": host,
        "port": port,
        "model_id": model_id,
        "cache_dir": cache_dir,
    }
    if backend not in (None, "gguf", "sim"):
        raise typer.BadParameter("backend must be gguf or sim", param_hint="--backend")
    settings = EngineServerSettings(**{k: v for k, v in overrides.items() if v is not None})
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        timeout_graceful_shutdown=5,
    )


@app.command("prepare")
def prepare(
    model: list[str] = typer.Argument(None, help="Models to prepare (default: both bundled)."),
    cache_dir: Path = typer.Option(None, help="Cache of assembled and converted models."),
) -> None:
    """Convert the bundled GGUF models once, so servers (and CI) start in seconds."""
    from services.engine.backends.model_store import BUNDLED, load_model
    from services.engine.settings import EngineServerSettings

    overrides: dict[str, Any] = {"cache_dir": cache_dir} if cache_dir else {}
    settings = EngineServerSettings(**overrides)
    for name in model or sorted(BUNDLED):
        _, _, report = load_model(name, settings.cache_dir, settings.dtype)
        typer.echo(f"{name}: {report.source} {report.path} ({report.seconds:.1f}s)")


@app.command("check")
def check(
    role: list[str] = typer.Argument(None, help="Roles to check (default: all three)."),
) -> None:
    """Ask each role's engine for /health and /info and compare with the configured model."""
    from shared.db.models import Role
    from shared.engines import check_engine, make_client

    async def run() -> dict[str, Any]:
        results: dict[str, Any] = {}
        for name in role or [r.value for r in Role]:
            client = make_client(name)
            try:
                info = await check_engine(client)
                results[name] = {"ok": True, "model_id": info.model_id, "engine": info.engine}
            except Exception as error:  # reported per role, exit code below
                results[name] = {"ok": False, "error": str(error)}
            finally:
                await client.aclose()
        return results

    results = asyncio.run(run())
    typer.echo(json.dumps(results, indent=2))
    if not all(r["ok"] for r in results.values()):
        raise typer.Exit(1)
