"""Every user-facing failure is one line starting `error:`, exit status 2, never a traceback: a table of every
subcommand with bad values of its numeric and path options, and the inputs a hurried or hostile user gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from featswap.cli import app
from runs import compare_on_store

WHOLE = "iterations must be a whole number (an integer, such as 20); got "
SMALL = '{"input_size": [3, 16, 16], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}'
EXTRACT = ["extract", "--model", "tiny-resnet", "--data", "digits", "--store", "{new}"]
FIT = ["fit", "--store", "{store}", "--source", "tiny-resnet", "--target", "tiny-inception", "--out", "{new}"]
EVALUATE = ["evaluate", "--store", "{store}", "--maps", "{map}", "--out", "{new}"]
COMPARE = ["compare", "--model", "tiny-resnet", "--model", "tiny-inception", "--data", "digits", "--out", "{new}"]
TWO = ["compare", "--model", "tiny-resnet", "--model", "tiny-inception"]
SIMILARITY = ["similarity", "--store", "{store}", "--out", "{new}"]

CASES = [
    # extract: numbers
    ([*EXTRACT, "--batch-size", "0"], "--batch-size must be at least 1; got 0"),
    ([*EXTRACT, "--batch-size", "-5"], "--batch-size must be at least 1; got -5"),
    ([*EXTRACT, "--batch-size", "abc"], "Invalid value for '--batch-size'"),
    ([*EXTRACT, "--chunk-rows", "-3"], "--chunk-rows must be at least 1; got -3"),
    ([*EXTRACT, "--workers", "-1"], "--workers must be at least 0; got -1"),
    ([*EXTRACT, "--val-fraction", "0"], "--val-fraction must lie in (0, 1); got 0.0"),
    ([*EXTRACT, "--val-fraction", "1.5"], "--val-fraction must lie in (0, 1); got 1.5"),
    ([*EXTRACT, "--val-fraction", "nan"], "--val-fraction must be a finite number; got nan"),
    ([*EXTRACT, "--train-limit", "0"], "--train-limit must be at least 1; got 0"),
    ([*EXTRACT, "--ray-workers", "0"], "--ray-workers must be at least 1; got 0"),
    ([*EXTRACT, "--gpus-per-worker", "-1"], "--gpus-per-worker must lie in [0, inf]; got -1.0"),
    ([*EXTRACT, "--cpus-per-worker", "0"], "--cpus-per-worker must lie in (0, inf]; got 0.0"),
    ([*EXTRACT, "--data-config", '{"input_size": [3, 0, 32], "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}'],
     "data config input_size must be at least 1; got 0"),
    ([*EXTRACT, "--data-config", '{"input_size": [3, 8, 8], "mean": [0.5, 0.5, 0.5], "std": [0, 1, 1]}'],
     "data config std must lie in (0, inf]; got 0"),
    ([*EXTRACT, "--data-config", '{"input_size": [3, 8, 8], "mean": [0, 0, 0], "std": [1, 1, 1], "crop_pct": 0}'],
     "data config crop_pct must lie in (0, 1]"),
    ([*EXTRACT, "--data-config", '{"input_size": 7, "mean": [0.5], "std": [1]}'], "must be lists of numbers"),
    ([*EXTRACT, "--data-config", '{"input_size": [3, 8, 8], "mean": [NaN, 0, 0], "std": [1, 1, 1]}'],
     "data config mean must be a number; got 'NaN'"),
    ([*EXTRACT, "--data-config", "{oops"], "--data-config is not valid JSON"),
    ([*EXTRACT, "--data-config", "[1]"], "--data-config must be a JSON object"),
    # extract: names, paths and choices
    ([*EXTRACT, "--name", "../../x"], "--name '../../x' is not a usable model name"),
    ([*EXTRACT, "--name", ""], "--name '' is not a usable model name"),
    ([*EXTRACT, "--name", "a__to__b"], "--name 'a__to__b' is not a usable model name"),
    ([*EXTRACT, "--name", "zarr.json"], "--name 'zarr.json' is not a usable model name"),
    ([*EXTRACT, "--name", "x" * 65], "at most 64 characters"),
    ([*EXTRACT, "--part", "test"], "--part must be fit or eval; got 'test'"),
    ([*EXTRACT, "--on-bad-image", "ignore"], "--on-bad-image must be one of fail, skip; got 'ignore'"),
    ([*EXTRACT, "--device", "tpu"], "--device must be one of cpu, cuda, auto; got 'tpu'"),
    ([*EXTRACT, "--weights", "{missing}"], "does not exist"),
    ([*EXTRACT, "--weights", "{dir}"], "is not a file; give the path of a .safetensors or .pt file"),
    ([*EXTRACT, "--weights", "{file}"], "is not a readable PyTorch checkpoint or safetensors file"),
    (["extract", "--model", "tiny-resnet", "--data", "digits", "--store", "{file}"], "is a file; give a directory"),
    (["extract", "--model", "{missing}:net", "--data", "digits", "--store", "{new}"], "does not exist"),
    (["extract", "--model", "tiny-resnet", "--data", "imagefolder:{missing}", "--store", "{new}"], "does not exist"),
    (["extract", "--model", "tiny-resnet", "--data", "pictures", "--store", "{new}"], "Unknown data kind 'pictures'"),
    (["extract", "--model", "tiny-resnet", "--data", "digits"], "No feature store given: use --store PATH"),
    (["fit", "--store", "{store}", "--target", "b", "--out", "{new}"], "Missing option '--source'"),
    ([*EXTRACT, "--bogus"], "No such option: --bogus"),
    # fit: solver settings, paths
    ([*FIT, "--solver", "paper", "--param", "iterations=abc"], WHOLE + "'abc'"),
    ([*FIT, "--solver", "paper", "--param", "iterations=2.5"], WHOLE + "2.5"),
    ([*FIT, "--solver", "paper", "--param", "iterations=20.0"], WHOLE + "20.0"),
    ([*FIT, "--solver", "paper", "--param", "iterations=1e9"], WHOLE + "1000000000.0"),
    ([*FIT, "--solver", "refine", "--param", "eval_every=5.0"], "eval_every must be a whole number"),
    ([*FIT, "--solver", "paper", "--param", "lr=0.1", "--param", "lr=0.2"], "--param gives paper.lr twice"),
    ([*FIT, "--solver", "paper", "--param", "lr=nan"], "lr must be a number; got 'nan'"),
    ([*FIT, "--solver", "paper", "--param", "lr=NaN"], "lr must be a number; got 'NaN'"),
    ([*FIT, "--solver", "paper", "--param", "lr=-1"], "lr must lie in (0, 1000]; got -1"),
    ([*FIT, "--solver", "paper", "--param", "batch_size=0"], "batch_size must be at least 1; got 0"),
    ([*FIT, "--solver", "paper", "--param", "decay=1"], "decay must lie in [0, 1); got 1"),
    ([*FIT, "--solver", "refine", "--param", "max_iterations=-1"], "max_iterations must be at least 0; got -1"),
    ([*FIT, "--solver", "lstsq", "--param", "alpha=-1"], "alpha must be a number >= 0, 'auto' or 'auto-if-few'; got"),
    ([*FIT, "--solver", "lstsq", "--param", "alpha=Infinity"], "alpha must be a number >= 0, 'auto' or 'auto-if-few'"),
    ([*FIT, "--solver", "lstsq", "--param", "holdout=1"], "holdout must lie in (0, 1); got 1"),
    ([*FIT, "--solver", "lstsq", "--param", "seed=-2"], "seed must be at least 0; got -2"),
    ([*FIT, "--solver", "procrustes", "--param", "scale=yes"], "scale must be true or false; got 'yes'"),
    ([*FIT, "--solver", "heads", "--param", "rcond=2"], "rcond must lie in (0, 1); got 2"),
    ([*FIT, "--param", "iters=3"], "Solver 'refine' has no setting 'iters'"),
    ([*FIT, "--solver", "lsq"], "Unknown solver 'lsq'"),
    (["fit", "--store", "{store}", "--source", "nobody", "--target", "tiny-inception", "--out", "{new}"],
     "has no complete features of 'nobody'"),
    (["fit", "--store", "{missing}", "--source", "a", "--target", "b", "--out", "{new}"], "No feature store at"),
    (["fit", "--store", "{store}", "--source", "tiny-resnet", "--target", "tiny-inception", "--out", "{dir}"],
     "is a directory; give a file path for the featswap map"),
    (["fit", "--store", "{store}", "--source", "tiny-resnet", "--target", "tiny-inception", "--out", "{file}"],
     "exists and is not a featswap map written by featswap"),
    ([*FIT, "--engine", "spark"], "--engine must be local or ray; got 'spark'"),
    # evaluate
    ([*EVALUATE, "--n-boot", "0"], "--n-boot must be at least 20; got 0"),
    ([*EVALUATE, "--n-boot", "19"], "--n-boot must be at least 20; got 19"),
    ([*EVALUATE, "--n-boot", "1000000000000"], "--n-boot must be at most 1000000; got 1000000000000"),
    ([*EVALUATE, "--seed", "-1"], "--seed must be at least 0; got -1"),
    (["evaluate", "--store", "{store}", "--maps", "{missing}", "--out", "{new}"], "does not exist"),
    (["evaluate", "--store", "{store}", "--maps", "{file}", "--out", "{new}"], "is not a readable featswap map"),
    (["evaluate", "--store", "{store}", "--maps", "{map}", "--out", "{file}"], "is a file; give a directory"),
    ([*EVALUATE, "--maps", "{map}"], "Two maps fitted tiny-resnet -> tiny-inception with solver lstsq"),
    # compare
    ([*COMPARE, "--n-boot", "1"], "--n-boot must be at least 20; got 1"),
    ([*COMPARE, "--val-fraction", "2"], "--val-fraction must lie in (0, 1); got 2.0"),
    ([*COMPARE, "--train-limit", "-1"], "--train-limit must be at least 1; got -1"),
    ([*COMPARE, "--workers", "-1"], "--workers must be at least 0; got -1"),
    ([*COMPARE, "--solver", "paper", "--param", "paper.lr=nan"], "lr must be a number; got 'nan'"),
    ([*COMPARE, "--solver", "lstsq,paper", "--param", "paper.iterations=0"], "iterations must be at least 1; got 0"),
    ([*COMPARE, "--data-config", '{"input_size": [3, -8, 8], "mean": [0, 0, 0], "std": [1, 1, 1]}'],
     "input_size must be at least 1; got -8"),
    # similarity
    ([*SIMILARITY, "--knn-k", "0"], "--knn-k must be at least 1; got 0"),
    ([*SIMILARITY, "--svcca-k", "0"], "--svcca-k must be at least 1; got 0"),
    ([*SIMILARITY, "--collection", "test"], "has no collection 'test'"),
    ([*SIMILARITY, "--model", "tiny-resnet", "--model", "nobody"], "no complete features of 'nobody'"),
    ([*SIMILARITY, "--model", "tiny-resnet", "--model", "tiny-resnet"], "names a model twice"),
    (["similarity", "--store", "{store}", "--out", "{file}"], "is a file; give a directory"),
    # fitting and evaluation sets
    ([*TWO, "--fit-data", "images:{imgs}", "--eval-data", "imagefolder:{imgs}", "--eval-data", "imagefolder:{imgs}",
      "--out", "{new}"], "is given twice; give each evaluation set once"),
    ([*TWO, "--fit-data", "images:{imgs}", "--eval-data", "=imagefolder:{imgs}", "--out", "{new}"],
     "NAME '' is not a usable collection name"),
    ([*TWO, "--fit-data", "images:{imgs}", "--eval-data", "a/b=imagefolder:{imgs}", "--out", "{new}"],
     "NAME 'a/b' is not a usable collection name"),
    ([*TWO, "--fit-data", "zarr.json=images:{imgs}", "--eval-data", "imagefolder:{imgs}", "--out", "{new}"],
     "NAME 'zarr.json' is not a usable collection name"),
    ([*TWO, "--fit-data", "models=images:{imgs}", "--eval-data", "imagefolder:{imgs}", "--out", "{new}"],
     "'models' is reserved in a feature store"),
    ([*TWO, "--fit-data", "images:{one}", "--eval-data", "imagefolder:{imgs}", "--out", "{new}"],
     "has 1 image(s); fitting a map needs at least 3"),
    ([*EXTRACT[:3], "--data", "imagefolder:{tv}", "--val-fraction", "0.5", "--store", "{new}"],
     "has its own train/ and val/ folders"),
    ([*COMPARE, "--store", "{file}"], "is a file; give a directory (new or empty) for the feature store"),
    ([*COMPARE, "--store", "{userdir}"], "is a directory with other contents, not a featswap feature store"),
    ([*COMPARE, "--store", "{new}"], "--store is the --out directory"),
    (["verify", "{run}"], "is a run directory; its feature store is"),
    # demo, report, verify
    (["demo", "--paper-iterations", "0"], "--paper-iterations must be at least 1; got 0"),
    (["demo", "--out", "{file}"], "is a file; give a directory"),
    (["report", "{missing}"], "No metrics.json in"),
    (["verify", "{missing}"], "No feature store at"),
    (["verify", "{file}"], "No feature store at"),
]  # fmt: skip


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory, digits_store: Path, runner: CliRunner) -> dict[str, str]:
    root = tmp_path_factory.mktemp("places")
    (root / "file.txt").write_text("a user's file")
    (root / "dir").mkdir()
    map_path = root / "m.safetensors"
    result = runner.invoke(app, ["fit", "--store", str(digits_store), "--source", "tiny-resnet", "--target",
                                 "tiny-inception", "--solver", "lstsq", "--out", str(map_path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    from images import write_folder

    imgs = write_folder(root / "imgs", per_class=4)
    write_folder(root / "tv" / "train", per_class=4)
    write_folder(root / "tv" / "val", per_class=4)
    (root / "one").mkdir()
    (root / "one" / "x.png").write_bytes((imgs / "cat" / "001.png").read_bytes())
    (root / "userdir").mkdir()
    (root / "userdir" / "notes.txt").write_text("a user's notes")
    (root / "run" / "features.zarr").mkdir(parents=True)
    (root / "run" / "features.zarr" / "zarr.json").write_text("{}")
    return {"store": str(digits_store), "map": str(map_path), "file": str(root / "file.txt"),
            "dir": str(root / "dir"), "missing": str(root / "missing.py"), "imgs": str(imgs), "tv": str(root / "tv"),
            "one": str(root / "one"), "userdir": str(root / "userdir"), "run": str(root / "run")}  # fmt: skip


@pytest.mark.parametrize(("args", "message"), CASES, ids=[" ".join(a[:1] + a[-2:]) for a, _ in CASES])
def test_a_bad_value_is_one_error_line(
    args: list[str], message: str, places: dict[str, str], runner: CliRunner, tmp_path: Path
) -> None:
    filled = []
    for arg in args:
        for key, value in {"new": str(tmp_path / "new"), **places}.items():
            arg = arg.replace("{" + key + "}", value)
        filled.append(arg)
    result = runner.invoke(app, filled)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert message in lines[0], lines[0]
    assert not (tmp_path / "new").exists() or "new" not in " ".join(args)  # nothing written on a refusal


FACTORIES = """
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, width, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(width, 10)
        self.data_config = {"input_size": (1, 8, 8), "mean": (0.5,), "std": (0.5,)}

    def forward(self, x):
        return self.fc(self.body(x))

def needs_arguments(width):
    return Net(width)

def raises():
    raise RuntimeError("CUDA out of memory (from the user's own code)")

def exits():
    raise SystemExit(3)

def net():
    return Net(4)
"""


def test_user_factories_that_fail_are_one_line(tmp_path: Path, runner: CliRunner) -> None:
    (tmp_path / "nets.py").write_text(FACTORIES)
    (tmp_path / "broken.py").write_text("import torch\nthis is not python\n")
    cases = {
        f"{tmp_path / 'broken.py'}:net": "Importing",
        f"{tmp_path / 'nets.py'}:needs_arguments": "featswap calls the factory with no arguments",
        f"{tmp_path / 'nets.py'}:raises": "RuntimeError: CUDA out of memory (from the user's own code)",
        f"{tmp_path / 'nets.py'}:exits": "Calling exits() from",
    }
    for spec, message in cases.items():
        result = runner.invoke(app, ["extract", "--model", spec, "--data", "digits", "--store", str(tmp_path / "s")])
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], result.output
    # Without --name, a factory's model is named after its function, and every command finds it by that name.
    result = runner.invoke(app, ["extract", "--model", f"{tmp_path / 'nets.py'}:net", "--data", "digits",
                                 "--store", str(tmp_path / "s.zarr"), "--quiet"])  # fmt: skip
    assert result.exit_code == 0 and "net / train: 1257 rows" in result.output, result.output
    args = ["extract", "--model", "tiny-resnet", "--data", "digits", "--store", str(tmp_path / "s.zarr")]
    result = runner.invoke(app, [*args, "--quiet", "--train-limit", "100", "--part", "fit"])
    assert result.exit_code == 0 and "tiny-resnet / train-100: 100 rows (100 computed)" in result.output
    result = runner.invoke(app, ["similarity", "--store", str(tmp_path / "s.zarr"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "found ['net']" in result.output


def test_train_limit_applies_to_digits(tmp_path: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["extract", "--model", "tiny-resnet", "--data", "digits", "--train-limit", "100",
                                 "--part", "fit", "--store", str(tmp_path / "s.zarr"), "--quiet"])  # fmt: skip
    assert result.exit_code == 0 and "train-100: 100 rows (100 computed)" in result.output, result.output


def test_weight_files_that_cannot_be_used_are_one_line(tmp_path: Path, runner: CliRunner) -> None:
    import pickle

    import torch

    from featswap.backbones.sources import build_module

    state = build_module("tiny-resnet").state_dict()
    state[next(iter(state))] = torch.full_like(next(iter(state.values())), float("nan"))
    torch.save(state, tmp_path / "nan.pt")
    torch.save(build_module("tiny-resnet"), tmp_path / "whole.pt")
    with open(tmp_path / "raw.pt", "wb") as f:
        pickle.dump({"weights": [1, 2, 3], "optimizer": object()}, f)
    cases = {
        "nan.pt": "holds NaN or inf in [",
        "whole.pt": "not a plain-weights checkpoint",
        "raw.pt": "(a plain pickle, or another format)",
    }
    for name, message in cases.items():
        result = runner.invoke(app, ["extract", "--model", "tiny-resnet", "--weights", str(tmp_path / name),
                                     "--data", "digits", "--store", str(tmp_path / "s")])  # fmt: skip
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], result.output
        assert "weights_only=False" not in result.output and "Warning" not in result.output


def metrics_of(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


@pytest.fixture(scope="module")
def a_run(tmp_path_factory: pytest.TempPathFactory, digits_store: Path) -> Path:
    out = tmp_path_factory.mktemp("a-run")
    compare_on_store(digits_store, out, n_boot=20, names=["tiny-resnet", "tiny-inception"])
    return out


BROKEN_METRICS = [
    (lambda m: m.pop("pairs"), "metrics.pairs is missing"),
    (lambda m: m["models"]["tiny-resnet"].pop("val_correct"), "metrics.models.tiny-resnet.val_correct is missing"),
    (lambda m: m["pairs"][0].update(loss="big"), "metrics.pairs[0].loss should be a finite number"),
    (lambda m: m["pairs"][0].update(mapped_correct=3.5), "metrics.pairs[0].mapped_correct should be a count"),
    (lambda m: m["pairs"][0].update(mcnemar_p=1.5), "metrics.pairs[0].mcnemar_p = 1.5 is outside 0..1"),
    (lambda m: m["pairs"][0]["venn"].pop("none"), "metrics.pairs[0].venn.none is missing"),
    (lambda m: m["pairs"][0].update(loss_ci95=[0.1]), "metrics.pairs[0].loss_ci95 should be a list of 2"),
    (lambda m: m["pairs"][0].update(target="ghost"), "names model 'ghost', absent from models"),
    (lambda m: m["pairs"][0].update(loss=0.5), "loss != native_accuracy - mapped_accuracy"),
    (lambda m: m.update(dataset=[]), "metrics.dataset should be an object"),
]


@pytest.mark.parametrize(("damage", "message"), BROKEN_METRICS)
def test_report_checks_metrics_json_against_the_contract(
    damage: object, message: str, a_run: Path, tmp_path: Path, runner: CliRunner
) -> None:
    metrics = metrics_of(a_run)
    damage(metrics)  # type: ignore[operator]
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    result = runner.invoke(app, ["report", str(tmp_path)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], result.output


def test_report_refuses_nan_and_invalid_json(a_run: Path, tmp_path: Path, runner: CliRunner) -> None:
    text = (a_run / "metrics.json").read_text()
    loss = metrics_of(a_run)["pairs"][0]["loss"]
    (tmp_path / "metrics.json").write_text(text.replace(f'"loss": {json.dumps(loss)}', '"loss": NaN', 1))
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "NaN is not a JSON number" in result.output
    (tmp_path / "metrics.json").write_text("{not json")
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "is not valid JSON" in result.output
    assert runner.invoke(app, ["report", str(a_run)]).exit_code == 0


def test_a_head_of_other_classes_than_the_evaluation_images_is_refused(
    tmp_path: Path, runner: CliRunner, image_folder: Path
) -> None:
    (tmp_path / "nets.py").write_text(FACTORIES)  # net(): a fixed 10-class head, one-channel 8 x 8 input
    spec, data = f"{tmp_path / 'nets.py'}:net", f"imagefolder:{image_folder}"
    result = runner.invoke(app, ["extract", "--model", spec, "--data", data, "--store", str(tmp_path / "s.zarr")])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and "Collection 'val' has 3 classes but net's head predicts 10" in lines[-1]
    assert not (tmp_path / "s.zarr").exists()  # refused before any extraction: nothing written
    result = runner.invoke(app, ["compare", "--model", spec, "--model", spec, "--data", data,
                                 "--out", str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code == 2 and not (tmp_path / "out").exists()


def test_a_bug_in_featswap_is_one_line_or_a_traceback_on_request(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import featswap.outputs.report

    def broken(out: Path) -> Path:
        raise RuntimeError("an internal slip")

    monkeypatch.setattr(featswap.outputs.report, "render_report", broken)
    result = runner.invoke(app, ["report", str(tmp_path)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1
    assert "featswap failed unexpectedly (RuntimeError: an internal slip). This is a bug in featswap" in lines[0]
    monkeypatch.setenv("FEATSWAP_TRACEBACK", "1")
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert isinstance(result.exception, RuntimeError)


def test_report_refuses_deeply_nested_json(tmp_path: Path, runner: CliRunner) -> None:
    (tmp_path / "metrics.json").write_text("[" * 100_000 + "]" * 100_000)
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "is not valid JSON" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["layers", "--threads", "2", "--model", "tiny-resnet"],
         "error: No such option: --threads. --threads goes before the command: `featswap --threads N COMMAND ...`. "
         "See `featswap layers --help`."),
        (["--threads", "abc", "layers"], "error: --threads needs a number of threads before the command; got 'abc'."),
        # The number forgotten: the parser takes the command for the value, then trips on the command's options.
        (["--threads", "layers", "--model", "tiny-resnet"],
         "error: --threads needs a number of threads before the command; got 'layers'. Example: "
         "`featswap --threads 4 compare ...`. See `featswap --help`."),
        (["--threads"], "error: --threads needs a number of threads before the command. Example: "),
        (["--threads=many", "layers", "--model", "tiny-resnet"], "--threads needs a number of threads before the "
         "command; got 'many'"),
        (["--threads", "1", "layers", "--model", "tiny-resnet", "--threads", "x"],
         "error: No such option: --threads. --threads goes before the command"),
        (["layers", "--bogus"], "error: No such option: --bogus. See `featswap layers --help`."),
    ],
)  # fmt: skip
def test_usage_errors_point_to_the_help_of_what_was_being_parsed(
    runner: CliRunner, args: list[str], expected: str
) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert expected in result.output and len(result.output.strip().splitlines()) == 1
