"""`featswap paper`: the paper's figures as data (checked against the paper's text), the comparison's arithmetic,
the errors of a missing checkpoint or ImageNet part, and the whole command on the sample kit's real MobileNets in an
ImageNet layout (train/ of synset folders, a flat val/ labelled by Kaggle's CSV) with its resume after a SIGKILL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from featswap.cli import app
from featswap.data.imagenet import imagenet_synsets
from featswap.outputs.metrics_json import invariant_violations
from featswap.paper.figures import FIGURES, PAPER_TOTAL, TABLE_1, figure
from featswap.paper.report import comparison, proportion_interval, render

SHARED = Path(__file__).resolve().parents[2] / "shared"
KIT = SHARED / "data" / "imagenet-sample"
PAPER = SHARED / "seed" / "inception-resnet-equivalence.txt"
needs_kit = pytest.mark.skipif(not (KIT / "weights").is_dir(), reason=f"{KIT} is absent")


@pytest.mark.skipif(not PAPER.is_file(), reason=f"{PAPER} is absent")
def test_every_figure_is_quoted_verbatim_from_the_paper_and_its_numbers_are_in_the_quote() -> None:
    text = PAPER.read_text()
    for f in FIGURES:
        assert f.quote in text, f.key
        assert f"{f.count:,}" in f.quote
        if f.stated_percent is not None:
            assert f"\t{f.stated_percent:.1f}" in f.quote
        if f.stated_loss is not None:
            assert f.quote.endswith(f"{abs(f.stated_loss):.1f}") and (f.stated_loss < 0) == ("\u2212" in f.quote)
    # The arithmetic the paper's own figures obey: ResNet's misses are what it does not get right of 50,000.
    assert figure("resnet_misses").count == PAPER_TOTAL - figure("resnet_native").count
    # Stated percentages round the counts, except Inception-v4's published 80.2 (its count is 80.07%).
    for f in TABLE_1[1:]:
        assert round(100 * f.fraction, 1) == f.stated_percent
    assert round(100 * figure("inception_native").fraction, 2) == 80.07


def metrics_of(total: int, correct: dict[str, int], mapped: dict[str, int], fixed: int) -> dict:
    """A metrics.json of two models `i` and `r` with the paper solver's two maps (intervals as wide as given)."""

    def pair(source: str, target: str) -> dict:
        native, ours = correct[target] / total, mapped[source] / total
        return {
            "source": source, "target": target, "solver": "paper", "total": total,
            "native_correct": correct[target], "native_accuracy": native,
            "native_accuracy_ci95": [native - 0.01, native + 0.01],
            "mapped_correct": mapped[source], "mapped_accuracy": ours,
            "mapped_accuracy_ci95": [ours - 0.02, ours + 0.02],
            "loss": native - ours, "loss_ci95": [native - ours - 0.005, native - ours + 0.005],
            "fixed": fixed if source == "i" else 0, "fit": {"iterations": 100},
        }  # fmt: skip

    return {
        "dataset": {"train_size": 300, "val_size": total},
        "models": {"i": {"precision": "fp32"}, "r": {"precision": "fp32"}},
        "pairs": [pair("i", "r"), pair("r", "i")],
    }


def test_the_comparison_sets_each_figure_beside_the_runs_with_the_difference_and_its_interval() -> None:
    metrics = metrics_of(1000, {"i": 810, "r": 770}, {"i": 790, "r": 750}, fixed=60)
    paper = comparison(metrics, "i", "r", n_boot=500, seed=3)
    rows = {r["key"]: r for r in paper["rows"]}
    assert list(rows) == [
        "inception_native", "resnet_native", "inception_to_resnet", "resnet_to_inception",
        "inception_to_resnet_loss", "resnet_to_inception_loss", "resnet_misses", "fixed_by_inception_features",
    ]  # fmt: skip
    inc = rows["inception_native"]
    assert (inc["featswap_count"], inc["featswap_total"], inc["paper_count"]) == (810, 1000, 40_037)
    assert inc["difference"] == pytest.approx(0.81 - 40_037 / 50_000)
    assert inc["difference_ci95"] == pytest.approx([0.80 - 40_037 / 50_000, 0.82 - 40_037 / 50_000])
    assert rows["inception_to_resnet"]["featswap_count"] == 790  # ResNet's head on mapped Inception features
    assert rows["resnet_to_inception"]["featswap_count"] == 750
    loss = rows["inception_to_resnet_loss"]
    assert loss["paper_fraction"] == pytest.approx((39_022 - 39_686) / 50_000)  # -1.33 points: a gain
    assert loss["featswap_fraction"] == pytest.approx(0.77 - 0.79) and loss["paper_stated_percent"] == -1.4
    assert rows["resnet_to_inception_loss"]["paper_fraction"] == pytest.approx((40_037 - 37_866) / 50_000)
    misses = rows["resnet_misses"]
    assert (misses["featswap_count"], misses["paper_count"]) == (230, 10_978)
    assert misses["featswap_ci95"] == pytest.approx([1 - 0.78, 1 - 0.76])
    fixed = rows["fixed_by_inception_features"]
    assert fixed["featswap_count"] == 60 and fixed["paper_fraction"] == 2_960 / 50_000
    assert fixed["featswap_ci95"] == list(proportion_interval(60, 1000, 500, 3))
    markdown = render(paper)
    assert "| Inception-v4 (I -> I) | 40,037 of 50,000 (80.07%); stated 80.2 | 810 of 1,000 (81.00%) | +0.93 |" in (
        markdown
    )
    assert "A smaller run than the paper's" in markdown


def test_the_bootstrap_interval_of_a_proportion_from_its_counts_matches_resampling_the_images() -> None:
    outcomes = np.zeros(400, dtype=np.int64)
    outcomes[:90] = 1
    rng = np.random.default_rng(0)
    resampled = [outcomes[rng.integers(0, 400, 400)].mean() for _ in range(4000)]
    low, high = np.percentile(resampled, [2.5, 97.5])
    ours = proportion_interval(90, 400, 4000, 1)
    assert ours[0] == pytest.approx(low, abs=0.006) and ours[1] == pytest.approx(high, abs=0.006)


def write_imagenet(root: Path, train: int, val: int) -> Path:
    """An ILSVRC2012-like folder from the kit: train/ of synset folders holding the kit's unlabelled photos (any
    synset: fitting reads no labels), and a flat val/ of `val` labelled photos named as ILSVRC2012's, labelled by
    Kaggle's LOC_val_solution.csv beside it."""
    synsets = imagenet_synsets()
    for k, photo in enumerate(sorted((KIT / "unlabelled").glob("*.jpg"))[:train]):
        folder = root / "train" / synsets[k % 1000]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(photo, folder / f"{synsets[k % 1000]}_{k}.JPEG")
    (root / "val").mkdir(parents=True)
    rows = ["ImageId,PredictionString"]
    labelled = sorted((KIT / "images").glob("*/*.JPEG"))
    for k, photo in enumerate(labelled[:: len(labelled) // val][:val], 1):
        name = f"ILSVRC2012_val_{k:08d}"
        shutil.copyfile(photo, root / "val" / f"{name}.JPEG")
        rows.append(f"{name},{photo.parent.name} 0 0 10 10")
    (root / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
    return root


def kit_sides() -> list[str]:
    return [
        "--inception", f"{KIT / 'models.py'}:mobilenet_v2",
        "--inception-weights", str(KIT / "weights" / "mobilenet_v2_1000.safetensors"),
        "--resnet", f"{KIT / 'models.py'}:mobilenet_v1",
        "--resnet-weights", str(KIT / "weights" / "mobilenet_v1_1001.safetensors"),
    ]  # fmt: skip


@needs_kit
def test_the_whole_paper_command_on_real_networks_then_compare_with_its_config_gives_the_same_numbers(
    runner: CliRunner, tmp_path: Path
) -> None:
    imagenet = write_imagenet(tmp_path / "imagenet", train=120, val=100)
    out = tmp_path / "paper"
    result = runner.invoke(
        app,
        ["paper", str(imagenet), *kit_sides(), "--iterations", "30", "--batch-size", "25", "--n-boot", "200",
         "--device", "cpu", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert invariant_violations(metrics) == []
    assert metrics["dataset"]["train_size"] == 120 and metrics["dataset"]["val_size"] == 100
    assert {p["solver"] for p in metrics["pairs"]} == {"paper", "refine", "lstsq"}
    paper = json.loads((out / "paper.json").read_text())
    assert paper["models"] == {"inception": "mobilenet_v2", "resnet": "mobilenet_v1"}
    assert paper["iterations"] == 30 and paper["train_size"] == 120 and paper["val_size"] == 100
    rows = {r["key"]: r for r in paper["rows"]}
    assert rows["inception_native"]["featswap_count"] == metrics["models"]["mobilenet_v2"]["val_correct"]
    assert rows["resnet_native"]["featswap_count"] == metrics["models"]["mobilenet_v1"]["val_correct"]
    assert rows["resnet_native"]["featswap_count"] > 75  # real networks on ImageNet photos (chance: 0.1)
    for r in paper["rows"]:
        assert r["difference"] == pytest.approx(r["featswap_fraction"] - r["paper_fraction"])
        assert r["difference_ci95"][0] <= r["difference"] <= r["difference_ci95"][1]
    assert (out / "paper.md").read_text() in result.output
    assert "| ResNet-v2 152 (R -> R) | 39,022 of 50,000 (78.04%); stated 78 |" in (out / "paper.md").read_text()
    # The run is a config like any other: compare repeats it (from the same store) with the same numbers.
    again = runner.invoke(app, ["compare", "--config", str(out / "config.toml"), "--out", str(tmp_path / "again")])
    assert again.exit_code == 0, again.output
    repeated = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert repeated["models"] == metrics["models"]
    assert untimed(repeated["pairs"]) == untimed(metrics["pairs"])  # all but each fit's seconds


def untimed(pairs: list[dict]) -> list[dict]:
    """Metrics pairs without the fits' wall-clock seconds, the one field two runs never share."""
    return [{**p, "fit": {k: v for k, v in p["fit"].items() if k != "seconds"}} for p in pairs]


@needs_kit
def test_an_interrupted_paper_run_resumes_with_the_features_it_had_finished(runner: CliRunner, tmp_path: Path) -> None:
    from featswap.store import FeatureStore
    from killing import extract_until_killed

    imagenet = write_imagenet(tmp_path / "imagenet", train=120, val=40)
    out = tmp_path / "paper"
    args = ["paper", str(imagenet), *kit_sides(), "--iterations", "20", "--batch-size", "10", "--chunk-rows", "10",
            "--n-boot", "50", "--device", "cpu", "--quiet", "--out", str(out)]  # fmt: skip
    finished = extract_until_killed(args, out / "features.zarr", "mobilenet_v2", "train", done=2)
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    with FeatureStore.open(out / "features.zarr") as store:
        assert store.done_chunks("train", "mobilenet_v2").all()
    assert finished.sum() >= 2 and (out / "paper.md").is_file()


def test_missing_checkpoints_are_one_error_naming_the_files_and_how_to_get_them(
    runner: CliRunner, tmp_path: Path
) -> None:
    imagenet = tmp_path / "imagenet"
    for part in ("train/n01440764", "val/n01440764"):
        (imagenet / part).mkdir(parents=True)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "inception_v4.ckpt").write_bytes(b"")
    result = runner.invoke(app, ["paper", str(imagenet), "--checkpoints", str(tmp_path / "ckpt"), "--out",
                                 str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert "lacks resnet_v2_152.ckpt (or resnet_v2_152.safetensors)" in lines[0]
    assert "inception_v4.ckpt (or" not in lines[0]  # that one is there
    assert "resnet_v2_152_2017_04_14.tar.gz" in lines[0] and "featswap convert" in lines[0]
    result = runner.invoke(app, ["paper", str(imagenet), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "No --checkpoints DIR given" in result.output
    assert "inception_v4.ckpt (or inception_v4.safetensors) and resnet_v2_152.ckpt" in result.output
    result = runner.invoke(app, ["paper", str(imagenet), "--checkpoints", str(tmp_path / "nothing"), "--out",
                                 str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code == 2 and "is not a directory" in result.output
    result = runner.invoke(
        app, ["paper", str(imagenet), "--resnet-weights", str(tmp_path / "no.ckpt"), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2 and "no.ckpt does not exist" in result.output
    assert not (tmp_path / "out").exists()


def test_an_imagenet_folder_without_train_and_val_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "imagenet" / "val" / "n01440764").mkdir(parents=True)
    result = runner.invoke(app, ["paper", str(tmp_path / "imagenet"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "must hold both train/" in result.output
    result = runner.invoke(app, ["paper", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "is not a directory" in result.output


def test_a_checkpoint_is_found_as_v1_v2_or_converted_file(tmp_path: Path) -> None:
    from featswap.paper.setup import find_checkpoint

    assert find_checkpoint(tmp_path, "resnet_v2_152") is None
    (tmp_path / "resnet_v2_152.ckpt.index").write_bytes(b"")
    assert find_checkpoint(tmp_path, "resnet_v2_152") == tmp_path / "resnet_v2_152.ckpt"  # V2: the prefix
    (tmp_path / "inception_v4.ckpt").write_bytes(b"")
    assert find_checkpoint(tmp_path, "inception_v4") == tmp_path / "inception_v4.ckpt"  # V1: the file
    (tmp_path / "inception_v4.safetensors").write_bytes(b"")
    assert find_checkpoint(tmp_path, "inception_v4") == tmp_path / "inception_v4.safetensors"
