"""Where the model files the project ships live (no heavy imports: every process may read it).

Classifiers: the default was trained on what the bundled real pair (Gemma 3 270M → SmolLM2-135M)
produced, and the API's default level schedule is its own (its thresholds are per level); the
simulator's serves stacks and tests that run the TGI-compatible simulator; the lab pairs' serve
stacks that run the pairs trained by ``tandem lab`` (v1 on catalog, v2 and v3 on shop; v3's
reads the insight span, so it carries to the ages domain).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLASSIFIERS_DIR = ROOT / "models" / "classifier"
DEFAULT_MODEL_PATH = CLASSIFIERS_DIR / "gemma-smollm2-mlp-v1.onnx"
SIM_MODEL_PATH = CLASSIFIERS_DIR / "sim-mlp-v1.onnx"
LAB_MODEL_PATH = CLASSIFIERS_DIR / "lab-catalog-mlp-v1.onnx"
LAB_V2_MODEL_PATH = CLASSIFIERS_DIR / "lab-v2-shop-mlp-v1.onnx"
LAB_V3_MODEL_PATH = CLASSIFIERS_DIR / "lab-v3-shop-span-v1.onnx"
