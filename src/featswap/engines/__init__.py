"""The engine that runs featswap's heavy work, handed to the experiment as an object: `LocalEngine` (this
process, on a CPU or a CUDA GPU) or `featswap.engines.ray.RayEngine` (a Ray cluster). The store, the solvers
and the measures know nothing of engines; an engine decides where extraction and the per-chunk statistics of
paired features run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from featswap.config import EngineSettings
from featswap.errors import SpecError

if TYPE_CHECKING:
    from featswap.backbones.backbone import Backbone
    from featswap.backbones.sources import BackboneRecipe
    from featswap.config import ExtractionSettings
    from featswap.data.collections import Collection
    from featswap.extraction.plan import ExtractResult
    from featswap.mapping.paired import PairedFeatures
    from featswap.store import FeatureStore


@dataclass(frozen=True)
class ExtractionJob:
    """One extraction for an engine: `backbones` (built from `recipes`, which a remote worker builds again) over
    the images of `collection`, into `store`, with `settings`; `role` ("fit", "eval" or None) is how the store
    records the collection, `quiet` hides the progress bars."""

    recipes: Sequence[BackboneRecipe]
    backbones: Sequence[Backbone]
    collection: Collection
    store: FeatureStore
    settings: ExtractionSettings
    role: str | None = None
    quiet: bool = False


class Engine(Protocol):
    """Where extraction and per-chunk statistics run."""

    #: The device the local engine's networks and solvers run on ("cpu" or "cuda").
    device: str

    def extract(self, job: ExtractionJob) -> list[ExtractResult]:
        """Write each of the job's networks' features of every image of its collection into its store (resuming
        finished chunks); one result per network."""
        ...

    def pairs(self, pairs: PairedFeatures) -> PairedFeatures:
        """Paired features whose `map_chunks` runs on this engine."""
        ...

    def settings(self) -> EngineSettings:
        """This engine as resolved settings (the device it chose, say), for the run's config file."""
        ...


def resolve_device(device: str) -> str:
    """ "cpu" or "cuda": `auto` picks cuda when a CUDA GPU is there."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise SpecError(f"--device must be auto, cpu or cuda; got {device!r}.")
    if device == "cuda" and not torch.cuda.is_available():
        raise SpecError("--device cuda was asked for but no CUDA GPU is available; use --device cpu.")
    return device


@dataclass
class LocalEngine:
    """Everything in this process: extraction on `device` with worker processes decoding images, statistics
    chunk after chunk."""

    device: str = "cpu"

    def extract(self, job: ExtractionJob) -> list[ExtractResult]:
        """All the networks in one pass over the images, each image decoded once (`extract_together`)."""
        from featswap.extraction.local import extract_together

        return extract_together(
            job.backbones, job.collection, job.store, job.settings, self.device, job.role, job.quiet
        )

    def pairs(self, pairs: PairedFeatures) -> PairedFeatures:
        return pairs

    def settings(self) -> EngineSettings:
        return EngineSettings(kind="local", device=self.device)


def make_engine(settings: EngineSettings, extracts: bool = False) -> Engine:
    """The engine the settings describe; for Ray, connected to its cluster (`extracts`: it will extract, which
    Ray Client cannot)."""
    if settings.kind == "ray":
        from featswap.engines.ray.engine import RayEngine

        engine: Engine = RayEngine.connect(settings, extracts)
        return engine
    return LocalEngine(resolve_device(settings.device))
