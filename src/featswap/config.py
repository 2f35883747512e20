"""A run is a config: frozen dataclasses built from the command line, from a TOML file, or in Python.

Precedence: flags override the file, the file overrides the defaults here. Every value is checked when its
dataclass is built, so a bad number from any of the three is refused before any work starts. Every run writes
its fully resolved config (`resolved`: model names filled in, paths made absolute, defaults spelled out) as
`config.toml`; `featswap compare --config OUT/config.toml --out OUT2` repeats the run with equal numbers.

```toml
store = "/abs/runs/cmp/features.zarr"
out = "/abs/runs/cmp"
models = [
    { spec = "tiny-resnet", weights = "/abs/w/tiny-resnet.safetensors", name = "tiny-resnet" },
]

[data]               # `data` with `val_fraction`, or `fit_data` and `eval_data`; class_names = "FILE"
data = "digits"
val_fraction = 0.3

[extraction]         # batch_size, chunk_rows, workers, on_bad_image, precision, decode
[fit]                # solvers = ["refine"], [fit.params.SOLVER] settings
[evaluation]         # n_boot, seed, similarity, measures, knn_k, svcca_k, rbf_sigma, rsa_distance, rsa_compare,
                     # nxn_rows
[engine]             # kind = "local" | "ray", device, address, ray_workers, gpus_per_worker, cpus_per_worker
[stitch]             # layers = ["stages"] or ["LAYER_A:LAYER_B", ...] (featswap stitch)
[featswap]           # written, not read: version = "0.2.0", commit = "<git commit of the source>" or "unknown"
```

This module imports neither torch nor zarr: the command line builds configs before it loads anything heavy.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from featswap import validate
from featswap.catalog.heads import HEAD_MODES
from featswap.catalog.imagenet import data_folder
from featswap.catalog.measures import MAX_ROWS, default_measures, selected
from featswap.catalog.naming import unique_names
from featswap.catalog.solvers import SOLVER_SETTINGS, make_settings
from featswap.errors import SpecError, closest
from featswap.threads import check_workers

#: rsa's RDM distances and comparisons (`featswap.similarity.rdm`, which cannot be imported here: numpy).
RSA_DISTANCES = ("euclidean", "correlation")
RSA_COMPARE = ("spearman", "pearson", "kendall")
#: The similarity measures a run computes unless told (`featswap.catalog.measures.default_measures`).
DEFAULT_MEASURES = default_measures()

ENGINES = ("local", "ray")
DEVICES = ("cpu", "cuda", "auto")
ON_BAD_IMAGE = ("fail", "skip")
#: Arithmetic of the forward passes: fp32, or bf16 / fp16 under torch.autocast (features are stored as float32).
PRECISIONS = ("fp32", "bf16", "fp16")
#: Where images are decoded: by Pillow in the workers, or JPEGs on the extraction's device (`featswap.extraction.
#: device_decode`).
DECODERS = ("pil", "device")
#: `--val-fraction` when the data do not say: digits keep their 70/30 split, folders hold out 20%.
DEFAULT_VAL_FRACTION = {"digits": 0.3}
FALLBACK_VAL_FRACTION = 0.2


def check_text(instance: Any) -> None:
    """Refuse a setting of the wrong kind where text is expected: `str` fields (or `str | None`) must be text,
    `tuple[str, ...]` fields text or a list of texts (one text is a list of one). Numbers and flags are checked
    by `validate` where they are used."""
    for f in fields(instance):
        value, kind = getattr(instance, f.name), str(f.type)
        if kind in ("str", "str | None") and not (isinstance(value, str) or (value is None and "None" in kind)):
            raise SpecError(f"{f.name} must be text; got {value!r}.")
        if kind == "tuple[str, ...]":
            items = (value,) if isinstance(value, str) else value
            if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
                raise SpecError(f"{f.name} must be a list of texts; got {value!r}.")
            object.__setattr__(instance, f.name, tuple(items))


@dataclass(frozen=True)
class ModelConfig:
    """One network: its SPEC, a local weight file, its name (default from the SPEC), a preprocessing override
    with timm's keys, whether timm/torchvision models without a weight file load their published weights, and
    how many leading outputs of its head are not classes."""

    spec: str
    weights: str | None = None
    name: str | None = None
    data_config: Mapping[str, Any] | None = None
    pretrained: bool = True
    #: Leading outputs of the head that are not classes (None: 1 for a 1001-output head, TF-slim's background).
    head_offset: int | None = None
    #: "auto" (its own or zero-shot head, a probe when it has none), "own" (required), "probe" (replaces its head).
    head: str = "auto"
    #: Which features, when not what the head consumes: pooled, cls, mean-tokens (hf:) or a layer's name.
    features: str | None = None
    #: A zero-shot head's prompt templates: a text file with one prompt per line, `{}` for the class name.
    templates: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.spec, str) or not self.spec:
            raise SpecError(f"A model needs a SPEC (e.g. tiny-resnet, timm:resnet50); got {self.spec!r}.")
        check_text(self)
        if self.head not in HEAD_MODES:
            raise SpecError(f"A model's head must be one of {', '.join(HEAD_MODES)}; got {self.head!r}.")
        if self.features is not None and not self.features.strip():
            raise SpecError("--features needs a choice: pooled, cls, mean-tokens or a layer's name.")
        validate.flag("pretrained", self.pretrained)
        if self.head_offset is not None:
            validate.integer("head_offset", self.head_offset, 0)
        if self.data_config is not None and not isinstance(self.data_config, Mapping):
            raise SpecError("A model's data_config must be a table with input_size, mean and std.")


@dataclass(frozen=True)
class DataSettings:
    """Where images come from: `data`, one labelled collection split into fitting (`train`) and evaluation
    (`val`) images by `val_fraction`; or `fit_data`, a collection to fit maps on (labels optional), and
    `eval_data`, one or more labelled collections to evaluate on. `train_limit` keeps a seeded subset of the
    fitting images (stratified by class when labelled); `seed` seeds the split and the subset; `class_names` names
    the heads' outputs in order (`--class-names FILE`)."""

    data: str | None = None
    val_fraction: float | None = None
    fit_data: str | None = None
    eval_data: tuple[str, ...] = ()
    train_limit: int | None = None
    seed: int = 0
    #: A text file of the heads' classes in order, one per line: labels are the index of each image's class name
    #: in it (a folder of some of the classes is then scored over those present).
    class_names: str | None = None

    def __post_init__(self) -> None:
        check_text(self)
        if self.val_fraction is not None:
            validate.real("val_fraction", self.val_fraction, 0, 1, low_open=True, high_open=True)
        if self.train_limit is not None:
            validate.integer("train_limit", self.train_limit, 1)
        validate.integer("seed", self.seed, 0)
        if self.data is not None and (self.fit_data is not None or self.eval_data):
            raise SpecError("Give either --data (split into fitting and evaluation images) or --fit-data with "
                            "--eval-data, not both.")  # fmt: skip
        if self.val_fraction is not None and self.data is None and (self.fit_data or self.eval_data):
            raise SpecError("--val-fraction splits --data; with --fit-data and --eval-data there is nothing to split.")
        if (self.fit_data is None) != (not self.eval_data):
            raise SpecError("--fit-data needs at least one --eval-data, and --eval-data needs --fit-data.")

    @property
    def given(self) -> bool:
        return self.data is not None or self.fit_data is not None


@dataclass(frozen=True)
class ExtractionSettings:
    """Images per forward pass, rows per stored (and resumable) chunk, worker processes that decode images,
    and what to do with an unreadable image (`fail`, or `skip`: record it and leave it out for every model).

    `precision`: the forward passes in fp32, or under torch.autocast in bf16 or fp16 (features are stored as
    float32 either way; the store records the precision as part of the model, so features at another precision
    are another model's). `decode`: images decoded by Pillow in the workers (`pil`), or JPEGs decoded on the
    extraction's device and preprocessed there (`device`: nvJPEG on a GPU whose speed the CPU cores cannot feed;
    recorded as part of the model too, since the pixels round differently)."""

    batch_size: int = 256
    chunk_rows: int = 4096
    workers: int = 0
    on_bad_image: str = "fail"
    precision: str = "fp32"
    decode: str = "pil"

    def __post_init__(self) -> None:
        check_text(self)
        validate.integer("batch_size", self.batch_size, 1)
        validate.integer("chunk_rows", self.chunk_rows, 1)
        check_workers("workers", self.workers)
        validate.choice("on_bad_image", self.on_bad_image, ON_BAD_IMAGE)
        validate.choice("precision", self.precision, PRECISIONS)
        validate.choice("decode", self.decode, DECODERS)


@dataclass(frozen=True)
class FitSettings:
    """Solvers to fit every ordered pair with, and per solver its settings (`params["paper"]["iterations"]`)."""

    solvers: tuple[str, ...] = ("refine",)
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_text(self)
        if not isinstance(self.params, Mapping):
            raise SpecError(f"params must be a table of solver settings ([fit.params.SOLVER]); got {self.params!r}.")
        if not self.solvers:
            raise SpecError("--solver needs at least one solver name.")
        for name in self.solvers:
            SOLVER_SETTINGS.get(name)
        unused = sorted(set(self.params) - set(self.solvers))
        if unused:
            raise SpecError(f"Settings given for solver(s) {unused} that this run does not use ({list(self.solvers)}).")
        for name, settings in self.params.items():
            if not isinstance(settings, Mapping):
                raise SpecError(f"The settings of solver {name!r} must be a table of KEY = VALUE.")
            make_settings(name, **settings)


#: Fewest bootstrap resamples: with fewer, the 2.5% and 97.5% percentiles of a 95% interval fall on or beyond the
#: extreme resamples, and the interval need not even contain its estimate (as it did not with 1).
MIN_BOOT = 20

#: Most bootstrap resamples: a million resamples hold each interval's ends to about 1e-4 of their spread; more
#: would only fill memory (16 bytes a resample) after the whole run.
MAX_BOOT = 1_000_000


@dataclass(frozen=True)
class EvaluationSettings:
    """Bootstrap resamples and seed of the confidence intervals; whether to compute the similarity measures, and
    which (`measures`, names from `featswap.catalog.measures.MEASURES`; default those that need no N x N matrix
    or extra fit), with `knn_k` neighbours for mutual_knn and cknna, `svcca_k` principal directions for svcca,
    `rbf_sigma` the bandwidth of rbf_cka (times the median distance), `rsa_distance` and `rsa_compare` rsa's RDM
    distance and comparison; `nxn_rows`: the N x N measures on a seeded subsample of this many images when there
    are more (0: all images, refusing above `featswap.similarity.kernels.MAX_ROWS`)."""

    n_boot: int = 1000
    seed: int = 0
    similarity: bool = True
    measures: tuple[str, ...] = DEFAULT_MEASURES
    knn_k: int = 10
    svcca_k: int = 20
    rbf_sigma: float = 0.8
    rsa_distance: str = "euclidean"
    rsa_compare: str = "spearman"
    nxn_rows: int = 0

    def __post_init__(self) -> None:
        check_text(self)
        validate.integer("n_boot", self.n_boot, MIN_BOOT, MAX_BOOT)
        validate.integer("seed", self.seed, 0)
        validate.flag("similarity", self.similarity)
        object.__setattr__(self, "measures", selected(self.measures))
        validate.integer("knn_k", self.knn_k, 1)
        validate.integer("svcca_k", self.svcca_k, 1)
        validate.real("rbf_sigma", self.rbf_sigma, 0, low_open=True)
        validate.choice("rsa_distance", self.rsa_distance, RSA_DISTANCES)
        validate.choice("rsa_compare", self.rsa_compare, RSA_COMPARE)
        validate.integer("nxn_rows", self.nxn_rows, 0, MAX_ROWS)
        if "cknna" in self.measures and self.knn_k < 2:
            raise SpecError(f"cknna needs at least 2 neighbours; got knn_k={self.knn_k}.")


@dataclass(frozen=True)
class EngineSettings:
    """Where the work runs: `local` (this process, on `device`), or `ray` (a cluster at `address`, default a
    local instance; `ray_workers` inference actors with `gpus_per_worker` and `cpus_per_worker` each)."""

    kind: str = "local"
    device: str = "cpu"
    address: str | None = None
    ray_workers: int | None = None
    gpus_per_worker: float | None = None
    cpus_per_worker: float | None = None

    def __post_init__(self) -> None:
        check_text(self)
        if self.kind not in ENGINES:
            raise SpecError(f"--engine must be local or ray; got {self.kind!r}.")
        validate.choice("device", self.device, DEVICES)
        ray_only = {"address": self.address, "ray_workers": self.ray_workers,
                    "gpus_per_worker": self.gpus_per_worker, "cpus_per_worker": self.cpus_per_worker}  # fmt: skip
        given = sorted(k for k, v in ray_only.items() if v is not None)
        if self.kind != "ray" and given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise SpecError(f"{flags} only appl{'y' if len(given) > 1 else 'ies'} to --engine ray.")
        if self.kind == "ray" and self.device != "cpu":
            raise SpecError(
                "With --engine ray, workers get GPUs with --gpus-per-worker; --device applies to local runs."
            )
        if self.ray_workers is not None:
            validate.integer("ray_workers", self.ray_workers, 1)
        if self.gpus_per_worker is not None:
            validate.real("gpus_per_worker", self.gpus_per_worker, 0)
        if self.cpus_per_worker is not None:
            validate.real("cpus_per_worker", self.cpus_per_worker, 0, low_open=True)


@dataclass(frozen=True)
class StitchSettings:
    """Which layers `featswap stitch` joins: `LAYER_A:LAYER_B` pairs (a layer of the first model, one of the
    second, as `featswap layers` names them; `@pooled` is the pooled features that feed the head), or `stages`
    for every pair of the two networks' stage outputs and pooled features."""

    layers: tuple[str, ...] = ("stages",)

    def __post_init__(self) -> None:
        check_text(self)
        for item in self.layers:
            first, sep, second = item.partition(":")
            if item != "stages" and (not sep or not first or not second or ":" in second):
                raise SpecError(
                    "--layers takes LAYER_A:LAYER_B (one colon; layers of the first and the second --model, as "
                    f"`featswap layers` names them) or stages; got {item!r}."
                )


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs: the models, the data, and how to extract, fit, evaluate and where to run; the
    feature store (`store`, default OUT/features.zarr) and the output directory (`out`).

    Examples:
        Built in Python, or from a TOML file with flags over it; `to_toml` writes what `build` reads back:

        >>> import tempfile
        >>> from pathlib import Path
        >>> from featswap import DataSettings, FitSettings, ModelConfig, RunConfig
        >>> config = RunConfig(
        ...     models=(ModelConfig("tiny-resnet"), ModelConfig("tiny-inception")),
        ...     data=DataSettings(data="digits"),
        ...     fit=FitSettings(("lstsq",)),
        ... )
        >>> config.fit.solvers, config.evaluation.n_boot
        (('lstsq',), 1000)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     _ = (Path(folder) / "run.toml").write_text(config.to_toml())
        ...     again = RunConfig.build(Path(folder) / "run.toml", overrides={"evaluation": {"n_boot": 200}})
        >>> again == config.with_(evaluation=config.evaluation.__class__(n_boot=200))
        True
        >>> FitSettings(("lstq",))
        Traceback (most recent call last):
        ...
        featswap.errors.SpecError: Unknown solver 'lstq'. Did you mean 'lstsq'?
    """

    models: tuple[ModelConfig, ...] = ()
    data: DataSettings = field(default_factory=DataSettings)
    extraction: ExtractionSettings = field(default_factory=ExtractionSettings)
    fit: FitSettings = field(default_factory=FitSettings)
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    stitch: StitchSettings = field(default_factory=StitchSettings)
    store: str | None = None
    out: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))
        if self.extraction.decode == "device" and self.engine.kind == "ray":
            raise SpecError("--decode device decodes on this machine's device; with --engine ray use --decode pil.")

    # -- building ------------------------------------------------------------------------------------
    @classmethod
    def build(cls, file: str | Path | None = None, *, overrides: Mapping[str, Any] | None = None) -> RunConfig:
        """The defaults, overridden by the TOML `file` (if any), overridden by `overrides` (the flags given,
        as a nested mapping with the file's layout)."""
        return from_mapping(layered(file, overrides), str(file) if file else "the command line")

    def to_toml(self) -> str:
        """The config as TOML, with a `[featswap]` table saying which featswap wrote it (`version`, and the git
        `commit` of its source, "unknown" outside a git checkout); reading it back ignores that table."""
        import tomli_w

        from featswap.provenance import provenance

        return tomli_w.dumps({**_without_none(to_mapping(self)), PROVENANCE: provenance()})

    def with_(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)


SECTIONS: dict[str, type] = {
    "data": DataSettings,
    "extraction": ExtractionSettings,
    "fit": FitSettings,
    "evaluation": EvaluationSettings,
    "engine": EngineSettings,
    "stitch": StitchSettings,
}
TOP_LEVEL = ("models", "store", "out", *SECTIONS)
#: The table of a written config that records which featswap wrote it (`featswap.provenance`): not a setting, so
#: reading a config ignores it, and a file with it or without it gives the same RunConfig.
PROVENANCE = "featswap"


def read_toml(path: Path) -> dict[str, Any]:
    """A config file as a mapping; a missing or malformed file is one clear error."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise SpecError(f"Config file {path} does not exist.") from None
    except IsADirectoryError:
        raise SpecError(f"--config {path} is a directory; give a TOML file.") from None
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path} is not valid TOML: {err}.") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"Cannot read the config file {path}: {err}.") from None


def layered(file: str | Path | None, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The settings of a TOML `file` (relative paths in it taken from the file's folder) under `overrides` (the
    flags given). A flag replaces what the file says for the same thing: `data` replaces the file's `fit_data`
    and `eval_data` and the reverse, and the solvers given keep only the file's settings of those solvers."""
    base = anchored(read_toml(Path(file)), Path(file).resolve().parent) if file is not None else {}
    top = dict(overrides or {})
    data, given_data = dict(base.get("data", {})), top.get("data", {})
    if isinstance(data, dict) and isinstance(given_data, Mapping):
        if "data" in given_data:
            data = {k: v for k, v in data.items() if k not in ("fit_data", "eval_data")}
        if "fit_data" in given_data or "eval_data" in given_data:
            data = {k: v for k, v in data.items() if k not in ("data", "val_fraction")}
        base = {**base, "data": data} if data or "data" in base else base
    fit, given_fit = base.get("fit", {}), top.get("fit", {})
    if isinstance(fit, dict) and isinstance(given_fit, Mapping) and "solvers" in given_fit:
        params = fit.get("params", {})
        if isinstance(params, Mapping):
            kept = {k: v for k, v in params.items() if k in given_fit["solvers"]}
            base = {**base, "fit": {**fit, "params": kept}}
    return deep_merge(base, top)


def anchored(values: dict[str, Any], folder: Path) -> dict[str, Any]:
    """A config file's settings with relative paths (model files, weights, data folders, store, out) taken from
    `folder`, the file's own, so that the file means the same from any working directory."""
    values = dict(values)
    models = values.get("models")
    if isinstance(models, list):
        values["models"] = [
            {**m,
             **({"spec": absolute_model_spec(m["spec"], folder)} if isinstance(m.get("spec"), str) else {}),
             **({"weights": absolute(m["weights"], folder)} if isinstance(m.get("weights"), str) else {}),
             **({"templates": absolute(m["templates"], folder)} if isinstance(m.get("templates"), str) else {})}
            if isinstance(m, dict) else m
            for m in models
        ]  # fmt: skip
    data = values.get("data")
    if isinstance(data, dict):
        data = dict(data)
        for key in ("data", "fit_data"):
            if isinstance(data.get(key), str):
                data[key] = absolute_data_spec(data[key], folder)
        if isinstance(data.get("eval_data"), list):
            data["eval_data"] = [absolute_data_spec(e, folder) if isinstance(e, str) else e for e in data["eval_data"]]
        if isinstance(data.get("class_names"), str):
            data["class_names"] = absolute(data["class_names"], folder)
        values["data"] = data
    for key in ("store", "out"):
        if isinstance(values.get(key), str):
            values[key] = absolute(values[key], folder)
    return values


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `top`'s values over it; tables merge key by key, anything else (lists too) is replaced."""
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _build(kind: type, values: Any, where: str) -> Any:
    if not isinstance(values, Mapping):
        raise SpecError(f"[{where}] must be a table of settings; got {values!r}.")
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SpecError(f"Unknown setting {unknown[0]!r} in [{where}].{closest(unknown[0], known)}")
    missing = [f.name for f in fields(kind) if f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING and f.name not in values]  # fmt: skip
    if missing:
        raise SpecError(f'[{where}] needs {", ".join(missing)} (e.g. {missing[0]} = "tiny-resnet").')
    return kind(**values)


def from_mapping(values: Mapping[str, Any], source: str = "the config") -> RunConfig:
    """A RunConfig from a mapping with the file's layout (unknown keys are an error naming them; the `[featswap]`
    table that records which featswap wrote a file is ignored)."""
    unknown = sorted(set(values) - {*TOP_LEVEL, PROVENANCE})
    if unknown:
        raise SpecError(f"Unknown key {unknown[0]!r} in {source}.{closest(unknown[0], TOP_LEVEL)}")
    models = values.get("models", [])
    if not isinstance(models, list | tuple):
        raise SpecError(f"models in {source} must be a list of tables, each with a spec.")
    built: dict[str, Any] = {"models": tuple(_build(ModelConfig, m, "models") for m in models)}
    for name, kind in SECTIONS.items():
        if name in values:
            built[name] = _build(kind, values[name], name)
    for key in ("store", "out"):
        if values.get(key) is not None:
            if not isinstance(values[key], str):
                raise SpecError(f"{key} in {source} must be a path or URL; got {values[key]!r}.")
            built[key] = values[key]
    return RunConfig(**built)


def to_mapping(config: RunConfig) -> dict[str, Any]:
    """The config as plain data (tuples as lists), in the file's layout."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    result: dict[str, Any] = plain(config)
    return result


def _without_none(value: Any) -> Any:
    """TOML has no null: unset values are left out (and read back as their defaults, which are None)."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


# -- resolving ---------------------------------------------------------------------------------------------
def absolute(path: str, folder: Path | None = None) -> str:
    """A local path made absolute (a relative one taken from `folder`, default the working directory); a URL
    (`s3://...`) as it is."""
    if "://" in path:
        return path
    expanded = Path(path).expanduser()
    return str((expanded if folder is None or expanded.is_absolute() else folder / expanded).resolve())


def absolute_model_spec(spec: str, folder: Path | None = None) -> str:
    """`path/file.py:function` with an absolute path; other SPECs as they are."""
    if ".py:" in spec:
        path, _, function = spec.rpartition(":")
        return f"{absolute(path, folder)}:{function}"
    prefix, _, rest = spec.partition(":")
    if prefix == "hf" and rest and "://" not in rest:  # a save_pretrained directory (not a hub name)
        local = Path(rest).expanduser()
        local = local if folder is None or local.is_absolute() else folder / local
        if local.is_dir():
            return f"hf:{local.resolve()}"
    return spec


def absolute_data_spec(spec: str, folder: Path | None = None) -> str:
    """`[NAME=]kind:DIR` with an absolute DIR; `digits` as it is."""
    name, sep, rest = spec.partition("=") if "=" in spec.partition(":")[0] else ("", "", spec)
    kind, colon, path = rest.partition(":")
    return f"{name}{sep}{kind}{colon}{absolute(path, folder)}" if path else spec


def has_own_parts(spec: str) -> bool:
    """Whether a data SPEC's folder has its own `train/` and `val/` folders (then `val_fraction` does not apply)."""
    rest = spec.partition("=")[2] if "=" in spec.partition(":")[0] else spec
    kind, _, path = rest.partition(":")
    if kind == "imagenet":  # Kaggle's root: its train/ and val/ lie deeper
        return all((data_folder(Path(path)) / p).is_dir() for p in ("train", "val"))
    return kind == "imagefolder" and all((Path(path) / p).is_dir() for p in ("train", "val"))


def resolved(config: RunConfig) -> RunConfig:
    """The config with every default spelled out: model names, absolute paths, the held-out fraction of
    `data`, and the store (default OUT/features.zarr). Running it again from any directory repeats the run."""
    names = unique_names([m.spec for m in config.models], [m.name for m in config.models])
    models = tuple(
        dataclasses.replace(
            m,
            spec=absolute_model_spec(m.spec),
            weights=absolute(m.weights) if m.weights else None,
            name=name,
            templates=absolute(m.templates) if m.templates else None,
        )
        for m, name in zip(config.models, names, strict=True)
    )
    data = config.data
    if data.data is not None:
        rest = data.data.partition("=")[2] if "=" in data.data.partition(":")[0] else data.data
        default = DEFAULT_VAL_FRACTION.get(rest.partition(":")[0], FALLBACK_VAL_FRACTION)
        fraction = data.val_fraction if has_own_parts(data.data) else (data.val_fraction or default)
        data = dataclasses.replace(data, data=absolute_data_spec(data.data), val_fraction=fraction)
    else:
        data = dataclasses.replace(
            data,
            fit_data=absolute_data_spec(data.fit_data) if data.fit_data else None,
            eval_data=tuple(absolute_data_spec(e) for e in data.eval_data),
        )
    if data.class_names is not None:
        data = dataclasses.replace(data, class_names=absolute(data.class_names))
    out = absolute(config.out) if config.out else None
    store = absolute(config.store) if config.store else (str(Path(out) / "features.zarr") if out else None)
    return dataclasses.replace(config, models=models, data=data, store=store, out=out, fit=all_settings(config.fit))


def all_settings(fit: FitSettings) -> FitSettings:
    """`fit` with every setting of each solver spelled out, defaults included, so that a later featswap with
    other defaults still repeats the run."""
    params = {name: dataclasses.asdict(make_settings(name, **fit.params.get(name, {}))) for name in fit.solvers}
    return dataclasses.replace(fit, params=params)
