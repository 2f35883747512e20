"""The experiment's steps as library functions: fit maps between stored features, evaluate, compare."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from featswap import __version__
from featswap.errors import FeatswapError
from featswap.evaluation.swap import model_metrics, pair_metrics, swap
from featswap.mapping.affine_map import AffineMap
from featswap.mapping.solvers import DEFAULT_SOLVER, SOLVERS, Heads
from featswap.outputs.metrics_json import write_metrics
from featswap.outputs.paths import claim_run_dir, write_json
from featswap.outputs.predictions import mapped_column, native_column, write_predictions
from featswap.progress import console
from featswap.similarity.matrices import similarity_matrices
from featswap.store import FeatureStore

#: Which solver's map `map_r2` reads when a run fitted several: the first of these the run has.
R2_PREFERENCE = ("lstsq", "refine", "procrustes", "paper", "heads")


@dataclass(frozen=True)
class FittedPair:
    """A map from `source`'s features to `target`'s, and its loss on the training split."""

    source: str
    target: str
    amap: AffineMap
    train_loss: float

    @property
    def solver(self) -> str:
        return self.amap.solver

    @property
    def stem(self) -> str:
        return f"{self.source}__to__{self.target}__{self.solver}"


def fit_pair(
    store: FeatureStore,
    source: str,
    target: str,
    solver: str = DEFAULT_SOLVER,
    params: Mapping[str, Any] | None = None,
    device: str = "cpu",
    split: str = "train",
    engine: str = "local",
) -> FittedPair:
    """Fit `M_{source->target}` on the stored `split` features of both models; with `engine` "ray" the
    closed-form statistics are computed chunk by chunk as Ray tasks and merged here."""
    if source == target:
        raise FeatswapError(f"Source and target are both {source!r}; a map needs two different models.")
    amap = AffineMap(solver, device=device, **dict(params or {}))
    heads = Heads(*store.head(source), *store.head(target))
    pairs = store.pairs(split, source, target, engine=engine)
    amap.fit_pairs(pairs if SOLVERS.get(solver).needs_data else None, heads)
    return FittedPair(source, target, amap, amap.loss_pairs(pairs))


def save_pair(pair: FittedPair, path: Path, store: FeatureStore) -> Path:
    return pair.amap.save(
        path,
        source=pair.source,
        target=pair.target,
        train_loss=pair.train_loss,
        dataset=store.dataset_name,
        featswap_version=__version__,
    )


def load_pair(path: Path) -> FittedPair:
    amap = AffineMap.load(path)
    meta = amap.metadata_
    return FittedPair(meta["source"], meta["target"], amap, float(meta["train_loss"]))


def evaluate_pairs(
    store: FeatureStore,
    pairs: Sequence[FittedPair],
    out: Path,
    n_boot: int = 1000,
    seed: int = 0,
    split: str = "val",
    config: Mapping[str, Any] | None = None,
    similarity: bool = True,
    engine: str = "local",
) -> dict[str, Any]:
    """Evaluate fitted maps on `split`; write metrics.json, predictions, fit_curves.json, config.json and
    the report. With `similarity`, also every similarity measure for every pair of models."""
    from featswap.outputs.report import render_report

    seen: set[tuple[str, str, str]] = set()
    for pair in pairs:
        if (pair.source, pair.target, pair.solver) in seen:
            raise FeatswapError(
                f"Two maps fitted {pair.source} -> {pair.target} with solver {pair.solver}; their results would be "
                "indistinguishable in one report. Evaluate each in its own --out directory."
            )
        seen.add((pair.source, pair.target, pair.solver))
    claim_run_dir(out)
    names = sorted({n for p in pairs for n in (p.source, p.target)})
    models, columns = {}, {}
    for name in names:
        models[name], predictions = model_metrics(store, name, split)
        columns[native_column(name)] = predictions.top1
    entries = []
    for pair in pairs:
        outcome = swap(store, pair.amap, pair.source, pair.target, split)
        columns[mapped_column(pair.source, pair.target, pair.solver)] = outcome.mapped.top1
        entry: dict[str, Any] = {"source": pair.source, "target": pair.target, "solver": pair.solver}
        entry.update(pair_metrics(outcome, n_boot=n_boot, seed=seed, classes=store.classes))
        entry["fit"] = {
            "seconds": float(pair.amap.fit_seconds_),
            "iterations": int(pair.amap.n_iter_),
            "train_loss": pair.train_loss,
            "val_loss": outcome.mapped_loss,
        }
        entries.append(entry)
    metrics = {
        "featswap_version": __version__,
        "dataset": {
            "name": store.dataset_name,
            "train_size": len(store.kept_ids("train")) if "train" in store.splits() else 0,
            "val_size": len(store.kept_ids(split)),
            "num_classes": len(store.classes),
            "skipped": {s: sorted(store.skipped(s)) for s in store.splits() if store.skipped(s)},
        },
        "models": models,
        "pairs": entries,
        "loss_matrix": loss_matrices(entries),
    }
    if similarity:
        # map_r2 reads one map per direction, preferring solvers that fit feature lengths (the paper's loss
        # leaves them free, which makes its R^2 meaningless).
        preferred: dict[tuple[str, str], FittedPair] = {}
        for pair in pairs:
            key = (pair.source, pair.target)
            if key not in preferred or R2_PREFERENCE.index(pair.solver) < R2_PREFERENCE.index(preferred[key].solver):
                preferred[key] = pair
        maps = {key: pair.amap for key, pair in preferred.items()}
        metrics.update(similarity_matrices(store, names, split, maps, engine=engine).to_json())
    write_predictions(out, store.kept_ids(split), store.labels(split), columns)
    write_metrics(metrics, out)
    curves = {
        f"{p.source}->{p.target}/{p.solver}": np.asarray(p.amap.curve_, dtype=np.float64).tolist()
        for p in pairs
        if len(p.amap.curve_)
    }
    write_json(out / "fit_curves.json", curves)
    if config is not None:
        write_json(out / "config.json", json.loads(json.dumps(dict(config), default=str)))
    render_report(out)
    return metrics


def loss_matrices(entries: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Directional losses as `{SOLVER: {SOURCE: {TARGET: loss}}}`; self pairs are absent, never 0."""
    matrices: dict[str, dict[str, dict[str, float]]] = {}
    for e in entries:
        matrices.setdefault(e["solver"], {}).setdefault(e["source"], {})[e["target"]] = e["loss"]
    return matrices


def compare_stored(
    store: FeatureStore,
    names: Sequence[str],
    out: Path,
    solvers: Sequence[str] = (DEFAULT_SOLVER,),
    solver_params: Mapping[str, Mapping[str, Any]] | None = None,
    device: str = "cpu",
    n_boot: int = 1000,
    seed: int = 0,
    quiet: bool = False,
    similarity: bool = True,
    engine: str = "local",
) -> dict[str, Any]:
    """Fit every ordered pair of `names` with every solver, save the maps under `out/maps`, evaluate."""
    claim_run_dir(out)
    solver_params = dict(solver_params or {})
    for solver in solvers:
        SOLVERS.get(solver)
    unused = sorted(set(solver_params) - set(solvers))
    if unused:
        raise FeatswapError(f"Settings given for solver(s) {unused} that this run does not use ({list(solvers)}).")
    pairs = []
    for source, target in itertools.permutations(names, 2):
        for solver in solvers:
            pair = fit_pair(store, source, target, solver, solver_params.get(solver), device, engine=engine)
            save_pair(pair, out / "maps" / f"{pair.stem}.safetensors", store)
            if not quiet:
                console.print(
                    f"fitted {source} -> {target} with {solver} in {pair.amap.fit_seconds_:.1f} s "
                    f"({pair.amap.n_iter_} iterations), train loss {pair.train_loss:.4f}"
                )
                if "message" in pair.amap.info_:
                    console.print(f"  {solver}: {pair.amap.info_['message']}")
            pairs.append(pair)
    config = {
        "store": str(store.path),
        "models": list(names),
        "solvers": list(solvers),
        "solver_settings": {s: vars(AffineMap(s, **solver_params.get(s, {})).settings) for s in solvers},
        "device": device,
        "engine": engine,
        "n_boot": n_boot,
        "seed": seed,
    }
    return evaluate_pairs(
        store, pairs, out, n_boot=n_boot, seed=seed, config=config, similarity=similarity, engine=engine
    )
