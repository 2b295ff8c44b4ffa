"""Settings of the local engine server, env prefix ``TANDEM_ENGINE_``.

The command line (``tandem engine serve``) overrides the backend, model, host and port; the
rest (cache, threads, limits, the simulator's knobs) come from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "tandem-serve"


class EngineServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TANDEM_ENGINE_", extra="ignore", frozen=True)

    backend: Literal["gguf", "sim"] = Field(
        "sim",
        description="Backend of the local engine: real small models (gguf) or the "
        "simulator test double (sim).",
    )
    model: str = Field(
        "sim-executor",
        description="Model to serve: smollm2-135m, gemma3-270m, a Hugging Face "
        "model directory (gguf backend), or sim-coordinator / sim-executor (sim backend).",
    )
    model_id: str = Field(
        "", description="Model id reported by /info and /v1/models (default: the model as given)."
    )
    host: str = Field("127.0.0.1", description="Bind address of the engine server.")
    port: int = Field(8080, description="Port of the engine server.")
    cache_dir: Path = Field(
        DEFAULT_CACHE_DIR,
        description="Where assembled GGUF files and converted model copies "
        "are kept (later starts load the converted copy in seconds).",
    )
    dtype: Literal["auto", "bfloat16", "float32"] = Field(
        "auto",
        description="Weights dtype of the gguf backend; auto: bfloat16 where the CPU "
        "has native bf16 (AVX512-BF16/AMX), else float32.",
    )
    threads: int = Field(0, description="Torch CPU threads (0: all cores).")
    max_input_tokens: int = Field(4096, description="Longest prompt accepted, in tokens.")
    max_total_tokens: int = Field(
        6144, description="Longest prompt plus max_new_tokens accepted, in tokens."
    )
    max_concurrent_requests: int = Field(
        16, description="Requests in flight before the server answers 429 (overloaded)."
    )
    max_stop_sequences: int = Field(4, description="Most stop sequences one request may give.")
    logprob_chunk_tokens: int = Field(
        0,
        description="Prompt positions per chunk when computing prompt log-probs (0: sized so "
        "one chunk's logits stay under 64 MiB; matters for Gemma's 262k vocabulary).",
    )
    prefix_cache_tokens: int = Field(
        8192,
        description="Prompt and generated tokens whose state (KV cache) the server keeps, over "
        "all entries, so a prompt that extends earlier work continues from it (0: off).",
    )
    sim_tokens_per_s: float = Field(
        400.0, description="Simulator decode speed, tokens per second (0: no delay)."
    )
    sim_ttft_s: float = Field(0.0, description="Simulator time to first token, seconds.")
    sim_insight_tokens: int = Field(
        600,
        description="Simulator coordinator: length of a question's complete insights before "
        "the end-of-insights marker (varied per question by sim_insight_jitter).",
    )
    sim_insight_jitter: float = Field(
        0.25, description="Simulator coordinator: relative spread of insight length by question."
    )
    sim_answer_tokens: int = Field(
        48, description="Simulator executor: length of a complete answer, tokens."
    )
    sim_base_accuracy: float = Field(
        0.35, description="Simulator executor: chance of a right answer with no insights."
    )
    sim_max_accuracy: float = Field(
        0.95, description="Simulator executor: chance of a right answer with ample insights."
    )
    sim_insight_scale: float = Field(
        250.0,
        description="Simulator executor: insight tokens at which accuracy has gone 63% of "
        "the way from base to max.",
    )
    sim_faults: str = Field(
        "",
        description="Simulator faults applied to every request, same syntax as the "
        "X-Sim-Fault header (e.g. `status=503;times=2`).",
    )
    faults_from_headers: bool | None = Field(
        None, description="Honour the X-Sim-Fault request header (default: only on the sim)."
    )
