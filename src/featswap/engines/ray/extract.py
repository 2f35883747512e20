"""Feature extraction on a Ray cluster with Ray Data: CPU tasks decode and preprocess batches of images, a
pool of actors (one GPU each, or CPUs) runs the network, and this process writes each finished chunk of
rows into the store at its place in the collection's id order.

The plan, logits check and chunk writer are `featswap.extraction.local`'s, so a Ray run resumes a local one (and the
reverse) and writes the same features. Only this process writes the store (it holds the store's lock);
workers need the images, and the weight file or factory module, at the same paths as here.

Ray retries a task or restarts an actor whose worker died; an interrupted job resumes from its finished
chunks when run again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from featswap.backbones.backbone import Backbone
from featswap.backbones.sources import BackboneRecipe
from featswap.config import ExtractionSettings
from featswap.data.collections import Collection
from featswap.engines.ray.connect import check_not_client, cluster_resources, connected_ray, featswap_errors
from featswap.errors import ClusterError, FeatswapError, ModelError, SpecError
from featswap.extraction.plan import ChunkWriter, CollectionImages, ExtractResult, batch_features, prepare, to_device
from featswap.progress import bar, rate
from featswap.store import FeatureStore

#: Memory of a Ray worker process that has imported torch and featswap (measured: 0.48 GiB), with room.
DECODE_WORKER_MEMORY = 768 * 2**20


@dataclass(frozen=True)
class RayResources:
    """Inference actors: `workers` of them, each holding `gpus_per_worker` GPUs and `cpus_per_worker` CPUs.

    None picks: `gpus_per_worker` 1 when the cluster has GPUs, else 0; `workers` one per GPU share, or on
    CPUs one per two CPUs (the other half decodes images)."""

    workers: int | None = None
    gpus_per_worker: float | None = None
    cpus_per_worker: float = 1.0

    def resolve(self, available: Mapping[str, float]) -> tuple[int, float]:
        """`(workers, gpus_per_worker)` for a cluster with `available` resources; refuses what it lacks."""
        gpus, cpus = available.get("GPU", 0.0), available.get("CPU", 0.0)
        per_gpu = self.gpus_per_worker if self.gpus_per_worker is not None else (1.0 if gpus else 0.0)
        if per_gpu < 0 or self.cpus_per_worker <= 0:
            raise SpecError("--gpus-per-worker must be >= 0 and --cpus-per-worker > 0.")
        if self.workers is not None and self.workers < 1:
            raise SpecError(f"--ray-workers must be at least 1; got {self.workers}.")
        if per_gpu:
            workers = self.workers or max(1, int(gpus // per_gpu))
            if workers * per_gpu > gpus:
                raise ClusterError(
                    f"{workers} workers with {per_gpu:g} GPU each need {workers * per_gpu:g} GPUs; the Ray cluster "
                    f"has {gpus:g}. Use --gpus-per-worker 0 to run on CPUs, or fewer --ray-workers."
                )
        else:
            workers = self.workers or max(1, int(cpus // (2 * self.cpus_per_worker)))
        if not per_gpu and workers * self.cpus_per_worker > cpus - 1:
            raise ClusterError(
                f"{workers} CPU workers with {self.cpus_per_worker:g} CPU each leave none of the cluster's {cpus:g} "
                "CPUs to decode images. Use fewer --ray-workers or a smaller --cpus-per-worker."
            )
        return workers, per_gpu


def _decode(item: dict[str, Any], images: CollectionImages) -> dict[str, Any]:
    """A CPU task: rows `start .. stop - 1` decoded and preprocessed into `(B, C, H, W)` float32."""
    batch, problems = images.batch(range(item["start"], item["stop"]))
    return {"start": item["start"], "images": batch.numpy(), "problems": json.dumps(problems)}


class _Infer:
    """An inference actor: builds the network once, then turns image batches into feature batches.

    A featswap error while building is raised at the first batch: Ray reports an actor that fails to start
    only as text, but keeps the type of an error raised by a call, so the user sees featswap's message."""

    def __init__(self, recipe: BackboneRecipe, device: str, digest: str, precision: str = "fp32") -> None:
        from featswap.heap import keep_freed_memory

        keep_freed_memory()  # as in the driver: this actor's forward passes reuse freed pages
        self.device, self.precision = device, precision
        self.error: FeatswapError | None = None
        try:
            self.backbone = self._build(recipe, device, digest)
        except FeatswapError as err:
            self.error = err

    @staticmethod
    def _build(recipe: BackboneRecipe, device: str, digest: str) -> Backbone:
        import torch

        backbone = recipe.build()
        if backbone.parameters_digest() != digest:
            raise ModelError(
                f"The network {recipe.spec} built on this Ray worker differs from the driver's (parameters sha256 "
                f"{backbone.parameters_digest()[:12]}… vs {digest[:12]}…). Every node needs the same weight "
                "file, factory module and timm/torchvision versions."
            )
        if device == "cuda" and not torch.cuda.is_available():
            raise ClusterError("A Ray worker was given a GPU but torch sees no CUDA device on its node.")
        to_device(backbone, device)
        return backbone

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        import torch

        if self.error is not None:
            raise self.error

        features = np.empty(len(batch["start"]), dtype=object)
        features[:] = [
            batch_features(self.backbone, torch.from_numpy(np.array(x)), self.device, self.precision)
            for x in batch["images"]
        ]
        return {"start": batch["start"], "features": features, "problems": batch["problems"]}


def extract_ray(
    recipe: BackboneRecipe,
    collection: Collection,
    store: FeatureStore,
    settings: ExtractionSettings | None = None,
    resources: RayResources | None = None,
    quiet: bool = False,
    backbone: Backbone | None = None,
    role: str | None = None,
) -> ExtractResult:
    """`featswap.extraction.local.extract` on the connected Ray cluster (see `featswap.engines.ray.connect.connect`).

    This process builds the backbone (or takes `backbone`, built from `recipe`) for the logits check and
    the head; each inference actor builds its own from `recipe`.
    """
    ray = connected_ray()
    check_not_client()
    resources = resources or RayResources()
    workers, gpus_per_worker = resources.resolve(cluster_resources())
    backbone = backbone or recipe.build()
    settings = settings or ExtractionSettings()
    batch_size = settings.batch_size
    plan = prepare(backbone, collection, store, settings, role=role)
    writer = ChunkWriter(store, collection, backbone.name, plan)
    items = [{"start": rows[0], "stop": rows[-1] + 1} for rows in plan.batches(batch_size)]
    # What a decoding task holds: a worker process with torch, and its batch of float32 images twice. Stating
    # it also keeps Ray Data from fusing decoding into the actors (it fuses only stages with equal resources),
    # so images decode in parallel with inference, on any node with CPUs to spare.
    decode_memory = DECODE_WORKER_MEMORY + 2 * 4 * batch_size * int(np.prod(backbone.data_config.input_size))
    start_time = time.perf_counter()
    computed = 0
    with bar(disable=quiet) as progress:
        task = progress.add_task(
            f"{backbone.name} / {collection.name} (ray, {workers} workers)",
            total=len(collection),
            completed=len(collection) - plan.todo_rows,
            rate="",
        )
        if items:
            rows = (
                ray.data.from_items(items, override_num_blocks=len(items))
                .map(_decode, fn_kwargs={"images": plan.images}, num_cpus=1, memory=decode_memory)
                .map_batches(
                    _Infer,
                    fn_constructor_kwargs={
                        "recipe": recipe,
                        "device": "cuda" if gpus_per_worker else "cpu",
                        "digest": backbone.parameters_digest(),
                        "precision": settings.precision,
                    },
                    batch_size=1,
                    compute=ray.data.ActorPoolStrategy(size=workers),
                    num_gpus=gpus_per_worker,
                    num_cpus=resources.cpus_per_worker,
                )
                .iter_rows()
            )
            with featswap_errors():
                for row in rows:
                    features = np.asarray(row["features"], dtype=np.float32)
                    writer.add(int(row["start"]), features, json.loads(row["problems"]))
                    computed += len(features)
                    progress.update(task, advance=len(features), rate=rate(computed, time.perf_counter() - start_time))
    return ExtractResult(
        backbone.name,
        collection.name,
        len(collection),
        computed,
        time.perf_counter() - start_time,
        plan.logits_max_abs_diff,
        plan.repaired_chunks,
    )
