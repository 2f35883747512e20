"""`featswap stitch`: maps at any layer pair of two real networks, fitted from streamed moments, evaluated through
the target's own later layers. The consistency checks: at the pooled features stitching is `compare`; a network
stitched to itself keeps its accuracy at every layer, through an identity map."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import featswap
from featswap.backbones.sources import load_backbone
from featswap.cli import app
from featswap.config import DataSettings, FitSettings, ModelConfig, RunConfig, StitchSettings
from featswap.data.collections import Collection
from featswap.outputs.metrics_json import MetricsError, read_metrics
from featswap.stitching.activations import to_grid
from featswap.stitching.fitting import Route, accumulate, solve
from featswap.stitching.images import paired_batches
from featswap.stitching.layers import NetworkLayers
from images import write_folder
from runs import assert_same

OUTCOME_KEYS = ("mapped_correct", "total", "native_correct", "loss", "loss_ci95", "fixed", "broken", "mcnemar_p",
                "venn", "agreement", "mapped_top5_accuracy", "native_top5_accuracy", "per_class")  # fmt: skip


def models(weights: dict[str, Path], first: str = "tiny-resnet", second: str = "tiny-inception") -> list[str]:
    return ["--model", first, "--weights", str(weights[first]), "--model", second, "--weights", str(weights[second])]


def stitch(runner: CliRunner, args: list[str]) -> dict:
    result = runner.invoke(app, ["stitch", *args, "--quiet", "--n-boot", "100"])
    assert result.exit_code == 0, result.output
    out = Path(args[args.index("--out") + 1])
    return json.loads((out / "metrics.json").read_text())


def fails(runner: CliRunner, args: list[str], start: str) -> None:
    result = runner.invoke(app, ["stitch", *args, "--quiet"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {start}"), result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_stitching_at_the_pooled_features_gives_compares_numbers(
    runner: CliRunner, trained_weights: dict[str, Path], tmp_path: Path
) -> None:
    common = [*models(trained_weights), "--data", "digits", "--n-boot", "100"]
    compared = runner.invoke(app, ["compare", *common, "--solver", "lstsq", "--out", str(tmp_path / "cmp"), "--quiet"])
    assert compared.exit_code == 0, compared.output
    reference = json.loads((tmp_path / "cmp" / "metrics.json").read_text())
    stitched = stitch(runner, [*models(trained_weights), "--data", "digits", "--layers", "@pooled:@pooled",
                               "--out", str(tmp_path / "st")])  # fmt: skip
    assert len(stitched["pairs"]) == 2
    for pair in reference["pairs"]:
        twin = next(p for p in stitched["pairs"] if p["source"] == pair["source"])
        assert (twin["source_layer"], twin["target_layer"], twin["resampled"]) == ("@pooled", "@pooled", None)
        for key in OUTCOME_KEYS:
            assert twin[key] == pair[key], key
        assert twin["fit"]["val_loss"] == pytest.approx(pair["fit"]["val_loss"], rel=1e-6)
    shared = {"spec", "feature_dim", "val_correct", "val_total", "val_accuracy", "val_top5_accuracy"}
    pick = lambda ms: {n: {k: v for k, v in m.items() if k in shared} for n, m in ms.items()}  # noqa: E731
    assert pick(stitched["models"]) == pick(reference["models"])


def test_the_python_api_and_a_repeated_config_give_the_commands_numbers(
    runner: CliRunner, trained_weights: dict[str, Path], tmp_path: Path
) -> None:
    args = [*models(trained_weights), "--data", "digits", "--layers", "blocks.1:mixed2", "--solver",
            "lstsq,procrustes", "--out", str(tmp_path / "cli")]  # fmt: skip
    from_cli = stitch(runner, args)
    config = RunConfig(
        models=tuple(ModelConfig(spec, str(trained_weights[spec])) for spec in ("tiny-resnet", "tiny-inception")),
        data=DataSettings(data="digits"),
        fit=FitSettings(("lstsq", "procrustes")),
        stitch=StitchSettings(("blocks.1:mixed2",)),
        out=str(tmp_path / "api"),
    ).with_(evaluation=featswap.EvaluationSettings(n_boot=100))
    from_api = featswap.stitch(config, quiet=True)
    from_api.pop("featswap_version"), from_cli.pop("featswap_version")
    assert_same(from_api, from_cli)
    again = runner.invoke(app, ["stitch", "--config", str(tmp_path / "cli" / "config.toml"), "--out",
                                str(tmp_path / "again"), "--quiet"])  # fmt: skip
    assert again.exit_code == 0, again.output
    repeated = json.loads((tmp_path / "again" / "metrics.json").read_text())
    repeated.pop("featswap_version")
    assert_same(repeated, from_cli)
    # Both solvers, both directions, one layer pair; grids 4x4 and 4x4: no resampling.
    assert sorted((p["source"], p["solver"]) for p in from_cli["pairs"]) == [
        ("tiny-inception", "lstsq"), ("tiny-inception", "procrustes"), ("tiny-resnet", "lstsq"),
        ("tiny-resnet", "procrustes")]  # fmt: skip
    # The report is re-rendered from metrics.json alone, and metrics.json reads back unchanged.
    before = (tmp_path / "cli" / "report.md").read_text()
    (tmp_path / "cli" / "report.md").unlink()
    assert runner.invoke(app, ["report", str(tmp_path / "cli")]).exit_code == 0
    assert (tmp_path / "cli" / "report.md").read_text() == before
    assert read_metrics(tmp_path / "cli") == json.loads((tmp_path / "cli" / "metrics.json").read_text())


def test_stages_join_every_stage_pair_and_resample_other_grids(
    runner: CliRunner, trained_weights: dict[str, Path], tmp_path: Path
) -> None:
    metrics = stitch(runner, [*models(trained_weights), "--data", "digits", "--out", str(tmp_path / "st")])
    pairs = {(p["source_layer"], p["target_layer"]) for p in metrics["pairs"] if p["source"] == "tiny-resnet"}
    stages_r, stages_i = ["blocks.0", "blocks.1", "norm"], ["mixed1", "mixed2"]
    assert pairs == {(a, b) for a in stages_r for b in stages_i} | {("@pooled", "@pooled")}
    layers = metrics["layers"]
    assert layers["tiny-resnet"]["blocks.0"]["shape"] == [32, 8, 8] and layers["tiny-inception"]["mixed2"]["shape"] == [
        96, 4, 4]  # fmt: skip
    for p in metrics["pairs"]:
        source = layers[p["source"]][p["source_layer"]]["shape"]
        target = layers[p["target"]][p["target_layer"]]["shape"]
        assert (p["resampled"] is not None) == (len(source) == 3 and source[1:] != target[1:])
    depths = [layers["tiny-resnet"][name]["depth"] for name in [*stages_r, "@pooled"]]
    assert depths == sorted(depths) and depths[-1] == 1.0 and depths[-2] < 1.0
    report = (tmp_path / "st" / "report.md").read_text()
    for figure in ("stitch_loss_tiny-resnet__to__tiny-inception__lstsq.png",
                   "stitch_loss_tiny-inception__to__tiny-resnet__lstsq.png", "stitch_depth__lstsq.png"):  # fmt: skip
        assert f"figures/{figure}" in report and (tmp_path / "st" / "figures" / figure).stat().st_size > 10_000


def test_a_network_stitched_to_itself_keeps_its_accuracy_at_every_layer(
    runner: CliRunner, trained_weights: dict[str, Path], tmp_path: Path
) -> None:
    weights = {"tiny-inception": trained_weights["tiny-inception"]}
    layers = ["stem:stem", "mixed1.b3:mixed1.b3", "stages", "reduce:reduce"]
    metrics = stitch(runner, [*models(weights, "tiny-inception", "tiny-inception"), "--data", "digits",
                              *[x for layer in layers for x in ("--layers", layer)], "--solver", "lstsq,procrustes",
                              "--out", str(tmp_path / "self")])  # fmt: skip
    assert set(metrics["models"]) == {"tiny-inception", "tiny-inception-2"}
    assert len(metrics["pairs"]) == 2 * 2 * 8  # stem, mixed1.b3, mixed1 x mixed2 (4), @pooled, reduce
    for p in metrics["pairs"]:
        same_layer = p["source_layer"] == p["target_layer"]
        if same_layer:
            assert p["mapped_correct"] == p["native_correct"] and p["agreement"] == 1.0, p["source_layer"]
            assert p["fit"]["train_r2"] == pytest.approx(1.0, abs=1e-9) and p["fit"]["val_loss"] < 1e-9


def test_the_map_of_a_layer_onto_itself_is_the_identity(trained_weights: dict[str, Path]) -> None:
    backbone = load_backbone("tiny-resnet", trained_weights["tiny-resnet"])
    network = NetworkLayers(backbone)
    shapes = {name: network.get(name).shape for name in ("stem", "blocks.0", "norm")}
    routes = [Route(0, name, shape, name, shape) for name, shape in shapes.items()]
    batches = paired_batches(digits_collection(256), [backbone, backbone], 64, 0, skip=False)
    moments = accumulate([backbone, backbone], batches, routes, np.arange(256) % 10 == 0)
    assert moments[0].total.n == 256 * 8 * 8 and moments[0].held.n == 26 * 8 * 8
    for route, m in zip(routes, moments, strict=True):
        for solver in ("lstsq", "procrustes"):
            fitted = solve(route, m, solver, {}, 256)
            if route.source_layer == "stem":
                # 32 channels computed from 9 pixels of one channel: a rank-9 scatter. The map is the identity on
                # the activations (it reproduces them), not on the 23 directions they never take.
                assert np.linalg.matrix_rank(m.total.cxx) == 9
                assert m.total.squared_error(fitted.weight, fitted.bias) <= 1e-9 * m.total.tyy
                if solver == "procrustes":  # the rotation is determined on those 9 directions only
                    assert fitted.facts["rank"] == 9 and np.linalg.matrix_rank(fitted.weight) == 9
            else:
                np.testing.assert_allclose(fitted.weight, np.eye(route.source_shape[0]), atol=1e-9)
                np.testing.assert_allclose(fitted.bias, 0.0, atol=1e-9)
                assert "rank" not in fitted.facts


def digits_collection(n: int) -> Collection:
    from featswap.data.collections import open_spec

    return open_spec("digits").parts["all"].subset(np.arange(n))


def test_resampling_keeps_a_constant_map_and_changes_only_the_grid() -> None:
    act = torch.full((2, 3, 8, 8), 2.5)
    for size in ((3, 4, 4), (3, 16, 16), (3, 5, 7)):
        out = to_grid(act, size)
        assert tuple(out.shape) == (2, 3, *size[1:])
        torch.testing.assert_close(out, torch.full_like(out, 2.5))
    assert to_grid(act, (3, 8, 8)) is act


TOKENS = textwrap.dedent(
    """
    import torch
    from torch import nn

    class Patches(nn.Module):
        def __init__(self, patch):
            super().__init__()
            self.patch = patch
            self.embed = nn.Conv2d(3, 24, patch, patch)
        def forward(self, x):
            return self.embed(x).flatten(2).transpose(1, 2)  # (N, T, 24)

    class TokenNet(nn.Module):
        def __init__(self, patch):
            super().__init__()
            self.tokens = Patches(patch)
            self.mix = nn.Linear(24, 24)
            self.head = nn.Linear(24, 3)
            self.data_config = {"input_size": (3, 16, 16), "mean": (0.5,) * 3, "std": (0.25,) * 3}
        def forward(self, x):
            return self.head(torch.relu(self.mix(self.tokens(x))).mean(1))

    def patch4():
        torch.manual_seed(0)
        return TokenNet(4)

    def patch8():
        torch.manual_seed(1)
        return TokenNet(8)
    """
)


def test_token_layers_are_mapped_token_by_token(runner: CliRunner, tmp_path: Path) -> None:
    factory = tmp_path / "tokens.py"
    factory.write_text(TOKENS)
    data = ["--data", f"imagefolder:{write_folder(tmp_path / 'imgs', per_class=10)}"]
    metrics = stitch(runner, ["--model", f"{factory}:patch4", "--model", f"{factory}:patch4", "--name", "a", "--name",
                              "b", *data, "--layers", "mix:mix", "--layers", "tokens:tokens", "--out",
                              str(tmp_path / "st")])  # fmt: skip
    assert metrics["layers"]["a"]["mix"]["shape"] == [16, 24]
    for p in metrics["pairs"]:
        assert p["mapped_correct"] == p["native_correct"] and p["agreement"] == 1.0
    other = ["--model", f"{factory}:patch4", "--model", f"{factory}:patch8", *data, "--layers", "mix:mix"]
    refused = "Cannot stitch patch4.mix 16x24 -> patch8.mix 4x24: the layers have 16 and 4 tokens"
    fails(runner, [*other, "--out", str(tmp_path / "x")], refused)


def test_real_timm_and_torchvision_networks_stitch_at_their_stages(runner: CliRunner, tmp_path: Path) -> None:
    config = json.dumps({"input_size": [3, 32, 32], "mean": [0.5] * 3, "std": [0.25] * 3})
    args = ["--model", "timm:resnet18", "--model", "torchvision:resnet18", "--no-pretrained", "--data-config", config,
            "--data", f"imagefolder:{write_folder(tmp_path / 'imgs', per_class=10)}", "--batch-size", "8"]  # fmt: skip
    layers = ["--layers", "layer2:layer2", "--layers", "act1:relu"]
    metrics = stitch(runner, [*args, *layers, "--out", str(tmp_path / "o")])
    assert metrics["layers"]["resnet18"]["act1"]["shape"] == [64, 16, 16]
    assert metrics["layers"]["resnet18-2"]["layer2"]["shape"] == [128, 4, 4]
    assert len(metrics["pairs"]) == 4 and all(p["total"] == 6 for p in metrics["pairs"])
    fails(runner, [*args, "--layers", "layer2:layer1.0.relu", "--out", str(tmp_path / "x")],
          "resnet18-2: layer 'layer1.0.relu' runs 2 times in one forward pass")  # fmt: skip
    fails(runner, [*args, "--layers", "layer2:fc", "--out", str(tmp_path / "x")],
          "resnet18-2: the output of layer 'fc' does not reach the pooled features")  # fmt: skip


@pytest.mark.parametrize(
    ("args", "start"),
    [
        (["--layers", "blocks.1"], "--layers takes LAYER_A:LAYER_B"),
        (["--layers", "a:b:c"], "--layers takes LAYER_A:LAYER_B"),
        (["--layers", ":mixed1"], "--layers takes LAYER_A:LAYER_B"),
        (
            ["--layers", "block.1:mixed1"],
            "tiny-resnet has no layer 'block.1' run before its pooled features. Did you mean 'blocks.1', 'blocks.2'",
        ),
        (["--layers", "blocks.1:@pooled"], "Cannot stitch tiny-resnet.blocks.1 64x4x4 -> tiny-inception.@pooled 96"),
        (["--layers", "head:mixed1"], "tiny-resnet has no layer 'head' run before its pooled features"),
        (["--solver", "refine"], "Stitching fits closed forms from streamed moments"),
        (["--param", "normalize_target=true"], "Stitching fits lstsq to the target's activations as they are"),
    ],
)
def test_bad_stitching_requests_are_one_line(
    runner: CliRunner, trained_weights: dict[str, Path], tmp_path: Path, args: list[str], start: str
) -> None:
    fails(runner, [*models(trained_weights), "--data", "digits", *args, "--out", str(tmp_path / "o")], start)
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_one_fitting_image_is_too_few_for_a_vector_or_for_choosing_a_ridge(
    runner: CliRunner, trained_weights: dict[str, Path], tmp_path: Path
) -> None:
    one = tmp_path / "one"
    one.mkdir()
    write_folder(tmp_path / "imgs", per_class=1)
    (tmp_path / "imgs" / "cat" / "000.jpg").rename(one / "000.jpg")
    (one / "001.jpg").write_bytes(b"not an image")  # three files, one readable
    (one / "002.jpg").write_bytes(b"not an image either")
    data = ["--fit-data", f"images:{one}", "--eval-data", "digits", "--on-bad-image", "skip", "--out",
            str(tmp_path / "o")]  # fmt: skip
    fails(runner, [*models(trained_weights), *data, "--layers", "@pooled:@pooled"], "Too few readable fitting images")
    fails(runner, [*models(trained_weights), *data, "--layers", "blocks.0:mixed1", "--param", "alpha=auto"],
          "Choosing lstsq's ridge strength needs held-out fitting images")  # fmt: skip


def test_stitch_takes_two_models_and_runs_here(
    runner: CliRunner, trained_weights: dict[str, Path], tmp_path: Path
) -> None:
    one = ["--model", "tiny-resnet", "--weights", str(trained_weights["tiny-resnet"])]
    fails(runner, [*one, "--data", "digits", "--out", str(tmp_path / "o")], "stitch joins two networks")
    three = ["--model", "tiny-resnet", "--model", "tiny-inception", "--model", "tiny-resnet", "--data", "digits"]
    fails(runner, [*three, "--out", str(tmp_path / "o")], "stitch joins two networks")
    config = tmp_path / "ray.toml"
    config.write_text('[engine]\nkind = "ray"\n')
    fails(runner, ["--config", str(config), *models(trained_weights), "--data", "digits", "--out", str(tmp_path / "o")],
          "stitch runs in this process")  # fmt: skip
    empty = tmp_path / "empty.toml"
    empty.write_text("[stitch]\nlayers = []\n")
    fails(runner, ["--config", str(empty), *models(trained_weights), "--data", "digits", "--out", str(tmp_path / "o")],
          "--layers needs at least one")  # fmt: skip
    with pytest.raises(featswap.FeatswapError, match="A run needs an output directory"):
        featswap.stitch(RunConfig(models=(ModelConfig("tiny-resnet"), ModelConfig("tiny-inception")),
                                  data=DataSettings(data="digits"), fit=FitSettings(("lstsq",))))  # fmt: skip


def test_an_evaluation_set_with_no_readable_image_is_refused(
    runner: CliRunner, trained_weights: dict[str, Path], tmp_path: Path
) -> None:
    good = write_folder(tmp_path / "fit", per_class=4)
    bad = tmp_path / "eval"
    for name in ("cat", "dog", "fox"):
        (bad / name).mkdir(parents=True)
        (bad / name / "broken.jpg").write_bytes(b"not an image")
    config = json.dumps({"input_size": [1, 8, 8], "mean": [0.5], "std": [0.5]})
    fails(runner, ["--model", "tiny-resnet", "--model", "tiny-resnet", "--data-config", config, "--fit-data",
                   f"images:{good}", "--eval-data", f"imagefolder:{bad}", "--on-bad-image", "skip", "--layers",
                   "norm:norm", "--out", str(tmp_path / "o")], "No image of evaluation set")  # fmt: skip


def test_a_stitch_metrics_file_naming_a_layer_it_does_not_record_is_refused(
    runner: CliRunner, trained_weights: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "st"
    metrics = stitch(runner, [*models(trained_weights), "--data", "digits", "--layers", "norm:mixed2", "--out",
                              str(out)])  # fmt: skip
    metrics["pairs"][0]["target_layer"] = "mixed9"
    (out / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(MetricsError, match="names layer 'mixed9' of tiny-inception, absent from layers"):
        read_metrics(out)


def test_several_evaluation_sets_get_one_entry_and_one_section_each(
    runner: CliRunner, trained_weights: dict[str, Path], tmp_path: Path
) -> None:
    classes = tuple(str(i) for i in range(10))
    first = write_folder(tmp_path / "first", per_class=2, classes=classes)
    second = write_folder(tmp_path / "second", per_class=1, classes=classes)
    sets = ["--eval-data", f"imagefolder:{first}", "--eval-data", f"imagefolder:{second}"]
    out = tmp_path / "o"
    metrics = stitch(runner, [*models(trained_weights), "--fit-data", "digits", *sets, "--layers", "norm:mixed2",
                              "--out", str(out)])  # fmt: skip
    assert [e["dataset"]["name"] for e in metrics["evaluations"]] == ["first", "second"]
    assert [e["dataset"]["val_size"] for e in metrics["evaluations"]] == [20, 10]
    assert all(len(e["pairs"]) == 2 for e in metrics["evaluations"])
    report = (out / "report.md").read_text()
    assert "## Evaluation set `first`" in report and "## Evaluation set `second`" in report
    assert (out / "figures" / "second_stitch_loss_tiny-resnet__to__tiny-inception__lstsq.png").is_file()


def test_maps_fitted_on_few_rows_are_named_in_the_report_with_the_directions_they_determine(
    runner: CliRunner, trained_weights: dict[str, Path], tmp_path: Path
) -> None:
    """10 fitting images: at `@pooled` 10 rows for 96 or 128 channels (too few), and procrustes at a resampled
    layer determined on 39 directions (10 images x 4 positions, centred), whatever the batch size."""
    args = [*models(trained_weights), "--data", "digits", "--train-limit", "10", "--solver", "lstsq,procrustes",
            "--layers", "norm:mixed2", "--layers", "@pooled:@pooled"]  # fmt: skip
    runs = [stitch(runner, [*args, "--batch-size", size, "--out", str(tmp_path / size)]) for size in ("3", "64")]
    fits = [{(p["source_layer"], p["target_layer"], p["solver"]): p["fit"] for p in m["pairs"]} for m in runs]
    assert fits[0][("norm", "mixed2", "procrustes")]["rank"] == fits[1][("norm", "mixed2", "procrustes")]["rank"] == 39
    for key, fit in fits[0].items():
        assert fit["val_loss"] == pytest.approx(fits[1][key]["val_loss"], rel=1e-7, abs=1e-9), key
    assert fits[0][("@pooled", "@pooled", "lstsq")]["underdetermined"]
    report = (tmp_path / "3" / "report.md").read_text()
    assert "**Few fitting rows:** `@pooled` → `@pooled` was fitted on fewer rows (images x positions)" in report
    assert "(the others map to zero), with how many: `norm` → `mixed2` (39), `@pooled` → `@pooled` (9)." in report
