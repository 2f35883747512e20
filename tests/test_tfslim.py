"""`tfslim:` networks against TF-slim's own graphs built with TensorFlow (tf-slim 1.1 on TF 2.21): random weights
and random batch-norm statistics saved as V1 and V2 checkpoints; features and logits on real photos from
../shared/data/imagenet-sample agree with TensorFlow's to float32 rounding: ResNet-v2 50, 101 and 152 (200 passed
once, 2026-12-07, and is left out: 111 s on 2 cores) and Inception-v3 from
tf-slim's own `nets`, Inception-ResNet-v2 from tf_slim's layers as tensorflow/models' `nets/inception_resnet_v2.py`
defines it (the pip package lacks it). tf-slim has no Inception-v4: that one is checked against timm's
`inception_v4` (a port of the same graph) given the same weights. Run with `-s` to see the measured differences.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from typer.testing import CliRunner

from featswap.backbones.convert import convert
from featswap.backbones.preprocessing import DataConfig
from featswap.backbones.sources import load_backbone
from featswap.backbones.sources.tfslim.checkpoint import find_checkpoint
from featswap.backbones.sources.tfslim.family import data_config, inception_v4_variable
from featswap.cli import app
from featswap.errors import ModelError, SpecError
from featswap.store import FeatureStore

pytest.importorskip("tf_slim", reason="the tf extra and tf-slim are installed by `make venv` (dev)")

import tfslim_graphs
from tfslim_graphs import read_checkpoint, resnet_v2, tf_preprocess, write_checkpoint

KIT = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-sample" / "images"
needs_photos = pytest.mark.skipif(not KIT.is_dir(), reason=f"{KIT} is absent")
#: Four photos: a landscape, a portrait-ish one, a grayscale one (decoded as RGB on both sides), and one more.
PHOTOS = ("n01440764", "n02033041", "n04005630", "n12998815")


def photos(count: int = 4) -> list[Image.Image]:
    return [Image.open(next((KIT / synset).iterdir())).convert("RGB") for synset in PHOTOS[:count]]


def close(ours: np.ndarray, theirs: np.ndarray, rtol: float = 2e-5, what: str | None = None) -> float:
    """Max |difference|, asserted within `rtol` of the larger magnitude (float32 rounding through a deep net);
    printed (with the largest magnitude and their ratio) when `what` names the comparison."""
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    diff = float(np.abs(ours - theirs).max())
    scale = max(1.0, float(np.abs(theirs).max()))
    if what is not None:
        largest = float(np.abs(theirs).max())
        print(f"{what}: max |diff| {diff:.3g}, max |reference| {largest:.3g}, relative {diff / scale:.2g}")
    assert diff <= rtol * scale, f"max |diff| {diff:.3g} at scale {scale:.3g}"
    return diff


def nchw(batch: np.ndarray) -> torch.Tensor:
    """TF's `(N, H, W, C)` images as torch's `(N, C, H, W)`."""
    return torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).permute(0, 3, 1, 2).contiguous()


def predictions(backbone, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """(features, logits) in one pass: the features, then the head featswap splits off (the network's own
    classifier, tested against its forward elsewhere)."""
    features = backbone.features(x)
    return features.numpy(), F.linear(features, backbone.head_weight, backbone.head_bias).detach().numpy()


@needs_photos
@pytest.mark.parametrize("size", [299, 224])
def test_preprocessing_is_inception_preprocessing_preprocess_for_eval(size: int) -> None:
    config = DataConfig.from_mapping({**data_config(), "input_size": (3, size, size)})
    transform = config.transform()
    for image in photos():
        ours = transform(image).permute(1, 2, 0).numpy()
        theirs = tf_preprocess(np.asarray(image), size)
        assert ours.shape == theirs.shape == (size, size, 3)
        assert float(np.abs(ours - theirs).max()) <= 1e-6


@pytest.fixture(scope="module")
def resnet50(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    graph = resnet_v2(50, tmp_path_factory.mktemp("resnet_v2_50"))
    yield graph
    graph.session.close()


@pytest.fixture(scope="module")
def rn50_v1(resnet50):  # type: ignore[no-untyped-def]
    """featswap's resnet_v2_50 from the V1 checkpoint (with global_step and moving averages beside the weights)."""
    return load_backbone("tfslim:resnet_v2_50", resnet50.v1)


@needs_photos
def test_resnet_v2_50_matches_tf_slim_on_photos_and_at_another_size(resnet50, rn50_v1) -> None:  # type: ignore[no-untyped-def]
    backbone = rn50_v1
    assert backbone.head_offset == 1 and backbone.num_classes == 1000 and backbone.feature_dim == 2048
    # 299 px (the root pool's SAME padding is asymmetric at 150 px), TF's preprocessing on both sides.
    batch = np.stack([tf_preprocess(np.asarray(image), 299) for image in photos(2)])
    tf_features, tf_logits = resnet50.run(batch)
    x = torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()
    close(backbone.features(x).numpy(), tf_features)
    close(backbone.forward(x).detach().numpy(), tf_logits)
    # featswap's own preprocessing of the photos, end to end.
    transform = backbone.transform()
    close(backbone.features(torch.stack([transform(image) for image in photos(2)])).numpy(), tf_features)
    # Another size (65 px: odd sizes all the way down).
    noise = np.random.default_rng(0).uniform(-1, 1, (2, 65, 65, 3)).astype(np.float32)
    tf_features, tf_logits = resnet50.run(noise)
    x = torch.from_numpy(noise).permute(0, 3, 1, 2).contiguous()
    close(backbone.features(x).numpy(), tf_features)
    close(backbone.forward(x).detach().numpy(), tf_logits)


@pytest.mark.parametrize("depth", [101, 152])  # resnet_v2_200 passed too, but took 111 s on 2 shared cores
def test_deeper_resnet_v2s_match_tf_slim(depth: int, tmp_path: Path) -> None:
    """The deeper blocks 3 (23 units for 101, 36 for 152) and 2 (8 for 152), against TF-slim's own graphs:
    random weights and batch-norm statistics, each unit's `conv3` kernel shrunk to a tenth so that the residual
    stream stays near 1 to 100 (and the batch norms' offsets and epsilon show); `resnet_v2_152` from the V1
    checkpoint (the tarball's format), the others from V2. Noise at 65 px (odd sizes all the way down) and at
    224 px."""
    version = 1 if depth == 152 else 2
    graph = resnet_v2(depth, tmp_path, seed=depth, versions=(version,), residual=0.1)
    try:
        backbone = load_backbone(f"tfslim:resnet_v2_{depth}", graph.v1 if version == 1 else graph.v2)
        assert backbone.feature_dim == 2048 and backbone.head_offset == 1
        rng = np.random.default_rng(depth)
        for size, count in ((65, 2), (224, 1)):
            noise = rng.uniform(-1, 1, (count, size, size, 3)).astype(np.float32)
            tf_features, tf_logits = graph.run(noise)
            features, logits = predictions(backbone, nchw(noise))
            close(features, tf_features, what=f"resnet_v2_{depth} features at {size} px")
            close(logits, tf_logits, what=f"resnet_v2_{depth} logits at {size} px")
    finally:
        graph.session.close()


@pytest.fixture(scope="module")
def inception_v3(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    graph = tfslim_graphs.inception_v3(tmp_path_factory.mktemp("inception_v3"), seed=3)
    yield graph
    graph.session.close()


@pytest.fixture(scope="module")
def inception_resnet_v2(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    graph = tfslim_graphs.inception_resnet_v2(tmp_path_factory.mktemp("inception_resnet_v2"), seed=5)
    yield graph
    graph.session.close()


def matches_on_photos(backbone, graph, name: str) -> None:  # type: ignore[no-untyped-def]
    """`backbone`'s features and logits on two real photos, through featswap's preprocessing, equal the TF-slim
    `graph`'s on TF's own preprocessing of the same photos at 299 px."""
    batch = np.stack([tf_preprocess(np.asarray(image), 299) for image in photos(2)])
    tf_features, tf_logits = graph.run(batch)
    features, logits = predictions(backbone, torch.stack([backbone.transform()(image) for image in photos(2)]))
    close(features, tf_features, what=f"{name} features, photos at 299 px (featswap's preprocessing)")
    close(logits, tf_logits, what=f"{name} logits, photos at 299 px")


@needs_photos
def test_inception_v3_matches_tf_slim_on_photos_and_where_its_logits_pool_is_one_corner(inception_v3) -> None:  # type: ignore[no-untyped-def]
    """From the V1 checkpoint holding AuxLogits, global_step and moving averages beside the weights."""
    backbone = load_backbone("tfslim:inception_v3", inception_v3.v1)
    assert backbone.feature_dim == 2048 and backbone.head_offset == 1 and backbone.num_classes == 1000
    matches_on_photos(backbone, inception_v3, "inception_v3")
    # 331 px: a 9x9 last map, where TF-slim's `AvgPool_1a_8x8` (VALID, stride 2) is one window, the top-left one.
    noise = np.random.default_rng(1).uniform(-1, 1, (1, 331, 331, 3)).astype(np.float32)
    tf_features, tf_logits = inception_v3.run(noise)
    features, logits = predictions(backbone, nchw(noise))
    close(features, tf_features, what="inception_v3 features, noise at 331 px")
    close(logits, tf_logits, what="inception_v3 logits, noise at 331 px")


@needs_photos
def test_inception_resnet_v2_matches_tf_slim_on_photos(inception_resnet_v2) -> None:  # type: ignore[no-untyped-def]
    """From the V1 checkpoint holding AuxLogits, global_step and moving averages beside the weights."""
    backbone = load_backbone("tfslim:inception_resnet_v2", inception_resnet_v2.v1)
    assert backbone.feature_dim == 1536 and backbone.head_offset == 1 and backbone.num_classes == 1000
    matches_on_photos(backbone, inception_resnet_v2, "inception_resnet_v2")


@needs_photos
def test_inception_resnet_v2_matches_timms_port_given_the_same_weights() -> None:
    """A second reference for Inception-ResNet-v2, independent of the test's transcription of TF-slim's graph:
    timm's `inception_resnet_v2` (a port of Google's graph, its head without the background row), given featswap's
    random weights and batch-norm statistics."""
    import timm

    torch.manual_seed(1)
    backbone = load_backbone("tfslim:inception_resnet_v2")
    module = backbone.module
    rng = np.random.default_rng(1)
    with torch.no_grad():
        for key, value in module.state_dict().items():
            if key.endswith(("moving_mean", "beta", "biases")):
                value.copy_(torch.from_numpy(rng.normal(0, 0.1, value.shape).astype(np.float32)))
            elif key.endswith("moving_variance"):
                value.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, value.shape).astype(np.float32)))
    reference = timm.create_model("inception_resnet_v2", pretrained=False, num_classes=1000).eval()
    convs = [m for m in module.modules() if type(m).__name__ == "Conv"]
    normed = [m for m in convs if m.BatchNorm is not None]
    biased = [m for m in convs if m.BatchNorm is None]  # each residual block's closing Conv2d_1x1
    timm_normed = [m for m in reference.modules() if type(m).__name__ == "ConvNormAct"]
    timm_biased = [m.conv2d for m in reference.modules() if type(m).__name__ in ("Block35", "Block17", "Block8")]
    assert (len(normed), len(biased)) == (len(timm_normed), len(timm_biased)) == (204, 40)
    with torch.no_grad():
        for mine, theirs in zip(normed, timm_normed, strict=True):
            theirs.conv.weight.copy_(mine.weights)
            theirs.bn.weight.fill_(1.0)
            theirs.bn.bias.copy_(mine.BatchNorm.beta)
            theirs.bn.running_mean.copy_(mine.BatchNorm.moving_mean)
            theirs.bn.running_var.copy_(mine.BatchNorm.moving_variance)
            assert theirs.bn.eps == mine.BatchNorm.epsilon == 1e-3
        for mine, theirs in zip(biased, timm_biased, strict=True):
            theirs.weight.copy_(mine.weights)
            theirs.bias.copy_(mine.biases)
        reference.classif.weight.copy_(module.Logits.weights[1:])
        reference.classif.bias.copy_(module.Logits.biases[1:])
        x = torch.stack([backbone.transform()(image) for image in photos(1)])[:, :, 75:224, 75:224]  # 149 px: quicker
        timm_features = reference.forward_head(reference.forward_features(x), pre_logits=True)
        features, logits = predictions(backbone, x)
        close(features, timm_features.numpy(), what="inception_resnet_v2 features vs timm's port, a photo at 149 px")
        close(logits[:, 1:], reference.forward_head(reference.forward_features(x)).numpy())


def test_inception_checkpoints_that_do_not_fit_are_refused(inception_v3, inception_resnet_v2, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A variable missing (TF-slim's odd names included) or misshapen (a 1000-class head) is named."""
    arrays = read_checkpoint(inception_v3.v1)
    odd = "InceptionV3/Mixed_5c/Branch_1/Conv_1_0c_5x5/BatchNorm/moving_mean"
    head = "InceptionV3/Logits/Conv2d_1c_1x1/weights"
    broken = {k: v for k, v in arrays.items() if k != odd} | {head: np.zeros((1, 1, 2048, 1000), np.float32)}
    with pytest.raises(
        ModelError,
        match=rf"does not fit tfslim:inception_v3: missing \[{odd}\] \(1 in all\); wrong shapes \[{head} "
        r"\(1, 1, 2048, 1000\) \(needs \(1, 1, 2048, 1001\)\)\]",
    ):
        load_backbone("tfslim:inception_v3", write_checkpoint(tmp_path / "v3.ckpt", broken))
    # The biases of a residual block's closing 1x1 convolution (the one Inception-ResNet-v2 convolution that has
    # some), and an unknown block.
    arrays = read_checkpoint(inception_resnet_v2.v1)
    bias = "InceptionResnetV2/Repeat_1/block17_20/Conv2d_1x1/biases"
    extra = "InceptionResnetV2/Repeat_1/block17_21/Conv2d_1x1/biases"
    broken = {k: v for k, v in arrays.items() if k != bias} | {extra: arrays[bias]}
    with pytest.raises(
        ModelError, match=rf"missing \[{bias}\] \(1 in all\); not used by tfslim:inception_resnet_v2 \[{extra}\]"
    ):
        load_backbone("tfslim:inception_resnet_v2", write_checkpoint(tmp_path / "irv2.ckpt", broken))


@needs_photos
def test_extract_and_convert_commands_give_tf_slims_features(
    resnet50, rn50_v1, tmp_path: Path, runner: CliRunner
) -> None:  # type: ignore[no-untyped-def]
    converted = tmp_path / "rn50.safetensors"
    args = ["convert", "--model", "tfslim:resnet_v2_50", "--weights", str(resnet50.v2), "--out", str(converted)]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    before = converted.read_bytes()
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already exists" in again.output and converted.read_bytes() == before
    # The V2 checkpoint, converted, loads without TensorFlow and gives the V1-loaded network's features bit for bit.
    loaded = load_backbone("tfslim:resnet_v2_50", converted)
    x = torch.stack([loaded.transform()(image) for image in photos(2)])
    np.testing.assert_array_equal(loaded.features(x).numpy(), rn50_v1.features(x).numpy())
    folder, labelled = tmp_path / "photos", tmp_path / "labelled"
    (labelled / PHOTOS[3]).mkdir(parents=True)
    shutil.copy(next((KIT / PHOTOS[3]).iterdir()), labelled / PHOTOS[3] / "photo.jpg")
    folder.mkdir()
    for synset in PHOTOS[:3]:
        shutil.copy(next((KIT / synset).iterdir()), folder / f"{synset}.jpg")
    result = runner.invoke(app, [
        "extract", "--model", "tfslim:resnet_v2_50", "--weights", str(converted), "--fit-data", f"images:{folder}",
        "--eval-data", f"imagenet:{labelled}", "--store", str(tmp_path / "s.zarr"), "--quiet",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    store = FeatureStore.open(tmp_path / "s.zarr")
    assert len(store.collections()) == 2
    for collection in store.collections():
        paths = [next(p for p in (folder / str(i), labelled / str(i)) if p.is_file()) for i in store.ids(collection)]
        images = [np.asarray(Image.open(path).convert("RGB")) for path in paths]
        tf_features, _ = resnet50.run(np.stack([tf_preprocess(image, 299) for image in images]))
        close(store.features(collection, "resnet_v2_50"), tf_features)


def to_tf(key: str, value: torch.Tensor) -> np.ndarray:
    """A state-dict tensor in TF-slim's layout."""
    array = value.detach().numpy()
    if array.ndim == 4:
        return array.transpose(2, 3, 1, 0)
    return array.T if array.ndim == 2 else array


@needs_photos
def test_inception_v4_matches_timms_port_given_the_same_weights(tmp_path: Path) -> None:
    """tf-slim's pip package has no Inception-v4; timm's `inception_v4` ports the same graph (its head without the
    background row). Random weights and batch-norm statistics go through a TF checkpoint (with the AuxLogits and
    global_step that Google's checkpoint also holds) into featswap, and straight into timm."""
    import timm

    torch.manual_seed(0)
    ours = load_backbone("tfslim:inception_v4").module
    rng = np.random.default_rng(0)
    state = {}
    for key, value in ours.state_dict().items():
        if key.endswith("moving_mean") or key.endswith("beta") or key.endswith("biases"):
            value = torch.from_numpy(rng.normal(0, 0.1, value.shape).astype(np.float32))
        elif key.endswith("moving_variance"):
            value = torch.from_numpy(rng.uniform(0.5, 2.0, value.shape).astype(np.float32))
        state[key] = value
    arrays = {inception_v4_variable(k): to_tf(k, v) for k, v in state.items()}
    arrays["InceptionV4/AuxLogits/Aux_logits/weights"] = np.zeros((768, 1001), np.float32)
    arrays["global_step"] = np.array(7, np.int64)
    checkpoint = write_checkpoint(tmp_path / "inception_v4.ckpt", arrays)
    backbone = load_backbone("tfslim:inception_v4", checkpoint)
    assert backbone.feature_dim == 1536 and backbone.head_offset == 1

    reference = timm.create_model("inception_v4", pretrained=False, num_classes=1000).eval()
    convs = [m for m in backbone.module.modules() if type(m).__name__ == "Conv"]
    timm_convs = [m for m in reference.modules() if type(m).__name__ == "ConvNormAct"]
    assert len(convs) == len(timm_convs) == 149
    with torch.no_grad():
        for mine, theirs in zip(convs, timm_convs, strict=True):
            theirs.conv.weight.copy_(mine.weights)
            theirs.bn.weight.fill_(1.0)
            theirs.bn.bias.copy_(mine.BatchNorm.beta)
            theirs.bn.running_mean.copy_(mine.BatchNorm.moving_mean)
            theirs.bn.running_var.copy_(mine.BatchNorm.moving_variance)
            assert theirs.bn.eps == mine.BatchNorm.epsilon == 1e-3
        reference.last_linear.weight.copy_(backbone.module.Logits.weights[1:])
        reference.last_linear.bias.copy_(backbone.module.Logits.biases[1:])
        transform = backbone.transform()
        x = torch.stack([transform(image) for image in photos(2)])[:, :, 75:224, 75:224]  # 149 px: quicker
        timm_features = reference.forward_head(reference.forward_features(x), pre_logits=True)
        close(backbone.features(x).numpy(), timm_features.numpy())
        close(backbone.forward(x)[:, 1:].numpy(), reference(x).numpy())


@pytest.fixture(scope="module")
def rn50_arrays(resnet50) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    return read_checkpoint(resnet50.v2)


def test_a_checkpoint_that_does_not_fit_is_refused_naming_its_variables(rn50_arrays, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    unit = "resnet_v2_50/block2/unit_3/bottleneck_v2"
    missing = {k: v for k, v in rn50_arrays.items() if k != f"{unit}/conv2/BatchNorm/moving_variance"}
    with pytest.raises(ModelError, match=rf"missing \[{unit}/conv2/BatchNorm/moving_variance\] \(1 in all\)"):
        load_backbone("tfslim:resnet_v2_50", write_checkpoint(tmp_path / "missing.ckpt", missing))
    misshapen = {**rn50_arrays, f"{unit}/conv3/weights": np.zeros((1, 1, 128, 500), np.float32)}
    with pytest.raises(
        ModelError, match=rf"wrong shapes \[{unit}/conv3/weights \(1, 1, 128, 500\) \(needs \(1, 1, 128, 512\)\)\]"
    ):
        load_backbone("tfslim:resnet_v2_50", write_checkpoint(tmp_path / "misshapen.ckpt", misshapen, version=1))
    extra = {**rn50_arrays, "resnet_v2_50/block5/unit_1/conv1/weights": np.zeros((1, 1, 8, 8), np.float32)}
    with pytest.raises(
        ModelError, match=r"not used by tfslim:resnet_v2_50 \[resnet_v2_50/block5/unit_1/conv1/weights\]"
    ):
        load_backbone("tfslim:resnet_v2_50", write_checkpoint(tmp_path / "extra.ckpt", extra))
    with pytest.raises(
        ModelError,
        match=r"missing \[resnet_v2_101/.*\(544 in all\).*under resnet_v2_50; is it .* network \(resnet_v2_101\)",
    ):
        load_backbone("tfslim:resnet_v2_101", tmp_path / "extra.ckpt")
    broken = {**rn50_arrays, "resnet_v2_50/postnorm/beta": np.full(2048, np.nan, np.float32)}
    with pytest.raises(ModelError, match=r"NaN or inf in \[resnet_v2_50/postnorm/beta\]"):
        load_backbone("tfslim:resnet_v2_50", write_checkpoint(tmp_path / "nan.ckpt", broken))
    # Training state is accepted: slots under used variables (moving averages, momenta), global_step.
    slots = {**rn50_arrays, "resnet_v2_50/logits/weights/Momentum": rn50_arrays["resnet_v2_50/logits/weights"]}
    load_backbone(
        "tfslim:resnet_v2_50", write_checkpoint(tmp_path / "slots.ckpt", {**slots, "global_step": np.array(3)})
    )


def test_paths_that_are_no_checkpoint_and_other_refusals(tmp_path: Path, resnet50) -> None:  # type: ignore[no-untyped-def]
    index = find_checkpoint(Path(f"{resnet50.v2}.index"))
    assert index is not None and index.prefix == resnet50.v2 and index.version == 2 and len(index.files) == 2
    with pytest.raises(
        ModelError, match=r"No checkpoint at .*nothing\.ckpt: neither a file nor a TF checkpoint prefix"
    ):
        load_backbone("tfslim:resnet_v2_50", tmp_path / "nothing.ckpt")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint" * 10)
    with pytest.raises(ModelError, match=r"junk\.ckpt is not a readable PyTorch checkpoint or safetensors file"):
        load_backbone("tfslim:resnet_v2_50", junk)
    with pytest.raises(ModelError, match=r"holds several TF checkpoints \(v1\.ckpt, v2\.ckpt\)"):
        load_backbone("tfslim:resnet_v2_50", resnet50.v1.parent)
    with pytest.raises(ModelError, match=r"give Google's checkpoint .* with --weights CKPT"):
        load_backbone("tfslim:resnet_v2_50", pretrained=True)
    with pytest.raises(SpecError, match=r"tfslim has no network 'resnet_v2_51'.*resnet_v2_50"):
        load_backbone("tfslim:resnet_v2_51")
    with pytest.raises(SpecError, match="convert writes safetensors"):
        convert("tfslim:resnet_v2_50", resnet50.v1, tmp_path / "out.pt")
    existing = tmp_path / "mine.safetensors"
    existing.write_bytes(b"a user's file")
    with pytest.raises(SpecError, match="already exists; convert never overwrites"):
        convert("tfslim:resnet_v2_50", resnet50.v1, existing)
    assert existing.read_bytes() == b"a user's file"


def test_without_tensorflow_one_error_line_says_how_to_get_it(resnet50, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "x.safetensors"
    args = ["convert", "--model", "tfslim:resnet_v2_50", "--weights", str(resnet50.v1), "--out", str(out)]
    script = f"import sys; sys.modules['tensorflow'] = None; from featswap.cli import app; app({args!r})"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env={**os.environ})
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: Reading the TensorFlow checkpoint") and "pip install 'featswap[tf]'" in lines[0]
    assert "featswap convert" in lines[0] and not out.exists()


def test_layers_lists_tf_slim_end_points(runner: CliRunner) -> None:
    result = runner.invoke(
        app,
        [
            "layers",
            "--model",
            "tfslim:resnet_v2_50",
            "--data-config",
            json.dumps({**data_config(), "input_size": [3, 64, 64]}),
        ],
    )
    assert result.exit_code == 0, result.output
    for name in ("block1.unit_3", "block1.unit_3.conv2", "block2.unit_4", "block3.unit_6", "block4", "postnorm"):
        assert name in result.output


@pytest.mark.parametrize(
    ("arch", "names"),
    [
        ("inception_v3", ("MaxPool_5a_3x3", "Mixed_5c.Branch_1.Conv_1_0c_5x5", "Mixed_6e", "Mixed_7c")),
        (
            "inception_resnet_v2",
            ("Mixed_5b", "Repeat.block35_10", "Repeat_1.block17_20.Conv2d_1x1", "Repeat_2.block8_9", "Block8",
             "Conv2d_7b_1x1"),
        ),
    ],
)  # fmt: skip
def test_layers_lists_the_inceptions_end_points(arch: str, names: tuple[str, ...], runner: CliRunner) -> None:
    config = json.dumps({**data_config(), "input_size": [3, 75, 75]})  # the smallest input they take
    result = runner.invoke(app, ["layers", "--model", f"tfslim:{arch}", "--data-config", config])
    assert result.exit_code == 0, result.output
    for name in names:
        assert name in result.output
