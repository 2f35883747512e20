"""The whole experiment on the embedded digits set, as a config: train two tiny networks (cached), then run.

The demo is `featswap compare` on a config it writes itself: `tiny-inception` and `tiny-resnet` with the
weights it trained, the digits split 70/30, the `paper` solver (3,000 iterations) beside `lstsq`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from featswap.config import RunConfig, deep_merge, from_mapping, read_toml
from featswap.errors import SpecError

DEMO_MODELS = ("tiny-inception", "tiny-resnet")
#: What a --config may set in the demo's [data]: its networks train on the digits' fitting split, whichever it is.
DEMO_DATA_KEYS = ("data", "val_fraction", "seed", "train_limit")
#: The paper ran 100,000 iterations on 1.1 M images; 3,000 reach a plateau on the 1,257 digits.
DEMO_PAPER_ITERATIONS = 3000


def demo_config(out: Path, weights: dict[str, Path], paper_iterations: int = DEMO_PAPER_ITERATIONS) -> dict[str, Any]:
    """The demo's run, in the config file's layout."""
    return {
        "models": [{"spec": spec, "weights": str(weights[spec])} for spec in DEMO_MODELS],
        "data": {"data": "digits", "val_fraction": 0.3},
        "fit": {"solvers": ["paper", "lstsq"], "params": {"paper": {"iterations": paper_iterations}}},
        "out": str(out),
        "store": str(out / "features.zarr"),
    }


def check_demo_store(path: Path, weights: dict[str, Path], store_type: Any) -> None:
    """Refuse a store at OUT/features.zarr that holds anything but the demo's models with these weights: the
    demo reuses its own store while the cached weights are the same, and never deletes one."""
    from featswap.backbones.checkpoints import sha256
    from featswap.errors import StoreError

    if not (path / "zarr.json").is_file():
        return
    with store_type.open(path) as store:
        models = store.models()
        ours = set(models) <= set(DEMO_MODELS) and all(
            store.model_attrs(m).get("weights_sha256") == sha256(weights[m]) for m in models
        )
    if not ours:
        raise StoreError(
            f"{path} holds features of other models or weights than the demo's; featswap never deletes a store. "
            "Move it away, or give the demo another --out."
        )


def run_demo(
    out: Path,
    paper_iterations: int | None = None,
    quiet: bool = False,
    config: Path | None = None,
    n_boot: int | None = None,
    train: Any = None,
) -> dict[str, Any]:
    """Train (or reuse) the two tiny networks, then run the experiment into `out`: metrics.json, report.md,
    figures. `config` (a TOML file) and the other arguments override the demo's settings. The feature store
    OUT/features.zarr is reused while it holds features of the cached weights (it is never deleted)."""
    import torch

    from featswap.data.collections import open_spec, split_for_fit_and_eval
    from featswap.demo.training import TrainConfig, train_or_load_all
    from featswap.experiment import Experiment
    from featswap.outputs.paths import claim_run_dir
    from featswap.progress import console
    from featswap.store import FeatureStore

    started = time.perf_counter()
    say = (lambda *_: None) if quiet else console.print
    placeholder = {spec: out / "weights" / f"{spec}.safetensors" for spec in DEMO_MODELS}
    values = demo_config(out, placeholder, paper_iterations or DEMO_PAPER_ITERATIONS)
    source = str(config) if config else "the demo"
    if config is not None:
        given = read_toml(config)
        data = given.get("data", {})
        if isinstance(data, dict) and (set(data) - set(DEMO_DATA_KEYS) or data.get("data", "digits") != "digits"):
            raise SpecError(
                f"The demo trains its networks on the digits' fitting images and evaluates on the others; {source} "
                f"gives other data ({', '.join(f'{k} = {v!r}' for k, v in data.items())}). Keep to the digits "
                f"([data] may set {', '.join(DEMO_DATA_KEYS[1:])}), or run `featswap compare` on networks of your own."
            )
        values = deep_merge(values, given)
    overrides: dict[str, Any] = {"out": str(out), "store": str(out / "features.zarr")}
    if paper_iterations is not None:
        overrides["fit"] = {"params": {"paper": {"iterations": paper_iterations}}}
    if n_boot is not None:
        overrides["evaluation"] = {"n_boot": n_boot}
    run: RunConfig = from_mapping(deep_merge(values, overrides), source)
    data = run.data
    # The networks train on the run's own fitting split: a --config that changes val_fraction or seed would
    # otherwise score images the networks were trained on.
    fit, val = split_for_fit_and_eval(open_spec("digits").parts["all"], data.val_fraction or 0.3, data.seed)
    claim_run_dir(out)
    FeatureStore.check_location(out / "features.zarr")  # a folder of other files is refused before any training
    torch.manual_seed(0)
    say(f"digits: {len(fit):,} train / {len(val):,} val images, 10 classes")
    weights = {}
    trained = train_or_load_all(DEMO_MODELS, fit, 10, out / "weights", train or TrainConfig(), show_progress=not quiet)
    for spec, (path, reused, seconds) in zip(DEMO_MODELS, trained, strict=True):
        say(f"{spec}: {f'reusing cached weights {path}' if reused else f'trained in {seconds:.1f} s'}")
        weights[spec] = path
    check_demo_store(out / "features.zarr", weights, FeatureStore)
    iterations = run.fit.params.get("paper", {}).get("iterations", DEMO_PAPER_ITERATIONS)
    say(f"paper solver: {iterations:,} iterations (the paper used 100,000 on 1.1 M images)")
    metrics = Experiment(run, quiet=quiet).run()
    say(f"wrote {out / 'metrics.json'} and {out / 'report.md'} in {time.perf_counter() - started:.1f} s")
    return metrics
