"""A feature store at a URL that fsspec reaches (`file://`, and `memory://`, fsspec's in-process object store):
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
from featswap.mapping.affine_map import AffineMap
from featswap.store import FeatureStore

URL = "memory://featswap-tests/digits.zarr"


@pytest.fixture
def memory_store() -> Iterator[str]:
    yield URL
    memory = fsspec.filesystem("memory")
    for path in ("/featswap-tests",):
        if memory.exists(path):
            memory.rm(path, recursive=True)


def test_cli_extract_and_fit_on_a_url_store(
    runner: CliRunner, trained_weights: dict[str, Path], digits_store: Path, tmp_path: Path
) -> None:
    """A `file://` URL (fsspec's local filesystem, a URL that lasts beyond the command; `extract` refuses
    `memory://`): the step-by-step commands store and read the same features as a plain directory's."""
    url = f"file://{tmp_path}/url/digits.zarr"
    for spec, weights in trained_weights.items():
        args = ["extract", "--model", spec, "--weights", str(weights), "--data", "digits", "--store", url]
        result = runner.invoke(app, [*args, "--quiet"])
        assert result.exit_code == 0, result.output
    remote, local = FeatureStore.open(url), FeatureStore.open(digits_store)
    assert remote.path == url
    for spec in trained_weights:
        for split in ("train", "val"):
            np.testing.assert_array_equal(remote.features(split, spec), local.features(split, spec))
    assert (tmp_path / "url" / "digits.zarr" / "train" / "features" / "tiny-resnet").is_dir()
    maps = {}
    for name, store in (("url", url), ("local", str(digits_store))):
        maps[name] = tmp_path / f"{name}.safetensors"
        args = ["fit", "--store", store, "--source", "tiny-inception", "--target", "tiny-resnet", "--solver", "lstsq"]
        result = runner.invoke(app, [*args, "--out", str(maps[name])])
        assert result.exit_code == 0, result.output
        assert "train loss" in result.output
    ours, theirs = AffineMap.load(maps["url"]), AffineMap.load(maps["local"])
    assert np.array_equal(ours.weight_, theirs.weight_) and np.array_equal(ours.bias_, theirs.bias_)


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
