"""hf: and openclip: models, with random weights written by the tests: features are exactly what the library's
own head consumes, the logits check passes, the zero-shot head is open_clip's own zero-shot classifier, and the
store, metrics.json and report record which kind of head each model has."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from encoders import register_tiny_clip, save_vit
from featswap.backbones.sources import load_backbone
from featswap.cli import app
from featswap.errors import ModelError, SpecError
from featswap.heads.zero_shot import PHOTO_TEMPLATE, read_templates
from images import write_folder

transformers = pytest.importorskip("transformers")
open_clip = pytest.importorskip("open_clip")


@pytest.fixture(scope="module")
def vit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_vit(tmp_path_factory.mktemp("vit") / "vit-tiny", classes=3)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_vit(tmp_path_factory.mktemp("enc") / "vit-encoder", classes=None, seed=1)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> str:
    return register_tiny_clip(tmp_path_factory.mktemp("clip"))


def test_hf_classifier_features_are_what_its_head_consumes(vit: Path) -> None:
    backbone = load_backbone(f"hf:{vit}", num_classes=3, pretrained=True)
    model = transformers.AutoModelForImageClassification.from_pretrained(vit, use_kernels=False).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        # ViT's head reads the final-layernormed CLS token (not pooler_output).
        expected = model.vit(pixel_values=x).last_hidden_state[:, 0]
        logits = model(pixel_values=x).logits
    assert torch.equal(backbone.features(x), expected)
    assert backbone.check_logits(x) is not None and backbone.check_logits(x) < 1e-5
    torch.testing.assert_close(backbone.features(x) @ backbone.head_weight.T + backbone.head_bias, logits)
    assert backbone.head_kind.kind == "own" and backbone.name == "vit-tiny"
    config = backbone.data_config
    assert config.input_size == (3, 32, 32) and config.mean == (0.4, 0.5, 0.6) and config.std == (0.2, 0.25, 0.3)


def test_hf_weights_file_loads_like_the_saved_model(vit: Path, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    other = transformers.AutoModelForImageClassification.from_pretrained(vit, use_kernels=False)
    torch.nn.init.normal_(other.classifier.weight)
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, tmp_path / "w.safetensors")
    backbone = load_backbone(f"hf:{vit}", tmp_path / "w.safetensors", num_classes=3)
    assert torch.equal(backbone.head_weight, other.classifier.weight.detach())
    assert backbone.weights_sha256 is not None


def test_headless_hf_encoder_gets_a_probe_head_on_its_cls_token(encoder: Path) -> None:
    backbone = load_backbone(f"hf:{encoder}", num_classes=5, pretrained=True)
    model = transformers.AutoModel.from_pretrained(encoder, use_kernels=False).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        out = model(pixel_values=x)
    assert backbone.head_kind.kind == "probe" and backbone.num_classes == 5
    assert torch.equal(backbone.features(x), out.last_hidden_state[:, 0])
    assert backbone.check_logits(x) is None  # nothing to check until the probe is trained
    choices = {
        "cls": out.last_hidden_state[:, 0],
        "mean-tokens": out.last_hidden_state.mean(1),
        "pooled": out.pooler_output,
    }
    for choice, expected in choices.items():
        chosen = load_backbone(f"hf:{encoder}", num_classes=5, pretrained=True, features=choice)
        torch.testing.assert_close(chosen.features(x), expected)
        assert chosen.features_choice == choice
    with torch.no_grad():
        hidden = model(pixel_values=x, output_hidden_states=True).hidden_states[1]  # after the first layer
    layer = next(n for n, _ in model.named_modules() if n.endswith("layer.0") or n.endswith("layers.0"))
    chosen = load_backbone(f"hf:{encoder}", num_classes=5, pretrained=True, features=f"model.{layer}")
    torch.testing.assert_close(chosen.features(x), hidden.mean(1))


def test_head_and_features_refusals(vit: Path, encoder: Path) -> None:
    with pytest.raises(SpecError, match="--head own, but it has no head"):
        load_backbone(f"hf:{encoder}", num_classes=3, head="own")
    with pytest.raises(SpecError, match="are not what its head consumes"):
        load_backbone(f"hf:{vit}", num_classes=3, head="own", features="cls")
    with pytest.raises(SpecError, match="has no layer of that name"):
        load_backbone(f"hf:{vit}", num_classes=3, features="no.such.layer")
    with pytest.raises(SpecError, match="is for token models"):
        load_backbone("tiny-resnet", num_classes=10, features="cls")
    with pytest.raises(SpecError, match="--head 'best' is not one of"):
        load_backbone("tiny-resnet", num_classes=10, head="best")
    with pytest.raises(SpecError, match="no directory"):
        load_backbone(f"hf:{encoder.parent / 'absent'}", num_classes=3)
    (encoder.parent / "empty").mkdir(exist_ok=True)
    with pytest.raises(ModelError, match="Cannot load hf:"):
        load_backbone(f"hf:{encoder.parent / 'empty'}", num_classes=3)


def test_probe_head_replaces_an_own_head_on_the_same_features(vit: Path) -> None:
    own = load_backbone(f"hf:{vit}", num_classes=3, pretrained=True)
    probe = load_backbone(f"hf:{vit}", num_classes=3, pretrained=True, head="probe")
    x = torch.randn(2, 3, 32, 32)
    assert probe.head_kind.kind == "probe" and torch.equal(probe.features(x), own.features(x))
    assert not probe.head_weight.any()  # zeros until trained on the fitting features


def test_openclip_zero_shot_head_is_open_clips_own(clip: str) -> None:
    from open_clip.zero_shot_classifier import build_zero_shot_classifier

    classes = ("golden_retriever", "tabby cat", "fire truck")
    backbone = load_backbone(f"openclip:{clip}", num_classes=3, classes=classes)
    model = backbone.module.model  # type: ignore[union-attr]
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        embedded = model.encode_image(x)
        classifier = build_zero_shot_classifier(
            model, open_clip.get_tokenizer(clip), ["golden retriever", "tabby cat", "fire truck"], [PHOTO_TEMPLATE]
        )
        logits = model.logit_scale.exp() * torch.nn.functional.normalize(embedded, dim=-1) @ classifier
    torch.testing.assert_close(backbone.features(x), torch.nn.functional.normalize(embedded, dim=-1))
    torch.testing.assert_close(backbone.head_weight, model.logit_scale.exp() * classifier.T)
    torch.testing.assert_close(backbone.features(x) @ backbone.head_weight.T, logits)
    assert backbone.check_logits(x) < 1e-4
    kind = backbone.head_kind
    assert kind.kind == "zero-shot" and kind.names == ("golden retriever", "tabby cat", "fire truck")
    assert kind.templates == (PHOTO_TEMPLATE,)
    assert backbone.data_config.resize_mode == "shortest" and backbone.data_config.interpolation == "bicubic"


def test_openclip_imagenet_names_and_templates(clip: str, tmp_path: Path) -> None:
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES, OPENAI_IMAGENET_TEMPLATES

    from featswap.data.imagenet import imagenet_synsets

    backbone = load_backbone(f"openclip:{clip}", num_classes=1000, classes=imagenet_synsets())
    assert backbone.head_kind.names == tuple(IMAGENET_CLASSNAMES) and len(backbone.head_kind.templates) == 80
    assert backbone.head_kind.templates[0] == OPENAI_IMAGENET_TEMPLATES[0]("{}")
    assert backbone.head_weight.shape == (1000, 16)
    templates = tmp_path / "prompts.txt"
    templates.write_text("a blurry photo of a {}.\n\nan origami {}.\n")
    given = load_backbone(f"openclip:{clip}", num_classes=2, classes=("a", "b"), templates=read_templates(templates))
    assert given.head_kind.templates == ("a blurry photo of a {}.", "an origami {}.")


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "holds no prompt"), ("a photo\n", "needs exactly one"), ("{} and {}\n", "needs exactly one"),
     ("a {0} photo of {}\n", "needs exactly one")],
)  # fmt: skip
def test_bad_templates_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "t.txt"
    path.write_text(text)
    with pytest.raises(SpecError, match=message):
        read_templates(path)
    with pytest.raises(SpecError, match="does not exist"):
        read_templates(tmp_path / "absent.txt")
    with pytest.raises(SpecError, match="is a directory"):
        read_templates(tmp_path)


def test_unknown_openclip_architecture(clip: str) -> None:
    with pytest.raises(SpecError, match="open_clip has no architecture 'ViT-B-33'"):
        load_backbone("openclip:ViT-B-33", num_classes=3)


def test_compare_hf_openclip_and_a_probe_headed_encoder_through_the_cli(
    vit: Path, encoder: Path, clip: str, tmp_path: Path, runner: CliRunner
) -> None:
    data = write_folder(tmp_path / "data", per_class=16, classes=("cat", "dog", "fox"))
    out = tmp_path / "run"
    result = runner.invoke(app, [
        "compare", "--model", f"hf:{vit}", "--model", f"openclip:{clip}", "--model", f"hf:{encoder}",
        "--data", f"imagefolder:{data}", "--val-fraction", "0.5", "--solver", "lstsq", "--n-boot", "20",
        "--no-similarity", "--out", str(out), "--quiet",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    heads = {name: m["head"] for name, m in metrics["models"].items()}
    assert heads["vit-tiny"] == {"kind": "own"}
    assert heads[clip]["kind"] == "zero-shot" and heads[clip]["names"] == ["cat", "dog", "fox"]
    assert heads[clip]["templates"] == [PHOTO_TEMPLATE]
    probe = heads["vit-encoder"]
    assert probe["kind"] == "probe" and probe["fit_images"] == 24 and 0 <= probe["heldout_accuracy"] <= 1
    assert probe["cv_folds"] == 3 and probe["l2"] > 0
    report = (out / "report.md").read_text()
    assert "vit-encoder's head is a linear probe trained by featswap" in report
    assert f"{clip}'s head is a zero-shot text head (3 class names under 1 prompt template(s))" in report
    assert len(metrics["pairs"]) == 6

    # The store records each head's kind in the model's identity: another zero-shot text is another model.
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a drawing of a {}.\n")
    again = runner.invoke(app, [
        "extract", "--model", f"openclip:{clip}", "--templates", str(prompts), "--data", f"imagefolder:{data}",
        "--val-fraction", "0.5", "--store", str(out / "features.zarr"), "--quiet",
    ])  # fmt: skip
    assert again.exit_code == 2 and "already holds a model named" in again.output and "head" in again.output


def test_a_probe_head_needs_labelled_fitting_images(encoder: Path, tmp_path: Path, runner: CliRunner) -> None:
    data = write_folder(tmp_path / "data", per_class=4)
    unlabelled = tmp_path / "flat"
    unlabelled.mkdir()
    for path in sorted(data.rglob("*.png"))[:6]:
        (unlabelled / f"{path.parent.name}-{path.name}").write_bytes(path.read_bytes())
    out = tmp_path / "run"
    result = runner.invoke(app, [
        "compare", "--model", f"hf:{encoder}", "--model", "tiny-resnet", "--fit-data", f"images:{unlabelled}",
        "--eval-data", f"imagefolder:{data}", "--out", str(out), "--quiet",
    ])  # fmt: skip
    assert result.exit_code == 2 and "has no labels" in result.output, result.output
    assert not out.exists()


def test_layers_of_encoders_need_no_head(clip: str, encoder: Path, runner: CliRunner) -> None:
    for spec in (f"openclip:{clip}", f"hf:{encoder}"):
        result = runner.invoke(app, ["layers", "--model", spec])
        assert result.exit_code == 0, result.output
        assert "input 3 x 32 x 32" in result.output


#: Small image classifiers of other transformers architectures, each built from its config: what the head consumes
#: differs (ConvNeXt's and ResNet's pooled, normed vector; DINOv2's CLS token beside the mean patch token; Swin's
#: pooled tokens; BEiT's mean-pooled, normed tokens).
OTHER_CLASSIFIERS = {
    "convnext": ("ConvNextForImageClassification", "ConvNextConfig",
                 {"hidden_sizes": [8, 16, 32, 64], "depths": [1, 1, 1, 1]}),
    "resnet": ("ResNetForImageClassification", "ResNetConfig",
               {"embedding_size": 8, "hidden_sizes": [8, 16, 32, 64], "depths": [1, 1, 1, 1]}),
    "dinov2": ("Dinov2ForImageClassification", "Dinov2Config",
               {"image_size": 32, "patch_size": 8, "hidden_size": 32, "num_hidden_layers": 2,
                "num_attention_heads": 2, "intermediate_size": 64}),
    "swin": ("SwinForImageClassification", "SwinConfig",
             {"image_size": 32, "patch_size": 4, "embed_dim": 8, "depths": [1, 1], "num_heads": [1, 2],
              "window_size": 4}),
    "beit": ("BeitForImageClassification", "BeitConfig",
             {"image_size": 32, "patch_size": 8, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 64, "use_mean_pooling": True}),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(OTHER_CLASSIFIERS))
def test_other_hf_classifiers_give_what_their_head_consumes(kind: str, tmp_path: Path, runner: CliRunner) -> None:
    model_class, config_class, settings = OTHER_CLASSIFIERS[kind]
    torch.manual_seed(0)
    config = getattr(transformers, config_class)(num_labels=5, architectures=[model_class], **settings)
    model = getattr(transformers, model_class)(config).eval()
    folder = tmp_path / kind
    model.save_pretrained(folder)
    transformers.ViTImageProcessor(
        size={"height": 32, "width": 32}, image_mean=[0.4, 0.5, 0.6], image_std=[0.2, 0.25, 0.3]
    ).save_pretrained(folder)
    backbone = load_backbone(f"hf:{folder}", num_classes=5, pretrained=True)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        logits = model(pixel_values=x).logits
    assert backbone.head_kind.kind == "own" and backbone.head_outputs == 5
    torch.testing.assert_close(backbone.features(x) @ backbone.head_weight.T + backbone.head_bias, logits)
    assert backbone.check_logits(x) is not None
    result = runner.invoke(app, ["layers", "--model", f"hf:{folder}"])
    assert result.exit_code == 0 and result.output.startswith(f"{kind}: input 3 x 32 x 32"), result.output
