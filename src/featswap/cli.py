"""The command line: thin commands over the library. Heavy imports happen inside each command."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from featswap.errors import FeatswapError, SpecError

if TYPE_CHECKING:  # heavy modules are imported inside each command
    from featswap.datasets import Dataset
    from featswap.extract import ExtractResult
    from featswap.models import BackboneRecipe
    from featswap.store import FeatureStore

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode="markdown",
    help="Do two trained networks extract the same information? Fit affine maps between their features "
    "and classify with the other network's untouched head.\n\nStart with: `featswap demo --out runs/demo`",
)
F = TypeVar("F", bound=Callable[..., Any])


def friendly(command: F) -> F:
    """Print featswap's own errors as one clear line and exit with status 2, without a traceback."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except FeatswapError as err:
            from rich.markup import escape

            from featswap.progress import console

            # escape: messages list keys and shapes in [brackets], which rich would read as markup
            console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False)
            raise typer.Exit(2) from None

    return run  # type: ignore[return-value]


def parse_params(items: list[str], solvers: list[str]) -> dict[str, dict[str, Any]]:
    """`["paper.iterations=2000", "alpha=0.1"]` -> per-solver settings; a key without `SOLVER.` applies
    to the only solver, values parsed as JSON where they parse (numbers, true/false), else kept as text."""
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
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        params.setdefault(solver, {})[name] = value
    return params


def split_solvers(text: str) -> list[str]:
    from featswap.solvers import SOLVERS

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
    float | None, typer.Option(help="imagefolder without train/ and val/: share held out for evaluation (0.2).")
]
TrainLimitOpt = Annotated[int | None, typer.Option(help="Use a stratified, seeded subset of this many train images.")]
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


WorkersOpt = Annotated[int, typer.Option(help="Worker processes that decode and preprocess images.")]
BadImageOpt = Annotated[
    str, typer.Option(help="fail: stop at an unreadable image; skip: record it and leave it out for every model.")
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
    int | None, typer.Option(help="Ray: inference actors; default one per GPU, or one per two CPUs without GPUs.")
]
GpusPerWorkerOpt = Annotated[
    float | None,
    typer.Option(help="Ray: GPUs each inference actor holds; default 1 when the cluster has GPUs, else 0."),
]
CpusPerWorkerOpt = Annotated[float | None, typer.Option(help="Ray: CPUs each inference actor holds (1).")]


def start_engine(
    engine: str, address: str | None, ray_options: dict[str, Any] | None = None, extracts: bool = False
) -> None:
    """Check the engine options and, for Ray, connect to the cluster (`extracts`: the command extracts)."""
    from featswap.errors import ClusterError
    from featswap.ray_cluster import CLIENT_EXTRACTION, check_engine, connect, is_client_address

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
    **options: Any,
) -> list[ExtractResult]:
    """Extract one model (a `BackboneRecipe`) over `splits` with the local or the Ray engine."""
    from featswap.extract import extract as run_extract

    backbone = recipe.build()
    results = []
    for s in splits:
        if engine == "ray":
            from featswap.ray_extract import RayResources, extract_ray

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
    if text is None:
        return None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise SpecError(f"--data-config is not valid JSON: {err}") from err
    if not isinstance(config, dict):
        raise SpecError("--data-config must be a JSON object with input_size, mean and std.")
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


@app.command()
@friendly
def demo(
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("runs/demo"),
    paper_iterations: Annotated[int, typer.Option(help="Iterations of the paper solver.")] = 3000,
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
@friendly
def extract(
    model: Annotated[str, typer.Option(help="Model SPEC, e.g. tiny-resnet.")],
    data: Annotated[str, typer.Option(help="Data SPEC, e.g. digits.")],
    store: Annotated[str, typer.Option(help="Feature store: a zarr directory or URL (s3://...), created if missing.")],
    split: Annotated[list[str] | None, typer.Option(help="Split(s) to extract; default train and val.")] = None,
    weights: Annotated[Path | None, typer.Option(help="Local weight file (safetensors or .pt/.pth).")] = None,
    name: Annotated[str | None, typer.Option(help="Name of the model in the store; default the SPEC.")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = 256,
    val_fraction: ValFractionOpt = None,
    train_limit: TrainLimitOpt = None,
    pretrained: PretrainedOpt = True,
    data_config: DataConfigOpt = None,
    workers: WorkersOpt = 0,
    on_bad_image: BadImageOpt = "fail",
    chunk_rows: Annotated[int | None, typer.Option(help="Rows per stored (and resumable) chunk; 4096.")] = None,
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
    from featswap.datasets import load_dataset
    from featswap.models import BackboneRecipe
    from featswap.store import FeatureStore

    ray_options = {"ray_workers": ray_workers, "gpus_per_worker": gpus_per_worker, "cpus_per_worker": cpus_per_worker}
    config = parse_data_config(data_config)
    if engine == "ray" and device != "cpu":
        raise SpecError("With --engine ray, workers get GPUs with --gpus-per-worker; --device applies to local runs.")
    device = resolve_device(device)
    start_engine(engine, address, ray_options, extracts=True)
    dataset = load_dataset(data, val_fraction=val_fraction, train_limit=train_limit)
    recipe = BackboneRecipe(model, str(weights) if weights else None, dataset.num_classes, name, pretrained, config)
    with FeatureStore.create(store, dataset.name, dataset.classes) as feature_store:
        results = extract_model(
            recipe,
            dataset,
            split or ["train", "val"],
            feature_store,
            engine,
            ray_options,
            batch_size=batch_size,
            num_workers=workers,
            quiet=quiet,
            device=device,
            chunk_rows=chunk_rows,
            on_bad_image=on_bad_image,
        )
        for result in results:
            typer.echo(
                f"{result.model} / {result.split}: {result.rows} rows ({result.computed_rows} computed) "
                f"in {result.seconds:.1f} s; logits check max |diff| {result.logits_max_abs_diff:.2e}"
            )


@app.command()
@friendly
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
    from featswap.pipeline import fit_pair, save_pair
    from featswap.store import FeatureStore

    params = parse_params(param, [solver]).get(solver, {})
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
@friendly
def evaluate(
    store: Annotated[str, typer.Option(help="Feature store (directory or URL) holding the models' val features.")],
    maps: Annotated[list[Path], typer.Option(help="Map files written by `featswap fit` (repeat the option).")],
    out: Annotated[Path, typer.Option(help="Output directory for metrics.json and report.md.")],
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples for confidence intervals.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
) -> None:
    """Swap test on the val split for fitted maps; writes metrics.json and report.md.

    Example: `featswap evaluate --store runs/digits.zarr --maps maps/i2r.safetensors --maps maps/r2i.safetensors
    --out runs/eval`
    """
    from featswap.pipeline import evaluate_pairs, load_pair
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
@friendly
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
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 1000,
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
    from featswap.datasets import load_dataset
    from featswap.models import BackboneRecipe
    from featswap.pipeline import compare_stored
    from featswap.store import FeatureStore

    ray_options = {"ray_workers": ray_workers, "gpus_per_worker": gpus_per_worker, "cpus_per_worker": cpus_per_worker}

    if len(model) < 2:
        raise SpecError("compare needs at least two --model options.")
    if weights and len(weights) != len(model):
        raise SpecError(f"Got {len(weights)} --weights for {len(model)} --model options; give one per model, in order.")
    solvers = split_solvers(solver)
    params = parse_params(param, solvers)
    device = resolve_device(device)
    config = parse_data_config(data_config)
    start_engine(engine, address, ray_options, extracts=True)
    dataset = load_dataset(data, val_fraction=val_fraction, train_limit=train_limit)
    names = unique_names(model)
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


def unique_names(specs: list[str]) -> list[str]:
    """Store names for model SPECs: `file.py:function` -> `function`, `timm:NAME` -> `timm_NAME`; suffixed
    `-2`, `-3`... when a name repeats."""
    names: list[str] = []
    for spec in specs:
        base = spec.rpartition(":")[2] if ".py:" in spec else spec.replace("/", "_").replace(":", "_")
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


@app.command("similarity")
@friendly
def similarity_command(
    store: Annotated[str, typer.Option(help="Feature store (directory or URL).")],
    out: Annotated[Path, typer.Option(help="Output directory for similarity.json.")],
    model: Annotated[list[str], typer.Option(help="Models to compare (repeat); default all in the store.")] = [],  # noqa: B006
    split: Annotated[str, typer.Option(help="Split to measure on.")] = "val",
    knn_k: Annotated[int, typer.Option(help="Neighbours for mutual_knn.")] = 10,
    svcca_k: Annotated[int, typer.Option(help="Principal directions kept by svcca.")] = 20,
    engine: StatsEngineOpt = "local",
    address: AddressOpt = None,
) -> None:
    """Every similarity measure (CKA, debiased CKA, Procrustes, CCA, SVCCA, mutual k-NN, map R^2) for every
    pair of models in a store; map R^2 uses lstsq maps fitted on the train split.

    Example: `featswap similarity --store runs/digits.zarr --out runs/sim`
    """
    from featswap.affine_map import AffineMap
    from featswap.similarity import MEASURES
    from featswap.similarity_matrix import similarity_matrices
    from featswap.store import FeatureStore

    start_engine(engine, address)
    feature_store = FeatureStore.open(store)
    names = model or [m for m in feature_store.models() if feature_store.has_features(split, m)]
    if len(names) < 2:
        raise SpecError(f"similarity needs at least two models with {split!r} features; found {names}.")
    maps = {}
    if "train" in feature_store.splits() and split != "train":
        for a in names:
            for b in names:
                if a != b:
                    maps[a, b] = AffineMap("lstsq").fit_pairs(feature_store.pairs("train", a, b, engine=engine))
    matrices = similarity_matrices(feature_store, names, split, maps, knn_k, svcca_k, engine=engine)
    out.mkdir(parents=True, exist_ok=True)
    (out / "similarity.json").write_text(json.dumps({"split": split, "similarity": matrices}, indent=2) + "\n")
    for measure, (span, better, _) in MEASURES.items():
        cells = ", ".join(f"{a}->{b} {v:.3f}" for a, row in matrices[measure].items() for b, v in row.items())
        typer.echo(f"{measure} ({span}, {better} = more similar): {cells}")
    typer.echo(f"wrote {out / 'similarity.json'}")


@app.command()
@friendly
def report(out: Annotated[Path, typer.Argument(help="A run directory holding metrics.json.")]) -> None:
    """Re-render OUT/report.md, table1.csv and figures from OUT/metrics.json.

    Example: `featswap report runs/demo`
    """
    from featswap.report import render_report

    typer.echo(f"wrote {render_report(out)}")


if __name__ == "__main__":  # pragma: no cover
    app()
