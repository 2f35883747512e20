"""`--measures` and the options of the added measures, through `featswap similarity` and `compare` on real digits
features of two trained networks: what metrics.json, similarity.json and the report hold, that they equal the
Python API's values, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from featswap import similarity as sim
from featswap.catalog.measures import MAX_ROWS, MEASURES, default_measures, selected
from featswap.cli import app
from featswap.config import EvaluationSettings
from featswap.errors import SpecError
from featswap.store import FeatureStore

A, B = "tiny-resnet", "tiny-inception"


def invoke(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_the_catalog_declares_every_measure_once_with_what_a_reader_needs() -> None:
    for name in MEASURES:
        m = MEASURES.get(name)
        assert m.better in ("higher", "lower") and m.span and m.summary and m.memory and m.reference, name
        assert m.source in ("gram", "features", "kernel", "outputs", "map"), name
        assert m.streams == (m.source in ("gram", "outputs", "map")), name
    assert {"svcca_raghu", "pwcca", "cknna", "rbf_cka", "debiased_rbf_cka", "rsa", "disagreement", "jsd",
            "ridge_r2", "map_r2"} <= set(MEASURES)  # fmt: skip
    assert not MEASURES.get("pwcca").symmetric and not MEASURES.get("cknna").symmetric
    defaults = default_measures()
    assert "linear_cka" in defaults and "pwcca" in defaults and "jsd" in defaults
    assert not {"rbf_cka", "rsa", "cknna", "ridge_r2"} & set(defaults)  # N x N or an extra fit: asked for
    assert selected("rsa, linear_cka") == ("linear_cka", "rsa") and selected("all") == tuple(MEASURES)
    with pytest.raises(SpecError, match=r"Unknown similarity measure 'pwca'.*pwcca"):
        selected("pwca")
    with pytest.raises(SpecError, match="at least one measure"):
        selected(" , ")


def test_settings_refuse_bad_values() -> None:
    with pytest.raises(SpecError, match="rbf_sigma must lie in"):
        EvaluationSettings(rbf_sigma=0)
    with pytest.raises(SpecError, match="rsa_distance must be one of"):
        EvaluationSettings(rsa_distance="cosine")
    with pytest.raises(SpecError, match="rsa_compare must be one of"):
        EvaluationSettings(rsa_compare="tau-b")
    with pytest.raises(SpecError, match="nxn_rows must be at most 23000"):
        EvaluationSettings(nxn_rows=MAX_ROWS + 1)
    with pytest.raises(SpecError, match="cknna needs at least 2 neighbours"):
        EvaluationSettings(measures=("cknna",), knn_k=1)
    with pytest.raises(SpecError, match="measures must be a list of texts"):
        EvaluationSettings(measures=3)  # type: ignore[arg-type]


def test_n_x_n_measures_refuse_too_many_images_or_subsample_them() -> None:
    from featswap.experiment.evaluating import kernel_rows

    settings = EvaluationSettings(measures=("rbf_cka",))
    assert kernel_rows(MAX_ROWS, settings) is None
    with pytest.raises(
        SpecError, match=r"rbf_cka needs N x N matrices: 22\.6 GiB for 23,500 images.*21\.7 GiB.*--nxn-rows 23000"
    ):
        kernel_rows(23_500, settings)
    rows = kernel_rows(50_000, EvaluationSettings(measures=("rbf_cka",), nxn_rows=1000, seed=3))
    assert rows is not None and len(rows) == 1000 and len(set(rows.tolist())) == 1000
    assert np.array_equal(rows, np.sort(rows)) and rows.max() < 50_000
    again = kernel_rows(50_000, EvaluationSettings(measures=("rbf_cka",), nxn_rows=1000, seed=3))
    assert again is not None and np.array_equal(rows, again)


@pytest.fixture(scope="module")
def all_measures(digits_store: Path, tmp_path_factory: pytest.TempPathFactory, runner: CliRunner) -> Path:
    out = tmp_path_factory.mktemp("sim") / "all"
    code, output = invoke(runner, "similarity", "--store", str(digits_store), "--out", str(out), "--measures",
                          "all", "--nxn-rows", "300", "--rsa-compare", "kendall", "--rbf-sigma", "0.5",
                          "--knn-k", "5")  # fmt: skip
    assert code == 0, output
    assert "rbf_cka (0..1, higher = more similar)" in output and "pwcca" in output
    return out


def test_similarity_computes_every_measure_asked_for_as_the_python_api_does(
    all_measures: Path, digits_store: Path
) -> None:
    found = json.loads((all_measures / "similarity.json").read_text())
    values = found["similarity"]
    assert set(values) == set(MEASURES)
    assert found["similarity_undefined"] == []
    with FeatureStore.open(digits_store) as store:
        x, y = store.features("val", A), store.features("val", B)
        ha, hb = store.head(A), store.head(B)
    n = len(x)
    assert found["similarity_subsample"] == {"rows": 300, "of": n, "seed": 0,
                                             "measures": ["debiased_rbf_cka", "rbf_cka", "rsa"]}  # fmt: skip
    rows = np.sort(np.random.default_rng(0).choice(n, 300, replace=False))
    expected = {
        "pwcca": (sim.pwcca(x, y), sim.pwcca(y, x)),
        "cknna": (sim.cknna(x, y, k=5), sim.cknna(y, x, k=5)),
        "svcca_raghu": (sim.svcca_raghu(x, y),) * 2,
        "mutual_knn": (sim.mutual_knn(x, y, k=5),) * 2,
        "rbf_cka": (sim.rbf_cka(x[rows], y[rows], sigma=0.5),) * 2,
        "debiased_rbf_cka": (sim.debiased_rbf_cka(x[rows], y[rows], sigma=0.5),) * 2,
        "rsa": (sim.rsa(x[rows], y[rows], distance="euclidean", comparison="kendall"),) * 2,
        "disagreement": (sim.disagreement(x @ ha[0].T + ha[1], y @ hb[0].T + hb[1]),) * 2,
        "jsd": (sim.jsd(x.astype(np.float64) @ ha[0].T + ha[1], y.astype(np.float64) @ hb[0].T + hb[1]),) * 2,
    }
    for measure, (ab, ba) in expected.items():
        assert values[measure][A][B] == pytest.approx(ab, abs=1e-6), measure
        assert values[measure][B][A] == pytest.approx(ba, abs=1e-6), measure
    assert values["pwcca"][A][B] != pytest.approx(values["pwcca"][B][A], abs=1e-6)
    for direction in ((A, B), (B, A)):
        ridge = values["ridge_r2"][direction[0]][direction[1]]
        assert ridge is not None and -1 < ridge <= 1


@pytest.fixture(scope="module")
def compared(trained_weights: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, runner: CliRunner) -> Path:
    out = tmp_path_factory.mktemp("cmp") / "run"
    models = [a for m in (A, B) for a in ("--model", m, "--weights", str(trained_weights[m]))]
    code, output = invoke(runner, "compare", *models, "--data", "digits", "--solver", "lstsq", "--n-boot", "20",
                          "--measures", "pwcca,disagreement,jsd,ridge_r2,rsa,rbf_cka", "--out", str(out),
                          "--quiet")  # fmt: skip
    assert code == 0, output
    return out


def test_compare_writes_the_measures_asked_for_and_each_maps_output_measures(compared: Path) -> None:
    from featswap.outputs.metrics_json import contract_violations

    metrics = json.loads((compared / "metrics.json").read_text())
    assert contract_violations(metrics) == []
    assert list(metrics["similarity"]) == ["disagreement", "jsd", "pwcca", "rbf_cka", "ridge_r2", "rsa"]
    assert "similarity_subsample" not in metrics  # 540 images: all of them
    for pair in metrics["pairs"]:
        assert 0 <= pair["disagreement"] <= 1 and 0 <= pair["jsd"] <= 1
        assert pair["disagreement"] == pytest.approx(1 - pair["agreement"])
    report = (compared / "report.md").read_text()
    assert "| `rbf_cka` | 0..1 | higher |" in report and "| `jsd` | 0..1 | lower |" in report
    assert "`pwcca`, `ridge_r2` are directional" in report
    assert "native ones" in report and "JSD" in report
    from featswap.config import RunConfig

    settings = RunConfig.build(compared / "config.toml").evaluation  # the config records them, and reads back
    assert settings.measures == ("disagreement", "jsd", "pwcca", "rbf_cka", "ridge_r2", "rsa")


def test_report_re_renders_the_same_from_saved_files(compared: Path, runner: CliRunner) -> None:
    before = (compared / "report.md").read_text()
    code, output = invoke(runner, "report", str(compared))
    assert code == 0, output
    assert (compared / "report.md").read_text() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--measures", "cka"], "Unknown similarity measure 'cka'"),
        (["--rsa-compare", "tau-b"], "--rsa-compare must be one of"),
        (["--rsa-distance", "cosine"], "--rsa-distance must be one of"),
        (["--rbf-sigma", "0"], "--rbf-sigma must lie in"),
        (["--nxn-rows", "23001"], "--nxn-rows must be at most 23000"),
    ],
)
def test_bad_options_give_one_error_line(
    args: list[str], message: str, digits_store: Path, tmp_path: Path, runner: CliRunner
) -> None:
    code, output = invoke(runner, "similarity", "--store", str(digits_store), "--out", str(tmp_path / "o"), *args)
    assert code == 2 and output.startswith("error: ") and message in output, output
    assert len(output.strip().splitlines()) == 1


def test_too_many_images_for_an_n_x_n_measure_give_one_error_line(
    digits_store: Path, tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import featswap.experiment.evaluating as evaluating

    monkeypatch.setattr(evaluating, "MAX_ROWS", 100)  # the digits' 540 evaluation images stand for 23,000+
    code, output = invoke(runner, "similarity", "--store", str(digits_store), "--out", str(tmp_path / "o"),
                          "--measures", "rsa")  # fmt: skip
    assert code == 2 and output.startswith("error: rsa needs N x N matrices") and "--nxn-rows 100" in output, output
    assert len(output.strip().splitlines()) == 1
