"""The swap test on held-out images: each head classifies the other network's mapped features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from featswap.affine_map import AffineMap
from featswap.errors import DataError
from featswap.stats import bootstrap_ci, mcnemar_exact
from featswap.store import FeatureStore
from featswap.venn import fixed_broken, venn_counts


def predict(features: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Top-1 class `(N,)` of an affine head `W (C, D)`, `b (C,)` on features `(N, D)`."""
    if features.shape[1] != weight.shape[1]:
        raise DataError(
            f"The head takes {weight.shape[1]} features but got {features.shape[1]}; is the map's target "
            "the same model as the head's?"
        )
    return np.asarray((features @ weight.T + bias).argmax(axis=1))


def check_labels(labels: np.ndarray, num_classes: int, model: str) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(
            f"Labels range over {labels.min()}..{labels.max()} but {model}'s head predicts {num_classes} "
            "classes; the dataset's classes must be the classes the networks were trained on."
        )


@dataclass(frozen=True)
class SwapOutcome:
    """Per-image outcomes `(N,)` bool of the three classifiers of one direction, on one split."""

    source_ok: np.ndarray  # C_A(F_A(x)) correct
    target_ok: np.ndarray  # C_B(F_B(x)) correct
    mapped_ok: np.ndarray  # C_B(M_{A->B} F_A(x)) correct
    mapped_loss: float  # the paper's loss of the map on this split


def swap(store: FeatureStore, amap: AffineMap, source: str, target: str, split: str = "val") -> SwapOutcome:
    """Classify `split` with the source's and target's own heads and with the target's head on mapped
    source features."""
    labels = store.labels(split)
    source_w, source_b = store.head(source)
    target_w, target_b = store.head(target)
    check_labels(labels, len(target_b), target)
    check_labels(labels, len(source_b), source)
    x, y = store.features(split, source), store.features(split, target)
    mapped = amap.transform(x)
    return SwapOutcome(
        source_ok=predict(x, source_w, source_b) == labels,
        target_ok=predict(y, target_w, target_b) == labels,
        mapped_ok=predict(mapped, target_w, target_b) == labels,
        mapped_loss=amap.loss(x, y),
    )


def pair_metrics(outcome: SwapOutcome, n_boot: int = 1000, seed: int = 0) -> dict[str, object]:
    """The metrics.json fields of one direction that follow from per-image outcomes."""
    total = len(outcome.target_ok)
    mapped_correct, native_correct = int(outcome.mapped_ok.sum()), int(outcome.target_ok.sum())
    mapped_accuracy, native_accuracy = mapped_correct / total, native_correct / total
    venn = venn_counts(outcome.source_ok, outcome.target_ok, outcome.mapped_ok)
    fixed, broken = fixed_broken(venn)
    ci = bootstrap_ci(outcome.target_ok, outcome.mapped_ok, n_boot=n_boot, seed=seed)
    return {
        "mapped_correct": mapped_correct,
        "total": total,
        "mapped_accuracy": mapped_accuracy,
        "native_correct": native_correct,
        "native_accuracy": native_accuracy,
        "loss": native_accuracy - mapped_accuracy,
        "loss_ci95": list(ci["loss"]),
        "fixed": fixed,
        "broken": broken,
        "mcnemar_p": mcnemar_exact(fixed, broken),
        "venn": venn,
    }


def model_metrics(store: FeatureStore, name: str, split: str = "val") -> dict[str, object]:
    """The metrics.json entry of one model: its own accuracy on `split`."""
    labels = store.labels(split)
    weight, bias = store.head(name)
    check_labels(labels, len(bias), name)
    correct = int((predict(store.features(split, name), weight, bias) == labels).sum())
    attrs = store.model_attrs(name)
    return {
        "spec": attrs["spec"],
        "feature_dim": int(attrs["feature_dim"]),
        "val_correct": correct,
        "val_total": len(labels),
        "val_accuracy": correct / len(labels),
    }
