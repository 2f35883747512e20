"""The evaluation step for one labelled collection, everything computed once.

Each model's features, its head and its native predictions are read or computed once per collection and held
in memory (models x images x width x 4 bytes: 3.3 GB for 8 models of 50,000 x 2,048); every map, every
statistic and every similarity measure of every pair then reads them there. Each unordered pair's `GramStats`
serve all its symmetric measures; `map_r2` comes from the mapped features the swap test computes anyway.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from featswap.config import EvaluationSettings
from featswap.errors import DataError
from featswap.evaluation.swap import (
    Predictions,
    SwapOutcome,
    check_classes,
    check_labels,
    classify,
    model_entry,
    pair_metrics,
    scored_classes,
)
from featswap.experiment.fitting import FittedMap, fit_facts
from featswap.mapping.losses import paper_loss_numpy
from featswap.mapping.solvers import SOLVERS
from featswap.outputs.predictions import mapped_column, native_column
from featswap.similarity.catalog import MEASURES
from featswap.similarity.measures import PairStats, mutual_knn, r2_score
from featswap.store import FeatureStore


@dataclass
class SetResult:
    """What one evaluation collection gives: its metrics entry (the single-set layout of metrics.json) and its
    per-image predictions table."""

    collection: str
    metrics: dict[str, Any]
    ids: np.ndarray
    labels: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict)


def preferred_maps(maps: Sequence[FittedMap]) -> dict[tuple[str, str], FittedMap]:
    """One map per direction for `map_r2`: of those the run fitted, the solver ranked first by its declared
    `r2_rank` (solvers that fit feature lengths first; the paper's loss leaves lengths free)."""
    chosen: dict[tuple[str, str], FittedMap] = {}
    for m in maps:
        key = (m.source, m.target)
        if key not in chosen or SOLVERS.get(m.solver).r2_rank < SOLVERS.get(chosen[key].solver).r2_rank:
            chosen[key] = m
    return chosen


def evaluate_collection(
    store: FeatureStore,
    collection: str,
    maps: Sequence[FittedMap],
    settings: EvaluationSettings,
    names: Sequence[str] | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> SetResult:
    """The swap test of every map, each model's own accuracy and (with `settings.similarity`) every similarity
    measure of every pair of `names` (default: the models the maps join), on one labelled collection."""
    names = list(names or dict.fromkeys(n for m in maps for n in (m.source, m.target)))
    labels = store.labels(collection)
    classes = store.classes(collection) or ()
    features = {name: store.features(collection, name) for name in names}  # the one read of each model
    heads = {name: store.head(name) for name in names}
    native: dict[str, Predictions] = {}
    models, columns = {}, {}
    scored = scored_classes(labels, len(classes))
    for name in names:
        check_classes(len(classes), len(heads[name][1]), name, collection, store.head_offset(name))
        check_labels(labels, len(heads[name][1]), name)
        native[name] = classify(features[name], *heads[name], labels, scored)
        attrs = store.model_attrs(name)
        models[name] = model_entry(attrs["spec"], int(attrs["feature_dim"]), labels, native[name])
        if attrs.get("head_offset"):
            models[name].update(head_outputs=int(attrs["head_outputs"]), head_offset=int(attrs["head_offset"]))
        models[name]["head"] = store.head_record(name)
        if attrs.get("features"):
            models[name]["features"] = attrs["features"]
        columns[native_column(name)] = native[name].top1
    r2_maps = {id(m) for m in preferred_maps(maps).values()}
    r2: dict[tuple[str, str], Callable[[], float]] = {}
    entries = []
    for m in maps:
        mapped_features = m.amap.transform(features[m.source])
        mapped = classify(mapped_features, *heads[m.target], labels, scored)
        loss = paper_loss_numpy(mapped_features, features[m.target])
        outcome = SwapOutcome(labels, native[m.source], native[m.target], mapped, loss)
        entry: dict[str, Any] = {"source": m.source, "target": m.target, "solver": m.solver}
        entry.update(pair_metrics(outcome, n_boot=settings.n_boot, seed=settings.seed, classes=classes))
        entry["fit"] = {
            "seconds": float(m.amap.fit_seconds_),
            "iterations": int(m.amap.n_iter_),
            "train_loss": m.train_loss,
            "val_loss": loss,
            **fit_facts(m),
        }
        entries.append(entry)
        columns[mapped_column(m.source, m.target, m.solver)] = mapped.top1
        if id(m) in r2_maps:
            value = _r2_or_error(features[m.target], mapped_features)
            r2[m.source, m.target] = value
    metrics: dict[str, Any] = {"models": models, "pairs": entries, "loss_matrix": loss_matrices(entries)}
    if settings.similarity:
        metrics.update(similarity_of(features, names, settings, r2).to_json())
    say(f"evaluated {len(maps)} maps of {len(names)} models on {collection} ({len(labels):,} images)")
    return SetResult(collection, metrics, store.kept_ids(collection), labels, columns)


def _r2_or_error(target: np.ndarray, mapped: np.ndarray) -> Callable[[], float]:
    """`map_r2` of a map, computed now; an undefined value raises when the similarity table is filled."""
    try:
        value = r2_score(target, mapped)
    except DataError as err:
        error = err

        def undefined() -> float:
            raise error

        return undefined
    return lambda: value


def loss_matrices(entries: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Directional losses as `{SOLVER: {SOURCE: {TARGET: loss}}}`; self pairs are absent, never 0."""
    matrices: dict[str, dict[str, dict[str, float]]] = {}
    for e in entries:
        matrices.setdefault(e["solver"], {}).setdefault(e["source"], {})[e["target"]] = e["loss"]
    return matrices


@dataclass
class Similarity:
    """Every measure for every ordered pair of distinct models (`values`), and why a measure is undefined
    where it is (`undefined`: `{"measure", "source", "target", "reason"}` entries)."""

    values: dict[str, dict[str, dict[str, float | None]]]
    undefined: list[dict[str, str]] = field(default_factory=list)

    def record(self, measure: str, source: str, target: str, compute: Callable[[], float], both: bool) -> None:
        """Store `compute()` for `source -> target` (and `target -> source` when `both`), or None and the
        reason when the measure is undefined for this pair."""
        value: float | None
        try:
            value = float(compute())
        except DataError as err:
            value = None
            self.undefined.append({"measure": measure, "source": source, "target": target, "reason": str(err)})
        self.values[measure][source][target] = value
        if both:
            self.values[measure][target][source] = value

    def to_json(self) -> dict[str, Any]:
        return {"similarity": self.values, "similarity_undefined": self.undefined}


def similarity_of(
    features: dict[str, np.ndarray],
    names: Sequence[str],
    settings: EvaluationSettings,
    r2: Mapping[tuple[str, str], Callable[[], float]],
) -> Similarity:
    """Every measure of the registry for every pair of `names`, from features held in memory: each unordered
    pair's `GramStats` (one pass) for the `gram` measures, the features for `mutual_knn`, and the given `map_r2`
    of each direction. A measure undefined for a pair is None there, with the reason."""
    result = Similarity({m: {n: {} for n in names} for m in MEASURES})
    for a, b in itertools.combinations(names, 2):
        stats = PairStats(features[a], features[b])
        for measure in (m for m in MEASURES if MEASURES.get(m).source == "gram"):
            result.record(measure, a, b, functools.partial(stats.measure, measure, settings.svcca_k), both=True)
        knn = functools.partial(mutual_knn, features[a], features[b], k=settings.knn_k)
        result.record("mutual_knn", a, b, knn, both=True)
    for (source, target), compute in r2.items():
        result.record("map_r2", source, target, compute, both=False)
    return result
