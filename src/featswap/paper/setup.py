"""`featswap paper`'s run, as a config: the paper's two networks, ImageNet's `train/` to fit and `val/` to evaluate,
and the paper's recipe beside `refine` and `lstsq`. This module only builds the `RunConfig`; the experiment runs it
like any other (`featswap compare --config OUT/config.toml` repeats it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from featswap.catalog.naming import check_name
from featswap.config import (
    DataSettings,
    EngineSettings,
    EvaluationSettings,
    ExtractionSettings,
    FitSettings,
    ModelConfig,
    RunConfig,
)
from featswap.errors import DataError, SpecError
from featswap.paper.figures import CHECKPOINTS

#: The paper's two networks, as TF-slim built them (Google's checkpoints in `--checkpoints DIR`).
INCEPTION = "tfslim:inception_v4"
RESNET = "tfslim:resnet_v2_152"
#: The solvers of the run: the paper's recipe first (the one its figures are set beside), then featswap's own.
SOLVERS = ("paper", "refine", "lstsq")
#: Decoding workers at most (a GPU run starts one per CPU core, up to this many).
MAX_WORKERS = 32
#: A weight file's suffixes: TF-slim's checkpoint (V1 single file, or V2's `.index` beside its data) or safetensors.
TFSLIM_PREFIX = "tfslim:"


@dataclass(frozen=True)
class PaperSide:
    """One of the paper's two networks: its SPEC and its weight file (None: found in `--checkpoints DIR` for a
    `tfslim:` SPEC, else the family's published weights, e.g. timm's cache)."""

    spec: str
    weights: Path | None = None


def find_checkpoint(folder: Path, arch: str) -> Path | None:
    """The weights of TF-slim's `arch` in `folder`: `ARCH.safetensors` (converted by `featswap convert`), else the
    checkpoint prefix `ARCH.ckpt` (V1, one file, as Google's tarballs unpack; or V2, `ARCH.ckpt.index` with its
    data files); None when there is none."""
    for candidate in (folder / f"{arch}.safetensors", folder / f"{arch}.ckpt"):
        if candidate.is_file():
            return candidate
    prefix = folder / f"{arch}.ckpt"
    return prefix if Path(f"{prefix}.index").is_file() else None


def expected_files(arch: str) -> str:
    """What `find_checkpoint` looks for, in words."""
    return f"{arch}.ckpt (or {arch}.safetensors)"


def missing_checkpoints_error(folder: Path | None, archs: list[str]) -> SpecError:
    """The one error for checkpoints that `--checkpoints DIR` lacks: what is expected and how to get it."""
    where = f"--checkpoints {folder} lacks" if folder is not None else "No --checkpoints DIR given, which must hold"
    tarballs = "; ".join(f"{CHECKPOINTS[a][0]} unpacks {CHECKPOINTS[a][1]}" for a in archs if a in CHECKPOINTS)
    return SpecError(
        f"{where} {' and '.join(expected_files(a) for a in archs)}: download Google's TF-slim tarballs and unpack them "
        f"there ({tarballs}), or give files converted by `featswap convert --model tfslim:ARCH --weights CKPT --out "
        "DIR/ARCH.safetensors`; the Inception side may instead be --inception timm:inception_v4.tf_in1k (timm's cache)."
    )


def resolve_weights(sides: list[PaperSide], checkpoints: Path | None) -> list[str | None]:
    """Each side's weight file: the one given, else (a `tfslim:` SPEC) its checkpoint in `checkpoints`, else None.
    Every checkpoint missing is named in one error."""
    if checkpoints is not None and not checkpoints.is_dir():
        raise SpecError(f"--checkpoints {checkpoints} is not a directory; give the folder holding the checkpoints.")
    found: list[str | None] = []
    missing = []
    for side in sides:
        if side.weights is not None:
            if not side.weights.exists() and not Path(f"{side.weights}.index").is_file():
                raise SpecError(f"The weight file {side.weights} does not exist; check the path.")
            found.append(str(side.weights))
        elif side.spec.startswith(TFSLIM_PREFIX):
            arch = side.spec[len(TFSLIM_PREFIX) :]
            path = find_checkpoint(checkpoints, arch) if checkpoints is not None else None
            if path is None:
                missing.append(arch)
            found.append(str(path) if path is not None else None)
        else:
            found.append(None)
    if missing:
        raise missing_checkpoints_error(checkpoints, missing)
    return found


def side_names(specs: list[str], precision: str) -> list[str]:
    """Each network's name in the store and report: the SPEC's last part (`inception_v4` of `tfslim:inception_v4`,
    `mobilenet_v1` of `models.py:mobilenet_v1`), with `-bf16` / `-fp16` at reduced precision, so that one store
    holds a network's features at each precision as separate models."""
    names: list[str] = []
    for spec in specs:
        base = spec.rpartition(":")[2] or spec
        base = base if precision == "fp32" else f"{base}-{precision}"
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(check_name(name, "--inception/--resnet", "network name"))
    return names


def check_imagenet(imagenet: Path) -> None:
    """Refuse an ImageNet folder without both `train/` (to fit on) and `val/` (to evaluate on); their contents are
    read (and checked) once, by the run."""
    from featswap.config import has_own_parts

    if not imagenet.is_dir():
        raise DataError(
            f"IMAGENET {imagenet} is not a directory; give the folder holding ILSVRC2012's train/ and val/."
        )
    if not has_own_parts(f"imagenet:{imagenet}"):
        raise DataError(
            f"IMAGENET {imagenet} must hold both train/ (the images to fit the maps on, in synset folders) and val/ "
            "(the 50,000 to evaluate on, in any layout `imagenet:DIR` reads), as the paper used them."
        )


def default_workers(device: str) -> int:
    """Decoding workers: on a GPU one per CPU core (up to `MAX_WORKERS`), so that decoding keeps up with the
    network; on the CPU none (the forward passes already use every core)."""
    if device == "cpu":
        return 0
    if device == "auto":
        import torch

        if not torch.cuda.is_available():
            return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cores, MAX_WORKERS)


def paper_config(
    imagenet: Path,
    out: Path,
    checkpoints: Path | None = None,
    inception: PaperSide | None = None,
    resnet: PaperSide | None = None,
    train_limit: int | None = None,
    iterations: int | None = None,
    precision: str = "fp32",
    decode: str = "pil",
    device: str = "auto",
    batch_size: int = 256,
    chunk_rows: int = 4096,
    workers: int | None = None,
    n_boot: int = 1000,
    similarity: bool = False,
    store: str | None = None,
) -> RunConfig:
    """The paper's experiment as a `RunConfig`: models [Inception side, ResNet side] (that order: the report reads
    the roles from it), fitted on `imagenet`'s `train/` (`train_limit`: a seeded, class-stratified subset) and
    evaluated on its `val/`; solvers `paper` (its recipe, `iterations` of it, default the paper's 100,000),
    `refine` (at most as many iterations) and `lstsq`. Checks the folder and the weights before anything runs."""
    sides = [inception or PaperSide(INCEPTION), resnet or PaperSide(RESNET)]
    check_imagenet(imagenet)
    weights = resolve_weights(sides, checkpoints)
    names = side_names([s.spec for s in sides], precision)
    models = tuple(ModelConfig(s.spec, w, n) for s, w, n in zip(sides, weights, names, strict=True))
    from featswap.mapping.solvers.refine import RefineSettings

    params: dict[str, dict[str, int]] = {}
    if iterations is not None:  # a smaller run: the paper's recipe for `iterations`, refine for at most as many
        refine = min(iterations, RefineSettings().max_iterations)  # lowers refine's own limit, never raises it
        params = {"paper": {"iterations": iterations}, "refine": {"max_iterations": refine}}
    return RunConfig(
        models=models,
        data=DataSettings(data=f"imagenet:{imagenet}", train_limit=train_limit),
        extraction=ExtractionSettings(
            batch_size=batch_size,
            chunk_rows=chunk_rows,
            workers=default_workers(device) if workers is None else workers,
            precision=precision,
            decode=decode,
        ),
        fit=FitSettings(SOLVERS, params),
        evaluation=EvaluationSettings(n_boot=n_boot, similarity=similarity),
        engine=EngineSettings(device=device),
        store=store,
        out=str(out),
    )
