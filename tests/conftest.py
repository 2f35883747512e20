"""Shared fixtures: real digits data, real tiny networks trained once per session, a real zarr store, planted
paired features, real image folders, filesystems that are read-only or full."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from featswap.cli import app
from featswap.data.collections import Collection, open_spec, split_for_fit_and_eval
from featswap.demo.training import TrainConfig, train_or_load, train_or_load_all
from featswap.heap import keep_freed_memory

# As every featswap command runs (`featswap.heap`): the tests' forward passes reuse freed pages from the start.
keep_freed_memory()

#: Short training for tests: enough for ~95% val accuracy on digits, a few seconds per network.
QUICK_TRAIN = TrainConfig(epochs=8)


@pytest.fixture(scope="session")
def digits_parts() -> tuple[Collection, Collection]:
    """The digits split as `--data digits` splits them: 1,257 `train` and 540 `val` images."""
    return split_for_fit_and_eval(open_spec("digits").parts["all"], 0.3, 0)


@pytest.fixture(scope="session")
def trained_weights(
    tmp_path_factory: pytest.TempPathFactory, digits_parts: tuple[Collection, Collection]
) -> dict[str, Path]:
    """Weights of both tiny networks trained briefly on the digits fitting images."""
    cache = tmp_path_factory.mktemp("weights")
    specs = ("tiny-resnet", "tiny-inception")
    trained = train_or_load_all(specs, digits_parts[0], 10, cache, QUICK_TRAIN)
    return {spec: path for spec, (path, _, _) in zip(specs, trained, strict=True)}


@pytest.fixture(scope="session")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory, runner: CliRunner) -> tuple[Path, str, str]:
    """`featswap demo` run twice in one folder (the second reuses the trained networks): the folder, both runs'
    output, and the first run's metrics.json."""
    out = tmp_path_factory.mktemp("demo") / "run"
    outputs = []
    for _ in range(2):
        result = runner.invoke(app, ["demo", "--out", str(out)])
        assert result.exit_code == 0, result.output + repr(result.exception)
        outputs.append(result.output)
        if len(outputs) == 1:
            metrics_first = (out / "metrics.json").read_text()
    return out, "".join(outputs), metrics_first


@pytest.fixture(scope="session")
def digits_store(tmp_path_factory: pytest.TempPathFactory, trained_weights: dict[str, Path], runner: CliRunner) -> Path:
    """A feature store with both trained tiny networks on both digits splits, built through the CLI."""
    store = tmp_path_factory.mktemp("store") / "digits.zarr"
    for spec, weights in trained_weights.items():
        result = runner.invoke(
            app,
            [
                "extract",
                "--model",
                spec,
                "--weights",
                str(weights),
                "--data",
                "digits",
                "--store",
                str(store),
                "--quiet",
            ],
        )
        assert result.exit_code == 0, result.output
    return store


@pytest.fixture(scope="session")
def third_weights(tmp_path_factory: pytest.TempPathFactory, digits_parts: tuple[Collection, Collection]) -> Path:
    """A second tiny-resnet, trained from another seed: a third model for many-model comparisons."""
    cache = tmp_path_factory.mktemp("weights-seed1")
    config = TrainConfig(epochs=QUICK_TRAIN.epochs, seed=1)
    return train_or_load("tiny-resnet", digits_parts[0], 10, cache, config)[0]


def mounted_tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A real tmpfs mounted at `path` with `options` (read-only, or tiny to fill up), unmounted afterwards;
    skips where this process may not mount filesystems."""
    import subprocess

    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or 'not permitted'})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on a read-only filesystem (root ignores permission bits, so a mount it is)."""
    yield from mounted_tmpfs(tmp_path / "read-only", "ro,size=1m")


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A directory on a filesystem of 96 KiB: writing features into it runs out of space."""
    yield from mounted_tmpfs(tmp_path / "full", "size=96k")


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three classes of 12 real images each, of every colour mode, as JPEG and PNG (read-only by convention)."""
    from images import write_folder

    return write_folder(tmp_path_factory.mktemp("images") / "imgs")


# -- every metrics.json featswap writes during the tests follows the published JSON Schema ---------------------
class SchemaWitness:
    """Wraps featswap's one metrics.json writer: each file it writes is read back from disk and validated against
    `featswap/outputs/metrics.schema.json` (the schema the docs publish). Files that tests write themselves (the
    deliberately broken ones of the error tests) do not pass through it."""

    def __init__(self) -> None:
        import json
        from importlib.resources import files

        import jsonschema

        schema = json.loads(files("featswap.outputs").joinpath("metrics.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        self.validator = jsonschema.Draft202012Validator(schema)
        self.checked: list[Path] = []
        self.failures: list[str] = []

    def check(self, path: Path) -> None:
        import json

        errors = sorted(self.validator.iter_errors(json.loads(Path(path).read_text())), key=lambda e: e.path)
        self.checked.append(Path(path))
        for error in errors[:3]:
            where = "/".join(str(p) for p in error.absolute_path) or "(top)"
            self.failures.append(f"{path}: at {where}: {error.message[:300]}")


@pytest.fixture(scope="session")
def schema_witness() -> Iterator[SchemaWitness]:
    import featswap.outputs.metrics_json as metrics_json

    witness = SchemaWitness()
    real_write = metrics_json.write_metrics

    def write_and_check(metrics: dict, out: Path) -> Path:  # type: ignore[type-arg]
        path = real_write(metrics, out)
        witness.check(path)
        return path

    metrics_json.write_metrics = write_and_check  # type: ignore[assignment]
    try:
        yield witness
    finally:
        metrics_json.write_metrics = real_write  # type: ignore[assignment]


@pytest.fixture(autouse=True)
def metrics_follow_schema(schema_witness: SchemaWitness) -> Iterator[None]:
    """Fails the test during which featswap wrote a metrics.json that breaks the schema."""
    before = len(schema_witness.failures)
    yield
    new = schema_witness.failures[before:]
    assert not new, "metrics.json written by featswap breaks metrics.schema.json:\n" + "\n".join(new)


@pytest.fixture(autouse=True)
def threads_restored() -> Iterator[None]:
    """Undoes what an in-process `featswap --threads N` left behind (`featswap.threads.set_threads` lasts as long as
    the process, as it should for a command): a later test's numbers would otherwise come from another thread
    count than a fresh process's, and float32 products' rounding follows the thread count."""
    import torch

    from featswap import threads

    before = torch.get_num_threads()
    yield
    if threads._blas_limit is not None:
        threads._blas_limit.restore_original_limits()  # type: ignore[attr-defined]
        threads._blas_limit = None
    torch.set_num_threads(before)
