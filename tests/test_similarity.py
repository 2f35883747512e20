"""Properties that similarity measures must have, on random and planted features."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from featswap import similarity as sim
from featswap.cli import app
from featswap.errors import DataError

SYMMETRIC = ("linear_cka", "debiased_cka", "procrustes", "cca_mean", "svcca", "mutual_knn")


def features(seed: int, n: int = 400, d: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 4)) @ rng.normal(size=(4, d)) + 0.3 * rng.normal(size=(n, d))).astype(np.float32)


def rotated(x: np.ndarray, seed: int, scale: float = 1.0, shift: float = 0.0) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(x.shape[1], x.shape[1])))
    return (scale * x @ q + shift).astype(np.float32)


@pytest.mark.parametrize("seed", range(4))
def test_invariant_to_rotation_scale_and_shift(seed: int) -> None:
    x = features(seed)
    y = rotated(x, seed + 10, scale=3.7, shift=-2.0)
    assert sim.linear_cka(x, y) == pytest.approx(1.0, abs=1e-6)
    assert sim.debiased_cka(x, y) == pytest.approx(1.0, abs=1e-6)
    assert sim.cca_mean(x, y) == pytest.approx(1.0, abs=1e-6)
    assert sim.mutual_knn(x, rotated(x, seed + 10, scale=3.7)) == pytest.approx(1.0)  # cosine: no shift
    assert sim.procrustes(x, rotated(x, seed + 10)) == pytest.approx(0.0, abs=1e-3)
    assert sim.map_r2(x, y) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_cca_is_one_for_an_invertible_linear_transform(seed: int) -> None:
    x = features(seed)
    a = np.random.default_rng(seed).normal(size=(12, 12))
    assert sim.cca_mean(x, x @ a) == pytest.approx(1.0, abs=1e-6)
    assert sim.svcca(x, x @ a, k=12) == pytest.approx(1.0, abs=1e-6)  # all directions kept: plain CCA


@pytest.mark.parametrize("measure", SYMMETRIC)
def test_symmetric_measures_are_symmetric(measure: str) -> None:
    x, y = features(1, d=12), features(2, d=9)
    f = getattr(sim, measure)
    assert f(x, y) == pytest.approx(f(y, x), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("chunks", [[500], [1, 499], [100, 250, 150], [33] * 15 + [5]])
def test_streaming_equals_one_batch(chunks: list[int]) -> None:
    x, y = features(3, n=500), features(4, n=500, d=7)
    edges = np.cumsum([0, *chunks])
    streamed = sim.GramStats.accumulate((x[a:b], y[a:b]) for a, b in itertools.pairwise(edges))
    one = sim.GramStats.of(x, y)
    for measure in ("linear_cka", "debiased_cka", "procrustes", "cca_mean", "svcca"):
        assert getattr(streamed, measure)() == pytest.approx(getattr(one, measure)(), rel=1e-8, abs=1e-10)
    assert streamed.linear_cka() == pytest.approx(sim.linear_cka(x, y), rel=1e-6)  # float32 products


def test_linear_cka_matches_the_kernel_formula() -> None:
    x, y = features(5, n=120), features(6, n=120, d=8)
    h = np.eye(120) - 1 / 120
    k, l_ = h @ (x @ x.T) @ h, h @ (y @ y.T) @ h
    expected = (k * l_).sum() / np.sqrt((k * k).sum() * (l_ * l_).sum())
    assert sim.linear_cka(x, y) == pytest.approx(expected, rel=1e-5)


def test_debiased_cka_matches_the_kernel_formula_and_is_near_zero_for_independent_features() -> None:
    x, y = features(7, n=60), features(8, n=60, d=8)

    def hsic(k: np.ndarray, l_: np.ndarray) -> float:
        n = len(k)
        k, l_ = k - np.diag(np.diag(k)), l_ - np.diag(np.diag(l_))
        return float(
            (np.trace(k @ l_) + k.sum() * l_.sum() / ((n - 1) * (n - 2)) - 2 / (n - 2) * (k.sum(0) @ l_.sum(0)))
            / (n * (n - 3))
        )

    k, l_ = x.astype(float) @ x.T, y.astype(float) @ y.T
    expected = hsic(k, l_) / np.sqrt(hsic(k, k) * hsic(l_, l_))
    assert sim.debiased_cka(x, y) == pytest.approx(expected, rel=1e-6)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(20000, 50)), rng.normal(size=(20000, 40))
    assert abs(sim.debiased_cka(a, b)) < 0.01
    assert sim.linear_cka(a, b) > abs(sim.debiased_cka(a, b))  # the biased form is pulled away from 0


def test_constant_and_duplicated_features_are_defined_or_refused() -> None:
    x = features(9)
    duplicated = np.concatenate([x, x[:, :3], np.ones((len(x), 2), dtype=np.float32)], axis=1)
    for measure in ("linear_cka", "debiased_cka", "procrustes", "cca_mean", "svcca", "mutual_knn", "map_r2"):
        value = getattr(sim, measure)(x, duplicated)
        assert np.isfinite(value)
    assert sim.cca_mean(x, duplicated) == pytest.approx(1.0, abs=1e-6)
    constant = np.ones_like(x)
    for measure in ("linear_cka", "debiased_cka", "procrustes", "cca_mean", "map_r2"):
        with pytest.raises(DataError, match="undefined"):
            getattr(sim, measure)(x, constant) if measure != "map_r2" else sim.map_r2(constant, constant)


def test_bad_arguments() -> None:
    x = features(10, n=20)
    with pytest.raises(DataError, match="0 < k < N"):
        sim.mutual_knn(x, x, k=20)
    with pytest.raises(DataError, match="at least 4 samples"):
        sim.debiased_cka(x[:3], x[:3])
    with pytest.raises(DataError, match="Cannot merge"):
        sim.GramStats.of(x, x).merge(sim.GramStats.of(x, x[:, :3]))
    with pytest.raises(DataError, match="No samples"):
        sim.GramStats.accumulate([])
    with pytest.raises(DataError, match="rows must be the same images"):
        sim.linear_cka(x, x[:-1])


def test_mutual_knn_blocks_do_not_change_the_value() -> None:
    x, y = features(11, n=300), features(12, n=300)
    assert sim.mutual_knn(x, y, k=7, block=1000) == sim.mutual_knn(x, y, k=7, block=17)
    chance = 10 / 299  # independent features share neighbours as often as random picks of 10 among 299
    assert 0.5 * chance < sim.mutual_knn(x, y) < 2 * chance and sim.mutual_knn(x, x) == 1.0


def test_rank_agreement_symmetric_and_directional() -> None:
    from featswap.catalog.measures import rank_agreement

    # Three models; pair losses average 1, 2, 3 points while similarity falls: perfect agreement.
    losses = {"a": {"b": 0.02, "c": 0.05}, "b": {"a": 0.00, "c": 0.04}, "c": {"a": 0.01, "b": 0.02}}
    sym = {"a": {"b": 0.9, "c": 0.7}, "b": {"a": 0.9, "c": 0.8}, "c": {"a": 0.7, "b": 0.8}}
    assert rank_agreement(sym, losses, symmetric=True) == pytest.approx(-1.0)
    directional = {s: {t: -v for t, v in row.items()} for s, row in losses.items()}
    assert rank_agreement(directional, losses, symmetric=False) == pytest.approx(-1.0)
    assert np.isnan(rank_agreement({"a": {"b": 1.0}, "b": {"a": 1.0}}, {"a": {"b": 0.1}, "b": {"a": 0.2}}, True))


CONSTANT_NET = """
import torch
from torch import nn

class Constant(nn.Module):
    '''Features that do not depend on the image: a zero convolution with a bias, pooled.'''

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3)
        nn.init.zeros_(self.conv.weight)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(6, 10)
        self.data_config = {"input_size": (1, 8, 8), "mean": (0.5,), "std": (0.5,)}

    def forward(self, x):
        return self.fc(self.pool(self.conv(x)))

def constant():
    return Constant()
"""


def test_a_constant_feature_set_leaves_its_measures_undefined_and_the_run_goes_on(
    tmp_path: Path, trained_weights: dict[str, Path], runner: CliRunner
) -> None:
    from featswap.backbones.sources import load_backbone

    (tmp_path / "nets.py").write_text(CONSTANT_NET)
    spec = f"{tmp_path / 'nets.py'}:constant"
    torch.save(load_backbone(spec).module.state_dict(), tmp_path / "constant.pt")
    result = runner.invoke(app, [
        "compare", "--model", "tiny-resnet", "--weights", str(trained_weights["tiny-resnet"]),
        "--model", spec, "--weights", str(tmp_path / "constant.pt"),
        "--data", "digits", "--solver", "lstsq", "--n-boot", "20", "--out", str(tmp_path / "run"), "--quiet",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    similarity = metrics["similarity"]
    for measure in ("linear_cka", "debiased_cka", "procrustes", "cca_mean", "svcca", "mutual_knn"):
        assert similarity[measure]["tiny-resnet"]["constant"] is None, measure
    reasons = {u["measure"]: u["reason"] for u in metrics["similarity_undefined"]}
    assert "constant" in reasons["linear_cka"] and "constant" in reasons["mutual_knn"]
    assert similarity["map_r2"]["tiny-resnet"]["constant"] is None  # R^2 of a constant target is undefined
    assert similarity["map_r2"]["constant"]["tiny-resnet"] is not None
    report = (tmp_path / "run" / "report.md").read_text()
    assert "*undefined*" in report and "Undefined measures" in report
    assert len(metrics["pairs"]) == 2


def test_map_r2_is_undefined_with_its_reason_when_no_one_fitting_collection(
    tmp_path: Path, digits_store: Path, trained_weights: dict[str, Path], runner: CliRunner
) -> None:
    import shutil

    store = tmp_path / "s.zarr"
    shutil.copytree(digits_store, store)
    for name, weights in trained_weights.items():  # a second fitting collection, `train-100`
        args = ["--data", "digits", "--train-limit", "100", "--part", "fit", "--store", str(store), "--quiet"]
        result = runner.invoke(app, ["extract", "--model", name, "--weights", str(weights), *args])
        assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["similarity", "--store", str(store), "--out", str(tmp_path / "sim")])
    assert result.exit_code == 0, result.output
    found = json.loads((tmp_path / "sim" / "similarity.json").read_text())
    assert found["similarity"]["map_r2"]["tiny-resnet"]["tiny-inception"] is None
    reasons = [u["reason"] for u in found["similarity_undefined"] if u["measure"] == "map_r2"]
    assert (
        len(reasons) == 2 and "several fitting collections with every model's features (train, train-100)" in reasons[0]
    )
    assert found["similarity"]["linear_cka"]["tiny-resnet"]["tiny-inception"] is not None


def test_small_procrustes_distances_come_from_float64_products() -> None:
    """Near 0 the square root amplifies rounding: float32 products put identical features 2e-4 apart. Distances
    that small are computed again from float64 products, on every path."""
    from featswap.mapping.products import PrecisionError
    from featswap.similarity.measures import PairStats

    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 64)).astype(np.float32)
    near = (x + 0.05 * rng.normal(size=x.shape)).astype(np.float32)
    with pytest.raises(PrecisionError):
        sim.GramStats.of(x, x, precision="float32").procrustes()
    exact = sim.GramStats.of(x, near, precision="float64").procrustes()
    assert 0.04 < exact < 0.06
    for path in (sim.procrustes, lambda a, b: PairStats(a, b).measure("procrustes")):
        assert path(x, x) < 1e-7
        assert abs(path(x, near) - exact) <= 1e-6 * exact
    far = rng.normal(size=(5000, 48)).astype(np.float32)  # unrelated: d near sqrt(2), float32 is enough
    assert sim.GramStats.of(x, far, precision="float32").procrustes() == pytest.approx(
        sim.GramStats.of(x, far, precision="float64").procrustes(), rel=1e-6
    )
