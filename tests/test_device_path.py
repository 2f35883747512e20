"""The torch path of the statistics and solvers (`featswap.mapping.device`), run on the CPU as `device="cpu:0"`:
the same code a GPU runs (`device="cuda"`), checked against the NumPy float64 path, so CI covers it without one."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from featswap.errors import SpecError
from featswap.mapping.affine_map import AffineMap
from featswap.mapping.device import check_device, exact_products, prefetched
from featswap.mapping.moments import Moments
from featswap.mapping.paired import InMemoryPairs
from featswap.similarity.gram import GramStats
from featswap.similarity.parts import CrossStats, SideStats

TORCH_CPU = "cpu:0"


def offset_pair(seed: int, n: int = 800, d1: int = 16, d2: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """float32 features sharing a latent, with a common offset of 1e4 (the case that needs exact centring)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 5))
    x = z @ rng.standard_normal((5, d1)) + 0.5 * rng.standard_normal((n, d1)) + 1e4
    y = np.tanh(z @ rng.standard_normal((5, d2))) + 0.5 * rng.standard_normal((n, d2)) + 1e4
    return x.astype(np.float32), y.astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1])
def test_statistics_through_torch_equal_the_float64_path(seed: int) -> None:
    x, y = offset_pair(seed)
    exact = GramStats.of(x, y, precision="float64")
    on_torch = GramStats.of(x, y, device=TORCH_CPU)
    for measure in ("linear_cka", "debiased_cka", "procrustes", "cca_mean", "svcca"):
        want = getattr(exact, measure)()
        assert abs(getattr(on_torch, measure)() - want) <= 1e-6 * abs(want), measure
    assert np.allclose(on_torch.cxx, exact.cxx, rtol=1e-10, atol=1e-10 * np.abs(exact.cxx).max())
    assert np.array_equal(on_torch.cxx, on_torch.cxx.T)


def test_streamed_parts_through_torch_equal_one_numpy_pass() -> None:
    x, y = offset_pair(2)
    chunks = list(InMemoryPairs(x, y, 97).chunks())
    sides = [SideStats.of(a, device=TORCH_CPU) for a, _ in chunks]
    side = sides[0]
    for part in sides[1:]:
        side = side.merge(part)
    cross = CrossStats.of(chunks[0][0], chunks[0][1], device=TORCH_CPU)
    for a, b in chunks[1:]:
        cross = cross.merge(CrossStats.of(a, b, device=TORCH_CPU))
    exact = SideStats.of(x)
    assert np.allclose(side.scatter, exact.scatter, rtol=1e-10, atol=1e-10 * np.abs(exact.scatter).max())
    assert side.saa == pytest.approx(exact.saa, rel=1e-10)
    assert np.allclose(cross.cxy, CrossStats.of(x, y).cxy, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("solver", ["lstsq", "procrustes"])
def test_closed_forms_through_torch_equal_the_cpu_float64_path(solver: str) -> None:
    x, y = offset_pair(3, n=2000)
    on_torch = AffineMap(solver, device=TORCH_CPU).fit(x, y)
    on_cpu = AffineMap(solver).fit(x, y)
    scale = float(np.abs(on_cpu.weight_).max())
    assert float(np.abs(on_torch.weight_ - on_cpu.weight_).max()) <= 1e-6 * scale
    mapped_torch, mapped_cpu = on_torch.transform(x), on_cpu.transform(x)
    assert float(np.abs(mapped_torch - mapped_cpu).max()) <= 1e-6 * float(np.abs(mapped_cpu).max())


def test_moments_through_torch_equal_the_numpy_float64_moments() -> None:
    x, y = offset_pair(4)
    on_torch, exact = Moments.of(x, y, device=TORCH_CPU), Moments.of(x, y)
    assert np.allclose(on_torch.cxy, exact.cxy, rtol=1e-9, atol=1e-9 * np.abs(exact.cxy).max())
    assert on_torch.tyy == pytest.approx(exact.tyy, rel=1e-10)


@pytest.mark.parametrize("solver", ["paper", "refine"])
def test_iterative_solvers_give_the_same_map_through_a_named_torch_device(solver: str) -> None:
    x, y = offset_pair(5, n=600)
    x, y = x - np.float32(1e4), y - np.float32(1e4)
    params = {"iterations": 30, "batch_size": 64} if solver == "paper" else {"max_iterations": 30}
    named = AffineMap(solver, device=TORCH_CPU, **params).fit(x, y)
    plain = AffineMap(solver, **params).fit(x, y)
    assert np.allclose(named.weight_, plain.weight_, rtol=1e-6, atol=1e-6)
    assert named.n_iter_ == plain.n_iter_


def test_exact_products_turn_tf32_off_inside_and_restore_the_settings() -> None:
    before = torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision()
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.set_float32_matmul_precision("high")
    try:
        with exact_products():
            assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
            assert torch.get_float32_matmul_precision() == "highest"
        assert torch.backends.cuda.matmul.allow_tf32 and torch.get_float32_matmul_precision() == "high"
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before[0]
        torch.set_float32_matmul_precision(before[1])


def test_prefetched_keeps_the_order_and_raises_the_readers_error() -> None:
    assert list(prefetched(iter(range(50)), depth=3)) == list(range(50))

    def failing() -> Iterator[int]:
        yield 1
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for item in prefetched(failing()):
            got.append(item)
    assert got == [1]


def test_prefetched_stops_its_reader_when_the_consumer_stops() -> None:
    reads = []

    def endless() -> Iterator[int]:
        k = 0
        while True:
            reads.append(k)
            yield k
            k += 1

    before = threading.active_count()
    for item in prefetched(endless(), depth=2):
        if item == 5:
            break
    assert threading.active_count() == before
    assert len(reads) <= 5 + 1 + 2 + 2  # read at most a few ahead


def test_devices_are_checked_with_a_hint() -> None:
    assert check_device("cpu") == "cpu" and check_device(TORCH_CPU) == TORCH_CPU
    with pytest.raises(SpecError, match="Unknown device 'gpu7'"):
        check_device("gpu7")
    if not torch.cuda.is_available():
        with pytest.raises(SpecError, match="no CUDA GPU is available"):
            check_device("cuda")
        with pytest.raises(SpecError, match="no CUDA GPU is available"):
            AffineMap("lstsq", device="cuda").fit(*offset_pair(0))


def test_the_evaluations_similarity_through_torch_equals_the_numpy_path(tmp_path: Path) -> None:
    from featswap.config import EvaluationSettings
    from featswap.experiment.evaluating import similarity_of
    from featswap.store import FeatureStore
    from stores import three_model_store

    names = three_model_store(tmp_path / "s.zarr")
    store = FeatureStore.open(tmp_path / "s.zarr")
    features = {name: store.features("train", name) for name in names}
    on_torch = similarity_of(features, names, EvaluationSettings(), {}, device=TORCH_CPU).values
    on_numpy = similarity_of(features, names, EvaluationSettings(), {}).values
    for measure in ("linear_cka", "debiased_cka", "procrustes", "cca_mean", "svcca"):
        for a in names:
            for b in names:
                if a != b:
                    assert on_torch[measure][a][b] == pytest.approx(on_numpy[measure][a][b], rel=1e-6), measure
