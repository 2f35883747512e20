"""The swap test on held-out images: each head classifies the other network's mapped features."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from featswap.errors import DataError
from featswap.evaluation.stats import bootstrap_ci, mcnemar_exact
from featswap.evaluation.venn import fixed_broken, venn_counts

TOP_K = 5
PER_CLASS_SHOWN = 5


def check_classes(classes: int, outputs: int, model: str, collection: str, offset: int = 0) -> None:
    """Refuse to score a collection whose label space is not the head's: label k must mean the head's class
    output k (`outputs` class outputs, after the first `offset` outputs of the head, which are not classes)."""
    if classes != outputs:
        rows = f" (its outputs {offset}.., after {offset} that are not classes)" if offset else ""
        raise DataError(
            f"Collection {collection!r} has {classes} classes but {model}'s head predicts {outputs}{rows}; a label "
            "would not name the same class as the head's output of that index. Evaluate on images labelled in the "
            "networks' own label space (imagenet:DIR for ImageNet-1k networks, one folder per class of the head "
            "otherwise), or give --head-offset N when the head's first N outputs are not classes."
        )


def check_labels(labels: np.ndarray, num_classes: int, model: str) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(
            f"Labels range over {labels.min()}..{labels.max()} but {model}'s head predicts {num_classes} "
            "classes; the dataset's classes must be the classes the networks were trained on."
        )


@dataclass(frozen=True)
class Predictions:
    """A classifier's outputs on N images: `top1` `(N,)` int classes, `topk_ok` `(N,)` whether the label is
    among its `TOP_K` highest logits."""

    top1: np.ndarray
    topk_ok: np.ndarray


def classify(
    features: np.ndarray, weight: np.ndarray, bias: np.ndarray, labels: np.ndarray, scored: np.ndarray | None = None
) -> Predictions:
    """Predictions of an affine head `W (C, D)`, `b (C,)` on features `(N, D)` for `labels` `(N,)`; with `scored`
    (sorted class indices), over those classes only: the other logits are left out before the top-1 and top-k."""
    if features.shape[1] != weight.shape[1]:
        raise DataError(
            f"The head takes {weight.shape[1]} features but got {features.shape[1]}; is the map's target "
            "the same model as the head's?"
        )
    if scored is not None:
        weight, bias = weight[scored], bias[scored]
    return predict(features @ weight.T + bias, labels, scored)


def predict(logits: np.ndarray, labels: np.ndarray, scored: np.ndarray | None = None) -> Predictions:
    """Predictions from logits `(N, C')` for `labels` `(N,)`; with `scored` (sorted class indices), the logits are
    those classes' only (`C' = len(scored)`) and the predictions are mapped back to class indices."""
    k = min(TOP_K, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    top1 = logits.argmax(axis=1)
    if scored is not None:
        top, top1 = scored[top], scored[top1]
    return Predictions(top1, (top == labels[:, None]).any(axis=1))


def scored_classes(labels: np.ndarray, num_classes: int) -> np.ndarray | None:
    """The classes a set is scored over: those its labels `(N,)` hold when they are fewer than the head's
    `num_classes` (the protocol of ImageNet-R and ImageNet-A, which cover 200 of ImageNet's 1,000), else None
    (every class)."""
    present = np.unique(labels)
    return present if len(present) < num_classes else None


@dataclass(frozen=True)
class SwapOutcome:
    """The three classifiers of one direction on one split: the source network natively, the target
    network natively, and the target head on mapped source features; `labels` `(N,)`."""

    labels: np.ndarray
    source: Predictions
    target: Predictions
    mapped: Predictions
    mapped_loss: float  # the paper's loss of the map on this split

    @property
    def source_ok(self) -> np.ndarray:
        return np.asarray(self.source.top1 == self.labels)

    @property
    def target_ok(self) -> np.ndarray:
        return np.asarray(self.target.top1 == self.labels)

    @property
    def mapped_ok(self) -> np.ndarray:
        return np.asarray(self.mapped.top1 == self.labels)


def per_class_changes(outcome: SwapOutcome, classes: Sequence[str]) -> dict[str, list[dict[str, object]]]:
    """The classes whose accuracy drops most (`largest_losses`) and rises most (`largest_gains`) when the
    target's head reads mapped instead of native features; at most `PER_CLASS_SHOWN` of each."""
    present = np.unique(outcome.labels)
    native = np.array([outcome.target_ok[outcome.labels == c].mean() for c in present])
    mapped = np.array([outcome.mapped_ok[outcome.labels == c].mean() for c in present])
    loss = native - mapped

    def row(i: int) -> dict[str, object]:
        c = int(present[i])
        return {
            "class": classes[c] if c < len(classes) else str(c),
            "images": int((outcome.labels == c).sum()),
            "native_accuracy": float(native[i]),
            "mapped_accuracy": float(mapped[i]),
            "loss": float(loss[i]),
        }

    order = np.argsort(-loss, kind="stable")
    losses = [row(i) for i in order if loss[i] > 0][:PER_CLASS_SHOWN]
    gains = [row(i) for i in order[::-1] if loss[i] < 0][:PER_CLASS_SHOWN]
    return {"largest_losses": losses, "largest_gains": gains}


def pair_metrics(
    outcome: SwapOutcome, n_boot: int = 1000, seed: int = 0, classes: Sequence[str] = ()
) -> dict[str, object]:
    """The metrics.json fields of one direction that follow from per-image outcomes."""
    total = len(outcome.labels)
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
        "native_accuracy_ci95": list(ci["native_accuracy"]),
        "mapped_accuracy_ci95": list(ci["mapped_accuracy"]),
        "native_top5_accuracy": float(outcome.target.topk_ok.mean()),
        "mapped_top5_accuracy": float(outcome.mapped.topk_ok.mean()),
        "agreement": float((outcome.mapped.top1 == outcome.target.top1).mean()),
        "per_class": per_class_changes(outcome, classes),
    }


def model_entry(spec: str, feature_dim: int, labels: np.ndarray, predictions: Predictions) -> dict[str, object]:
    """The metrics.json entry of one model: its own accuracy on the evaluated images."""
    correct = int((predictions.top1 == labels).sum())
    return {
        "spec": spec,
        "feature_dim": int(feature_dim),
        "val_correct": correct,
        "val_total": len(labels),
        "val_accuracy": correct / len(labels),
        "val_top5_accuracy": float(predictions.topk_ok.mean()),
    }
