"""Everything featswap writes, it reads back unchanged, with the arrays users meet: non-contiguous views,
Fortran order, float64."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from featswap.errors import FeatswapError, FitError, StoreError
from featswap.mapping.affine_map import AffineMap
from featswap.outputs.metrics_json import read_metrics, write_metrics
from featswap.outputs.paths import write_json
from featswap.outputs.predictions import read_predictions, write_predictions
from featswap.store import FeatureStore
from runs import compare_on_store


def layouts(array: np.ndarray) -> dict[str, np.ndarray]:
    """The same values as a C array, a transposed (non-contiguous) view, Fortran order and a strided view."""
    doubled = np.repeat(array, 2, axis=1)
    return {
        "C": np.ascontiguousarray(array),
        "transposed view": np.ascontiguousarray(array.T).T,
        "Fortran": np.asfortranarray(array),
        "strided view": doubled[:, ::2],
    }


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["C", "transposed view", "Fortran", "strided view"])
def test_maps_round_trip_in_every_layout_and_dtype(tmp_path: Path, dtype: type, layout: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype(dtype)
    y = (x @ rng.normal(size=(6, 5)) + 1.0).astype(dtype)
    amap = AffineMap("lstsq").fit(x, y)
    assert amap.weight_.dtype == dtype  # float64 features are never cast down
    amap.weight_ = layouts(amap.weight_)[layout]
    amap.bias_ = layouts(amap.bias_[:, None])[layout][:, 0]
    loaded = AffineMap.load(amap.save(tmp_path / "m.safetensors", source="a", target="b"))
    assert loaded.weight_.dtype == dtype and loaded.bias_.dtype == dtype
    np.testing.assert_array_equal(loaded.weight_, amap.weight_)
    np.testing.assert_array_equal(loaded.bias_, amap.bias_)
    np.testing.assert_array_equal(loaded.transform(x), amap.transform(x))
    assert loaded.metadata_["source"] == "a" and loaded.metadata_["solver"] == "lstsq"


def test_a_damaged_or_foreign_map_is_refused(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    with pytest.raises(FitError, match="does not exist"):
        AffineMap.load(tmp_path / "none.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 40)
    with pytest.raises(FitError, match="not a readable featswap map"):
        AffineMap.load(tmp_path / "junk.safetensors")
    save_file({"weight": np.zeros((2, 3), np.float32)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(FitError, match="not a featswap map"):
        AffineMap.load(tmp_path / "plain.safetensors")
    meta = {"featswap": json.dumps({"solver": "lstsq", "iterations": 0, "fit_seconds": 0.0})}
    tensors = {"weight": np.zeros((2, 3), np.float32), "bias": np.zeros(3, np.float32), "curve": np.zeros(0)}
    save_file(tensors, str(tmp_path / "shapes.safetensors"), metadata=meta)
    with pytest.raises(FitError, match=r"weight \(2, 3\) and bias \(3,\) do not fit"):
        AffineMap.load(tmp_path / "shapes.safetensors")
    tensors = {"weight": np.full((2, 3), np.nan, np.float32), "bias": np.zeros(2, np.float32), "curve": np.zeros(0)}
    save_file(tensors, str(tmp_path / "nan.safetensors"), metadata=meta)
    with pytest.raises(FitError, match="holds NaN or inf"):
        AffineMap.load(tmp_path / "nan.safetensors")
    save_file(tensors, str(tmp_path / "meta.safetensors"), metadata={"featswap": json.dumps({"solver": "lstsq"})})
    with pytest.raises(FitError, match=r"damaged featswap map .KeyError"):
        AffineMap.load(tmp_path / "meta.safetensors")


@pytest.mark.parametrize("layout", ["C", "transposed view", "Fortran", "strided view"])
def test_store_features_round_trip_in_every_layout(tmp_path: Path, layout: str) -> None:
    features = np.random.default_rng(1).normal(size=(10, 4)).astype(np.float32)
    with FeatureStore.create(tmp_path / "s.zarr") as store:
        store.write_collection("train", [f"i{k}" for k in range(10)], np.zeros(10), ("a",))
        store.write_model("m", {"spec": "m", "feature_dim": 4, "weights_sha256": None}, np.ones((1, 4)), np.zeros(1))
        store.write_features("train", "m", layouts(features)[layout], chunk_rows=3)
        with pytest.raises(StoreError, match="got float64, which would lose precision silently"):
            store.write_features("train", "m", features.astype(np.float64), chunk_rows=3)
    np.testing.assert_array_equal(FeatureStore.open(tmp_path / "s.zarr").features("train", "m"), features)


def test_metrics_predictions_and_json_round_trip(tmp_path: Path, digits_store: Path) -> None:
    store = FeatureStore.open(digits_store)
    metrics = compare_on_store(digits_store, tmp_path / "run", names=["tiny-resnet", "tiny-inception"])
    assert read_metrics(tmp_path / "run") == json.loads(json.dumps(metrics))
    write_metrics(metrics, tmp_path / "copy")
    assert read_metrics(tmp_path / "copy") == read_metrics(tmp_path / "run")
    table = read_predictions(tmp_path / "run")
    assert table["id"].tolist() == store.kept_ids("val").tolist()
    np.testing.assert_array_equal(table["label"], store.labels("val"))
    from featswap.config import RunConfig

    written = RunConfig.build(tmp_path / "run" / "config.toml")
    assert RunConfig.build(None, overrides={}).with_(store=None).fit.solvers == ("refine",)
    assert written.fit.solvers == ("lstsq",) and written.store == str(digits_store.resolve())
    # Every solver setting is spelled out, defaults included, so a later featswap repeats the run.
    from dataclasses import asdict

    from featswap.mapping.solvers import SOLVERS

    assert written.fit.params["lstsq"] == asdict(SOLVERS.get("lstsq").make_settings())
    assert set(written.fit.params["lstsq"]) >= {"alpha", "holdout", "seed"}
    assert written.to_toml() == (tmp_path / "run" / "config.toml").read_text()
    # It records which featswap wrote it; without that record it reads as the same config.
    import featswap

    text = (tmp_path / "run" / "config.toml").read_text()
    assert f'[featswap]\nversion = "{featswap.__version__}"\ncommit = ' in text
    (tmp_path / "bare.toml").write_text(text[: text.index("[featswap]")])
    assert RunConfig.build(tmp_path / "bare.toml") == written
    write_predictions(tmp_path / "copy", table["id"], table["label"], {k: v for k, v in table.items() if ":" in k})
    again = read_predictions(tmp_path / "copy")
    assert set(again) == set(table) and all(np.array_equal(again[k], table[k]) for k in table)
    for name in ("fit_curves.json",):
        data = json.loads((tmp_path / "run" / name).read_text())
        write_json(tmp_path / "copy" / name, data)
        assert json.loads((tmp_path / "copy" / name).read_text()) == data
    with pytest.raises(FeatswapError, match="featswap writes undefined values as null"):
        write_json(tmp_path / "copy" / "bad.json", {"x": float("nan")})
