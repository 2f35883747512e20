"""Batched feature extraction of one model over one split into the feature store, resumable by chunk."""

from __future__ import annotations

import itertools
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
from featswap.errors import DataError, SpecError
from featswap.progress import bar, rate
from featswap.store import FeatureStore

LOGITS_CHECK_IMAGES = 16


ON_BAD_IMAGE = ("fail", "skip")


class _Images(TorchDataset[tuple[torch.Tensor, str]]):
    """The images of a split, preprocessed by a model's transform, each with "" or why it is unreadable.

    With `skip`, an unreadable image becomes zeros and its reason travels back (from worker processes
    too); with `fail` it raises at once."""

    def __init__(
        self, split: Split, transform: Callable[[Any], torch.Tensor], skip: bool, shape: tuple[int, ...]
    ) -> None:
        self.split, self.transform, self.skip, self.shape = split, transform, skip, shape

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        try:
            return self.transform(self.split.load(i)), ""
        except DataError as err:
            if not self.skip:
                raise
            return torch.zeros(self.shape), str(err)


def chunk_batches(chunks: list[int], rows_per_chunk: int, total: int, batch_size: int) -> list[list[int]]:
    """Row indices of the given chunks in batches that never straddle two chunks."""
    batches = []
    for chunk in chunks:
        start, stop = chunk * rows_per_chunk, min((chunk + 1) * rows_per_chunk, total)
        batches += [list(range(b, min(b + batch_size, stop))) for b in range(start, stop, batch_size)]
    return batches


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
    device: str = "cpu",
    chunk_rows: int | None = None,
    on_bad_image: str = "fail",
) -> ExtractResult:
    """Write `backbone`'s features `(N, D)` for every sample of `split` into `store`.

    The split's ids and labels are recorded (or checked against those stored); the model's head and
    metadata are recorded after its logits check passes on the first `LOGITS_CHECK_IMAGES` images. Row
    chunks already marked done are skipped, so an interrupted extraction resumes where it stopped.
    `num_workers` processes decode and preprocess images; on CUDA the network runs channels-last under
    bf16 autocast (features are stored as float32). `on_bad_image`: "fail" stops at an unreadable image
    with its id; "skip" records it in the store, which then leaves it out for every model.
    """
    if on_bad_image not in ON_BAD_IMAGE:
        raise SpecError(f"on_bad_image must be 'fail' or 'skip'; got {on_bad_image!r}.")
    skip = on_bad_image == "skip"
    images_dataset = _Images(split, backbone.transform(), skip, backbone.data_config.input_size)
    cuda = device.startswith("cuda")
    if cuda:
        backbone.module.to(device)
        backbone.module.to(memory_format=torch.channels_last)
    store.write_split(split.name, list(split.ids), split.labels)
    # The logits check runs the network twice; a few images show whether the head is the final affine map.
    readable = (images_dataset[i] for i in range(len(split)))
    first = torch.stack(
        [image for image, _ in itertools.islice((r for r in readable if not r[1]), LOGITS_CHECK_IMAGES)]
    )
    diff = backbone.check_logits(first.to(device))
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
    array = store.feature_array(
        split.name, backbone.name, backbone.feature_dim, **({"chunk_rows": chunk_rows} if chunk_rows else {})
    )
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
        loader = DataLoader(
            images_dataset,
            batch_sampler=chunk_batches(todo, rows_per_chunk, len(split), batch_size),
            num_workers=num_workers,
            pin_memory=cuda,
        )
        parts: list[np.ndarray] = []
        rows = 0
        chunk_iter = iter(todo)
        chunk = next(chunk_iter, None)
        for images, problems in loader:
            bad_rows = [i for i, problem in enumerate(problems) if problem]
            if bad_rows:
                start_row = chunk * rows_per_chunk + rows  # type: ignore[operator]
                store.add_skipped(split.name, {split.ids[start_row + i]: problems[i] for i in bad_rows})
            if cuda:
                images = images.to(device, non_blocking=True, memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                feats = backbone.features(images).float().cpu().numpy()
            assert chunk is not None
            start = chunk * rows_per_chunk
            if not np.isfinite(feats).all():
                bad = start + rows + int(np.argwhere(~np.isfinite(feats))[0, 0])
                raise DataError(
                    f"{backbone.name} produced NaN/inf features for id {split.ids[bad]!r}; nothing of this "
                    "chunk was written. Check the image and the model's weights."
                )
            feats[bad_rows] = 0.0  # never read: skipped rows are left out for every model
            parts.append(feats)
            rows += len(feats)
            computed += len(feats)
            progress.update(task, advance=len(feats), rate=rate(computed, time.perf_counter() - start_time))
            if start + rows == min((chunk + 1) * rows_per_chunk, len(split)):
                array[start : start + rows] = np.concatenate(parts, axis=0)
                store.mark_done(split.name, backbone.name, chunk)
                parts, rows, chunk = [], 0, next(chunk_iter, None)
    return ExtractResult(backbone.name, split.name, len(split), computed, time.perf_counter() - start_time, diff)


def _rows(chunks: list[int], rows_per_chunk: int, total: int) -> int:
    return sum(min((c + 1) * rows_per_chunk, total) - c * rows_per_chunk for c in chunks)
