"""The zarr feature store on disk: id alignment, resumable chunks, one writer, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from featswap.backbones.sources import load_backbone
from featswap.errors import StoreError
from featswap.extraction.local import extract
from featswap.store import FeatureStore

IDS = [f"img/{i}" for i in range(10)]
LABELS = np.arange(10) % 3


def make(tmp_path: Path) -> FeatureStore:
    store = FeatureStore.create(tmp_path / "s.zarr")
    store.write_collection("train", IDS, LABELS, ("a", "b", "c"), spec="toy", role="fit")
    store.write_model("m", {"spec": "m", "feature_dim": 4, "weights_sha256": None}, np.ones((3, 4)), np.zeros(3))
    return store


def test_round_trip_and_chunked_reads(tmp_path: Path) -> None:
    feats = np.arange(40, dtype=np.float32).reshape(10, 4)
    with make(tmp_path) as store:
        store.write_features("train", "m", feats, chunk_rows=3)
    reopened = FeatureStore.open(tmp_path / "s.zarr")
    np.testing.assert_array_equal(reopened.features("train", "m"), feats)
    assert [b.shape[0] for b in reopened.iter_features("train", "m")] == [3, 3, 3, 1]
    np.testing.assert_array_equal(reopened.read_rows("train", "m", 2, 7), feats[2:7])  # across chunk edges
    np.testing.assert_array_equal(reopened.take_rows("train", "m", np.array([0, 4, 9])), feats[[0, 4, 9]])
    assert reopened.ids("train").tolist() == IDS
    assert reopened.classes("train") == ("a", "b", "c") and reopened.roles("train") == ["fit"]
    assert reopened.spec("train") == "toy" and reopened.collections(role="fit") == ["train"] == reopened.collections()


def test_incomplete_features_say_resume(tmp_path: Path) -> None:
    with make(tmp_path) as store:
        store.feature_array("train", "m", 4, chunk_rows=3)
        store.write_chunk("train", "m", 0, np.ones((3, 4), np.float32))
        with pytest.raises(StoreError, match="interrupted: run extract again to resume"):
            store.features("train", "m")


def test_nan_features_are_refused_by_id_and_nothing_is_written(tmp_path: Path) -> None:
    feats = np.zeros((10, 4), dtype=np.float32)
    feats[7, 2] = np.inf
    with make(tmp_path) as store:
        with pytest.raises(StoreError, match=r"for id 'img/7' hold NaN or inf; nothing of rows 5\.\.9 was written"):
            store.write_features("train", "m", feats, chunk_rows=5)
        assert store.done_chunks("train", "m").tolist() == [True, False]
        with pytest.raises(StoreError, match=r"Chunk 0 of 'm' / 'train' holds rows 0..4, shape \(5, 4\); got"):
            store.write_chunk("train", "m", 0, feats[:4])
        with pytest.raises(StoreError, match="Collection 'train' has 10 samples; got features for 9"):
            store.write_features("train", "m", feats[:9])
        with pytest.raises(StoreError, match="must be 2-D"):
            store.write_features("train", "m", feats[0])
        with pytest.raises(StoreError, match="chunk_rows must be at least 1"):
            store.feature_array("train", "m2", 4, chunk_rows=0)


def test_mismatched_ids_labels_and_models_are_refused(tmp_path: Path) -> None:
    with make(tmp_path) as store:
        with pytest.raises(StoreError, match="another id order"):
            store.write_collection("train", IDS[::-1], LABELS)
        with pytest.raises(StoreError, match="other labels"):
            store.write_collection("train", IDS, LABELS + 1)
        with pytest.raises(StoreError, match="another label space"):
            store.write_collection("train", IDS, LABELS, ("a", "b", "z"))
        with pytest.raises(StoreError, match="duplicate ids"):
            store.write_collection("val", ["x", "x"], np.zeros(2))
        with pytest.raises(StoreError, match="2 ids but 3 labels"):
            store.write_collection("val", ["x", "y"], np.zeros(3))
        with pytest.raises(StoreError, match="feature_dim 4, not 5"):
            store.write_model(
                "m", {"spec": "m", "feature_dim": 5, "weights_sha256": None}, np.ones((3, 5)), np.zeros(3)
            )
        store.feature_array("train", "m", 4)
        with pytest.raises(StoreError, match="expected \\(10, 6\\)"):
            store.feature_array("train", "m", 6)
        with pytest.raises(StoreError, match="no model 'n'"):
            store.head("n")
        with pytest.raises(StoreError, match="no collection 'val'"):
            store.ids("val")
        store.write_collection("unlabelled", ["p", "q"], None, spec="images:/photos", role="fit")
        with pytest.raises(StoreError, match=r"Collection 'unlabelled' has no labels .images:/photos."):
            store.labels("unlabelled")
        assert store.classes("unlabelled") is None and not store.labelled("unlabelled")


def test_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="No feature store"):
        FeatureStore.open(tmp_path / "missing.zarr")
    import zarr

    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
    with pytest.raises(StoreError, match="not a featswap feature store"):
        FeatureStore.open(tmp_path / "plain.zarr")


def test_second_writer_is_refused_with_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    make(tmp_path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "from featswap.store import FeatureStore; "
         f"s = FeatureStore.open({str(path)!r}, writable=True); "
         "print('locked', flush=True); import time; time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreError, match=f"being written by .* pid {holder.pid}"):
            FeatureStore.open(path, writable=True)
        FeatureStore.open(path)  # readers are never blocked
    finally:
        holder.kill()
        holder.wait()
    # The holder died without releasing: its lock is stale and is taken over.
    with FeatureStore.open(path, writable=True) as store:
        assert store.collections() == ["train"]
    assert not (tmp_path / "s.zarr.lock").exists()


def test_extraction_resumes_without_recomputing_finished_chunks(tmp_path: Path, digits_parts: tuple) -> None:

    split = digits_parts[1]
    backbone = load_backbone("tiny-resnet")
    with FeatureStore.create(tmp_path / "full.zarr") as full:
        extract(backbone, split, full, quiet=True)
        reference = full.features("val", "tiny-resnet")
    with FeatureStore.create(tmp_path / "part.zarr") as part:
        part.write_collection("val", list(split.ids), split.labels, split.classes, spec=split.spec)
        part.feature_array("val", "tiny-resnet", backbone.feature_dim, chunk_rows=128)
        # a finished chunk, deliberately not what the model computes
        part.write_chunk("val", "tiny-resnet", 0, np.full((128, backbone.feature_dim), 7.0, np.float32))
        result = extract(backbone, split, part, quiet=True)
        assert result.computed_rows == len(split) - 128
        resumed = part.features("val", "tiny-resnet")
    assert (resumed[:128] == 7.0).all()
    np.testing.assert_allclose(resumed[128:], reference[128:], rtol=1e-6, atol=1e-6)


def test_extraction_refuses_nan_features(tmp_path: Path, digits_parts: tuple) -> None:
    from featswap.errors import DataError, ModelError

    backbone = load_backbone("tiny-resnet")
    with torch_no_grad():
        backbone.module.norm.bias[0] = float("nan")  # every pooled feature becomes NaN
    with FeatureStore.create(tmp_path / "nan.zarr") as store:
        with pytest.raises(ModelError, match="the network outputs NaN or inf on the first images"):
            extract(backbone, digits_parts[1], store, quiet=True)
        # Past the logits check (as for a network whose NaNs appear only on later images), the
        # extraction itself refuses them before writing anything.
        backbone.check_logits = lambda x: 0.0  # type: ignore[method-assign]
        with pytest.raises(DataError, match="NaN/inf features for id 'digits/"):
            extract(backbone, digits_parts[1], store, quiet=True)
        assert not store.done_chunks("val", "tiny-resnet").any()


def torch_no_grad() -> object:
    import torch

    return torch.no_grad()


def test_a_lock_from_another_host_is_never_taken_over(tmp_path: Path) -> None:
    make(tmp_path).close()
    (tmp_path / "s.zarr.lock").write_text("gpu-node-7 pid 1234")
    with pytest.raises(StoreError, match="being written by gpu-node-7 pid 1234"):
        FeatureStore.open(tmp_path / "s.zarr", writable=True)


def test_a_damaged_store_is_named(tmp_path: Path) -> None:
    import zarr

    with make(tmp_path) as store:
        zarr.open_group(str(tmp_path / "s.zarr"), mode="r+").create_group("val").create_group("ids")
        with pytest.raises(StoreError, match="should be a zarr array; the store is damaged"):
            store.ids("val")
        zarr.open_group(str(tmp_path / "s.zarr"), mode="r+").create_array("test", shape=(1,), dtype="int8")
        with pytest.raises(StoreError, match="should be a zarr group; the store is damaged"):
            store.labels("test")


def test_a_collection_or_model_half_written_by_a_crash_is_written_anew(tmp_path: Path) -> None:
    import zarr

    with make(tmp_path) as store:
        group = zarr.open_group(str(tmp_path / "s.zarr"), mode="r+").create_group("val")
        group.create_array("ids", shape=(2,), dtype=str)[:] = np.array(["x", "y"])  # then the crash: no checksums
        store.write_collection("val", ["x", "y"], np.array([0, 1]), ("a", "b", "c"))
        assert store.ids("val").tolist() == ["x", "y"] and store.labels("val").tolist() == [0, 1]
        models = zarr.open_group(str(tmp_path / "s.zarr"), mode="r+")["models"]
        models.create_group("n").attrs["spec"] = "n"  # a model record cut short before its head
        store.write_model("n", {"spec": "n", "feature_dim": 4, "weights_sha256": None}, np.ones((3, 4)), np.zeros(3))
        np.testing.assert_array_equal(store.head("n")[0], np.ones((3, 4)))


def test_a_store_written_before_head_offsets_existed_still_takes_the_same_model(
    tmp_path: Path, digits_parts: tuple
) -> None:
    import zarr

    split = digits_parts[1]
    backbone = load_backbone("tiny-resnet")
    with FeatureStore.create(tmp_path / "old.zarr") as store:
        extract(backbone, split, store, quiet=True)
        reference = store.features("val", "tiny-resnet")
    # As featswap 0.2 wrote it: no head_offset or head_outputs, in the record or in the features' identity.
    root = zarr.open_group(str(tmp_path / "old.zarr"), mode="r+")
    record = root["models/tiny-resnet"]
    for key in ("head_offset", "head_outputs"):
        del record.attrs[key]
    features = root["val/features/tiny-resnet"]
    features.attrs["model"] = {k: v for k, v in features.attrs["model"].items() if k != "head_offset"}
    with FeatureStore.open(tmp_path / "old.zarr") as store:
        result = extract(backbone, split, store, quiet=True)  # the same model: nothing to recompute
        assert result.computed_rows == 0 and store.head_offset("tiny-resnet") == 0
        np.testing.assert_array_equal(store.features("val", "tiny-resnet"), reference)


def test_a_model_with_random_weights_is_named_as_such_when_another_is_refused(tmp_path: Path) -> None:
    with make(tmp_path) as store:
        attrs = {"spec": "m", "feature_dim": 4, "weights_sha256": "ab12"}
        with pytest.raises(
            StoreError, match=r"weights_sha256 None \(random initial weights, no weight file\), not 'ab12'"
        ):
            store.write_model("m", attrs, np.ones((3, 4)), np.zeros(3))
