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
