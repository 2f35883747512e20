"""Batched feature extraction of one model over one split into the feature store, resumable by chunk."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from featswap.backbone import Backbone
from featswap.datasets import Split
from featswap.errors import DataError
from featswap.progress import bar, rate
from featswap.store import FeatureStore


class _Images(TorchDataset[torch.Tensor]):
    """Rows `[start, stop)` of a split, preprocessed by a model's transform."""

    def __init__(self, split: Split, transform: Callable[[Any], torch.Tensor], start: int, stop: int) -> None:
        self.split, self.transform, self.start, self.stop = split, transform, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(self.split.load(self.start + i))


@dataclass(frozen=True)
class ExtractResult:
    model: str
    split: str
    rows: int
    computed_rows: int
    seconds: float
    logits_max_abs_diff: float


def extract(
    backbone: Backbone,
    split: Split,
    store: FeatureStore,
    batch_size: int = 256,
    num_workers: int = 0,
    quiet: bool = False,
) -> ExtractResult:
    """Write `backbone`'s features `(N, D)` for every sample of `split` into `store`.

    The split's ids and labels are recorded (or checked against those stored); the model's head and
    metadata are recorded after its logits check passes on the first batch. Row chunks already marked
    done are skipped, so an interrupted extraction resumes where it stopped.
    """
    transform = backbone.transform()
    store.write_split(split.name, list(split.ids), split.labels)
    first = torch.stack([transform(split.load(i)) for i in range(min(batch_size, len(split)))])
    diff = backbone.check_logits(first)
    weight, bias = backbone.head_numpy()
    store.write_model(
        backbone.name,
        {
            "spec": backbone.spec,
            "feature_dim": backbone.feature_dim,
            "num_classes": backbone.num_classes,
            "data_config": backbone.data_config.to_dict(),
            "weights_sha256": backbone.weights_sha256,
            "logits_max_abs_diff": diff,
        },
        weight,
        bias,
    )
    array = store.feature_array(split.name, backbone.name, backbone.feature_dim)
    done = store.done_chunks(split.name, backbone.name)
    rows_per_chunk = array.chunks[0]
    todo = [c for c in range(len(done)) if not done[c]]
    start_time = time.perf_counter()
    computed = 0
    with bar(disable=quiet) as progress:
        task = progress.add_task(
            f"{backbone.name} / {split.name}",
            total=len(split),
            completed=len(split) - _rows(todo, rows_per_chunk, len(split)),
            rate="",
        )
        for chunk in todo:
            start, stop = chunk * rows_per_chunk, min((chunk + 1) * rows_per_chunk, len(split))
            loader = DataLoader(_Images(split, transform, start, stop), batch_size=batch_size, num_workers=num_workers)
            parts: list[np.ndarray] = []
            for images in loader:
                feats = backbone.features(images).cpu().numpy()
                if not np.isfinite(feats).all():
                    bad = start + sum(len(part) for part in parts) + int(np.argwhere(~np.isfinite(feats))[0, 0])
                    raise DataError(
                        f"{backbone.name} produced NaN/inf features for id {split.ids[bad]!r}; nothing of this "
                        "chunk was written. Check the image and the model's weights."
                    )
                parts.append(feats)
                computed += len(images)
                progress.update(task, advance=len(images), rate=rate(computed, time.perf_counter() - start_time))
            array[start:stop] = np.concatenate(parts, axis=0)
            store.mark_done(split.name, backbone.name, chunk)
    return ExtractResult(backbone.name, split.name, len(split), computed, time.perf_counter() - start_time, diff)


def _rows(chunks: list[int], rows_per_chunk: int, total: int) -> int:
    return sum(min((c + 1) * rows_per_chunk, total) - c * rows_per_chunk for c in chunks)
