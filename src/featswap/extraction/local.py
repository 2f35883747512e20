"""Batched feature extraction of one model over one split into the feature store, resumable by chunk.

The steps every engine shares live here: `prepare` (ids, the logits check, the model's record, which row
chunks remain), `batch_features` (one forward pass) and `ChunkWriter` (assembles batches into whole chunks,
writes each at its place and marks it done). `extract` runs them in this process; `featswap.ray_engine`
runs the forward passes on a Ray cluster.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import zarr
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from featswap import validate
from featswap.backbones.backbone import Backbone
from featswap.data.collections import Split
from featswap.errors import DataError
from featswap.progress import bar, rate
from featswap.store import FeatureStore

LOGITS_CHECK_IMAGES = 16


ON_BAD_IMAGE = ("fail", "skip")


class SplitImages(TorchDataset[tuple[torch.Tensor, str]]):
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

    def batch(self, rows: Sequence[int]) -> tuple[torch.Tensor, list[str]]:
        """Images `(B, C, H, W)` of the given rows and the problem of each ("" when readable)."""
        images, problems = zip(*(self[i] for i in rows), strict=True)
        return torch.stack(images), list(problems)


def chunk_batches(chunks: list[int], rows_per_chunk: int, total: int, batch_size: int) -> list[list[int]]:
    """Row indices of the given chunks in batches that never straddle two chunks."""
    batches = []
    for chunk in chunks:
        start, stop = chunk * rows_per_chunk, min((chunk + 1) * rows_per_chunk, total)
        batches += [list(range(b, min(b + batch_size, stop))) for b in range(start, stop, batch_size)]
    return batches


@dataclass(frozen=True)
class ExtractResult:
    """What one extraction did: `rows` in the split, `computed_rows` run through the network now (the rest
    were finished before), `repaired_chunks` finished chunks found damaged and recomputed."""

    model: str
    split: str
    rows: int
    computed_rows: int
    seconds: float
    logits_max_abs_diff: float
    repaired_chunks: int = 0


@dataclass(frozen=True)
class Plan:
    """What remains of one model's extraction over one split: the row chunks `todo` of `array` `(N, D)`."""

    images: SplitImages
    array: zarr.Array
    todo: list[int]
    logits_max_abs_diff: float
    repaired_chunks: int = 0

    @property
    def rows_per_chunk(self) -> int:
        return int(self.array.chunks[0])

    @property
    def todo_rows(self) -> int:
        n, size = self.array.shape[0], self.rows_per_chunk
        return sum(min((c + 1) * size, n) - c * size for c in self.todo)

    def batches(self, batch_size: int) -> list[list[int]]:
        return chunk_batches(self.todo, self.rows_per_chunk, self.array.shape[0], batch_size)


def prepare(
    backbone: Backbone,
    split: Split,
    store: FeatureStore,
    chunk_rows: int | None = None,
    on_bad_image: str = "fail",
    device: str = "cpu",
) -> Plan:
    """Record the split's ids and labels (or check them against those stored), run the logits check on the
    first `LOGITS_CHECK_IMAGES` readable images, record the model and its head, and list the row chunks
    not yet done."""
    validate.choice("on_bad_image", on_bad_image, ON_BAD_IMAGE)
    images = SplitImages(split, backbone.transform(), on_bad_image == "skip", backbone.data_config.input_size)
    store.write_split(split.name, list(split.ids), split.labels)
    # The logits check runs the network twice; a few images show whether the head is the final affine map.
    readable = (images[i] for i in range(len(split)))
    first = [image for image, _ in itertools.islice((r for r in readable if not r[1]), LOGITS_CHECK_IMAGES)]
    if not first:
        raise DataError(
            f"No image of split {split.name!r} ({len(split)} images) could be read, so there is nothing to extract. "
            "Check the data folder and the image files."
        )
    diff = backbone.check_logits(torch.stack(first).to(device))
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
    # Finished chunks are read back and checked: a missing or damaged one is recomputed, never trusted.
    damaged = list(store.damaged_chunks(split.name, backbone.name))
    if damaged:
        store.forget_chunks(split.name, backbone.name, damaged)
    done = store.done_chunks(split.name, backbone.name)
    return Plan(images, array, [c for c in range(len(done)) if not done[c]], diff, len(damaged))


def batch_features(backbone: Backbone, images: torch.Tensor, device: str) -> np.ndarray:
    """Features `(B, D)` float32 of preprocessed images `(B, C, H, W)`; on CUDA channels-last under bf16
    autocast (the module must already be on `device`)."""
    cuda = device.startswith("cuda")
    if cuda:
        images = images.to(device, non_blocking=True, memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
        return backbone.features(images).float().cpu().numpy()


def to_device(backbone: Backbone, device: str) -> None:
    if device.startswith("cuda"):
        backbone.module.to(device)
        backbone.module.to(memory_format=torch.channels_last)


class ChunkWriter:
    """Collects feature batches of a plan's chunks, in any order, and writes each chunk into the store at its
    place once all its rows are there, then marks it done: a chunk is written whole or not at all."""

    def __init__(self, store: FeatureStore, split: Split, name: str, plan: Plan) -> None:
        self.store, self.split, self.name, self.plan = store, split, name, plan
        self.pending: dict[int, dict[int, np.ndarray]] = {c: {} for c in plan.todo}

    def add(self, start: int, features: np.ndarray, problems: Sequence[str]) -> None:
        """Features `(B, D)` of rows `start .. start + B - 1` (within one chunk), with each row's problem."""
        size, n = self.plan.rows_per_chunk, self.plan.array.shape[0]
        chunk = start // size
        bad_rows = [i for i, problem in enumerate(problems) if problem]
        if bad_rows:
            self.store.add_skipped(self.split.name, {self.split.ids[start + i]: problems[i] for i in bad_rows})
        features = np.array(features, dtype=np.float32)
        if not np.isfinite(features).all():
            bad = start + int(np.argwhere(~np.isfinite(features))[0, 0])
            raise DataError(
                f"{self.name} produced NaN/inf features for id {self.split.ids[bad]!r}; nothing of this chunk was "
                "written. Check the image and the model's weights."
            )
        features[bad_rows] = 0.0  # never read: skipped rows are left out for every model
        parts = self.pending[chunk]
        parts[start] = features
        first, stop = chunk * size, min((chunk + 1) * size, n)
        if sum(len(p) for p in parts.values()) == stop - first:
            whole = np.concatenate([parts[s] for s in sorted(parts)], axis=0)
            self.store.write_chunk(self.split.name, self.name, chunk, whole)
            del self.pending[chunk]


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
    """Write `backbone`'s features `(N, D)` for every sample of `split` into `store`, in this process.

    The split's ids and labels are recorded (or checked against those stored); the model's head and
    metadata are recorded after its logits check passes on the first `LOGITS_CHECK_IMAGES` images. Row
    chunks already marked done are skipped, so an interrupted extraction resumes where it stopped.
    `num_workers` processes decode and preprocess images; on CUDA the network runs channels-last under
    bf16 autocast (features are stored as float32). `on_bad_image`: "fail" stops at an unreadable image
    with its id; "skip" records it in the store, which then leaves it out for every model.
    """
    to_device(backbone, device)
    plan = prepare(backbone, split, store, chunk_rows, on_bad_image, device)
    writer = ChunkWriter(store, split, backbone.name, plan)
    start_time = time.perf_counter()
    computed = 0
    with bar(disable=quiet) as progress:
        task = progress.add_task(
            f"{backbone.name} / {split.name}", total=len(split), completed=len(split) - plan.todo_rows, rate=""
        )
        batches = plan.batches(batch_size)
        loader = DataLoader(
            plan.images, batch_sampler=batches, num_workers=num_workers, pin_memory=device.startswith("cuda")
        )
        for rows, (images, problems) in zip(batches, loader, strict=True):
            writer.add(rows[0], batch_features(backbone, images, device), problems)
            computed += len(rows)
            progress.update(task, advance=len(rows), rate=rate(computed, time.perf_counter() - start_time))
    return ExtractResult(
        backbone.name,
        split.name,
        len(split),
        computed,
        time.perf_counter() - start_time,
        plan.logits_max_abs_diff,
        plan.repaired_chunks,
    )
