"""The steps of extracting one model over one image collection that every engine shares: `prepare` (ids, the
logits check, the model's record, which row chunks remain), `batch_features` (one forward pass) and
`ChunkWriter` (assembles batches into whole chunks, writes each at its place and records it finished).
`featswap.extraction.local` runs them in this process; `featswap.engines.ray.extract` on a Ray cluster.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import zarr
from torch.utils.data import Dataset as TorchDataset

from featswap.backbones.backbone import Backbone
from featswap.config import ExtractionSettings
from featswap.data.collections import Collection
from featswap.errors import DataError
from featswap.evaluation.swap import check_classes
from featswap.store import FeatureStore

#: Images the logits check runs on (twice: the network's logits, then its features through the head). A head that
#: is not the network's final affine map shows on every image, so a few suffice; each one costs two forward passes
#: of one image per model and collection (16 images were 12% of a 256-image extraction).
LOGITS_CHECK_IMAGES = 4


class DecodedOnce(TorchDataset[tuple[list[torch.Tensor], str]]):
    """The images of a collection, each decoded once and preprocessed by every one of `transforms`, with "" or
    why it is unreadable. With `skip`, an unreadable image becomes zeros of each of `shapes` and its reason
    travels back (from worker processes too); with `fail` it raises at once."""

    def __init__(
        self,
        collection: Collection,
        transforms: Sequence[Callable[[Any], torch.Tensor]],
        skip: bool,
        shapes: Sequence[tuple[int, ...]],
    ) -> None:
        self.collection, self.transforms, self.skip, self.shapes = collection, list(transforms), skip, list(shapes)

    def __len__(self) -> int:
        return len(self.collection)

    def __getitem__(self, i: int) -> tuple[list[torch.Tensor], str]:
        try:
            image = self.collection.load(i)
            return [transform(image) for transform in self.transforms], ""
        except DataError as err:
            if not self.skip:
                raise
            return [torch.zeros(shape) for shape in self.shapes], str(err)


class CollectionImages(TorchDataset[tuple[torch.Tensor, str]]):
    """The images of a collection, preprocessed by one model's transform, each with "" or why it is unreadable
    (`DecodedOnce` with one transform)."""

    def __init__(
        self, collection: Collection, transform: Callable[[Any], torch.Tensor], skip: bool, shape: tuple[int, ...]
    ) -> None:
        self.decoded = DecodedOnce(collection, [transform], skip, [shape])

    def __len__(self) -> int:
        return len(self.decoded)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        images, problem = self.decoded[i]
        return images[0], problem

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
    """What one extraction did: `rows` in the collection, `computed_rows` run through the network now (the rest
    were finished before), `repaired_chunks` finished chunks found damaged and recomputed."""

    model: str
    collection: str
    rows: int
    computed_rows: int
    seconds: float
    logits_max_abs_diff: float | None
    repaired_chunks: int = 0


@dataclass(frozen=True)
class Plan:
    """What remains of one model's extraction over one collection: the row chunks `todo` of `array` `(N, D)`."""

    images: CollectionImages
    array: zarr.Array
    todo: list[int]
    logits_max_abs_diff: float | None
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


def first_readable(images: CollectionImages, collection: Collection) -> torch.Tensor:
    """The first `LOGITS_CHECK_IMAGES` readable images of `collection`, preprocessed `(B, C, H, W)`; a DataError
    when none can be read."""
    readable = (images[i] for i in range(len(collection)))
    first = [image for image, _ in itertools.islice((r for r in readable if not r[1]), LOGITS_CHECK_IMAGES)]
    if not first:
        raise DataError(
            f"No image of collection {collection.name!r} ({len(collection)} images) could be read, so there is nothing "
            "to extract. Check the data folder and the image files."
        )
    return torch.stack(first)


def prepare(
    backbone: Backbone,
    collection: Collection,
    store: FeatureStore,
    settings: ExtractionSettings,
    device: str = "cpu",
    role: str | None = None,
) -> Plan:
    """Record the collection's ids and labels (or check them against those stored) and what it is used for
    (`role` "fit" or "eval"), run the logits check on the first `LOGITS_CHECK_IMAGES` readable images, record
    the model and its head, read back the finished chunks (a damaged one is recomputed), and list the row chunks
    not yet done."""
    if role == "eval" and collection.classes is not None:
        check_classes(
            len(collection.classes), backbone.num_classes, backbone.name, collection.name, backbone.head_offset
        )
    skip = settings.on_bad_image == "skip"
    images = CollectionImages(collection, backbone.transform(), skip, backbone.data_config.input_size)
    store.write_collection(
        collection.name,
        list(collection.ids),
        collection.labels,
        collection.classes,
        spec=collection.spec,
        role=role,
        content=collection.content_sha256(),
    )
    # The logits check runs the network twice; a few images show whether the head is the final affine map.
    diff = backbone.check_logits(first_readable(images, collection).to(device))
    weight, bias = backbone.head_numpy()
    store.write_model(
        backbone.name,
        {
            "spec": backbone.spec,
            "feature_dim": backbone.feature_dim,
            "num_classes": backbone.num_classes,
            "head_outputs": backbone.head_outputs,
            "head_offset": backbone.head_offset,
            "data_config": backbone.data_config.to_dict(),
            "weights_sha256": backbone.weights_sha256,
            "logits_max_abs_diff": diff,
            "precision": settings.precision,
            "decode": settings.decode,
            "head": backbone.head_kind.identity(),
            "head_record": backbone.head_kind.to_json(),
            "features": backbone.features_choice,
        },
        weight,
        bias,
    )
    array = store.feature_array(collection.name, backbone.name, backbone.feature_dim, chunk_rows=settings.chunk_rows)
    # Finished chunks are read back and checked: a missing or damaged one is recomputed, never trusted.
    damaged = list(store.damaged_chunks(collection.name, backbone.name))
    if damaged:
        store.forget_chunks(collection.name, backbone.name, damaged)
    done = store.done_chunks(collection.name, backbone.name)
    return Plan(images, array, [c for c in range(len(done)) if not done[c]], diff, len(damaged))


#: torch's dtype of each reduced precision (`featswap.config.PRECISIONS`); fp32 runs without autocast.
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def batch_features(backbone: Backbone, images: torch.Tensor, device: str, precision: str = "fp32") -> np.ndarray:
    """Features `(B, D)` float32 of preprocessed images `(B, C, H, W)`, channels-last (`to_device`), in `precision`:
    fp32, or bf16 / fp16 under torch.autocast on the device's type, CPU included (the module must already be on
    `device`)."""
    cuda = device.startswith("cuda")
    images = images.to(device, non_blocking=cuda, memory_format=torch.channels_last)
    dtype = AUTOCAST_DTYPES.get(precision)
    with torch.autocast("cuda" if cuda else "cpu", dtype=dtype, enabled=dtype is not None):
        return backbone.features(images).float().cpu().numpy()


def to_device(backbone: Backbone, device: str) -> None:
    """Move the network to `device` and store its 4-D weights channels-last. On the CPU too: oneDNN's
    channels-last convolutions ran timm's ResNet-50 1.6x as fast as the default layout here, MobileNet-v2 2x,
    Inception-v4 1.5x, and ViT and ConvNeXt alike (features equal to 1e-6 of their scale)."""
    if device.startswith("cuda"):
        backbone.module.to(device)
    backbone.module.to(memory_format=torch.channels_last)


class ChunkWriter:
    """Collects feature batches of a plan's chunks, in any order, and writes each chunk into the store at its
    place once all its rows are there, then marks it done: a chunk is written whole or not at all."""

    def __init__(self, store: FeatureStore, collection: Collection, name: str, plan: Plan) -> None:
        self.store, self.collection, self.name, self.plan = store, collection, name, plan
        self.pending: dict[int, dict[int, np.ndarray]] = {c: {} for c in plan.todo}

    def add(self, start: int, features: np.ndarray, problems: Sequence[str]) -> None:
        """Features `(B, D)` of rows `start .. start + B - 1` (within one chunk), with each row's problem."""
        size, n = self.plan.rows_per_chunk, self.plan.array.shape[0]
        chunk = start // size
        bad_rows = [i for i, problem in enumerate(problems) if problem]
        if bad_rows:
            reasons = {self.collection.ids[start + i]: problems[i] for i in bad_rows}
            self.store.add_skipped(self.collection.name, reasons)
        features = np.array(features, dtype=np.float32)
        if not np.isfinite(features).all():
            bad = start + int(np.argwhere(~np.isfinite(features))[0, 0])
            raise DataError(
                f"{self.name} produced NaN/inf features for id {self.collection.ids[bad]!r}; nothing of this chunk was "
                "written. Check the image and the model's weights."
            )
        features[bad_rows] = 0.0  # never read: skipped rows are left out for every model
        parts = self.pending[chunk]
        parts[start] = features
        first, stop = chunk * size, min((chunk + 1) * size, n)
        if sum(len(p) for p in parts.values()) == stop - first:
            whole = np.concatenate([parts[s] for s in sorted(parts)], axis=0)
            self.store.write_chunk(self.collection.name, self.name, chunk, whole)
            del self.pending[chunk]
