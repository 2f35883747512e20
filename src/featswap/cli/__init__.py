"""The command line: each command builds a run config from its options (over `--config FILE`) and calls the
experiment; it holds no logic of its own. Heavy modules are imported inside each command, so that `--help`
and `featswap report` start without torch, zarr or ray. Failures are one `error:` line (`featswap.cli.errors`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from featswap.cli.errors import OneLineErrors
from featswap.cli.options import (
    AddressOpt,
    BadImageOpt,
    BatchSizeOpt,
    ChunkRowsOpt,
    ClassNamesOpt,
    ConfigOpt,
    CpusPerWorkerOpt,
    DataConfigOpt,
    DataOpt,
    DecodeOpt,
    DeviceOpt,
    EngineOpt,
    EvalDataOpt,
    FeaturesOpt,
    FitDataOpt,
    GpusPerWorkerOpt,
    HeadOffsetOpt,
    HeadOpt,
    KnnKOpt,
    LayersOpt,
    MeasuresOpt,
    ModelsOpt,
    NamesOpt,
    NBootOpt,
    NxnRowsOpt,
    OutDirOpt,
    ParamOpt,
    PrecisionOpt,
    PretrainedOpt,
    QuietOpt,
    RayWorkersOpt,
    RbfSigmaOpt,
    RsaCompareOpt,
    RsaDistanceOpt,
    SeedOpt,
    SimilarityOpt,
    SolversOpt,
    StoreOpt,
    SvccaKOpt,
    TemplatesOpt,
    TrainLimitOpt,
    ValFractionOpt,
    WeightsOpt,
    WorkersOpt,
    at_least,
    options_given,
    run_config,
)
from featswap.errors import SpecError

app = typer.Typer(
    cls=OneLineErrors,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    help="Do two trained networks extract the same information? Fit affine maps between their features "
    "and classify with the other network's untouched head.\n\nStart with: `featswap demo --out runs/demo`",
)


@app.callback()
def main(
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            help="CPU threads for large work (forward passes, products of features): torch's and numpy's BLAS. "
            "Default: torch's choice (the machine's cores). Small solver steps always run on one thread. "
            "Example: `featswap --threads 4 compare ...`",
            callback=at_least("--threads", 1),
        ),
    ] = None,
) -> None:
    """Do two trained networks extract the same information?"""
    from featswap.heap import keep_freed_memory

    keep_freed_memory()  # forward passes on the CPU reuse freed pages instead of faulting them in anew
    if threads is not None:
        from featswap.threads import set_threads

        set_threads(threads)  # at most the machine's CPUs (SpecError otherwise)


CollectionsOpt = Annotated[
    list[str] | None,
    typer.Option("--collection", help="Evaluation collection(s) in the store; default those extracted for evaluation."),
]
FitCollectionOpt = Annotated[
    str | None, typer.Option("--collection", help="Collection to fit on; default the store's fitting collection.")
]
PartOpt = Annotated[
    list[str] | None,
    typer.Option("--part", help="Extract only the fitting (`fit`) or the evaluation (`eval`) images; default both."),
]


@app.command()
def demo(
    out: OutDirOpt = None,
    paper_iterations: Annotated[
        int | None,
        typer.Option(help="Iterations of the paper solver (3000).", callback=at_least("--paper-iterations", 1)),
    ] = None,
    config: ConfigOpt = None,
    n_boot: NBootOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """The whole experiment on the embedded digits set (1,797 real 8x8 digits).

    Trains `tiny-resnet` and `tiny-inception` (cached in OUT/weights), extracts features, fits maps with
    the `paper` and `lstsq` solvers, evaluates and writes OUT/metrics.json, OUT/report.md, OUT/figures.

    Example: `featswap demo --out runs/demo`
    """
    from featswap.demo import run_demo

    run_demo(out or Path("runs/demo"), paper_iterations=paper_iterations, quiet=quiet, config=config, n_boot=n_boot)


@app.command()
def extract(
    config: ConfigOpt = None,
    model: ModelsOpt = None,
    weights: WeightsOpt = None,
    name: NamesOpt = None,
    pretrained: PretrainedOpt = None,
    data_config: DataConfigOpt = None,
    head_offset: HeadOffsetOpt = None,
    head: HeadOpt = None,
    features: FeaturesOpt = None,
    templates: TemplatesOpt = None,
    data: DataOpt = None,
    val_fraction: ValFractionOpt = None,
    fit_data: FitDataOpt = None,
    eval_data: EvalDataOpt = None,
    train_limit: TrainLimitOpt = None,
    class_names: ClassNamesOpt = None,
    part: PartOpt = None,
    batch_size: BatchSizeOpt = None,
    chunk_rows: ChunkRowsOpt = None,
    workers: WorkersOpt = None,
    on_bad_image: BadImageOpt = None,
    precision: PrecisionOpt = None,
    decode: DecodeOpt = None,
    engine: EngineOpt = None,
    device: DeviceOpt = None,
    address: AddressOpt = None,
    ray_workers: RayWorkersOpt = None,
    gpus_per_worker: GpusPerWorkerOpt = None,
    cpus_per_worker: CpusPerWorkerOpt = None,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Extract the penultimate features of one or more models for the fitting and evaluation images into a
    feature store (resumable: finished chunks are kept, damaged ones recomputed).

    Example: `featswap extract --model tiny-resnet --weights runs/demo/weights/tiny-resnet.safetensors
    --data digits --store runs/digits.zarr`

    On a Ray cluster: `featswap extract ... --engine ray --address auto --gpus-per-worker 1`
    """
    from featswap.experiment import MEMORY, Experiment

    roles = tuple(part or ("fit", "eval"))
    for role in roles:
        if role not in ("fit", "eval"):
            raise SpecError(f"--part must be fit or eval; got {role!r}.")
    settings = run_config(config, **options_given(locals()))
    if (settings.store or "").startswith(MEMORY):
        raise SpecError(
            f"--store {settings.store} lives in this command's memory and would vanish when it ends, with every "
            "feature extracted; give extract a directory or a URL that lasts (or run everything at once with compare)."
        )
    for result in Experiment(settings, quiet=quiet).extract(roles=roles):
        repaired = f", {result.repaired_chunks} damaged chunk(s) recomputed" if result.repaired_chunks else ""
        typer.echo(
            f"{result.model} / {result.collection}: {result.rows} rows ({result.computed_rows} computed{repaired}) "
            f"in {result.seconds:.1f} s; " + logits_text(result.logits_max_abs_diff)
        )


def logits_text(diff: float | None) -> str:
    """The logits check's outcome for the terminal: its max |diff|, or that a probe head has none to check."""
    return (
        "no logits to check (probe head, trained on the fitting features)"
        if diff is None
        else (f"logits check max |diff| {diff:.2e}")
    )


@app.command()
def fit(
    source: Annotated[str, typer.Option(help="Model whose features are mapped.")],
    target: Annotated[str, typer.Option(help="Model whose feature space (and head) is mapped to.")],
    out: Annotated[Path, typer.Option(help="Where to write the map (.safetensors).")],
    config: ConfigOpt = None,
    store: StoreOpt = None,
    solver: Annotated[
        str | None,
        typer.Option(
            help="refine, paper, lstsq, procrustes or heads; default the --config file's one solver, else refine."
        ),
    ] = None,
    param: ParamOpt = None,
    collection: FitCollectionOpt = None,
    engine: EngineOpt = None,
    device: DeviceOpt = None,
    address: AddressOpt = None,
) -> None:
    """Fit an affine map from SOURCE's to TARGET's features on the store's fitting images.

    Example: `featswap fit --store runs/digits.zarr --source tiny-inception --target tiny-resnet
    --solver paper --param iterations=2000 --out maps/i2r.safetensors`
    """
    from featswap.experiment import Experiment, save_map
    from featswap.experiment.fitting import small_fit_note
    from featswap.mapping.affine_map import is_featswap_map
    from featswap.outputs.paths import check_output_file

    settings = run_config(config, **options_given(locals(), ignore=("out",)))  # OUT: the map file, not a run
    solvers = settings.fit.solvers
    if solver is None and len(solvers) > 1:
        raise SpecError(
            f"{config} names {len(solvers)} solvers ({', '.join(solvers)}); fit writes one map: choose one with "
            f"--solver, e.g. --solver {solvers[0]}."
        )
    chosen = solvers[0]
    check_output_file(out, is_featswap_map, "featswap map")
    fitted = Experiment(settings, quiet=True).fit_stored(source, target, chosen, collection)
    save_map(fitted, out)
    typer.echo(
        f"{source} -> {target} ({chosen}): train loss {fitted.train_loss:.4f}, {fitted.amap.fit_seconds_:.2f} s; "
        f"wrote {out}"
    )
    note = small_fit_note(fitted)
    if note:
        typer.echo(note)


@app.command()
def evaluate(
    maps: Annotated[list[Path], typer.Option(help="Map files written by `featswap fit` (repeat the option).")],
    out: Annotated[Path, typer.Option(help="Output directory for metrics.json and report.md.")],
    config: ConfigOpt = None,
    store: StoreOpt = None,
    collection: CollectionsOpt = None,
    n_boot: NBootOpt = None,
    seed: SeedOpt = None,
    similarity: SimilarityOpt = None,
    knn_k: KnnKOpt = None,
    svcca_k: SvccaKOpt = None,
    measures: MeasuresOpt = None,
    rbf_sigma: RbfSigmaOpt = None,
    rsa_distance: RsaDistanceOpt = None,
    rsa_compare: RsaCompareOpt = None,
    nxn_rows: NxnRowsOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Swap test of fitted maps on the store's evaluation images; writes metrics.json and report.md.

    Example: `featswap evaluate --store runs/digits.zarr --maps maps/i2r.safetensors --maps maps/r2i.safetensors
    --out runs/eval`
    """
    from featswap.experiment import Experiment, load_map
    from featswap.outputs.paths import check_run_dir

    settings = run_config(config, **options_given(locals()))
    experiment = Experiment(settings, quiet=quiet)
    check_run_dir(out)
    experiment.evaluate_stored([load_map(path) for path in maps], collection or [], out)
    typer.echo(f"wrote {out / 'metrics.json'} and {out / 'report.md'}")


@app.command()
def compare(
    config: ConfigOpt = None,
    model: ModelsOpt = None,
    weights: WeightsOpt = None,
    name: NamesOpt = None,
    pretrained: PretrainedOpt = None,
    data_config: DataConfigOpt = None,
    head_offset: HeadOffsetOpt = None,
    head: HeadOpt = None,
    features: FeaturesOpt = None,
    templates: TemplatesOpt = None,
    data: DataOpt = None,
    val_fraction: ValFractionOpt = None,
    fit_data: FitDataOpt = None,
    eval_data: EvalDataOpt = None,
    train_limit: TrainLimitOpt = None,
    class_names: ClassNamesOpt = None,
    batch_size: BatchSizeOpt = None,
    chunk_rows: ChunkRowsOpt = None,
    workers: WorkersOpt = None,
    on_bad_image: BadImageOpt = None,
    precision: PrecisionOpt = None,
    decode: DecodeOpt = None,
    solver: SolversOpt = None,
    param: ParamOpt = None,
    n_boot: NBootOpt = None,
    seed: SeedOpt = None,
    similarity: SimilarityOpt = None,
    knn_k: KnnKOpt = None,
    svcca_k: SvccaKOpt = None,
    measures: MeasuresOpt = None,
    rbf_sigma: RbfSigmaOpt = None,
    rsa_distance: RsaDistanceOpt = None,
    rsa_compare: RsaCompareOpt = None,
    nxn_rows: NxnRowsOpt = None,
    engine: EngineOpt = None,
    device: DeviceOpt = None,
    address: AddressOpt = None,
    ray_workers: RayWorkersOpt = None,
    gpus_per_worker: GpusPerWorkerOpt = None,
    cpus_per_worker: CpusPerWorkerOpt = None,
    store: StoreOpt = None,
    out: OutDirOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """All steps for every ordered pair of models: extract, fit, evaluate, similarity measures, report.

    Example: `featswap compare --model tiny-inception --weights runs/demo/weights/tiny-inception.safetensors
    --model tiny-resnet --weights runs/demo/weights/tiny-resnet.safetensors --data digits --out runs/cmp`

    Separate fitting and evaluation images: `--fit-data images:DIR --eval-data imagefolder:DIR2 [--eval-data ...]`.
    Repeat a run: `featswap compare --config runs/cmp/config.toml --out runs/cmp2`.
    On a Ray cluster (extraction and the fitting statistics): add `--engine ray --address auto`.
    """
    from featswap.experiment import Experiment

    settings = run_config(config, **options_given(locals()))
    experiment = Experiment(settings, quiet=quiet)
    experiment.run()
    done = Path(experiment.config.out or ".")
    typer.echo(f"wrote {done / 'metrics.json'} and {done / 'report.md'}")


@app.command()
def paper(
    imagenet: Annotated[
        Path,
        typer.Argument(help="ILSVRC2012: a folder with train/ (synset folders) and val/ (any layout imagenet: reads)."),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output directory (its features.zarr is the feature store).")],
    checkpoints: Annotated[
        Path | None,
        typer.Option(
            help="Folder with Google's checkpoints as their tarballs unpack (inception_v4.ckpt, resnet_v2_152.ckpt) "
            "or converted .safetensors files."
        ),
    ] = None,
    inception: Annotated[
        str, typer.Option(help="The Inception side's SPEC, e.g. timm:inception_v4.tf_in1k (timm's cache).")
    ] = "tfslim:inception_v4",
    inception_weights: Annotated[
        Path | None, typer.Option(help="Its weight file (default: found in --checkpoints for a tfslim: SPEC).")
    ] = None,
    resnet: Annotated[str, typer.Option(help="The ResNet side's SPEC.")] = "tfslim:resnet_v2_152",
    resnet_weights: Annotated[
        Path | None, typer.Option(help="Its weight file (default: found in --checkpoints for a tfslim: SPEC).")
    ] = None,
    train_limit: TrainLimitOpt = None,
    iterations: Annotated[
        int | None,
        typer.Option(help="Iterations of the paper's recipe (100,000).", callback=at_least("--iterations", 1)),
    ] = None,
    precision: PrecisionOpt = None,
    decode: DecodeOpt = None,
    device: DeviceOpt = None,
    batch_size: BatchSizeOpt = None,
    chunk_rows: ChunkRowsOpt = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Image-decoding worker processes (default: one per CPU core on a GPU, up to 32; none on the CPU).",
            callback=at_least("--workers", 0),
        ),
    ] = None,
    n_boot: NBootOpt = None,
    similarity: Annotated[bool, typer.Option(help="Also compute the similarity measures (off).")] = False,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """The paper's whole experiment: TF-slim's Inception-v4 and ResNet-v2-152 from Google's checkpoints, maps fitted
    on ILSVRC2012 train/ with the paper's recipe (and featswap's refine and lstsq), the swap test on the val/
    images; OUT/paper.md sets the paper's Table 1 and Venn counts beside featswap's, with each difference and its
    95% interval. Started again with the same OUT, it resumes (finished feature chunks are kept).

    Example: `featswap paper /data/imagenet --checkpoints /data/checkpoints --out runs/paper`

    A smaller version: `--train-limit 50000 --iterations 10000`. Inception from timm's cache instead:
    `--inception timm:inception_v4.tf_in1k`. On a GPU, faster: `--precision bf16`.
    """
    from featswap.paper import PaperSide, paper_config, run_paper

    config = paper_config(
        imagenet,
        out,
        checkpoints,
        PaperSide(inception, inception_weights),
        PaperSide(resnet, resnet_weights),
        train_limit=train_limit,
        iterations=iterations,
        precision=precision or "fp32",
        decode=decode or "pil",
        device=device or "auto",
        batch_size=batch_size or 256,
        chunk_rows=chunk_rows or 4096,
        workers=workers,
        n_boot=n_boot or 1000,
        similarity=similarity,
        store=store,
    )
    run_paper(config, quiet=quiet)
    typer.echo(f"wrote {out / 'paper.md'}, {out / 'metrics.json'} and {out / 'report.md'}")
    if not quiet:
        typer.echo((out / "paper.md").read_text())


@app.command()
def stitch(
    config: ConfigOpt = None,
    model: ModelsOpt = None,
    weights: WeightsOpt = None,
    name: NamesOpt = None,
    pretrained: PretrainedOpt = None,
    data_config: DataConfigOpt = None,
    head_offset: HeadOffsetOpt = None,
    head: HeadOpt = None,
    features: FeaturesOpt = None,
    templates: TemplatesOpt = None,
    layers: LayersOpt = None,
    data: DataOpt = None,
    val_fraction: ValFractionOpt = None,
    fit_data: FitDataOpt = None,
    eval_data: EvalDataOpt = None,
    train_limit: TrainLimitOpt = None,
    class_names: ClassNamesOpt = None,
    batch_size: BatchSizeOpt = None,
    workers: WorkersOpt = None,
    on_bad_image: BadImageOpt = None,
    solver: Annotated[
        str | None, typer.Option(help="Comma-separated closed forms: lstsq (default), procrustes.")
    ] = None,
    param: ParamOpt = None,
    n_boot: NBootOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    out: OutDirOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Stitch two networks at any layer: an affine map of channels at every position (a 1x1 convolution) from one
    network's layer to the other's, fitted without labels on the fitting images; the other network's own later
    layers and head then classify the held-out images. Both directions, every layer pair; metrics.json, report.md
    and loss heatmaps in OUT.

    Example: `featswap stitch --model tiny-resnet --weights runs/demo/weights/tiny-resnet.safetensors
    --model tiny-inception --weights runs/demo/weights/tiny-inception.safetensors --data digits --out runs/stitch`

    Chosen layers: `--layers blocks.1:mixed2 --layers @pooled:@pooled` (`featswap layers --model SPEC` lists them;
    @pooled is the pooled features that feed the head, where stitching is `compare`). Repeat a run: `featswap
    stitch --config runs/stitch/config.toml --out runs/stitch2`.
    """
    from featswap.config import read_toml
    from featswap.experiment import Experiment

    if solver is None and not (config is not None and read_toml(config).get("fit", {}).get("solvers")):
        solver = "lstsq"  # compare's default (refine) holds rows in memory; stitching fits closed forms
    settings = run_config(config, **options_given(locals()))
    experiment = Experiment(settings, quiet=quiet)
    experiment.stitch()
    done = Path(experiment.config.out or ".")
    typer.echo(f"wrote {done / 'metrics.json'} and {done / 'report.md'}")


@app.command("similarity")
def similarity_command(
    out: Annotated[Path, typer.Option(help="Output directory for similarity.json.")],
    config: ConfigOpt = None,
    store: StoreOpt = None,
    model: Annotated[
        list[str] | None, typer.Option(help="Models to compare, by name (repeat); default all in the store.")
    ] = None,
    collection: CollectionsOpt = None,
    knn_k: KnnKOpt = None,
    svcca_k: SvccaKOpt = None,
    measures: MeasuresOpt = None,
    rbf_sigma: RbfSigmaOpt = None,
    rsa_distance: RsaDistanceOpt = None,
    rsa_compare: RsaCompareOpt = None,
    nxn_rows: NxnRowsOpt = None,
    engine: EngineOpt = None,
    device: DeviceOpt = None,
    address: AddressOpt = None,
) -> None:
    """Similarity measures (CKA, debiased CKA, Procrustes, CCA, SVCCA, PWCCA, mutual k-NN, output disagreement
    and JSD, map R^2 by default; --measures adds cknna, rbf_cka, debiased_rbf_cka, rsa, ridge_r2) for every pair
    of models in a store, on its evaluation images; map R^2 uses lstsq maps fitted on its fitting images.

    Example: `featswap similarity --store runs/digits.zarr --out runs/sim`

    N x N and extra measures: `featswap similarity --store runs/digits.zarr --out runs/sim2 --measures
    linear_cka,pwcca,cknna,rbf_cka,rsa --rsa-compare kendall`
    """
    from featswap.experiment import Experiment

    settings = run_config(config, **options_given(locals(), ignore=("model",)))  # names in the store, not SPECs
    experiment = Experiment(settings, quiet=True)
    for line in experiment.similarity(list(model or []), list(collection or []), out):
        typer.echo(line)


@app.command()
def layers(
    model: ModelsOpt = None,
    weights: WeightsOpt = None,
    data_config: DataConfigOpt = None,
    stages: Annotated[bool, typer.Option("--stages", help="Only the network's stage outputs.")] = False,
) -> None:
    """List the layers of a network a user can name (for stitching at a layer): each named module with the shape of
    its output on one image, in the order the forward pass runs them, and which are stage outputs (timm's
    feature_info; otherwise the top-level modules that output a feature map).

    Example: `featswap layers --model timm:resnet50 --stages`
    """
    from featswap.backbones.layers import layers_table, list_layers
    from featswap.backbones.sources import load_backbone

    if not model:
        raise SpecError("layers lists networks: give --model SPEC (repeat for several).")
    if weights and len(weights) != len(model):
        raise SpecError(
            f"Got {len(weights)} --weights for {len(model)} --model options; give one per model, in order, or none."
        )
    config: Any = data_config  # the option's check has turned the JSON into a mapping
    tables = []  # every network is loaded before anything is printed: a bad second SPEC is one error line
    for i, spec in enumerate(model):
        # The layers and their shapes do not depend on the weights: without --weights, random ones (no download).
        classes = 1000 if spec.startswith(("timm:", "torchvision:")) else 10  # ImageNet's, or the built-ins' digits
        # Layers need no classifier: head="probe" skips building one (a zero-shot head's text embeddings).
        backbone = load_backbone(spec, weights[i] if weights else None, classes, data_config=config, head="probe")
        found = list_layers(backbone.module, backbone.data_config.input_size, backbone.name)
        size = " x ".join(map(str, backbone.data_config.input_size))
        tables.append(f"{backbone.name}: input {size}\n{layers_table(found, stages_only=stages)}")
    typer.echo("\n\n".join(tables))


@app.command()
def convert(
    model: Annotated[str, typer.Option("--model", help="The network, e.g. tfslim:resnet_v2_152.")],
    weights: Annotated[Path, typer.Option("--weights", help="Its weights: for tfslim:, Google's TF checkpoint.")],
    out: Annotated[Path, typer.Option("--out", help="A new .safetensors file (never overwritten).")],
) -> None:
    """Convert a network's weights (for `tfslim:` networks, Google's TF checkpoint, read with the `tf` extra) to a
    safetensors file that `--weights` loads without TensorFlow and that gives the same features bit for bit.

    Example: `featswap convert --model tfslim:resnet_v2_152 --weights resnet_v2_152.ckpt --out rn152.safetensors`
    """
    from featswap.backbones.convert import convert as convert_weights

    done = convert_weights(model, weights, out)
    typer.echo(
        f"wrote {done.path}: {done.tensors} tensors, sha256 {done.sha256[:16]}… (from {weights}, sha256 "
        f"{done.source_sha256[:16]}…); give it as --weights {done.path}, no TensorFlow needed."
    )


@app.command()
def verify(store: Annotated[str, typer.Argument(help="A feature store (directory or URL).")]) -> None:
    """Check a whole feature store: every finished chunk of features against its checksum, every collection's
    ids and labels, every model's head. Says what is damaged and how to repair it; exits 2 when anything is.

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
