"""The one orchestrator: a `RunConfig` in, extraction, fitting, evaluation, similarity and every output file out.

```python
import featswap

config = featswap.RunConfig.build("run.toml")            # or featswap.RunConfig(models=..., data=...)
metrics = featswap.run(config)                            # = `featswap compare --config run.toml`
```

Every command is a thin layer over `Experiment`: `compare` and `demo` call `run`, `extract` calls `extract`,
`fit` calls `fit_one`, `evaluate` calls `evaluate`, `similarity` calls `similarity`. The engine (local or Ray)
is an object the experiment holds; the store, solvers and measures know nothing of it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featswap.config import RunConfig, resolved
from featswap.errors import DataError, FeatswapError, SpecError

if TYPE_CHECKING:
    import numpy as np

    from featswap.backbones.backbone import Backbone
    from featswap.data.collections import Collection
    from featswap.engines import Engine
    from featswap.experiment.evaluating import SetResult
    from featswap.experiment.fitting import FittedMap
    from featswap.extraction.plan import ExtractResult
    from featswap.outputs.writer import RunOutputs
    from featswap.store import FeatureStore

#: The scheme of fsspec's in-memory filesystem: a store there lasts as long as the process.
MEMORY = "memory://"

#: Networks extracted in one pass over the images (each image decoded once for all of them) hold at most about this
#: many bytes of weights together; more networks are extracted in several passes.
TOGETHER_BYTES = 4 * 2**30


class Experiment:
    """One run of featswap, built from a config (resolved on construction: names, paths and defaults filled in).

    `engine` defaults to the one the config names; `quiet` silences progress. Methods run one step each; `run`
    runs them all and writes OUT/config.toml, metrics.json, predictions, fit curves, maps, report and figures."""

    def __init__(self, config: RunConfig, *, engine: Engine | None = None, quiet: bool = False) -> None:
        self.config = resolved(config)
        self._engine = engine
        self.quiet = quiet
        from featswap.heap import keep_freed_memory
        from featswap.outputs.lifecycle import RunLifecycle

        keep_freed_memory()  # forward passes on the CPU reuse freed pages instead of faulting them in anew

        self.lifecycle = RunLifecycle()  # the run directories this experiment claims, begins and finishes

    # -- parts -----------------------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from featswap.engines import make_engine

            self._engine = make_engine(self.config.engine)  # fit and statistics: Ray Client serves them too
        return self._engine

    def _extracting_engine(self) -> Engine:
        """The engine, refused where it cannot extract (a Ray Client address: Ray Data does not run through it)."""
        if self.config.engine.kind == "ray":
            from featswap.engines.ray.connect import CLIENT_EXTRACTION, is_client_address
            from featswap.errors import ClusterError

            if is_client_address(self.config.engine.address):
                raise ClusterError(CLIENT_EXTRACTION)
        return self.engine

    def say(self, message: str) -> None:
        """Print a progress line; a warning (a line that starts `warning:`) is printed even when quiet."""
        if not self.quiet or message.lstrip().startswith("warning:"):
            from featswap.progress import console

            console.print(message, highlight=False)

    @functools.cached_property
    def _collections(self) -> tuple[Collection, list[Collection]]:
        from featswap.data.collections import fit_and_eval

        return fit_and_eval(self.config.data)

    def collections(self) -> tuple[Collection, list[Collection]]:
        """The fitting collection and the evaluation collections of the config's data (listed once)."""
        return self._collections

    def store_path(self) -> str:
        if self.config.store is None:
            raise SpecError("No feature store given: use --store PATH (or --out DIR, whose features.zarr it is).")
        return self.config.store

    # -- steps -----------------------------------------------------------------------------------------
    def extract(self, *, roles: Sequence[str] = ("fit", "eval"), claim_out: bool = False) -> list[ExtractResult]:
        """Every model's features of the fitting and evaluation collections (`roles` picks), into the store.

        The data and the first model are checked before anything is written; finished chunks are kept (and
        checked). `claim_out`: then make OUT the run's directory, before the store (by default inside it)."""
        from featswap.backbones.sources import BackboneRecipe
        from featswap.engines import ExtractionJob
        from featswap.outputs.created import removed_if_refused
        from featswap.store import FeatureStore

        if not self.config.models:
            raise SpecError("No models given: use --model SPEC.")
        fit, evals = self.collections()
        limit = self.config.data.train_limit
        if limit is not None and limit > len(fit):
            self.say(
                f"--train-limit {limit:,} is more than the {len(fit):,} fitting images of {fit.name}: all are used"
            )
        for collection in {c.name: c for c in [fit, *evals]}.values():
            if collection.labels_from:
                self.say(f"{collection.name}: labels of {len(collection):,} images from {collection.labels_from}")
            for note in collection.notes:
                self.say(f"warning: {collection.name}: {note}")
        todo = ([(fit, "fit")] if "fit" in roles else []) + ([(c, "eval") for c in evals] if "eval" in roles else [])
        recipes = self.recipes(evals[0])
        engine = self._extracting_engine()
        if self.store_path().startswith(MEMORY):
            self.say(
                f"warning: the feature store {self.store_path()} lives in this process's memory and vanishes when it "
                "ends: later commands cannot read its features, and a new run extracts them again. Give --store a "
                "directory to keep them."
            )
        results = []
        built = self._checked_backbones(recipes, [c for c, _ in todo], evals, fit if "fit" in roles else None)
        FeatureStore.check_location(self.store_path())
        self._check_stored_collections([c for c, _ in todo])
        with removed_if_refused([self.store_path(), self.config.out], self._store_has_features):
            if claim_out or self._store_inside_out():
                self._out()
            with FeatureStore.create(self.store_path()) as store:
                group: list[tuple[BackboneRecipe, Backbone]] = []  # networks that share one pass over the images
                for i, recipe in enumerate(recipes):
                    backbone = built[i] or recipe.build()
                    built[i] = None  # the group holds it while it is used, and lets it go after
                    if backbone.head_kind.kind != "own":
                        from featswap.heads.kinds import describe

                        self.say(f"{backbone.name}: its head is {describe(backbone.head_kind.to_json())}")
                    if backbone.head_offset:
                        from featswap.outputs.report import head_offset_note

                        self.say(head_offset_note(backbone.name, backbone.head_outputs, backbone.head_offset))
                    group.append((recipe, backbone))
                    if i < len(recipes) - 1 and sum(b.state_bytes() for _, b in group) < TOGETHER_BYTES:
                        continue
                    for collection, role in todo:
                        job = ExtractionJob([r for r, _ in group], [b for _, b in group], collection, store,
                                            self.config.extraction, role, self.quiet)  # fmt: skip
                        results += engine.extract(job)
                    group = []
                if "eval" in roles:
                    self._record_overlaps(store, fit, evals)
                if "fit" in roles:
                    from featswap.experiment.probing import train_probes

                    train_probes(store, fit.name, [r.name for r in recipes if r.name], self.say)
        return results

    def recipes(self, classes_of: Collection) -> list[Any]:
        """Each model's `BackboneRecipe`, with the classes of `classes_of` (the evaluation sets' label space: a
        probe head's outputs, a zero-shot head's class names) and the templates of `--templates`."""
        from featswap.backbones.sources import BackboneRecipe
        from featswap.heads.zero_shot import read_templates

        classes = tuple(classes_of.classes or ())
        return [
            BackboneRecipe(
                m.spec,
                m.weights,
                len(classes),
                m.name,
                m.pretrained,
                m.data_config,
                m.head_offset,
                m.head,
                m.features,
                classes,
                read_templates(m.templates) if m.templates else None,
            )
            for m in self.config.models
        ]

    def _checked_backbones(
        self,
        recipes: Sequence[Any],
        collections: Sequence[Collection],
        evals: Sequence[Collection],
        fit: Collection | None = None,
    ) -> list[Backbone | None]:
        """Every check that can refuse the run, made before anything is written: each network is built, predicts
        the evaluation sets' classes and passes the logits check on the first readable images of the first
        collection to extract; each collection has a readable image. Returns the networks built, each kept (for
        the extraction to use) while all kept hold less than `TOGETHER_BYTES` of weights, else None (built again
        when its turn comes)."""
        from featswap.evaluation.swap import check_classes
        from featswap.extraction.plan import CollectionImages, first_readable

        skip = self.config.extraction.on_bad_image == "skip"
        built: list[Backbone | None] = []
        held = 0
        for k, recipe in enumerate(recipes):
            backbone = recipe.build()  # a wrong model, weight file or preprocessing is refused here
            if backbone.head_kind.kind == "probe" and fit is not None:
                from featswap.experiment.probing import check_probe_data

                check_probe_data(backbone.name, fit, evals[0])
            for collection in evals[:1]:  # every evaluation set has the same label space
                check_classes(len(collection.classes or ()), backbone.num_classes, backbone.name, collection.name,
                              backbone.head_offset)  # fmt: skip
            shape = backbone.data_config.input_size
            for collection in collections if k == 0 else collections[:1]:
                images = first_readable(CollectionImages(collection, backbone.transform(), skip, shape), collection)
                if collection is collections[0]:
                    backbone.check_logits(images)
            held += backbone.state_bytes()
            built.append(backbone if held < TOGETHER_BYTES else None)
        return built

    def _check_stored_collections(self, collections: Sequence[Collection]) -> None:
        """Refuse, before anything is written, collections that the store already holds with other images, ids or
        labels under the same name."""
        from featswap.store import FeatureStore
        from featswap.store.location import ZARR_JSON, store_filesystem

        fs, on_fs = store_filesystem(self.store_path())
        if not fs.isfile(f"{on_fs}/{ZARR_JSON}"):
            return
        with FeatureStore.open(self.store_path()) as store:
            for c in collections:
                store.check_collection(c.name, list(c.ids), c.labels, c.classes, content=c.content_sha256())

    def _store_has_features(self) -> bool:
        """Whether the store holds a finished chunk of features (then a failed run keeps it, to resume)."""
        from featswap.store import FeatureStore

        try:
            with FeatureStore.open(self.store_path()) as store:
                pairs = [(c, m) for c in store.collections() for m in store.models()]
                return any(_done_any(store, c, m) for c, m in pairs)
        except Exception:  # not a store yet, or half-created by this very run: nothing to keep
            return False

    def _record_overlaps(self, store: FeatureStore, fit: Collection, evals: list[Collection]) -> None:
        """Record, and say, how many evaluation images are also fitting images: their numbers are not held out."""
        for collection in evals:
            shared = collection.shared_images(fit)
            store.record_overlap(collection.name, fit.name, shared)
            if shared:
                self.say(
                    f"warning: {shared:,} of the {len(collection):,} images of evaluation set {collection.name} are "
                    f"also fitting images ({fit.name}): their results are not held out."
                )

    def _store_inside_out(self) -> bool:
        """Whether the store lies inside OUT (the default, OUT/features.zarr): OUT is then made the run's
        directory before the store is created in it."""
        out, store = self.config.out, self.store_path()
        if out is None or "://" in store:
            return False
        return Path(store).resolve().is_relative_to(Path(out).resolve())

    def fit(self, store: FeatureStore, collection: str, names: Sequence[str]) -> list[FittedMap]:
        """Maps for every ordered pair of `names` with every solver of the config, fitted on `collection`."""
        from featswap.experiment.fitting import fit_maps

        settings = self.config.fit
        return fit_maps(store, names, collection, settings.solvers, settings.params, self.engine, self.say,
                        show_progress=not self.quiet)  # fmt: skip

    def fit_one(self, store: FeatureStore, source: str, target: str, solver: str, collection: str) -> FittedMap:
        """One map (`featswap fit`), computed exactly as `fit` computes it within a run."""
        from featswap.experiment.fitting import fit_pair_maps

        params = self.config.fit.params
        maps = fit_pair_maps(store, source, target, collection, [solver], params, self.engine, both=False,
                             show_progress=not self.quiet)  # fmt: skip
        return maps[source, target, solver]

    def fit_stored(self, source: str, target: str, solver: str, collection: str | None = None) -> FittedMap:
        """`featswap fit`: one map from the config's store, fitted on `collection` (default: the collection the
        store's extraction marked for fitting)."""
        from featswap.store import FeatureStore

        with FeatureStore.open(self.store_path()) as store:
            return self.fit_one(store, source, target, solver, fitting_collection(store, collection))

    def evaluate_stored(self, maps: Sequence[FittedMap], collections: Sequence[str], out: Path) -> dict[str, Any]:
        """`featswap evaluate`: the swap test of `maps` on `collections` of the config's store (default: its
        evaluation collections), written into `out`; returns metrics.json's content."""
        from featswap.store import FeatureStore

        with FeatureStore.open(self.store_path()) as store:
            collections = list(collections) or store.collections(role="eval")
            for name in collections:
                store.labels(name)  # refuses an unknown or unlabelled collection before anything is written
            results = self.evaluate(store, maps, collections)
            return self.write(store, out, maps, results)

    def evaluate(
        self, store: FeatureStore, maps: Sequence[FittedMap], collections: Sequence[str], *, names: Sequence[str] = ()
    ) -> list[SetResult]:
        """The swap test of every map, each model's own accuracy and the similarity measures, on each labelled
        collection: one result per evaluation set."""
        from featswap.experiment.evaluating import evaluate_collection

        if not collections:
            raise SpecError(f"The store {store.path} has no evaluation collection; extract one with --eval-data.")
        names = list(names) or list(dict.fromkeys(n for m in maps for n in (m.source, m.target)))
        seen: set[tuple[str, str, str]] = set()
        for m in maps:
            if (m.source, m.target, m.solver) in seen:
                raise FeatswapError(
                    f"Two maps fitted {m.source} -> {m.target} with solver {m.solver}; their results would be "
                    "indistinguishable in one report. Evaluate each in its own --out directory."
                )
            seen.add((m.source, m.target, m.solver))
            for name in (m.source, m.target):
                recorded = m.models.get(name)
                if recorded is not None and recorded != store.model_identity(name):
                    raise FeatswapError(
                        f"The map {m.source} -> {m.target} ({m.solver}) was fitted on features of another {name!r} "
                        f"than the one in {store.path} (another network, weight file or preprocessing); evaluate it "
                        "on the store it was fitted from, or fit it again on this one."
                    )
        settings = self.config.evaluation
        ridge = self.ridge_maps(store, maps[0].collection, names) if maps else []
        return [
            evaluate_collection(store, c, maps, settings, names, self.say, ridge_maps=ridge, device=self.engine.device)
            for c in collections
        ]

    def ridge_maps(self, store: FeatureStore, collection: str, names: Sequence[str]) -> list[FittedMap]:
        """The maps `ridge_r2` scores (when the measures include it): lstsq for every ordered pair of `names`, its
        ridge strength chosen on held-out rows of the fitting collection `collection`, then refitted on all."""
        from featswap.experiment.fitting import fit_maps

        settings = self.config.evaluation
        if not (settings.similarity and "ridge_r2" in settings.measures) or len(names) < 2:
            return []
        params = {"lstsq": {"alpha": "auto", "seed": settings.seed}}
        return fit_maps(store, names, collection, ["lstsq"], params, self.engine)

    def similarity(self, names: Sequence[str], collections: Sequence[str], out: Path) -> list[str]:
        """Every similarity measure for every pair of `names` (default: every model with features of the
        collections) on each evaluation collection of the store, with `map_r2` from `lstsq` maps fitted on its
        fitting collection; writes OUT/similarity.json and OUT/config.toml and returns lines to print."""
        from featswap.outputs.created import removed_if_refused

        with removed_if_refused([str(out)], lambda: False):  # a refused command leaves no new OUT behind
            return self._similarity(names, collections, out)

    def _similarity(self, names: Sequence[str], collections: Sequence[str], out: Path) -> list[str]:
        from featswap.catalog.measures import MEASURES
        from featswap.experiment.evaluating import similarity_of
        from featswap.experiment.fitting import fit_maps
        from featswap.outputs.writer import RunOutputs, envelope, write_run
        from featswap.similarity.measures import r2_score
        from featswap.store import FeatureStore

        with FeatureStore.open(self.store_path()) as store:
            collections = list(collections) or store.collections(role="eval")
            if not collections:
                raise SpecError(f"The store {store.path} has no evaluation collection; name one with --collection.")
            models = [m for m in store.models() if all(store.has_features(c, m) for c in collections)]
            if len(set(names)) != len(names):
                raise SpecError(f"--model names a model twice ({list(names)}); a model compared to itself is no pair.")
            names = list(names) or models
            if len(names) < 2:
                raise SpecError(f"similarity needs at least two models with features of {collections}; found {names}.")
            for collection in collections:
                for name in names:
                    store.require_features(collection, name)
            self.lifecycle.claim(out)
            fits = [c for c in store.collections(role="fit") if all(store.has_features(c, n) for n in names)]
            maps = fit_maps(store, names, fits[0], ["lstsq"], {}, self.engine) if len(fits) == 1 else []
            ridge_maps = self.ridge_maps(store, fits[0], names) if len(fits) == 1 else []
            no_maps = (
                f"the store has several fitting collections with every model's features ({', '.join(fits)}), so no "
                "one to fit maps on; fit and evaluate with `featswap compare` or `fit --collection` instead"
                if fits
                else "the store has no fitting collection with every model's features, so no maps to score"
            )
            entries, lines = [], []
            for collection in collections:
                features = {name: store.features(collection, name) for name in names}
                r2 = {
                    (m.source, m.target): functools.partial(
                        r2_score, features[m.target], m.amap.transform(features[m.source])
                    )
                    for m in maps
                } or {(a, b): functools.partial(_undefined, no_maps) for a in names for b in names if a != b}
                ridge = {
                    (m.source, m.target): functools.partial(
                        r2_score, features[m.target], m.amap.transform(features[m.source])
                    )
                    for m in ridge_maps
                }
                heads, scored = _heads(store, collection, names)
                result = similarity_of(
                    features, names, self.config.evaluation, r2, heads, scored, ridge, device=self.engine.device
                )
                entries.append({"collection": collection, **result.to_json()})
                why = {(u["measure"], u["source"], u["target"]): u["reason"] for u in result.undefined}
                for measure in result.values:
                    m = MEASURES.get(measure)
                    cells = ", ".join(
                        f"{a}->{b} {f'{v:.3f}' if v is not None else undefined(why, measure, a, b)}"
                        for a, row in result.values[measure].items()
                        for b, v in row.items()
                    )
                    lines.append(f"{collection}: {measure} ({m.span}, {m.better} = more similar): {cells}")
            outputs = RunOutputs(
                self.config.with_(out=str(Path(out).resolve())).to_toml(),
                json_files={"similarity.json": envelope(entries)},
            )
            write_run(out, outputs, self.lifecycle)
        return [*lines, f"wrote {out / 'similarity.json'}"]

    def stitch(self) -> dict[str, Any]:
        """Stitch the config's two models at the layer pairs of `config.stitch` (`featswap stitch`): maps fitted on
        the fitting images, evaluated on each evaluation set; writes OUT and returns metrics.json's content."""
        from featswap.outputs.created import removed_if_refused
        from featswap.stitching.run import run_stitch

        with removed_if_refused([self.config.out], lambda: False):  # a refused stitch leaves no new OUT behind
            return run_stitch(self)

    # -- the whole run ---------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Extract, fit, evaluate and write every output into OUT; returns metrics.json's content."""
        if len(self.config.models) < 2:
            raise SpecError("A comparison needs at least two models: give --model two or more times.")
        from featswap.outputs.paths import check_run_dir

        if self.config.out is None:
            raise SpecError("A run needs an output directory: use --out DIR.")
        check_run_dir(Path(self.config.out))  # refused before hours of extraction, but nothing created yet
        if "://" not in self.store_path() and Path(self.store_path()).resolve() == Path(self.config.out).resolve():
            raise SpecError(
                "--store is the --out directory; give the store its own folder (default OUT/features.zarr)."
            )
        self.extract(claim_out=True)
        fit, evals = self.collections()
        names = [m.name for m in self.config.models if m.name]
        return self.compare_stored(names=names, fit_collection=fit.name, eval_collections=[c.name for c in evals])

    def compare_stored(
        self, *, names: Sequence[str] = (), fit_collection: str | None = None, eval_collections: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Fit, evaluate and write, on features already in the store: `names` (default every model with
        features of every collection used), fitted on `fit_collection` (default the store's fitting
        collection), evaluated on `eval_collections` (default the store's evaluation collections)."""
        from featswap.store import FeatureStore

        out = self._out()
        with FeatureStore.open(self.store_path()) as store:
            fit_collection = fitting_collection(store, fit_collection)
            evals = list(eval_collections) or store.collections(role="eval")
            used = [fit_collection, *evals]
            names = list(names) or [m for m in store.models() if all(store.has_features(c, m) for c in used)]
            maps = self.fit(store, fit_collection, names)
            self.lifecycle.begin(out)  # the first output of this run: the earlier run's go now, not before
            for m in maps:
                save_map(m, out / "maps" / f"{m.stem}.safetensors")
            results = self.evaluate(store, maps, evals, names=names)
            return self.write(store, out, maps, results)

    def _out(self) -> Path:
        if self.config.out is None:
            raise SpecError("A run needs an output directory: use --out DIR.")
        return self.lifecycle.claim(Path(self.config.out))

    def finish(self, out: Path) -> None:
        """Record the files this run has written into `out` (for the next run there to clear): `write` does, and a
        caller that writes more files after it (`featswap paper`'s paper.md) does again."""
        self.lifecycle.finish(out)

    def write(self, store: FeatureStore, out: Path, maps: Sequence[FittedMap], results: list[SetResult]) -> dict:
        """metrics.json, predictions, fit curves, config.toml, report.md and figures of a run into `out`."""
        from dataclasses import asdict

        from featswap.config import FitSettings
        from featswap.outputs.writer import write_run

        # The config records the maps as they were fitted (for `evaluate`, the maps given, not the defaults).
        solvers = tuple(dict.fromkeys(m.amap.solver for m in maps))
        params = {m.amap.solver: asdict(m.amap.settings) for m in reversed(maps)}
        config = self.config.with_(out=str(Path(out).resolve()), engine=self.engine.settings())
        if maps:
            config = config.with_(fit=FitSettings(solvers, params))
        written = write_run(out, run_outputs(store, maps, results, config), self.lifecycle)
        assert written is not None  # a compare or evaluate run always has metrics.json
        return written


def _done_any(store: FeatureStore, collection: str, model: str) -> bool:
    """Whether `model` has a finished chunk of features of `collection` (False where it has no features at all)."""
    try:
        return bool(store.done_chunks(collection, model).any())
    except Exception:  # no features of this pair
        return False


def _undefined(reason: str) -> float:
    raise DataError(reason)


def _heads(
    store: FeatureStore, collection: str, names: Sequence[str]
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]] | None, np.ndarray | None]:
    """Each model's head from the store and the classes `collection` is scored over (its labels' classes when
    fewer than the head's), or `(None, None)` when the store lacks a head or the labels."""
    from featswap.evaluation.swap import scored_classes

    try:
        heads = {name: store.head(name) for name in names}
        labels, classes = store.labels(collection), store.classes(collection) or ()
    except FeatswapError:
        return None, None
    return heads, scored_classes(labels, len(classes))


def fitting_collection(store: FeatureStore, given: str | None = None) -> str:
    """The collection to fit on: the one given, else the one the store's extraction marked for fitting."""
    if given is not None:
        store.ids(given)  # refuses an unknown collection, naming the known ones
        return given
    found = store.collections(role="fit")
    if len(found) != 1:
        known = ", ".join(found or store.collections()) or "none"
        what = "no" if not found else "several"
        raise SpecError(f"The store {store.path} has {what} fitting collections; name one with --collection ({known}).")
    return found[0]


def save_map(fitted: FittedMap, path: Path) -> Path:
    """A fitted map as safetensors, with what `load_map` needs to evaluate it in its header."""
    from featswap import __version__

    return fitted.amap.save(
        path,
        source=fitted.source,
        target=fitted.target,
        train_loss=fitted.train_loss,
        collection=fitted.collection,
        fit_size=fitted.fit_size,
        models=dict(fitted.models),
        featswap_version=__version__,
    )


def load_map(path: Path) -> FittedMap:
    """A map written by `save_map` (or `featswap fit`)."""
    from featswap.experiment.fitting import FittedMap
    from featswap.mapping.affine_map import AffineMap

    amap = AffineMap.load(path)
    meta = amap.metadata_
    try:
        return FittedMap(
            meta["source"],
            meta["target"],
            amap,
            float(meta["train_loss"]),
            str(meta["collection"]),
            int(meta["fit_size"]),
            dict(meta.get("models", {})),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise FeatswapError(
            f"{path} is a featswap map without the details of its fit that evaluate needs (missing {err}); write maps "
            "with `featswap fit` or `featswap.experiment.save_map`."
        ) from None


def dataset_entry(store: FeatureStore, collection: str, maps: Sequence[FittedMap]) -> dict[str, Any]:
    """metrics.json's `dataset` entry of one evaluation set."""
    from featswap.evaluation.swap import scored_classes

    fit_collections = sorted({m.collection for m in maps})
    fit_size = max((m.fit_size for m in maps), default=0)
    skipped = {c: sorted(store.skipped(c)) for c in [*fit_collections, collection] if store.skipped(c)}
    overlaps = [store.overlap(collection, c) for c in fit_collections]
    entry = {
        "name": collection,
        "spec": store.spec(collection),
        "fit_collection": ", ".join(fit_collections),
        "train_size": fit_size,
        "val_size": len(store.kept_ids(collection)),
        "num_classes": len(store.classes(collection) or ()),
        "skipped": skipped,
    }
    scored = scored_classes(store.labels(collection), len(store.classes(collection) or ()))
    if scored is not None:
        entry["scored_classes"] = len(scored)
    if collection in fit_collections:  # evaluated on the very images the maps were fitted on
        entry["fit_overlap"] = entry["val_size"]
    elif overlaps and all(o is not None for o in overlaps):
        entry["fit_overlap"] = sum(o for o in overlaps if o is not None)
    return entry


def run_outputs(
    store: FeatureStore, maps: Sequence[FittedMap], results: list[SetResult], config: RunConfig
) -> RunOutputs:
    """A compare or evaluate run's outputs, computed, not written: metrics.json (the single-set layout for one
    evaluation set, `{"featswap_version", "evaluations": [one single-set entry per set]}` for several),
    predictions per set, fit curves and the config."""
    import numpy as np

    from featswap import __version__
    from featswap.outputs.writer import PredictionTable, RunOutputs, envelope

    entries = [{"dataset": dataset_entry(store, r.collection, maps), **r.metrics} for r in results]
    tables = [
        PredictionTable("predictions" if len(results) == 1 else f"predictions_{r.collection}", r.ids, r.labels,
                        r.columns)
        for r in results
    ]  # fmt: skip
    curves = {
        f"{m.source}->{m.target}/{m.solver}": np.asarray(m.amap.curve_, dtype=np.float64).tolist()
        for m in maps
        if len(m.amap.curve_)
    }
    return RunOutputs(
        config.to_toml(),
        metrics=envelope(entries, featswap_version=__version__),
        json_files={"fit_curves.json": curves},
        predictions=tables,
    )


def stitch(config: RunConfig | str | Path, *, quiet: bool = False) -> dict[str, Any]:
    """Run the stitching a config (or a TOML file) describes, as `featswap stitch` does; returns metrics.json's
    content."""
    if not isinstance(config, RunConfig):
        config = RunConfig.build(config)
    return Experiment(config, quiet=quiet).stitch()


def undefined(why: dict[tuple[str, str, str], str], measure: str, a: str, b: str) -> str:
    """`undefined (REASON)` for a measure without a value for `a`, `b` (a symmetric measure's reason is recorded
    for one order)."""
    return f"undefined ({why.get((measure, a, b)) or why.get((measure, b, a), 'no value')})"


def run(config: RunConfig | str | Path, *, quiet: bool = False) -> dict[str, Any]:
    """Run the experiment a config (or a TOML file) describes; returns metrics.json's content."""
    if not isinstance(config, RunConfig):
        config = RunConfig.build(config)
    return Experiment(config, quiet=quiet).run()


__all__ = ["Experiment", "load_map", "run", "save_map"]
