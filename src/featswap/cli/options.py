"""Every command-line option, declared once, with where it goes in the run's config and the check on its value.

Commands list the options they take as parameters of these types; `run_config` turns the ones a user gave into
a `RunConfig`, over `--config FILE` and the defaults. Defaults are None here so that an option left out lets
the file speak; the real defaults live in `featswap.config`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from featswap import validate
from featswap.catalog.measures import MAX_ROWS
from featswap.config import MAX_BOOT, MIN_BOOT, RSA_COMPARE, RSA_DISTANCES
from featswap.errors import SpecError
from featswap.threads import check_workers

if TYPE_CHECKING:
    from featswap.config import RunConfig


# -- checks where values enter ------------------------------------------------------------------------------
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


def choice(option: str, options: tuple[str, ...]) -> Callable[[Any], Any]:
    return checked(functools.partial(validate.choice, option, options=options))


def data_config(text: str) -> dict[str, Any]:
    """`--data-config` JSON as a checked mapping (see `featswap.backbones.preprocessing.DataConfig`)."""
    from featswap.backbones.preprocessing import DataConfig

    try:
        config = json.loads(text, parse_constant=lambda c: c)
    except json.JSONDecodeError as err:
        raise SpecError(f"--data-config is not valid JSON: {err}") from err
    if not isinstance(config, dict):
        raise SpecError("--data-config must be a JSON object with input_size, mean and std.")
    DataConfig.from_mapping(config)
    return config


# -- the options -----------------------------------------------------------------------------------------------
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="A run's TOML config (e.g. OUT/config.toml); flags override it.")
]
QuietOpt = Annotated[bool, typer.Option(help="No progress output.")]
ModelsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--model", help="Model SPEC (repeat for several): tiny-resnet, timm:NAME, torchvision:NAME, file.py:fn."
    ),
]
WeightsOpt = Annotated[
    list[Path] | None, typer.Option("--weights", help="Local weight file per --model, in the same order.")
]
NamesOpt = Annotated[
    list[str] | None, typer.Option("--name", help="Name per --model, in order; default from the SPEC (resnet50, fn).")
]
PretrainedOpt = Annotated[
    bool | None,
    typer.Option(help="timm/torchvision without --weights: their published weights (needs their cache)."),
]
DataConfigOpt = Annotated[
    str | None,
    typer.Option(
        help="Preprocessing of every model as JSON with timm's keys, e.g. "
        '{"input_size": [3, 32, 32], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}.',
        callback=checked(data_config),
    ),
]


def head_offsets(values: list[int]) -> list[int]:
    for value in values:
        validate.integer("--head-offset", value, 0)
    return values


HeadOffsetOpt = Annotated[
    list[int] | None,
    typer.Option(
        "--head-offset",
        help="Leading head outputs that are not classes, once for every model or once per --model in order "
        "(default: 1 for a 1001-output head, TF-slim's background; else 0).",
        callback=checked(head_offsets),
    ),
]
HeadOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--head",
        help="auto (the network's own or zero-shot head, a linear probe when it has none), own, or probe (a "
        "logistic-regression head trained on the labelled fitting images, replacing its own); once for every model "
        "or once per --model.",
    ),
]
FeaturesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--features",
        help="Which features (then a probe head): pooled, cls, mean-tokens (hf: token models) or a layer's name "
        "(featswap layers); default what the head consumes (CLS for headless ViTs). Once, or once per --model.",
    ),
]
TemplatesOpt = Annotated[
    Path | None,
    typer.Option(
        help="Zero-shot heads (openclip:): prompt templates, one per line with {} for the class name (default "
        "OpenAI's 80 for ImageNet, 'a photo of a {}.' otherwise).",
    ),
]
DataOpt = Annotated[
    str | None,
    typer.Option(help="Labelled images split into fitting and evaluation images: digits, imagefolder:DIR, ..."),
]
ValFractionOpt = Annotated[
    float | None,
    typer.Option(
        help="--data: share held out for evaluation (digits 0.3, else 0.2).", callback=fraction("--val-fraction")
    ),
]
FitDataOpt = Annotated[
    str | None, typer.Option(help="Images to fit maps on, labels optional: images:DIR (any folder), imagefolder:DIR.")
]
EvalDataOpt = Annotated[
    list[str] | None,
    typer.Option(help="Labelled images to evaluate on (repeat for several sets; NAME=SPEC names one)."),
]
ClassNamesOpt = Annotated[
    Path | None,
    typer.Option(
        "--class-names",
        help="Text file of the heads' classes in order, one per line: each class folder is labelled as the head "
        "output of its name, so a folder of some of the classes is scored over those present.",
    ),
]
TrainLimitOpt = Annotated[
    int | None,
    typer.Option(help="Fit on a seeded subset of this many fitting images.", callback=at_least("--train-limit", 1)),
]
BatchSizeOpt = Annotated[
    int | None, typer.Option(help="Images per forward pass (256).", callback=at_least("--batch-size", 1))
]
ChunkRowsOpt = Annotated[
    int | None,
    typer.Option(help="Rows per stored (and resumable) chunk (4096).", callback=at_least("--chunk-rows", 1)),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        help="Worker processes that decode and preprocess images (0; at most 2 per CPU).",
        callback=checked(functools.partial(check_workers, "--workers")),
    ),
]
BadImageOpt = Annotated[
    str | None,
    typer.Option(
        help="fail: stop at an unreadable image; skip: record it and leave it out for every model.",
        callback=choice("--on-bad-image", ("fail", "skip")),
    ),
]
PrecisionOpt = Annotated[
    str | None,
    typer.Option(
        help="Arithmetic of the forward passes: fp32 (default), or bf16 / fp16 under torch.autocast (faster on "
        "GPUs; features differ slightly, see docs/paper.md). The store keeps it as part of the model.",
        callback=choice("--precision", ("fp32", "bf16", "fp16")),
    ),
]
DecodeOpt = Annotated[
    str | None,
    typer.Option(
        help="Where images are decoded: pil (default; Pillow, in the --workers processes) or device (JPEGs by "
        "torchvision's decode_jpeg on --device, nvJPEG on a GPU, for GPUs faster than the CPU cores can feed). The "
        "store keeps it as part of the model.",
        callback=choice("--decode", ("pil", "device")),
    ),
]
SolversOpt = Annotated[
    str | None, typer.Option("--solver", help="Comma-separated solvers: refine, paper, lstsq, procrustes, heads.")
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", help="Solver setting KEY=VALUE or SOLVER.KEY=VALUE, e.g. `paper.iterations=2000`."),
]
NBootOpt = Annotated[
    int | None,
    typer.Option(
        help=f"Bootstrap resamples for confidence intervals (1000; {MIN_BOOT} to {MAX_BOOT:,}).",
        callback=checked(functools.partial(validate.integer, "--n-boot", minimum=MIN_BOOT, maximum=MAX_BOOT)),
    ),
]
SeedOpt = Annotated[int | None, typer.Option(help="Seed of the bootstrap (0).", callback=at_least("--seed", 0))]
SimilarityOpt = Annotated[bool | None, typer.Option(help="Also compute every similarity measure (on).")]
KnnKOpt = Annotated[
    int | None, typer.Option(help="Neighbours for mutual_knn and cknna (10).", callback=at_least("--knn-k", 1))
]
MeasuresOpt = Annotated[
    str | None,
    typer.Option(
        help="Comma-separated similarity measures, or `all` (default: those needing no N x N matrix or extra fit; "
        "docs/similarity.md lists them), e.g. `linear_cka,pwcca,rbf_cka,rsa`."
    ),
]
RbfSigmaOpt = Annotated[
    float | None,
    typer.Option(
        help="rbf_cka's bandwidth, times the median distance (0.8).", callback=nonnegative("--rbf-sigma", True)
    ),
]
RsaDistanceOpt = Annotated[
    str | None,
    typer.Option(
        help="rsa's RDM distance: euclidean or correlation.", callback=choice("--rsa-distance", RSA_DISTANCES)
    ),
]
RsaCompareOpt = Annotated[
    str | None,
    typer.Option(
        help="rsa's RDM comparison: spearman, pearson or kendall (tau-a).",
        callback=choice("--rsa-compare", RSA_COMPARE),
    ),
]
NxnRowsOpt = Annotated[
    int | None,
    typer.Option(
        help="Compute the N x N measures (rbf_cka, rsa) on a seeded random subsample of this many images when there "
        f"are more (0: all, refused above {MAX_ROWS:,}).",
        callback=checked(functools.partial(validate.integer, "--nxn-rows", minimum=0, maximum=MAX_ROWS)),
    ),
]
SvccaKOpt = Annotated[
    int | None, typer.Option(help="Principal directions kept by svcca (20).", callback=at_least("--svcca-k", 1))
]
EngineOpt = Annotated[
    str | None, typer.Option(help="local (this process), or ray: a Ray cluster (`pip install 'featswap[ray]'`).")
]
DeviceOpt = Annotated[
    str | None,
    typer.Option(help="cpu, cuda or auto (cuda when available).", callback=choice("--device", ("cpu", "cuda", "auto"))),
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
    typer.Option(help="Ray: CPUs each inference actor holds (1).", callback=nonnegative("--cpus-per-worker", True)),
]
StoreOpt = Annotated[
    str | None, typer.Option(help="Feature store: a zarr directory or URL (s3://...); default OUT/features.zarr.")
]
OutDirOpt = Annotated[Path | None, typer.Option("--out", help="Output directory.")]
LayersOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--layers",
        help="LAYER_A:LAYER_B, a layer of the first and of the second --model (repeat for several pairs; "
        "`featswap layers` names them, @pooled is the pooled features), or `stages` (default): every pair of the two "
        "networks' stage outputs and pooled features.",
    ),
]

#: Where each option goes in the config (section, key); None: the top level.
TARGETS: dict[str, tuple[str | None, str]] = {
    "data": ("data", "data"),
    "val_fraction": ("data", "val_fraction"),
    "fit_data": ("data", "fit_data"),
    "eval_data": ("data", "eval_data"),
    "train_limit": ("data", "train_limit"),
    "class_names": ("data", "class_names"),
    "batch_size": ("extraction", "batch_size"),
    "chunk_rows": ("extraction", "chunk_rows"),
    "workers": ("extraction", "workers"),
    "on_bad_image": ("extraction", "on_bad_image"),
    "precision": ("extraction", "precision"),
    "decode": ("extraction", "decode"),
    "n_boot": ("evaluation", "n_boot"),
    "seed": ("evaluation", "seed"),
    "similarity": ("evaluation", "similarity"),
    "knn_k": ("evaluation", "knn_k"),
    "svcca_k": ("evaluation", "svcca_k"),
    "measures": ("evaluation", "measures"),
    "rbf_sigma": ("evaluation", "rbf_sigma"),
    "rsa_distance": ("evaluation", "rsa_distance"),
    "rsa_compare": ("evaluation", "rsa_compare"),
    "nxn_rows": ("evaluation", "nxn_rows"),
    "engine": ("engine", "kind"),
    "device": ("engine", "device"),
    "address": ("engine", "address"),
    "ray_workers": ("engine", "ray_workers"),
    "gpus_per_worker": ("engine", "gpus_per_worker"),
    "cpus_per_worker": ("engine", "cpus_per_worker"),
    "store": (None, "store"),
    "out": (None, "out"),
    "layers": ("stitch", "layers"),
}


def parse_params(items: list[str], solvers: list[str]) -> dict[str, dict[str, Any]]:
    """`["paper.iterations=2000", "alpha=0.1"]` -> per-solver settings; a key without `SOLVER.` applies
    to the only solver, values parsed as JSON where they parse (numbers, true/false), else kept as text.
    Each solver's settings check their own values (type and range) when the config is built."""
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
            value: Any = json.loads(raw, parse_constant=lambda c: c)  # NaN/Infinity stay text, refused later
        except json.JSONDecodeError:
            value = raw
        if name in params.get(solver, {}):
            raise SpecError(f"--param gives {solver}.{name} twice; give each setting once.")
        params.setdefault(solver, {})[name] = value
    return params


def split_solvers(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise SpecError("--solver needs at least one solver name.")
    return names


#: The options `run_config` reads besides those of `TARGETS`: the models' and the fit's.
MODEL_AND_FIT_OPTIONS = ("model", "weights", "name", "pretrained", "data_config", "head_offset", "head", "features",
                         "templates", "solver", "param")  # fmt: skip


def options_given(scope: dict[str, Any], ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    """A command's options for `run_config`, taken from its parameters (`locals()` at its start): each option is then
    declared once, as a parameter, and reaches the config by its name. `ignore` names parameters that share an
    option's name but mean something else in that command (`fit --out` is a map file)."""
    names = set(TARGETS) | set(MODEL_AND_FIT_OPTIONS)
    return {k: v for k, v in scope.items() if k in names and k not in ignore}


def run_config(config: Path | None, **given: Any) -> RunConfig:
    """The run's config: defaults, then `config` (a TOML file), then the options given (not None).

    Model options: `model` (SPECs), `weights`, `name` (one per model, in order), `pretrained` and `data_config`
    (every model), `head_offset` (every model, or one per model).
    Fit options: `solver` (comma-separated) and `param` (KEY=VALUE items)."""
    import dataclasses

    from featswap.config import from_mapping, layered, read_toml

    base = read_toml(config) if config is not None else {}
    overrides: dict[str, Any] = {}
    for option, value in given.items():
        if value is None or option not in TARGETS or value == []:
            continue
        section, key = TARGETS[option]
        target = overrides if section is None else overrides.setdefault(section, {})
        target[key] = str(value) if isinstance(value, Path) else value
    models, weights, names = given.get("model"), given.get("weights"), given.get("name")
    if models:
        if weights and len(weights) != len(models):
            raise SpecError(
                f"Got {len(weights)} --weights for {len(models)} --model options; give one per model, in order."
            )
        if names and len(names) != len(models):
            raise SpecError(f"Got {len(names)} --name for {len(models)} --model options; give one per model, in order.")
        overrides["models"] = [
            {"spec": spec, **({"weights": str(weights[i])} if weights else {}), **({"name": names[i]} if names else {})}
            for i, spec in enumerate(models)
        ]
    elif weights or names:
        raise SpecError("--weights and --name go with --model: give one of each per --model, in order.")
    solver_text, param = given.get("solver"), given.get("param")
    if solver_text is not None:
        overrides.setdefault("fit", {})["solvers"] = split_solvers(solver_text)
    if param:
        solvers = overrides.get("fit", {}).get("solvers") or base.get("fit", {}).get("solvers") or ["refine"]
        overrides.setdefault("fit", {})["params"] = parse_params(param, list(solvers))
    built = from_mapping(layered(config, overrides), str(config) if config is not None else "the command line")
    for key in ("pretrained", "data_config"):
        if given.get(key) is not None:
            built = built.with_(models=tuple(dataclasses.replace(m, **{key: given[key]}) for m in built.models))
    if given.get("templates") is not None:
        path = str(given["templates"])
        built = built.with_(models=tuple(dataclasses.replace(m, templates=path) for m in built.models))
    for key, option in (("head", "--head"), ("features", "--features")):
        values = given.get(key)
        if not values:
            continue
        if len(values) not in (1, len(built.models)):
            raise SpecError(
                f"Got {len(values)} {option} for {len(built.models)} models; give one for every model, or one per "
                "--model, in order."
            )
        each = values * len(built.models) if len(values) == 1 else values
        built = built.with_(
            models=tuple(dataclasses.replace(m, **{key: v}) for m, v in zip(built.models, each, strict=True))
        )
    offsets = given.get("head_offset")
    if offsets:
        if len(offsets) not in (1, len(built.models)):
            raise SpecError(
                f"Got {len(offsets)} --head-offset for {len(built.models)} models; give one for every model, or one "
                "per --model, in order."
            )
        each = offsets * len(built.models) if len(offsets) == 1 else offsets
        built = built.with_(
            models=tuple(dataclasses.replace(m, head_offset=k) for m, k in zip(built.models, each, strict=True))
        )
    return built
