"""What the Ray engine says where Ray is not installed; these run with or without Ray."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from featswap.cli import app
from featswap.engines.ray.connect import connect, featswap_cause, require_ray
from featswap.errors import ClusterError, SpecError


@pytest.fixture
def without_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `import ray` fail as it does where the extra is not installed."""
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.data", None)


def test_missing_ray_says_how_to_install(without_ray: None) -> None:
    with pytest.raises(ClusterError, match=r"pip install 'featswap\[ray\]'"):
        require_ray()
    with pytest.raises(ClusterError, match="featswap"):
        connect()


def test_cli_without_ray_exits_2(without_ray: None, runner: CliRunner, digits_store: Path, tmp_path: Path) -> None:
    args = ["fit", "--store", str(digits_store), "--source", "tiny-resnet", "--target", "tiny-inception"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "m.safetensors"), "--engine", "ray"])
    assert result.exit_code == 2
    assert "pip install 'featswap[ray]'" in " ".join(result.output.split())


def test_an_unknown_engine_is_refused() -> None:
    from featswap.config import EngineSettings

    with pytest.raises(SpecError, match="--engine must be local or ray; got 'dask'"):
        EngineSettings("dask")


def test_featswap_cause_finds_the_innermost_error() -> None:
    inner = SpecError("the real problem")
    try:
        try:
            raise inner
        except SpecError as err:
            raise RuntimeError("a wrapper") from err
    except RuntimeError as wrapper:
        assert featswap_cause(wrapper) is inner
    assert featswap_cause(RuntimeError("nothing of ours")) is None
