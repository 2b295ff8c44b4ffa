"""A minimal trainer: standard scaling + MLP(64, 32) in torch → ONE ONNX graph, scaler inside.

The graph is written node by node from the trained weights (Sub, Div, Gemm, Relu, Gemm, Relu,
Gemm, Sigmoid), so it needs no exporter beyond ``onnx`` itself; the metadata carries the
feature list, version, thresholds and a hash of the training data. :func:`train` checks the
ONNX outputs against torch's on the validation rows and reports the largest difference.

Input rows carry ``features`` (in the order of a feature set's list, :mod:`shared.features`;
the model's metadata names the list, so the scorer computes the same set), ``label`` (0/1) and
``split`` (``train`` or ``validation``); :func:`train_collected` builds them from a collected
file (:mod:`tandem.classifier.collected`) and writes the model's card next to it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared.features import FEATURE_SETS, PROMPT_STATS, FeatureSet

HIDDEN = (64, 32)


@dataclass(frozen=True)
class TrainResult:
    path: Path
    version: str
    data_hash: str
    validation_accuracy: float
    validation_brier: float
    onnx_max_abs_diff: float
    epochs: int


def data_hash(rows: list[dict[str, Any]]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, sort_keys=True).encode())
    return digest.hexdigest()


def _onnx_graph(
    mean: np.ndarray,
    std: np.ndarray,
    layers: list[tuple[np.ndarray, np.ndarray]],
    metadata: dict[str, str],
) -> Any:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [
        numpy_helper.from_array(mean.astype(np.float32), "scaler_mean"),
        numpy_helper.from_array(std.astype(np.float32), "scaler_std"),
    ]
    nodes = [
        helper.make_node("Sub", ["features", "scaler_mean"], ["centered"]),
        helper.make_node("Div", ["centered", "scaler_std"], ["h0"]),
    ]
    for i, (weight, bias) in enumerate(layers):
        inits += [
            numpy_helper.from_array(weight.astype(np.float32), f"w{i}"),
            numpy_helper.from_array(bias.astype(np.float32), f"b{i}"),
        ]
        nodes.append(helper.make_node("Gemm", [f"h{i}", f"w{i}", f"b{i}"], [f"z{i}"], transB=1))
        last = i == len(layers) - 1
        nodes.append(
            helper.make_node(
                "Sigmoid" if last else "Relu", [f"z{i}"], ["score" if last else f"h{i + 1}"]
            )
        )
    graph = helper.make_graph(
        nodes,
        "sufficiency_classifier",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", len(mean)])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["n", 1])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model


@dataclass(frozen=True)
class Fitted:
    """An MLP fitted on standardised features: the network (eval mode) and the scaling."""

    net: Any  # torch.nn.Sequential (torch is imported only where a model is trained)
    mean: np.ndarray
    std: np.ndarray
    epochs: int

    def predict(self, features: np.ndarray) -> np.ndarray:
        """P(sufficient) per row of ``features``."""
        import torch

        with torch.no_grad():
            scaled = torch.tensor((features - self.mean) / self.std, dtype=torch.float32)
            return torch.sigmoid(self.net(scaled)).numpy()[:, 0]


def fit_mlp(
    x: np.ndarray,
    y: np.ndarray,
    xv: np.ndarray,
    yv: np.ndarray,
    hidden: Sequence[int],
    *,
    max_epochs: int = 300,
    patience: int = 20,
    seed: int = 0,
) -> Fitted:
    """Adam on binary cross-entropy in mini-batches of 64, early-stopped on the validation
    loss (``patience`` epochs without improvement), the best epoch's weights kept."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std < 1e-9] = 1.0
    sizes = [x.shape[1], *hidden, 1]
    mods: list[torch.nn.Module] = []
    for i in range(len(sizes) - 1):
        mods.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            mods.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*mods)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    xt = torch.tensor((x - mean) / std, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.float32).unsqueeze(1)
    xvt = torch.tensor((xv - mean) / std, dtype=torch.float32)
    yvt = torch.tensor(yv, dtype=torch.float32).unsqueeze(1)
    best, best_state, since, epochs = float("inf"), None, 0, 0
    for epoch in range(max_epochs):
        epochs = epoch + 1
        net.train()
        for idx in torch.randperm(len(xt)).split(64):
            optimizer.zero_grad()
            loss_fn(net(xt[idx]), yt[idx]).backward()
            optimizer.step()
        net.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(net(xvt), yvt))
        if val_loss < best - 1e-5:
            best, since = val_loss, 0
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        else:
            since += 1
            if since >= patience:
                break
    assert best_state is not None
    net.load_state_dict(best_state)
    net.eval()
    return Fitted(net=net, mean=mean, std=std, epochs=epochs)


def train(
    rows: list[dict[str, Any]],
    out: Path,
    *,
    version: str,
    thresholds: list[float],
    max_epochs: int = 300,
    patience: int = 20,
    seed: int = 0,
    feature_set: FeatureSet = PROMPT_STATS,
) -> TrainResult:
    """Fit, early-stop on validation, export, and check ONNX against torch."""
    import onnx
    import onnxruntime
    import torch

    train_rows = [r for r in rows if r.get("split", "train") == "train"]
    val_rows = [r for r in rows if r.get("split") == "validation"] or train_rows
    x = np.array([r["features"] for r in train_rows], dtype=np.float64)
    y = np.array([float(r["label"]) for r in train_rows], dtype=np.float32)
    xv = np.array([r["features"] for r in val_rows], dtype=np.float64)
    yv = np.array([float(r["label"]) for r in val_rows], dtype=np.float32)
    if x.shape[1] != len(feature_set.names):
        raise ValueError(
            f"rows have {x.shape[1]} features, the {feature_set.name} set {len(feature_set.names)}"
        )
    fitted = fit_mlp(x, y, xv, yv, HIDDEN, max_epochs=max_epochs, patience=patience, seed=seed)
    net, mean, std = fitted.net, fitted.mean, fitted.std
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    layers = [(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in linears]
    digest = data_hash(rows)
    model = _onnx_graph(
        mean,
        std,
        layers,
        {
            "version": version,
            "feature_names": json.dumps(list(feature_set.names)),
            "thresholds": json.dumps(thresholds),
            "data_hash": digest,
        },
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))

    torch_scores = fitted.predict(xv)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    onnx_scores = session.run(None, {"features": xv.astype(np.float32)})[0].reshape(-1)
    return TrainResult(
        path=out,
        version=version,
        data_hash=digest,
        validation_accuracy=float(((torch_scores >= 0.5) == (yv >= 0.5)).mean()),
        validation_brier=float(((torch_scores - yv) ** 2).mean()),
        onnx_max_abs_diff=float(np.abs(onnx_scores - torch_scores).max()),
        epochs=fitted.epochs,
    )


def train_collected(
    collected: Path,
    out: Path,
    *,
    version: str | None = None,
    max_epochs: int = 300,
    patience: int = 20,
    seed: int = 0,
    features: str = PROMPT_STATS.name,
) -> tuple[TrainResult, dict[str, Any]]:
    """Train on a collected file's train/validation questions with the feature set named
    ``features``; returns the result and card. Until ``calibrate`` fits them, every level's
    threshold is 0.5.
    """
    from tandem.classifier.collected import Featurizer, read_collected, training_rows
    from tandem.classifier.model_files import update_card

    if features not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {features!r}; known: {', '.join(FEATURE_SETS)}")
    header, questions = read_collected(collected)
    featurizer = Featurizer.of(FEATURE_SETS[features], header)
    rows = training_rows(questions, featurizer=featurizer)
    if not any(r["split"] == "train" for r in rows):
        raise ValueError(f"{collected} has no train questions to fit on")
    digest = data_hash(rows)
    version = version or f"{out.stem}-{digest[:8]}"
    thresholds = [0.5] * len(header.levels)
    result = train(
        rows,
        out,
        version=version,
        thresholds=thresholds,
        max_epochs=max_epochs,
        patience=patience,
        seed=seed,
        feature_set=featurizer.feature_set,
    )
    question_split = {r["question_id"]: r["split"] for r in rows}
    card = update_card(
        out,
        version=version,
        data_hash=digest,
        trained_on={
            "collected": str(collected),
            "header": header.to_dict(),
            "train_questions": sum(1 for s in question_split.values() if s == "train"),
            "validation_questions": sum(1 for s in question_split.values() if s == "validation"),
            "rows": len(rows),
            "positive_share": round(sum(r["label"] for r in rows) / len(rows), 4),
        },
        training={
            "validation_accuracy": result.validation_accuracy,
            "validation_brier": result.validation_brier,
            "onnx_max_abs_diff": result.onnx_max_abs_diff,
            "epochs": result.epochs,
            "seed": seed,
            "features": features,
        },
        thresholds=thresholds,
        calibration=None,
        evaluation=None,
    )
    return result, card
