"""Feature extraction in this process: the network runs here, worker processes decode images."""

from __future__ import annotations

import time

from torch.utils.data import DataLoader

from featswap.backbones.backbone import Backbone
from featswap.config import ExtractionSettings
from featswap.data.collections import Collection
from featswap.extraction.plan import ChunkWriter, ExtractResult, batch_features, prepare, to_device
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
    `settings.workers` processes decode and preprocess images; on CUDA the network runs channels-last under
    bf16 autocast (features are stored as float32). `settings.on_bad_image`: "fail" stops at an unreadable
    image with its id; "skip" records it in the store, which then leaves it out for every model.
    """
    settings = settings or ExtractionSettings()
    to_device(backbone, device)
    plan = prepare(backbone, collection, store, settings, device, role)
    writer = ChunkWriter(store, collection, backbone.name, plan)
    start_time = time.perf_counter()
    computed = 0
    with bar(disable=quiet) as progress:
        done = len(collection) - plan.todo_rows
        task = progress.add_task(f"{backbone.name} / {collection.name}", total=len(collection), completed=done, rate="")
        batches = plan.batches(settings.batch_size)
        loader = DataLoader(
            plan.images, batch_sampler=batches, num_workers=settings.workers, pin_memory=device.startswith("cuda")
        )
        for rows, (images, problems) in zip(batches, loader, strict=True):
            writer.add(rows[0], batch_features(backbone, images, device), problems)
            computed += len(rows)
            progress.update(task, advance=len(rows), rate=rate(computed, time.perf_counter() - start_time))
    return ExtractResult(
        backbone.name,
        collection.name,
        len(collection),
        computed,
        time.perf_counter() - start_time,
        plan.logits_max_abs_diff,
        plan.repaired_chunks,
    )
