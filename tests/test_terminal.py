"""What a run says, on the terminal and in its report, as a new user reads it: no iteration count for closed
forms, an iterative fit that stopped before converging says so, one line where no measure can be ranked, classes
of one image flagged, an undefined measure's reason on its own line, one thousands separator throughout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from featswap.config import EvaluationSettings, FitSettings, RunConfig
from featswap.experiment import Experiment
from featswap.mapping.solvers.paper import still_falling
from featswap.outputs.report import class_changes


@pytest.fixture(scope="module")
def said(digits_store: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], Path]:
    """The lines a compare on the digits store says, with lstsq and a refine capped at 25 iterations."""
    out = tmp_path_factory.mktemp("said") / "run"
    config = RunConfig(store=str(digits_store), out=str(out),
                       fit=FitSettings(("lstsq", "refine"), {"refine": {"max_iterations": 25}}),
                       evaluation=EvaluationSettings(n_boot=50))  # fmt: skip
    experiment = Experiment(config, quiet=True)
    lines: list[str] = []
    experiment.say = lines.append  # type: ignore[method-assign]
    experiment.compare_stored()
    return lines, out


def test_closed_forms_state_no_iterations_and_iterative_fits_count_them(said: tuple[list[str], Path]) -> None:
    lines, _ = said
    fitted = [line for line in lines if line.startswith("fitted ")]
    assert len(fitted) == 4
    assert all("iterations" not in line for line in fitted if "with lstsq" in line)
    assert all(line.endswith("(25 iterations)") for line in fitted if "with refine" in line), fitted


def test_a_refine_fit_stopped_at_its_cap_says_it_has_not_converged(said: tuple[list[str], Path]) -> None:
    lines, out = said
    assert any("refine: not converged" in line and "max_iterations" in line for line in lines), lines
    metrics = json.loads((out / "metrics.json").read_text())
    refine = [p for p in metrics["pairs"] if p["solver"] == "refine"]
    assert refine and all(p["fit"]["converged"] is False for p in refine)
    assert all("converged" not in p["fit"] for p in metrics["pairs"] if p["solver"] == "lstsq")
    report = (out / "report.md").read_text()
    assert report.count("**Not converged:**") == 2


def test_two_models_give_one_line_instead_of_one_per_measure(said: tuple[list[str], Path]) -> None:
    report = (said[1] / "report.md").read_text()
    assert "too few model pairs" not in report
    assert report.count("Too few model pairs to rank any measure against the swap test") == 1


def test_the_paper_recipe_says_whether_its_loss_still_fell_at_the_end() -> None:
    flat = np.r_[np.linspace(1.0, 0.1, 500), np.full(500, 0.1)]
    falling = np.linspace(1.0, 0.1, 1000)
    assert still_falling(flat) == {"converged": True}
    verdict = still_falling(falling)
    assert verdict["converged"] is False and "still falling at the last of 1,000 iterations" in verdict["message"]
    assert still_falling(falling[:50]) == {}  # too short to judge


def test_a_class_of_one_image_is_flagged_where_its_change_is_named() -> None:
    row = {"class": "7", "images": 1, "native_accuracy": 1.0, "mapped_accuracy": 0.0, "loss": 1.0}
    wide = {"class": "2", "images": 1_200, "native_accuracy": 0.5, "mapped_accuracy": 0.6, "loss": -0.1}
    line = class_changes({"source": "a", "target": "b", "per_class": {"largest_losses": [row],
                                                                       "largest_gains": [wide]}})  # fmt: skip
    assert "class 7 (-100.0, n = 1)" in line and "class 2 (+10.0, n = 1,200)" in line
    assert "Classes with 1 image(s)" in line and "not a finding" in line
    calm = class_changes({"source": "a", "target": "b", "per_class": {"largest_losses": [], "largest_gains": [wide]}})
    assert "not a finding" not in calm
