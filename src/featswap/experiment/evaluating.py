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

from featswap.catalog.measures import MAX_ROWS, MEASURES
from featswap.config import EvaluationSettings
from featswap.errors import DataError, SpecError
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
from featswap.similarity.gram import GramStats
from featswap.similarity.kernels import cknna, nxn_bytes, rbf_cka
from featswap.similarity.measures import PairStats, mutual_knn, r2_score
from featswap.similarity.outputs import head_outputs
from featswap.similarity.parts import CrossStats, SideCache, SideStats
from featswap.similarity.rdm import rsa
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
    ridge_maps: Sequence[FittedMap] = (),
    device: str = "cpu",
) -> SetResult:
    """The swap test of every map, each model's own accuracy and (with `settings.similarity`) the similarity
    measures of every pair of `names` (default: the models the maps join), on one labelled collection;
    `ridge_maps` (lstsq, ridge chosen on held-out fitting rows) give `ridge_r2`. With `disagreement` or `jsd`
    among the measures, each map's entry also has both between its target head's native and swapped outputs."""
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
        models[name]["precision"] = str(attrs.get("precision", "fp32"))  # of its forward passes (fp32, bf16, fp16)
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
        if settings.similarity and {"disagreement", "jsd"} & set(settings.measures):
            native_outputs = features[m.target], heads[m.target]
            entry["disagreement"], entry["jsd"] = head_outputs(
                *native_outputs, mapped_features, heads[m.target], scored
            )
        entries.append(entry)
        columns[mapped_column(m.source, m.target, m.solver)] = mapped.top1
        if id(m) in r2_maps:
            value = _r2_or_error(features[m.target], mapped_features)
            r2[m.source, m.target] = value
    metrics: dict[str, Any] = {"models": models, "pairs": entries, "loss_matrix": loss_matrices(entries)}
    if settings.similarity:
        ridge = {(m.source, m.target): _r2_or_error(features[m.target], m.amap.transform(features[m.source]))
                 for m in ridge_maps}  # fmt: skip
        metrics.update(similarity_of(features, names, settings, r2, heads, scored, ridge, device=device).to_json())
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
    #: Where the N x N measures ran on a subsample: `{"rows", "of", "seed", "measures"}`.
    subsample: dict[str, Any] | None = None

    def record(self, measure: str, source: str, target: str, compute: Callable[[], float], both: bool = False) -> None:
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
        found: dict[str, Any] = {"similarity": self.values, "similarity_undefined": self.undefined}
        if self.subsample is not None:
            found["similarity_subsample"] = self.subsample
        return found


def similarity_of(
    features: dict[str, np.ndarray],
    names: Sequence[str],
    settings: EvaluationSettings,
    r2: Mapping[tuple[str, str], Callable[[], float]],
    heads: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    scored: np.ndarray | None = None,
    ridge: Mapping[tuple[str, str], Callable[[], float]] | None = None,
    sides: SideCache[tuple[str, str], SideStats] | None = None,
    device: str = "cpu",
) -> Similarity:
    """The measures of `settings.measures` for every pair of `names`, from features held in memory: each unordered
    pair's `GramStats` (each model's own sums computed once, in `sides`; on `device`) for the `gram` measures, the
    features for `mutual_knn` and `cknna`, N x N kernels of the images (or of a seeded subsample of
    `settings.nxn_rows`) for `rbf_cka` and `rsa`, the heads' logits for `disagreement` and `jsd`, and the given
    `map_r2` and `ridge_r2` of each direction. A measure undefined for a pair is None there, with the reason.
    Raises `SpecError` when an N x N measure is asked of more images than it takes."""
    measures = settings.measures
    result = Similarity({m: {n: {} for n in names} for m in measures})
    sides = SideCache() if sides is None else sides
    kind = {m: MEASURES.get(m).source for m in measures}
    rows = kernel_rows(len(next(iter(features.values()))), settings) if "kernel" in kind.values() else None
    if rows is not None:
        result.subsample = {"rows": len(rows), "of": len(next(iter(features.values()))), "seed": settings.seed,
                            "measures": [m for m in measures if kind[m] == "kernel"]}  # fmt: skip
    for a, b in itertools.combinations(names, 2):
        x, y = features[a], features[b]
        gram = functools.partial(pair_stats, features, a, b, sides, device)
        stats = PairStats(x, y, stats=gram) if "gram" in kind.values() else None
        outputs = functools.cache(functools.partial(_outputs, x, y, heads, a, b, scored))
        kernel_x, kernel_y = (x, y) if rows is None else (x[rows], y[rows])
        for measure in measures:
            symmetric = MEASURES.get(measure).symmetric
            compute: Callable[[], float]
            if kind[measure] == "gram" and stats is not None:
                compute = functools.partial(stats.measure, measure, settings.svcca_k)
                if not symmetric:
                    result.record(measure, b, a, functools.partial(stats.measure, measure, settings.svcca_k, True))
            elif measure == "mutual_knn":
                compute = functools.partial(mutual_knn, x, y, k=settings.knn_k)
            elif measure == "cknna":  # platonic-rep's estimator is not symmetric: both orders
                compute = functools.partial(cknna, x, y, k=settings.knn_k)
                result.record(measure, b, a, functools.partial(cknna, y, x, k=settings.knn_k))
            elif measure in ("rbf_cka", "debiased_rbf_cka"):
                debiased = measure == "debiased_rbf_cka"
                compute = functools.partial(rbf_cka, kernel_x, kernel_y, sigma=settings.rbf_sigma, debiased=debiased)
            elif measure == "rsa":
                compute = functools.partial(
                    rsa, kernel_x, kernel_y, distance=settings.rsa_distance, comparison=settings.rsa_compare
                )
            elif kind[measure] == "outputs":
                compute = functools.partial(_pick, outputs, 0 if measure == "disagreement" else 1)
            else:  # "map": recorded per direction below
                continue
            result.record(measure, a, b, compute, both=symmetric)
    for measure, given in (("map_r2", r2), ("ridge_r2", ridge or {})):
        if measure in measures:
            for (source, target), compute in given.items():
                result.record(measure, source, target, compute, both=False)
            for source, target in itertools.permutations(names, 2):
                if (source, target) not in given:
                    reason = functools.partial(_no_map, measure)
                    result.record(measure, source, target, reason, both=False)
    return result


def pair_stats(
    features: Mapping[str, np.ndarray],
    a: str,
    b: str,
    sides: SideCache[tuple[str, str], SideStats],
    device: str,
    precision: str,
) -> GramStats:
    """The `GramStats` of models `a` and `b` from their features `(N, D)` in memory: each model's own sums from
    `sides` (computed there on first use, once per model and precision), the pair's cross sums now; on a torch
    `device` (a GPU), in float64 there."""
    for name in (a, b):
        if (name, precision) not in sides:
            sides.put((name, precision), SideStats.of(features[name], precision, device))
    cross = CrossStats.of(features[a], features[b], precision, device)
    return GramStats.join(sides[a, precision], sides[b, precision], cross)


def _pick(compute: Callable[[], tuple[float, float]], index: int) -> float:
    return compute()[index]


def _no_map(measure: str) -> float:
    raise DataError(f"{measure} needs a map fitted from this pair's fitting images; none was fitted.")


def _outputs(
    x: np.ndarray,
    y: np.ndarray,
    heads: Mapping[str, tuple[np.ndarray, np.ndarray]] | None,
    a: str,
    b: str,
    scored: np.ndarray | None,
) -> tuple[float, float]:
    """`(disagreement, jsd)` of the two networks' own heads on their own features."""
    if heads is None or a not in heads or b not in heads:
        raise DataError("disagreement and jsd need both networks' heads, which the store does not hold.")
    return head_outputs(x, heads[a], y, heads[b], scored)


def kernel_rows(n: int, settings: EvaluationSettings) -> np.ndarray | None:
    """The images the N x N measures use: all (None), or a seeded random subsample of `settings.nxn_rows`
    (sorted) when there are more; raises `SpecError` above `MAX_ROWS` without one."""
    if settings.nxn_rows and n > settings.nxn_rows:
        rng = np.random.default_rng(settings.seed)
        return np.sort(rng.choice(n, settings.nxn_rows, replace=False))
    if n > MAX_ROWS:
        chosen = [m for m in settings.measures if MEASURES.get(m).source == "kernel"]
        raise SpecError(
            f"{', '.join(chosen)} {'needs' if len(chosen) == 1 else 'need'} N x N matrices: "
            f"{nxn_bytes(n) / 2**30:.1f} GiB for {n:,} images, more than "
            f"their limit of {MAX_ROWS:,} images ({nxn_bytes(MAX_ROWS) / 2**30:.1f} GiB); add --nxn-rows "
            f"{MAX_ROWS} (or fewer) to compute them on a seeded random subsample, or leave them out of --measures."
        )
    return None
