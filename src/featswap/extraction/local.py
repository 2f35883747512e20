"""Feature extraction in this process: the networks run here, worker processes decode images.

Several networks that read the same collection run in one pass over it (`extract_together`): each image is decoded
once, then preprocessed by each network's own transform, and each network runs on its own batch."""

from __future__ import annotations

import time
from collections.abc import Sequence

from torch.utils.data import DataLoader

from featswap.backbones.backbone import Backbone
from featswap.config import ExtractionSettings
from featswap.data.collections import Collection
from featswap.extraction.plan import (
    ChunkWriter,
    DecodedOnce,
    ExtractResult,
    Plan,
    batch_features,
    chunk_batches,
    prepare,
    to_device,
)
from featswap.extraction.workers import worker_batches
from featswap.progress import bar, rate
from featswap.store import FeatureStore


def extract(
    backbone: Backbone,
    collection: Collection,
    store: FeatureStore,
    settings: ExtractionSettings | None = None,
    device: str = "cpu",
    role: str | None = None,
    quiet: bool = False,
) -> ExtractResult:
    """Write `backbone`'s features `(N, D)` for every sample of `collection` into `store`, in this process.

    The collection's ids and labels are recorded (or checked against those stored); the model's head and
    metadata are recorded after its logits check passes on the first `LOGITS_CHECK_IMAGES` images. Row
    chunks already marked done are skipped, so an interrupted extraction resumes where it stopped.
    `settings.workers` processes decode and preprocess images; the network runs channels-last, and on CUDA under
    bf16 autocast (features are stored as float32). `settings.on_bad_image`: "fail" stops at an unreadable
    image with its id; "skip" records it in the store, which then leaves it out for every model.
    """
    return extract_together([backbone], collection, store, settings, device, role, quiet)[0]


def extract_together(
    backbones: Sequence[Backbone],
    collection: Collection,
    store: FeatureStore,
    settings: ExtractionSettings | None = None,
    device: str = "cpu",
    role: str | None = None,
    quiet: bool = False,
) -> list[ExtractResult]:
    """`extract` of every one of `backbones` over `collection` in one pass over its images: each image is decoded
    once and preprocessed by each network's transform; a batch runs through each network whose chunk it belongs to
    is not yet done. Every network's logits check runs (and its record is written) before any features are. Returns
    one result per network, in order; `seconds` is the shared pass's time."""
    settings = settings or ExtractionSettings()
    for backbone in backbones:
        to_device(backbone, device)
    plans = [prepare(backbone, collection, store, settings, device, role) for backbone in backbones]
    if len({plan.rows_per_chunk for plan in plans}) > 1:  # stores written with other --chunk-rows: one at a time
        pairs = zip(backbones, plans, strict=True)
        return [r for b, p in pairs for r in one_pass([b], [p], collection, store, settings, device, quiet)]
    return one_pass(backbones, plans, collection, store, settings, device, quiet)


def one_pass(
    backbones: Sequence[Backbone],
    plans: Sequence[Plan],
    collection: Collection,
    store: FeatureStore,
    settings: ExtractionSettings,
    device: str,
    quiet: bool,
) -> list[ExtractResult]:
    """The pass of `extract_together` over the images for networks whose plans share one chunk size."""
    size = plans[0].rows_per_chunk
    writers = [ChunkWriter(store, collection, b.name, plan) for b, plan in zip(backbones, plans, strict=True)]
    todo = [set(plan.todo) for plan in plans]
    batches = chunk_batches(sorted(set().union(*todo)), size, len(collection), settings.batch_size)
    images = DecodedOnce(
        collection,
        [b.transform() for b in backbones],
        settings.on_bad_image == "skip",
        [b.data_config.input_size for b in backbones],
    )
    start_time = time.perf_counter()
    computed = [0] * len(backbones)
    with bar(disable=quiet) as progress:
        tasks = [
            progress.add_task(
                f"{b.name} / {collection.name}", total=len(collection), completed=len(collection) - p.todo_rows, rate=""
            )
            for b, p in zip(backbones, plans, strict=True)
        ]
        loader = DataLoader(
            images, batch_sampler=batches, num_workers=settings.workers, pin_memory=device.startswith("cuda")
        )
        with worker_batches(loader) as loaded:  # its workers stop however the pass ends
            for rows, (tensors, problems) in zip(batches, loaded, strict=True):
                for k, backbone in enumerate(backbones):
                    if rows[0] // size not in todo[k]:
                        continue
                    writers[k].add(rows[0], batch_features(backbone, tensors[k], device), problems)
                    computed[k] += len(rows)
                    seconds = time.perf_counter() - start_time
                    progress.update(tasks[k], advance=len(rows), rate=rate(computed[k], seconds))
    seconds = time.perf_counter() - start_time
    return [
        ExtractResult(
            b.name, collection.name, len(collection), computed[k], seconds, p.logits_max_abs_diff, p.repaired_chunks
        )
        for k, (b, p) in enumerate(zip(backbones, plans, strict=True))
    ]
