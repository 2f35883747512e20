"""The Ray engine: extraction on Ray Data (decoding tasks, an inference actor pool) and per-chunk statistics as
Ray tasks, on a connected cluster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from featswap.config import EngineSettings
from featswap.errors import ClusterError

if TYPE_CHECKING:
    from featswap.engines import ExtractionJob
    from featswap.extraction.plan import ExtractResult
    from featswap.mapping.paired import PairedFeatures


@dataclass
class RayEngine:
    """Work on the Ray cluster this process is connected to (see `connect`)."""

    config: EngineSettings
    device: str = "cpu"  # the driver's own work (fits of iterative solvers, evaluation) runs on its CPU

    @classmethod
    def connect(cls, settings: EngineSettings, extracts: bool = False) -> RayEngine:
        """Connect to the cluster at `settings.address` (default a local instance); `extracts` refuses a Ray
        Client address, through which Ray Data does not run."""
        from featswap.engines.ray.connect import CLIENT_EXTRACTION, connect, is_client_address

        if extracts and is_client_address(settings.address):
            raise ClusterError(CLIENT_EXTRACTION)
        connect(settings.address)
        return cls(settings)

    def extract(self, job: ExtractionJob) -> list[ExtractResult]:
        """One network after another, each a Ray Data pipeline of its own (decoding included)."""
        from featswap.engines.ray.extract import RayResources, extract_ray

        resources = RayResources(
            self.config.ray_workers, self.config.gpus_per_worker, self.config.cpus_per_worker or 1.0
        )
        return [
            extract_ray(recipe, job.collection, job.store, job.settings, resources, job.quiet, backbone, job.role)
            for recipe, backbone in zip(job.recipes, job.backbones, strict=True)
        ]

    def pairs(self, pairs: PairedFeatures) -> PairedFeatures:
        from featswap.engines.ray.statistics import RayPairs
        from featswap.store import StorePairs

        if not isinstance(pairs, StorePairs):
            return pairs  # features in memory: nothing for the cluster to read
        return RayPairs(pairs)

    def settings(self) -> EngineSettings:
        return self.config
