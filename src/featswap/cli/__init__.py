"""The command line: thin commands over the library. Heavy imports happen inside each command.

Every failure a user can cause prints one line starting `error:` and exits with status 2: featswap's own
errors, bad option values (checked where they enter, by the callbacks below), filesystem errors (with the
path and what to do) and click's usage errors alike.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from featswap import validate
from featswap.errors import FeatswapError, SpecError, os_error_advice

if TYPE_CHECKING:  # heavy modules are imported inside each command
    from featswap.backbones.backbone import Backbone
    from featswap.backbones.sources import BackboneRecipe
    from featswap.data.collections import Dataset
    from featswap.extraction.local import ExtractResult
    from featswap.store import FeatureStore

#: Exit status of every user-facing failure.
USER_ERROR = 2


def one_line(text: str) -> str:
    """`text` with its line breaks and runs of spaces collapsed: an error is one line on the terminal."""
    return " ".join(str(text).split())


def describe_os_error(err: OSError) -> str:
    """A filesystem error as a sentence naming the path and what to do."""
    return f"{err.filename or 'a file'}: {err.strerror or err}. {os_error_advice(err)}"


class OneLineErrors(TyperGroup):
    """featswap's command group: runs a command and turns every failure into one `error:` line (exit 2).

    The parser's usage errors (an unknown option, a missing value) and featswap's errors are the user's to fix;
    filesystem errors name the path; anything else is a bug in featswap, said as such (set
    FEATSWAP_TRACEBACK=1 to see the traceback)."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except FeatswapError as err:
            fail(str(err))
        except OSError as err:
            fail(describe_os_error(err))
        except Exception as err:
            if is_usage_error(err):  # a bad or missing option, found by the command-line parser
                message = str(err.format_message()).rstrip(".")  # type: ignore[attr-defined]
            fail(f"{message}. See `featswap COMMAND --help`.")
            if type(err).__name__ == "Abort":  # the parser's Ctrl-C
                fail("interrupted.", 130)
            if os.environ.get("FEATSWAP_TRACEBACK"):
                raise
            fail(
                f"featswap failed unexpectedly ({type(err).__name__}: {err}). This is a bug in featswap: run again "
                "with FEATSWAP_TRACEBACK=1 to see where, and report it."
            )
        if code == 130:
            fail("interrupted; finished chunks of features are kept, so running the same command again resumes.", 130)
        sys.exit(code if isinstance(code, int) else 0)


def is_usage_error(err: Exception) -> bool:
    """Whether `err` is the command-line parser's own error (click's, or the copy of click that newer typer
    versions carry): it has a message to show and an exit status."""
    return callable(getattr(err, "format_message", None)) and isinstance(getattr(err, "exit_code", None), int)


def fail(message: str, code: int = USER_ERROR) -> NoReturn:
    """Print `error: message` on one line (standard error) and exit with `code`."""
    from rich.markup import escape

    from featswap.progress import console

    # escape: messages list keys and shapes in [brackets], which rich would read as markup
    console.print(f"[bold red]error:[/] {escape(one_line(message))}", highlight=False, soft_wrap=True)
    sys.exit(code)


app = typer.Typer(
    cls=OneLineErrors,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    help="Do two trained networks extract the same information? Fit affine maps between their features "
    "and classify with the other network's untouched head.\n\nStart with: `featswap demo --out runs/demo`",
)


# -- checks where numbers enter --------------------------------------------------------------------------------
def checked(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A typer callback that runs `check` on a given value (None, an option left out, passes)."""

    def callback(value: Any) -> Any:
        return value if value is None else check(value)

    return callback


def at_least(option: str, minimum: int) -> Callable[[Any], Any]:
    return checked(functools.partial(validate.integer, option, minimum=minimum))


def fraction(option: str) -> Callable[[Any], Any]:
    return checked(functools.partial(validate.real, option, low=0, high=1, low_open=True, high_open=True))


def nonnegative(option: str, low_open: bool = False) -> Callable[[Any], Any]:
    return checked(functools.partial(validate.real, option, low=0, low_open=low_open))


def parse_params(items: list[str], solvers: list[str]) -> dict[str, dict[str, Any]]:
    """`["paper.iterations=2000", "alpha=0.1"]` -> per-solver settings; a key without `SOLVER.` applies
    to the only solver, values parsed as JSON where they parse (numbers, true/false), else kept as text.
    Each solver's settings check their own values (type and range)."""
    from featswap.mapping.solvers import SOLVERS

    params: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SpecError(f"--param expects KEY=VALUE or SOLVER.KEY=VALUE; got {item!r}.")
        solver, dot, name = key.rpartition(".")
        if not dot:
            if len(solvers) != 1:
                raise SpecError(f"--param {item!r}: with several solvers, name one, e.g. paper.{key}={raw}.")
            solver, name = solvers[0], key
        if solver not in solvers:
            raise SpecError(f"--param {item!r} names solver {solver!r}, which this run does not use ({solvers}).")
        try:
            value: Any = json.loads(raw, parse_constant=lambda c: c)  # NaN/Infinity stay text, refused below
        except json.JSONDecodeError:
            value = raw
        params.setdefault(solver, {})[name] = value
    for solver, settings in params.items():
        SOLVERS.get(solver).make_settings(**settings)  # checks every value now, before any work
    return params


def split_solvers(text: str) -> list[str]:
    from featswap.mapping.solvers import SOLVERS

    names = [s.strip() for s in text.split(",") if s.strip()]
    for name in names:
        SOLVERS.get(name)
    if not names:
        raise SpecError("--solver needs at least one solver name.")
    return names


ParamOpt = Annotated[
    list[str],
    typer.Option("--param", help="Solver setting KEY=VALUE or SOLVER.KEY=VALUE, e.g. `paper.iterations=2000`."),
]
DeviceOpt = Annotated[str, typer.Option(help="cpu, cuda or auto (cuda when available).")]
ValFractionOpt = Annotated[
    float | None,
    typer.Option(
        help="imagefolder without train/ and val/: share held out for evaluation (0.2).",
        callback=fraction("--val-fraction"),
    ),
]
TrainLimitOpt = Annotated[
    int | None,
    typer.Option(
        help="Use a stratified, seeded subset of this many train images.", callback=at_least("--train-limit", 1)
    ),
]
PretrainedOpt = Annotated[
    bool, typer.Option(help="timm/torchvision without --weights: their published weights (needs their cache).")
]
DataConfigOpt = Annotated[
    str | None,
    typer.Option(
        help="Preprocessing as JSON with timm's keys, e.g. "
        '{"input_size": [3, 32, 32], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}; '
        "overrides what the model declares."
    ),
]  # fmt: skip
WorkersOpt = Annotated[
    int, typer.Option(help="Worker processes that decode and preprocess images.", callback=at_least("--workers", 0))
]
BadImageOpt = Annotated[
    str, typer.Option(help="fail: stop at an unreadable image; skip: record it and leave it out for every model.")
]
NBootOpt = Annotated[
    int, typer.Option(help="Bootstrap resamples for confidence intervals.", callback=at_least("--n-boot", 1))
]
EngineOpt = Annotated[
    str, typer.Option(help="local (this process), or ray: a Ray cluster (needs `pip install 'featswap[ray]'`).")
]
StatsEngineOpt = Annotated[
    str,
    typer.Option(help="local, or ray: streamed statistics per chunk as Ray tasks (the store where workers reach it)."),
]
AddressOpt = Annotated[
    str | None,
    typer.Option(
        help="Ray: `auto` joins the cluster this machine belongs to; `ray://HOST:10001` (Ray Client) serves fit and "
        "similarity, not extraction; default a local instance."
    ),
]
RayWorkersOpt = Annotated[
    int | None,
    typer.Option(
        help="Ray: inference actors; default one per GPU, or one per two CPUs without GPUs.",
        callback=at_least("--ray-workers", 1),
    ),
]
GpusPerWorkerOpt = Annotated[
    float | None,
    typer.Option(
        help="Ray: GPUs each inference actor holds; default 1 when the cluster has GPUs, else 0.",
        callback=nonnegative("--gpus-per-worker"),
    ),
]
CpusPerWorkerOpt = Annotated[
    float | None,
    typer.Option(
        help="Ray: CPUs each inference actor holds (1).", callback=nonnegative("--cpus-per-worker", low_open=True)
    ),
]


def start_engine(
    engine: str, address: str | None, ray_options: dict[str, Any] | None = None, extracts: bool = False
) -> None:
    """Check the engine options and, for Ray, connect to the cluster (`extracts`: the command extracts)."""
    from featswap.engines import check_engine
    from featswap.engines.ray.connect import CLIENT_EXTRACTION, connect, is_client_address
    from featswap.errors import ClusterError

    check_engine(engine, address)
    if engine == "ray" and extracts and is_client_address(address):
        raise ClusterError(CLIENT_EXTRACTION)
    given = sorted(k for k, v in (ray_options or {}).items() if v is not None)
    if engine != "ray" and given:
        raise SpecError(f"{', '.join('--' + k.replace('_', '-') for k in given)} only apply to --engine ray.")
    if engine == "ray":
        connect(address)


def extract_model(
    recipe: BackboneRecipe,
    dataset: Dataset,
    splits: list[str],
    feature_store: FeatureStore,
    engine: str,
    ray_options: dict[str, Any],
    backbone: Backbone | None = None,
    **options: Any,
) -> list[ExtractResult]:
    """Extract one model (a `BackboneRecipe`, or the `backbone` already built from it) over `splits` with the
    local or the Ray engine."""
    from featswap.extraction.local import extract as run_extract

    backbone = backbone or recipe.build()
    results = []
    for s in splits:
        if engine == "ray":
            from featswap.engines.ray.extract import RayResources, extract_ray

            resources = RayResources(
                ray_options.get("ray_workers"),
                ray_options.get("gpus_per_worker"),
                ray_options.get("cpus_per_worker") or 1.0,
            )
            keep = {k: v for k, v in options.items() if k in ("batch_size", "quiet", "chunk_rows", "on_bad_image")}
            results.append(
                extract_ray(recipe, dataset.split(s), feature_store, resources=resources, backbone=backbone, **keep)
            )
        else:
            results.append(run_extract(backbone, dataset.split(s), feature_store, **options))
    return results


def parse_data_config(text: str | None) -> dict[str, Any] | None:
    """`--data-config` JSON as a checked mapping (see `featswap.backbones.preprocessing.DataConfig.from_mapping`)."""
    if text is None:
        return None
    from featswap.backbones.preprocessing import DataConfig

    try:
        config = json.loads(text, parse_constant=lambda c: c)
    except json.JSONDecodeError as err:
        raise SpecError(f"--data-config is not valid JSON: {err}") from err
    if not isinstance(config, dict):
        raise SpecError("--data-config must be a JSON object with input_size, mean and std.")
    DataConfig.from_mapping(config)
    return config


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise SpecError(f"--device must be auto, cpu or cuda; got {device!r}.")
    if device == "cuda" and not torch.cuda.is_available():
        raise SpecError("--device cuda was asked for but no CUDA GPU is available; use --device cpu.")
    return device


def check_on_bad_image(value: str) -> str:
    from featswap.extraction.local import ON_BAD_IMAGE

    return validate.choice("--on-bad-image", value, ON_BAD_IMAGE)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("runs/demo"),
    paper_iterations: Annotated[
        int, typer.Option(help="Iterations of the paper solver.", callback=at_least("--paper-iterations", 1))
    ] = 3000,
    quiet: Annotated[bool, typer.Option(help="No progress output.")] = False,
) -> None:
    """The whole experiment on the embedded digits set (1,797 real 8x8 digits).

    Trains `tiny-resnet` and `tiny-inception` (cached in OUT/weights), extracts features, fits maps with
    the `paper` and `lstsq` solvers, evaluates and writes OUT/metrics.json, OUT/report.md, OUT/figures.

    Example: `featswap demo --out runs/demo`
    """
    from featswap.demo import run_demo

    run_demo(out, paper_iterations=paper_iterations, quiet=quiet)


@app.command()
def extract(
    model: Annotated[str, typer.Option(help="Model SPEC, e.g. tiny-resnet.")],
    data: Annotated[str, typer.Option(help="Data SPEC, e.g. digits.")],
    store: Annotated[str, typer.Option(help="Feature store: a zarr directory or URL (s3://...), created if missing.")],
    split: Annotated[list[str] | None, typer.Option(help="Split(s) to extract; default train and val.")] = None,
    weights: Annotated[Path | None, typer.Option(help="Local weight file (safetensors or .pt/.pth).")] = None,
    name: Annotated[
        str | None, typer.Option(help="Name of the model in the store; default from the SPEC (resnet18, myfn).")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(help="Images per forward pass.", callback=at_least("--batch-size", 1))
    ] = 256,
    val_fraction: ValFractionOpt = None,
    train_limit: TrainLimitOpt = None,
    pretrained: PretrainedOpt = True,
    data_config: DataConfigOpt = None,
    workers: WorkersOpt = 0,
    on_bad_image: BadImageOpt = "fail",
    chunk_rows: Annotated[
        int | None,
        typer.Option(help="Rows per stored (and resumable) chunk; 4096.", callback=at_least("--chunk-rows", 1)),
    ] = None,
    device: DeviceOpt = "cpu",
    engine: EngineOpt = "local",
    address: AddressOpt = None,
    ray_workers: RayWorkersOpt = None,
    gpus_per_worker: GpusPerWorkerOpt = None,
    cpus_per_worker: CpusPerWorkerOpt = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Extract one model's penultimate features for a dataset into a feature store (resumable).

    Example: `featswap extract --model tiny-resnet --weights runs/demo/weights/tiny-resnet.safetensors
    --data digits --store runs/digits.zarr`

    On a Ray cluster: `featswap extract ... --engine ray --address auto --gpus-per-worker 1`
    """
    from featswap.backbones.naming import unique_names
    from featswap.backbones.sources import BackboneRecipe
    from featswap.data.collections import load_dataset
    from featswap.store import FeatureStore

    ray_options = {"ray_workers": ray_workers, "gpus_per_worker": gpus_per_worker, "cpus_per_worker": cpus_per_worker}
    config = parse_data_config(data_config)
    check_on_bad_image(on_bad_image)
    if engine == "ray" and device != "cpu":
        raise SpecError("With --engine ray, workers get GPUs with --gpus-per-worker; --device applies to local runs.")
    device = resolve_device(device)
    model_name = unique_names([model], [name])[0]
    start_engine(engine, address, ray_options, extracts=True)
    dataset = load_dataset(data, val_fraction=val_fraction, train_limit=train_limit)
    splits = split or ["train", "val"]
    for split_name in splits:
        dataset.split(split_name)
    recipe = BackboneRecipe(
        model, str(weights) if weights else None, dataset.num_classes, model_name, pretrained, config
    )
    backbone = recipe.build()  # a wrong model or weight file is refused before the store is touched
    with FeatureStore.create(store, dataset.name, dataset.classes) as feature_store:
        results = extract_model(
            recipe,
            dataset,
            splits,
            feature_store,
            engine,
            ray_options,
            backbone,
            batch_size=batch_size,
            num_workers=workers,
            quiet=quiet,
            device=device,
            chunk_rows=chunk_rows,
            on_bad_image=on_bad_image,
        )
        for result in results:
            repaired = f", {result.repaired_chunks} damaged chunk(s) recomputed" if result.repaired_chunks else ""
            typer.echo(
                f"{result.model} / {result.split}: {result.rows} rows ({result.computed_rows} computed{repaired}) "
                f"in {result.seconds:.1f} s; logits check max |diff| {result.logits_max_abs_diff:.2e}"
            )


@app.command()
def fit(
    store: Annotated[str, typer.Option(help="Feature store (directory or URL) holding both models.")],
    source: Annotated[str, typer.Option(help="Model whose features are mapped.")],
    target: Annotated[str, typer.Option(help="Model whose feature space (and head) is mapped to.")],
    out: Annotated[Path, typer.Option(help="Where to write the map (.safetensors).")],
    solver: Annotated[str, typer.Option(help="refine, paper, lstsq, procrustes or heads.")] = "refine",
    param: ParamOpt = [],  # noqa: B006 - typer needs a literal default
    device: DeviceOpt = "cpu",
    engine: StatsEngineOpt = "local",
    address: AddressOpt = None,
) -> None:
    """Fit an affine map from SOURCE's to TARGET's features on the store's train split.

    Example: `featswap fit --store runs/digits.zarr --source tiny-inception --target tiny-resnet
    --solver paper --param iterations=2000 --out maps/i2r.safetensors`
    """
    from featswap.experiment import fit_pair, save_pair
    from featswap.mapping.affine_map import is_featswap_map
    from featswap.outputs.paths import check_output_file
    from featswap.store import FeatureStore

    split_solvers(solver)
    params = parse_params(param, [solver]).get(solver, {})
    check_output_file(out, is_featswap_map, "featswap map")
    device = resolve_device(device)
    start_engine(engine, address)
    feature_store = FeatureStore.open(store)
    pair = fit_pair(feature_store, source, target, solver, params, device, engine=engine)
    save_pair(pair, out, feature_store)
    typer.echo(
        f"{source} -> {target} ({solver}): train loss {pair.train_loss:.4f}, "
        f"{pair.amap.fit_seconds_:.2f} s; wrote {out}"
    )


@app.command()
def evaluate(
    store: Annotated[str, typer.Option(help="Feature store (directory or URL) holding the models' val features.")],
    maps: Annotated[list[Path], typer.Option(help="Map files written by `featswap fit` (repeat the option).")],
    out: Annotated[Path, typer.Option(help="Output directory for metrics.json and report.md.")],
    n_boot: NBootOpt = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.", callback=at_least("--seed", 0))] = 0,
) -> None:
    """Swap test on the val split for fitted maps; writes metrics.json and report.md.

    Example: `featswap evaluate --store runs/digits.zarr --maps maps/i2r.safetensors --maps maps/r2i.safetensors
    --out runs/eval`
    """
    from featswap.experiment import evaluate_pairs, load_pair
    from featswap.store import FeatureStore

    pairs = [load_pair(path) for path in maps]
    evaluate_pairs(
        FeatureStore.open(store),
        pairs,
        out,
        n_boot=n_boot,
        seed=seed,
        config={"maps": [str(m) for m in maps]},
    )
    typer.echo(f"wrote {out / 'metrics.json'} and {out / 'report.md'}")


@app.command()
def compare(
    model: Annotated[list[str], typer.Option(help="Model SPEC (repeat: two or more).")],
    data: Annotated[str, typer.Option(help="Data SPEC.")],
    out: Annotated[Path, typer.Option(help="Output directory.")],
    weights: Annotated[list[Path], typer.Option(help="Weight file per --model, in the same order.")] = [],  # noqa: B006
    solver: Annotated[
        str, typer.Option(help="Comma-separated solvers: refine, paper, lstsq, procrustes, heads.")
    ] = "refine",
    param: ParamOpt = [],  # noqa: B006
    store: Annotated[
        str | None, typer.Option(help="Feature store (directory or URL); default OUT/features.zarr.")
    ] = None,
    device: DeviceOpt = "cpu",
    n_boot: NBootOpt = 1000,
    similarity: Annotated[bool, typer.Option(help="Also compute every similarity measure.")] = True,
    val_fraction: ValFractionOpt = None,
    train_limit: TrainLimitOpt = None,
    pretrained: PretrainedOpt = True,
    data_config: DataConfigOpt = None,
    workers: WorkersOpt = 0,
    on_bad_image: BadImageOpt = "fail",
    engine: EngineOpt = "local",
    address: AddressOpt = None,
    ray_workers: RayWorkersOpt = None,
    gpus_per_worker: GpusPerWorkerOpt = None,
    cpus_per_worker: CpusPerWorkerOpt = None,
    quiet: Annotated[bool, typer.Option(help="No progress output.")] = False,
) -> None:
    """All steps for every ordered pair of models: extract, fit, evaluate, similarity measures, report.

    Example: `featswap compare --model tiny-inception --weights runs/demo/weights/tiny-inception.safetensors
    --model tiny-resnet --weights runs/demo/weights/tiny-resnet.safetensors --data digits --out runs/cmp`

    On a Ray cluster (extraction and the closed-form statistics): add `--engine ray --address auto`.
    """
    from featswap.backbones.naming import unique_names
    from featswap.backbones.sources import BackboneRecipe
    from featswap.data.collections import load_dataset
    from featswap.experiment import compare_stored
    from featswap.outputs.paths import claim_run_dir
    from featswap.store import FeatureStore

    ray_options = {"ray_workers": ray_workers, "gpus_per_worker": gpus_per_worker, "cpus_per_worker": cpus_per_worker}

    if len(model) < 2:
        raise SpecError("compare needs at least two --model options.")
    if weights and len(weights) != len(model):
        raise SpecError(f"Got {len(weights)} --weights for {len(model)} --model options; give one per model, in order.")
    solvers = split_solvers(solver)
    params = parse_params(param, solvers)
    check_on_bad_image(on_bad_image)
    device = resolve_device(device)
    config = parse_data_config(data_config)
    names = unique_names(model)
    start_engine(engine, address, ray_options, extracts=True)
    dataset = load_dataset(data, val_fraction=val_fraction, train_limit=train_limit)
    claim_run_dir(out)
    with FeatureStore.create(store or str(out / "features.zarr"), dataset.name, dataset.classes) as feature_store:
        for i, (spec, name) in enumerate(zip(model, names, strict=True)):
            recipe = BackboneRecipe(
                spec, str(weights[i]) if weights else None, dataset.num_classes, name, pretrained, config
            )
            extract_model(
                recipe,
                dataset,
                ["train", "val"],
                feature_store,
                engine,
                ray_options,
                num_workers=workers,
                quiet=quiet,
                device="cpu" if engine == "ray" else device,
                on_bad_image=on_bad_image,
            )
        compare_stored(
            feature_store,
            names,
            out,
            solvers,
            params,
            device,
            n_boot=n_boot,
            quiet=quiet,
            similarity=similarity,
            engine=engine,
        )
    typer.echo(f"wrote {out / 'metrics.json'} and {out / 'report.md'}")


@app.command("similarity")
def similarity_command(
    store: Annotated[str, typer.Option(help="Feature store (directory or URL).")],
    out: Annotated[Path, typer.Option(help="Output directory for similarity.json.")],
    model: Annotated[list[str], typer.Option(help="Models to compare (repeat); default all in the store.")] = [],  # noqa: B006
    split: Annotated[str, typer.Option(help="Split to measure on.")] = "val",
    knn_k: Annotated[int, typer.Option(help="Neighbours for mutual_knn.", callback=at_least("--knn-k", 1))] = 10,
    svcca_k: Annotated[
        int, typer.Option(help="Principal directions kept by svcca.", callback=at_least("--svcca-k", 1))
    ] = 20,
    engine: StatsEngineOpt = "local",
    address: AddressOpt = None,
) -> None:
    """Every similarity measure (CKA, debiased CKA, Procrustes, CCA, SVCCA, mutual k-NN, map R^2) for every
    pair of models in a store; map R^2 uses lstsq maps fitted on the train split.

    Example: `featswap similarity --store runs/digits.zarr --out runs/sim`
    """
    from featswap.mapping.affine_map import AffineMap
    from featswap.outputs.paths import claim_run_dir, write_json
    from featswap.similarity import MEASURES
    from featswap.similarity.matrices import similarity_matrices
    from featswap.store import FeatureStore

    start_engine(engine, address)
    feature_store = FeatureStore.open(store)
    names = model or [m for m in feature_store.models() if feature_store.has_features(split, m)]
    if len(names) < 2:
        raise SpecError(f"similarity needs at least two models with {split!r} features; found {names}.")
    for name in names:
        feature_store.require_features(split, name)
    claim_run_dir(out)
    maps = {}
    if "train" in feature_store.splits() and split != "train":
        for a in names:
            for b in names:
                if a != b:
                    maps[a, b] = AffineMap("lstsq").fit_pairs(feature_store.pairs("train", a, b, engine=engine))
    result = similarity_matrices(feature_store, names, split, maps, knn_k, svcca_k, engine=engine)
    write_json(out / "similarity.json", {"split": split, **result.to_json()})
    for measure, (span, better, _) in MEASURES.items():
        cells = ", ".join(
            f"{a}->{b} {'undefined' if v is None else f'{v:.3f}'}"
            for a, row in result.values[measure].items()
            for b, v in row.items()
        )
        typer.echo(f"{measure} ({span}, {better} = more similar): {cells}")
    for entry in result.undefined:
        typer.echo(f"{entry['measure']} undefined for {entry['source']} / {entry['target']}: {entry['reason']}")
    typer.echo(f"wrote {out / 'similarity.json'}")


@app.command()
def verify(store: Annotated[str, typer.Argument(help="A feature store (directory or URL).")]) -> None:
    """Check a whole feature store: every finished chunk of features against its checksum, every split's ids
    and labels, every model's head. Says what is damaged and how to repair it; exits 2 when anything is.

    Example: `featswap verify runs/digits.zarr`
    """
    from featswap.errors import StoreError
    from featswap.store import FeatureStore

    report = FeatureStore.open(store).verify()
    for line in report.lines():
        typer.echo(line)
    if not report.ok:
        raise StoreError(f"{len(report.damage)} damaged place(s) in {store}; repair as listed above.")


@app.command()
def report(out: Annotated[Path, typer.Argument(help="A run directory holding metrics.json.")]) -> None:
    """Re-render OUT/report.md, table1.csv and figures from OUT/metrics.json.

    Example: `featswap report runs/demo`
    """
    from featswap.outputs.report import render_report

    typer.echo(f"wrote {render_report(out)}")
