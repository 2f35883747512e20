"""A feature store at a URL that fsspec reaches (here `memory://`, fsspec's in-process object store):
the same features, fits and single-writer lock as a local directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fsspec
import numpy as np
import pytest
from typer.testing import CliRunner

from featswap.cli import app
from featswap.errors import StoreError
from featswap.store import FeatureStore

URL = "memory://featswap-tests/digits.zarr"


@pytest.fixture
def memory_store() -> Iterator[str]:
    yield URL
    memory = fsspec.filesystem("memory")
    for path in ("/featswap-tests",):
        if memory.exists(path):
            memory.rm(path, recursive=True)


@pytest.mark.skip(
    reason="extract refuses memory:// stores since issue 25; needs a lasting fsspec URL (open: see the note)"
)
def test_cli_extract_and_fit_on_a_url_store(
    memory_store: str, runner: CliRunner, trained_weights: dict[str, Path], digits_store: Path, tmp_path: Path
) -> None:
    for spec, weights in trained_weights.items():
        args = ["extract", "--model", spec, "--weights", str(weights), "--data", "digits", "--store", memory_store]
        result = runner.invoke(app, [*args, "--quiet"])
        assert result.exit_code == 0, result.output
    remote, local = FeatureStore.open(memory_store), FeatureStore.open(digits_store)
    assert remote.path == memory_store and remote.location == memory_store
    for spec in trained_weights:
        for split in ("train", "val"):
            np.testing.assert_array_equal(remote.features(split, spec), local.features(split, spec))
    assert fsspec.filesystem("memory").exists("/featswap-tests/digits.zarr/train/features/tiny-resnet")
    out = tmp_path / "map.safetensors"
    args = [
        "fit",
        "--store",
        memory_store,
        "--source",
        "tiny-inception",
        "--target",
        "tiny-resnet",
        "--solver",
        "lstsq",
    ]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "train loss" in result.output


def test_one_writer_at_a_time_on_a_url_store(memory_store: str) -> None:
    with FeatureStore.create(memory_store):
        assert fsspec.filesystem("memory").isfile("/featswap-tests/digits.zarr.lock")
        with pytest.raises(StoreError, match=r"being written by .* pid"):
            FeatureStore.create(memory_store)
    assert not fsspec.filesystem("memory").exists("/featswap-tests/digits.zarr.lock")
    with FeatureStore.create(memory_store) as store:  # released, so taken again
        assert store.collections() == []


def test_unknown_url_scheme_and_missing_url_store(memory_store: str) -> None:
    with pytest.raises(StoreError, match=r"Cannot open the store location .nosuch://x\.zarr."):
        FeatureStore.open("nosuch://x.zarr")
    with pytest.raises(StoreError, match=r"No feature store at memory://featswap-tests/digits\.zarr"):
        FeatureStore.open(memory_store)
