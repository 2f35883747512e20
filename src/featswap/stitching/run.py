"""A stitching run from a config: the two networks, their layers and the layer pairs, one fitting pass, the maps,
one evaluation pass per labelled set, and the outputs (metrics.json, config.toml, report.md, figures).

```python
import featswap
from featswap.config import FitSettings, StitchSettings

config = featswap.RunConfig(models=..., data=..., fit=FitSettings(("lstsq",)),
                            stitch=StitchSettings(("layer1:layer1", "@pooled:@pooled")), out="runs/stitch")
metrics = featswap.stitch(config)                       # = `featswap stitch ...`
```
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from featswap.errors import SpecError

if TYPE_CHECKING:
    from featswap.backbones.backbone import Backbone
    from featswap.data.collections import Collection
    from featswap.experiment import Experiment
    from featswap.stitching.fitting import StitchMap
    from featswap.stitching.layers import NetworkLayers


def run_stitch(experiment: Experiment) -> dict[str, Any]:
    """Fit and evaluate a map at every layer pair of the config's two models, both directions; write the outputs
    into OUT and return metrics.json's content."""
    from featswap.engines import resolve_device
    from featswap.outputs.paths import check_run_dir
    from featswap.progress import counting
    from featswap.rows import held_out_mask
    from featswap.stitching.fitting import Route, accumulate, check_settings, holdout_of, solve
    from featswap.stitching.images import paired_batches
    from featswap.stitching.layers import NetworkLayers, layer_pairs

    config = experiment.config
    if len(config.models) != 2:
        raise SpecError(f"stitch joins two networks: give --model exactly twice (got {len(config.models)}).")
    if config.out is None:
        raise SpecError("A run needs an output directory: use --out DIR.")
    for solver in config.fit.solvers:
        check_settings(solver, {**config.fit.params.get(solver, {})})
    if config.engine.kind != "local":
        raise SpecError("stitch runs in this process (--device cpu or cuda); --engine ray is for compare and extract.")
    out = Path(config.out)
    check_run_dir(out)
    device = resolve_device(config.engine.device)
    fit, evals = experiment.collections()
    backbones = build_backbones(experiment, fit, evals, device)
    networks = [NetworkLayers(b) for b in backbones]
    pairs = layer_pairs(config.stitch.layers, *networks)
    routes = []
    for a, b in pairs:
        shape_a, shape_b = networks[0].layers[a].shape, networks[1].layers[b].shape
        routes += [Route(0, a, shape_a, b, shape_b), Route(1, b, shape_b, a, shape_a)]
    experiment.say(
        f"stitching {backbones[0].name} and {backbones[1].name} at {len(pairs)} layer pair(s), both directions: "
        f"{len(routes) * len(config.fit.solvers)} maps"
    )
    experiment.lifecycle.claim(out)
    extraction = config.extraction
    skip = extraction.on_bad_image == "skip"
    holdout, seed = holdout_of(config.fit.solvers, {k: {**v} for k, v in config.fit.params.items()})
    began = time.perf_counter()
    with counting(f"fitting pass / {fit.name}", len(fit), experiment.quiet) as advance:
        batches = paired_batches(fit, backbones, extraction.batch_size, extraction.workers, skip)
        with contextlib.closing(batches):  # its decoding workers stop here, also when the pass fails
            moments = accumulate(backbones, batches, routes, held_out_mask(len(fit), holdout, seed), device, advance)
    maps = [
        solve(route, m, solver, {**config.fit.params.get(solver, {})}, len(fit))
        for route, m in zip(routes, moments, strict=True)
        for solver in config.fit.solvers
    ]
    fit_seconds = time.perf_counter() - began
    experiment.say(f"fitted {len(maps)} maps on {len(fit):,} images of {fit.name} in {fit_seconds:.1f} s")
    note = few_rows_note(maps, [b.name for b in backbones])
    if note:
        experiment.say(note)
    entries = [evaluate_set(experiment, backbones, networks, maps, c, fit, device) for c in evals]
    return write_stitch(experiment, out, entries)


def few_rows_note(maps: list[StitchMap], names: list[str]) -> str | None:
    """One terminal line naming the maps fitted on fewer rows (images x positions) than their source layer's
    channels + 1, as the report does (None when there are none)."""
    few = [m for m in maps if m.facts.get("underdetermined")]
    if not few:
        return None
    said = [
        f"{names[m.route.source]}:{m.route.source_layer} -> {names[m.route.target]}:{m.route.target_layer} ({m.solver})"
        for m in few
    ]
    listed = ", ".join(said[:4]) + (f" and {len(said) - 4} more" if len(said) > 4 else "")
    return (
        f"{len(few)} of {len(maps)} maps were fitted on fewer rows (images x positions) than their source layer's "
        f"channels + 1: {listed}; part of their loss may be the small fitting set. Fit on more images to tell."
    )


def build_backbones(experiment: Experiment, fit: Collection, evals: list[Collection], device: str) -> list[Backbone]:
    """The two networks on `device`, each refused unless its head on its features gives its logits (checked on the
    first fitting images) and it predicts the evaluation sets' classes."""
    import torch

    from featswap.errors import SpecError
    from featswap.evaluation.swap import check_classes
    from featswap.extraction.plan import to_device
    from featswap.outputs.report import head_offset_note

    backbones = []
    for recipe in experiment.recipes(evals[0]):
        backbone = recipe.build()
        if backbone.head_kind.kind == "probe":
            raise SpecError(
                f"{backbone.name} has no head of its own to stitch into (it would get a probe head): stitch networks "
                "with their own or a zero-shot head, or compare their final features with `featswap compare`."
            )
        for collection in evals:
            check_classes(len(collection.classes or ()), backbone.num_classes, backbone.name, collection.name,
                          backbone.head_offset)  # fmt: skip
        if backbone.head_offset:
            experiment.say(head_offset_note(backbone.name, backbone.head_outputs, backbone.head_offset))
        to_device(backbone, device)  # the layout extraction runs in, so that `@pooled` equals compare's features
        backbone.check_logits(torch.stack(first_readable(fit, backbone, experiment)).to(device))
        backbones.append(backbone)
    return backbones


def first_readable(collection: Collection, backbone: Backbone, experiment: Experiment) -> list[Any]:
    """The first `LOGITS_CHECK_IMAGES` readable images of `collection`, preprocessed for `backbone` (with
    `--on-bad-image fail`, the first unreadable one raises)."""
    import itertools

    from featswap.errors import DataError
    from featswap.extraction.plan import LOGITS_CHECK_IMAGES, CollectionImages

    skip = experiment.config.extraction.on_bad_image == "skip"
    images = CollectionImages(collection, backbone.transform(), skip, backbone.data_config.input_size)
    readable = (image for image, problem in (images[i] for i in range(len(collection))) if not problem)
    first = list(itertools.islice(readable, LOGITS_CHECK_IMAGES))
    if not first:
        raise DataError(f"No image of collection {collection.name!r} ({len(collection)} images) could be read; check "
                        "the data folder and the image files.")  # fmt: skip
    return first


def evaluate_set(
    experiment: Experiment,
    backbones: list[Backbone],
    networks: list[NetworkLayers],
    maps: list[StitchMap],
    collection: Collection,
    fit: Collection,
    device: str,
) -> dict[str, Any]:
    """One evaluation set's metrics entry: the dataset, each model's own accuracy, and one pair entry per map."""
    from featswap.evaluation.swap import SwapOutcome, model_entry, pair_metrics, scored_classes
    from featswap.progress import counting
    from featswap.stitching.activations import RESAMPLING, resampled
    from featswap.stitching.evaluating import layer_entry, run_outcomes
    from featswap.stitching.fitting import layers_of
    from featswap.stitching.images import paired_batches

    config = experiment.config
    assert collection.labels is not None and collection.classes is not None
    classes = list(collection.classes)
    scored = scored_classes(collection.labels, len(classes))
    began = time.perf_counter()
    with counting(f"evaluation pass / {collection.name}", len(collection), experiment.quiet) as advance:
        skip = config.extraction.on_bad_image == "skip"
        batches = paired_batches(collection, backbones, config.extraction.batch_size, config.extraction.workers, skip)
        with contextlib.closing(batches):  # its decoding workers stop here, also when the pass fails
            outcomes = run_outcomes(backbones, batches, maps, collection.labels, scored, device, advance)
    labels = collection.labels[outcomes.kept]
    if len(labels) == 0:
        raise no_images_error(collection)
    names = [b.name for b in backbones]
    models = {}
    for backbone, native in zip(backbones, outcomes.native, strict=True):
        entry = model_entry(backbone.spec, backbone.feature_dim, labels, native)
        if backbone.head_offset:
            entry.update(head_outputs=backbone.head_outputs, head_offset=backbone.head_offset)
        models[backbone.name] = entry
    pairs = []
    for m, mapped, loss in zip(maps, outcomes.mapped, outcomes.loss, strict=True):
        route = m.route
        outcome = SwapOutcome(labels, outcomes.native[route.source], outcomes.native[route.target], mapped, loss)
        entry = {
            "source": names[route.source],
            "target": names[route.target],
            "solver": m.solver,
            "source_layer": route.source_layer,
            "target_layer": route.target_layer,
            "resampled": RESAMPLING if resampled(route.source_shape, route.target_shape) else None,
        }
        entry.update(pair_metrics(outcome, n_boot=config.evaluation.n_boot, seed=config.evaluation.seed,
                                  classes=classes))  # fmt: skip
        entry["fit"] = {"seconds": m.seconds, "iterations": 0, "val_loss": loss, **m.facts}
        pairs.append(entry)
    unread = [str(collection.ids[int(i)]) for i in np.flatnonzero(~outcomes.kept)]
    skipped = {collection.name: unread} if unread else {}
    dataset: dict[str, Any] = {
        "name": collection.name,
        "spec": collection.spec,
        "fit_collection": fit.name,
        "train_size": len(fit),
        "val_size": len(labels),
        "num_classes": len(classes),
        "skipped": skipped,
    }
    if scored is not None:
        dataset["scored_classes"] = len(scored)
    shared = collection.shared_images(fit)
    if shared:
        dataset["fit_overlap"] = shared
        experiment.say(
            f"warning: {shared:,} of the {len(collection):,} images of evaluation set {collection.name} are also "
            f"fitting images ({fit.name}): their results are not held out."
        )
    routes = [m.route for m in maps]
    layers = {
        network.backbone.name: {name: layer_entry(network.layers[name]) for name in layers_of(routes, i)}
        for i, network in enumerate(networks)
    }
    experiment.say(f"evaluated {len(maps)} maps on {collection.name} ({len(labels):,} images) in "
                   f"{time.perf_counter() - began:.1f} s")  # fmt: skip
    return {"dataset": dataset, "models": models, "layers": layers, "pairs": pairs}


def no_images_error(collection: Collection) -> Exception:
    from featswap.errors import DataError

    return DataError(f"No image of evaluation set {collection.name!r} could be read; check its folder.")


def write_stitch(experiment: Experiment, out: Path, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """metrics.json (`"kind": "stitch"`; one set's entry, or `evaluations`), config.toml and the report."""
    from featswap import __version__
    from featswap.outputs.writer import RunOutputs, envelope, write_run

    outputs = RunOutputs(
        experiment.config.with_(out=str(out.resolve())).to_toml(),
        metrics=envelope(entries, featswap_version=__version__, kind="stitch"),
    )
    written = write_run(out, outputs, experiment.lifecycle)
    assert written is not None
    return written
