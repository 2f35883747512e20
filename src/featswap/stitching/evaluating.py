"""The evaluation pass: on each labelled image, each network runs once (its native prediction and the activations
of its layers), then, for every fitted map, the target network runs with its layer's output replaced by the
mapped source activation, and its own head classifies the result. The per-image outcomes give what `compare`
gives for a pair: correct counts, loss, bootstrap interval, McNemar, Venn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from featswap.backbones.backbone import Backbone
from featswap.evaluation.swap import Predictions, classify
from featswap.stitching.activations import apply_map, position_paper_loss, to_grid
from featswap.stitching.fitting import StitchMap, layers_of
from featswap.stitching.taps import capture, replaced


@dataclass
class Outcomes:
    """Per-image results on the readable images of one set: each network's own predictions (`native`, one per
    network), each map's (`mapped`, in the order of the maps), each map's mean paper loss between mapped and
    target activations over all positions (`loss`), and which images were readable (`kept` `(N,)`)."""

    native: list[Predictions]
    mapped: list[Predictions]
    loss: list[float]
    kept: np.ndarray


def _joined(parts: list[Predictions]) -> Predictions:
    if not parts:
        return Predictions(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool))
    return Predictions(np.concatenate([p.top1 for p in parts]), np.concatenate([p.topk_ok for p in parts]))


def run_outcomes(
    backbones: Sequence[Backbone],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor, list[str]]],
    maps: Sequence[StitchMap],
    labels: np.ndarray,
    scored: np.ndarray | None,
    device: str = "cpu",
    progress: Callable[[int], None] = lambda _: None,
) -> Outcomes:
    """Every network's and every map's predictions for `labels` `(N,)` over the images of `batches` (in order),
    scored over the classes `scored` (None: all). Unreadable images (a problem given) are left out."""
    heads = [backbone.head_numpy() for backbone in backbones]
    layers = [layers_of([m.route for m in maps], i) for i in (0, 1)]
    tensors = [m.tensors(device) for m in maps]
    native: list[list[Predictions]] = [[], []]
    mapped: list[list[Predictions]] = [[] for _ in maps]
    loss_sums, counts = np.zeros(len(maps)), np.zeros(len(maps), dtype=np.int64)
    kept_parts, start = [], 0
    for x_first, x_second, problems in batches:
        ok = np.array([not p for p in problems], dtype=bool)
        batch_labels = labels[start : start + len(problems)][ok]
        start += len(problems)
        kept_parts.append(ok)
        if not ok.any():
            progress(len(problems))
            continue
        keep = torch.from_numpy(ok)
        xs = [x_first[keep].to(device), x_second[keep].to(device)]
        captured = [capture(backbone, x, names) for backbone, x, names in zip(backbones, xs, layers, strict=True)]
        for i, (features, _) in enumerate(captured):
            native[i].append(classify(features.cpu().numpy(), *heads[i], batch_labels, scored))
        for j, (m, (weight, bias)) in enumerate(zip(maps, tensors, strict=True)):
            route = m.route
            target_act = captured[route.target][1][route.target_layer]
            source_act = to_grid(captured[route.source][1][route.source_layer], tuple(target_act.shape[1:]))
            value = apply_map(weight, bias, source_act.float())
            features = replaced(backbones[route.target], xs[route.target], route.target_layer, value)
            mapped[j].append(classify(features.float().cpu().numpy(), *heads[route.target], batch_labels, scored))
            total, n = position_paper_loss(value, target_act)
            loss_sums[j] += total
            counts[j] += n
        progress(len(problems))
    return Outcomes(
        [_joined(parts) for parts in native],
        [_joined(parts) for parts in mapped],
        [float(s / c) if c else 0.0 for s, c in zip(loss_sums, counts, strict=True)],
        np.concatenate(kept_parts) if kept_parts else np.zeros(0, dtype=bool),
    )


def layer_entry(layer: Any) -> dict[str, Any]:
    """metrics.json's record of one layer: its output shape per image, relative depth and whether it is a stage."""
    return {"shape": list(layer.shape), "depth": float(layer.depth), "stage": bool(layer.stage)}
