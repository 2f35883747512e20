"""A run is a config: settings checked where they enter, files layered under flags, relative paths in a file
taken from the file's folder, and the steps of the Python API on a run's default store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import featswap
from featswap.cli import app
from featswap.cli.options import run_config
from featswap.config import DataSettings, FitSettings, ModelConfig, RunConfig
from runs import assert_same

MODELS = '[[models]]\nspec = "tiny-resnet"\n\n[[models]]\nspec = "tiny-inception"\n'


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[models]]\nspec = "tiny-resnet"\nweights = 5\n', "weights must be text; got 5"),
        ('[[models]]\nspec = "tiny-resnet"\nname = 5\n', "name must be text; got 5"),
        ('[[models]]\nweights = "w.safetensors"\n', "[models] needs spec"),
        (MODELS + '[data]\nfit_data = 5\neval_data = ["digits"]\n', "fit_data must be text; got 5"),
        (MODELS + '[data]\ndata = ["digits"]\n', "data must be text; got ['digits']"),
        (MODELS + '[data]\nfit_data = "digits"\neval_data = [1]\n', "eval_data must be a list of texts"),
        (MODELS + '[data]\ndata = "digits"\n[fit]\nparams = 5\n', "params must be a table of solver settings"),
        (MODELS + '[data]\ndata = "digits"\n[fit]\nsolvers = 5\n', "solvers must be a list of texts"),
        (MODELS + '[data]\ndata = "digits"\n[engine]\ndevice = 1\n', "device must be text; got 1"),
    ],
)
def test_a_setting_of_the_wrong_kind_is_one_error_line(
    toml: str, message: str, tmp_path: Path, runner: CliRunner
) -> None:
    (tmp_path / "run.toml").write_text(toml)
    result = runner.invoke(app, ["compare", "--config", str(tmp_path / "run.toml"), "--out", str(tmp_path / "o")])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert message in lines[0] and not (tmp_path / "o").exists()


def test_one_text_where_a_list_belongs_is_a_list_of_one() -> None:
    assert DataSettings(fit_data="digits", eval_data="digits").eval_data == ("digits",)  # type: ignore[arg-type]
    assert FitSettings(solvers="lstsq").solvers == ("lstsq",)  # type: ignore[arg-type]


def test_flags_replace_what_the_file_says_for_the_same_thing(tmp_path: Path) -> None:
    (tmp_path / "run.toml").write_text(
        MODELS + '[data]\nfit_data = "images:photos"\neval_data = ["imagefolder:test"]\n'
        '[fit]\nsolvers = ["paper", "lstsq"]\n[fit.params.paper]\niterations = 300\n'
    )
    config = tmp_path / "run.toml"
    # --data replaces the file's fitting and evaluation sets (not "both given").
    assert run_config(config, data="digits").data == DataSettings(data="digits")
    # The solvers given keep the file's settings of those solvers only.
    assert run_config(config, solver="lstsq").fit == FitSettings(("lstsq",))
    assert run_config(config, solver="paper").fit.params == {"paper": {"iterations": 300}}
    assert run_config(config).fit.params == {"paper": {"iterations": 300}}


def test_relative_paths_in_a_file_are_taken_from_its_folder(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "run.toml").write_text(
        'store = "runs/s.zarr"\nout = "runs/x"\n'
        '[[models]]\nspec = "nets/models.py:net"\nweights = "w/net.pt"\n\n[[models]]\nspec = "tiny-resnet"\n'
        '[data]\nfit_data = "fit=images:photos"\neval_data = ["imagefolder:test", "digits"]\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    before = Path.cwd()
    os.chdir(elsewhere)
    try:
        config = RunConfig.build(Path("..") / "project" / "run.toml")
    finally:
        os.chdir(before)
    project = (tmp_path / "project").resolve()
    assert config.models[0] == ModelConfig(f"{project}/nets/models.py:net", weights=f"{project}/w/net.pt")
    assert config.models[1] == ModelConfig("tiny-resnet")
    assert config.data.fit_data == f"fit=images:{project}/photos"
    assert config.data.eval_data == (f"imagefolder:{project}/test", "digits")
    assert (config.store, config.out) == (f"{project}/runs/s.zarr", f"{project}/runs/x")


def test_the_python_api_steps_on_the_runs_default_store(tmp_path: Path) -> None:
    # As the README shows it: the store defaults to OUT/features.zarr; extract, then fit and evaluate what it holds.
    config = RunConfig(
        models=(ModelConfig("tiny-inception"), ModelConfig("tiny-resnet")),
        data=DataSettings(data="digits"),
        fit=FitSettings(("lstsq",)),
        out=str(tmp_path / "py"),
    )
    experiment = featswap.Experiment(config, quiet=True)
    experiment.extract()
    metrics = experiment.compare_stored()
    assert (tmp_path / "py" / "features.zarr").is_dir() and (tmp_path / "py" / "metrics.json").is_file()
    again = featswap.run(
        config.with_(out=str(tmp_path / "again"), store=str(tmp_path / "py" / "features.zarr")), quiet=True
    )
    assert_same(again, metrics)


# -- which featswap wrote a config ----------------------------------------------------------------------------
def checkout_commit() -> str:
    """The commit of the git checkout featswap's source lies in, asked of git here ("unknown" where it is none)."""
    import subprocess

    source = Path(featswap.__file__).parent
    tracked = subprocess.run(
        ["git", "-C", str(source), "ls-files", "--error-unmatch", "__init__.py"], capture_output=True
    )
    if tracked.returncode != 0:
        return "unknown"
    done = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_a_written_config_records_featswaps_version_and_commit(tmp_path: Path) -> None:
    import tomllib

    config = RunConfig(models=(ModelConfig("tiny-resnet"),), data=DataSettings(data="digits"), out=str(tmp_path))
    written = tomllib.loads(config.to_toml())
    assert written["featswap"] == {"version": featswap.__version__, "commit": checkout_commit()}
    if (Path(featswap.__file__).parents[2] / ".git").exists():  # the tests run from a checkout (CI, make test)
        assert len(written["featswap"]["commit"]) == 40


def test_a_config_reads_the_same_with_or_without_the_featswap_table(tmp_path: Path) -> None:
    config = RunConfig(
        models=(ModelConfig("tiny-resnet"), ModelConfig("tiny-inception", name="inc")),
        data=DataSettings(data="digits"),
        fit=FitSettings(("lstsq", "paper"), {"paper": {"iterations": 30}}),
        out=str(tmp_path / "o"),
    )
    text = config.to_toml()
    table = text.index("[featswap]")
    (tmp_path / "with.toml").write_text(text)
    (tmp_path / "without.toml").write_text(text[:table])
    (tmp_path / "other.toml").write_text(text[:table] + '[featswap]\nversion = "0.0.1"\ncommit = "unknown"\n')
    assert "[featswap]" not in (tmp_path / "without.toml").read_text()
    read = [RunConfig.build(tmp_path / name) for name in ("with.toml", "without.toml", "other.toml")]
    assert read[0] == read[1] == read[2] == config
    assert run_config(tmp_path / "with.toml") == run_config(tmp_path / "without.toml")
    assert read[0].to_toml() == text  # written again, the same file


def test_the_commit_is_unknown_without_git(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from featswap import provenance

    def no_git(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError("git")

    provenance.source_commit.cache_clear()
    monkeypatch.setattr(subprocess, "run", no_git)
    try:
        assert provenance.provenance() == {"version": featswap.__version__, "commit": "unknown"}
    finally:
        provenance.source_commit.cache_clear()
