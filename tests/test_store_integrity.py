"""A store knows its own integrity: a missing, truncated or altered chunk, or damaged metadata, is an error
naming the model, split and rows, never a wrong number; `extract` recomputes exactly the damaged chunks and
`featswap verify` lists them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from featswap.cli import app
from featswap.errors import StoreError
from featswap.store import FeatureStore

MODELS = ("tiny-resnet", "tiny-inception")


def invoke(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def extract_args(store: Path, model: str, weights: Path) -> list[str]:
    return ["extract", "--model", model, "--weights", str(weights), "--data", "digits", "--store", str(store),
            "--chunk-rows", "100", "--quiet"]  # fmt: skip


@pytest.fixture(scope="module")
def clean_store(tmp_path_factory: pytest.TempPathFactory, trained_weights: dict[str, Path], runner: CliRunner) -> Path:
    store = tmp_path_factory.mktemp("integrity") / "s.zarr"
    for model in MODELS:
        code, output = invoke(runner, *extract_args(store, model, trained_weights[model]))
        assert code == 0, output
    return store


@pytest.fixture
def store(clean_store: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "s.zarr"
    shutil.copytree(clean_store, copy)
    return copy


def chunk_file(store: Path, model: str = "tiny-resnet", split: str = "val", chunk: int = 2) -> Path:
    return store / split / "features" / model / "c" / str(chunk) / "0"


DAMAGE = {
    "missing": lambda f: f.unlink(),
    "truncated": lambda f: f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2]),
    "altered": lambda f: f.write_bytes(bytes(b ^ 0xFF for b in f.read_bytes())),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_chunk_is_named_by_every_reader_and_recomputed_by_extract(
    damage: str, store: Path, runner: CliRunner, trained_weights: dict[str, Path], tmp_path: Path
) -> None:
    reference = FeatureStore.open(store).features("val", "tiny-resnet")
    DAMAGE[damage](chunk_file(store))
    where = "model 'tiny-resnet', collection 'val', rows 200..299"
    maps = tmp_path / "m.safetensors"
    code, output = invoke(runner, "fit", "--store", str(store), "--source", "tiny-resnet", "--target",
                          "tiny-inception", "--solver", "lstsq", "--out", str(maps))  # fmt: skip
    assert code == 0, output  # the train split is intact
    for args in (
        ["similarity", "--store", str(store), "--out", str(tmp_path / "sim")],
        ["evaluate", "--store", str(store), "--maps", str(maps), "--out", str(tmp_path / "eval")],
    ):
        code, output = invoke(runner, *args)
        assert code == 2 and output.startswith("error: The store is damaged") and where in output, output
        assert len(output.strip().splitlines()) == 1
    code, output = invoke(runner, "verify", str(store))
    assert code == 2 and "model tiny-resnet, collection val, rows 200..299 (chunk 2)" in output
    assert "featswap extract --model tiny-resnet --name tiny-resnet" in output
    assert output.strip().splitlines()[-1].startswith("error: 1 damaged place(s)")

    code, output = invoke(runner, *extract_args(store, "tiny-resnet", trained_weights["tiny-resnet"]))
    assert code == 0 and "540 rows (100 computed, 1 damaged chunk(s) recomputed)" in output, output
    assert "1257 rows (0 computed)" in output
    np.testing.assert_array_equal(FeatureStore.open(store).features("val", "tiny-resnet"), reference)
    code, output = invoke(runner, "verify", str(store))
    assert code == 0 and "no damage found (38 finished chunks checked)" in output, output


def test_damaged_metadata_ids_labels_and_heads_are_errors(store: Path, runner: CliRunner, tmp_path: Path) -> None:
    maps = tmp_path / "m.safetensors"
    code, output = invoke(runner, "fit", "--store", str(store), "--source", "tiny-resnet", "--target",
                          "tiny-inception", "--solver", "lstsq", "--out", str(maps))  # fmt: skip
    assert code == 0, output
    (store / "val" / "labels" / "c" / "0").unlink()  # zarr would read the labels as zeros
    code, output = invoke(runner, "evaluate", "--store", str(store), "--maps", str(maps), "--out", str(tmp_path / "e"))
    assert code == 2 and "labels of collection 'val'" in output and "do not match their checksum" in output
    code, output = invoke(runner, "verify", str(store))
    assert code == 2 and "damaged: collection val" in output

    (store / "train" / "features" / "tiny-resnet" / "zarr.json").write_text("{ not json")
    code, output = invoke(runner, "fit", "--store", str(store), "--source", "tiny-resnet", "--target",
                          "tiny-inception", "--out", str(tmp_path / "m.safetensors"))  # fmt: skip
    assert code == 2 and "The store is damaged" in output and len(output.strip().splitlines()) == 1

    head = store / "models" / "tiny-inception" / "head_bias" / "c" / "0"
    head.write_bytes(bytes(b ^ 0x55 for b in head.read_bytes()))
    with pytest.raises(StoreError, match=r"the head of 'tiny-inception' cannot be read .RuntimeError"):
        FeatureStore.open(store).head("tiny-inception")
    head.unlink()  # zarr would read zeros
    with pytest.raises(StoreError, match=r"head of model 'tiny-inception' .* does not match its checksum"):
        FeatureStore.open(store).head("tiny-inception")

    (store / "zarr.json").write_text("{ not json")
    code, output = invoke(runner, "verify", str(store))
    assert code == 2 and output.startswith("error: The store is damaged") and "zarr.json" in output


def test_ids_that_do_not_match_their_checksum(store: Path) -> None:
    import zarr

    zarr.open_array(str(store / "val" / "ids"), mode="r+")[3] = "digits/elsewhere"
    with pytest.raises(StoreError, match=r"ids of collection 'val' .* do not match their checksum"):
        FeatureStore.open(store).ids("val")


def test_an_old_store_without_checksums_is_refused(store: Path, runner: CliRunner) -> None:
    import zarr

    zarr.open_group(str(store), mode="r+").attrs["featswap_store"] = 1
    code, output = invoke(runner, "verify", str(store))
    assert code == 2 and "older featswap (store version 1), which recorded no checksums" in output


def test_what_verify_finds_missing_and_what_extract_repairs(
    store: Path, runner: CliRunner, trained_weights: dict[str, Path]
) -> None:
    (store / "val" / "labels" / "c" / "0").unlink()
    head = store / "models" / "tiny-resnet" / "head_weight" / "c" / "0" / "0"
    head.write_bytes(bytes(b ^ 0x0F for b in head.read_bytes()))
    code, output = invoke(runner, "verify", str(store))
    assert code == 2 and "damaged: collection val" in output and "damaged: model tiny-resnet" in output
    # The labels come from the data and the head from the network: a rerun writes them again, as recorded.
    code, output = invoke(runner, *extract_args(store, "tiny-resnet", trained_weights["tiny-resnet"]))
    assert code == 0, output
    code, output = invoke(runner, "verify", str(store))
    assert code == 0 and "no damage found" in output, output

    shutil.rmtree(store / "val" / "features" / "tiny-inception")
    shutil.rmtree(store / "models" / "tiny-resnet")
    code, output = invoke(runner, "verify", str(store))
    assert code == 2 and "model tiny-resnet: its record is missing" in output
    assert "model tiny-inception, collection val: its features are missing" in output
    shutil.rmtree(store / "val")
    code, output = invoke(runner, "verify", str(store))
    assert "collection val: it is missing" in output
    code, output = invoke(runner, "similarity", "--store", str(store), "--out", str(store.parent / "sim"))
    assert code == 2 and len(output.strip().splitlines()) == 1


def test_features_of_another_model_are_refused(store: Path, tmp_path: Path, runner: CliRunner) -> None:
    other = tmp_path / "other.zarr"
    code, output = invoke(runner, "extract", "--model", "tiny-resnet", "--data", "digits", "--store", str(other),
                          "--chunk-rows", "100", "--quiet")  # fmt: skip  # untrained: other weights
    assert code == 0, output
    shutil.rmtree(store / "val" / "features" / "tiny-resnet")
    shutil.copytree(other / "val" / "features" / "tiny-resnet", store / "val" / "features" / "tiny-resnet")
    code, output = invoke(runner, "similarity", "--store", str(store), "--out", str(tmp_path / "sim"))
    assert code == 2 and "were extracted by another model than the one recorded as 'tiny-resnet'" in output
    code, output = invoke(runner, "verify", str(store))
    assert code == 2 and "extracted by another model" in output


def test_maps_are_evaluated_only_on_the_models_they_were_fitted_on(
    store: Path, tmp_path: Path, runner: CliRunner, trained_weights: dict[str, Path]
) -> None:
    m = tmp_path / "m.safetensors"
    code, output = invoke(runner, "fit", "--store", str(store), "--source", "tiny-resnet", "--target",
                          "tiny-inception", "--solver", "lstsq", "--out", str(m))  # fmt: skip
    assert code == 0, output
    other = tmp_path / "other.zarr"
    for model in MODELS:  # the same names, but tiny-resnet without its trained weights
        weights = ["--weights", str(trained_weights[model])] if model == "tiny-inception" else []
        code, output = invoke(runner, "extract", "--model", model, *weights, "--data", "digits", "--store",
                              str(other), "--quiet")  # fmt: skip
        assert code == 0, output
    code, output = invoke(runner, "evaluate", "--store", str(other), "--maps", str(m), "--out", str(tmp_path / "e"))
    assert code == 2 and "was fitted on features of another 'tiny-resnet' than the one in" in output
    code, output = invoke(runner, *extract_args(store, "tiny-resnet", trained_weights["tiny-resnet"]),
                          "--data-config", '{"input_size": [1, 8, 8], "mean": [0.4], "std": [0.5]}')  # fmt: skip
    assert code == 2 and "already holds a model named 'tiny-resnet' with data_config" in output
