"""Small repeated products run on one thread; large ones keep torch's setting, which is restored afterwards."""

from __future__ import annotations

import numpy as np
import torch
from typer.testing import CliRunner

from featswap.mapping.affine_map import AffineMap
from featswap.threads import SMALL_WORK, threads_for, torch_threads_for


def test_the_thread_count_follows_the_size_of_the_work() -> None:
    assert threads_for(2048 * 96 * 128, 8) == 1  # the demo's paper steps
    assert threads_for(2048 * 1536 * 2048, 8) == 8  # ImageNet's
    assert threads_for(SMALL_WORK, 3) == 3


def test_torch_threads_are_restored_after_a_fit() -> None:
    before = torch.get_num_threads()
    with torch_threads_for(10) as chosen:
        assert chosen == 1 == torch.get_num_threads()
    assert torch.get_num_threads() == before
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    AffineMap("paper", iterations=3, batch_size=8).fit(x, x @ rng.normal(size=(6, 5)).astype(np.float32))
    assert torch.get_num_threads() == before


def test_the_threads_option_sets_torch_and_blas_threads_for_large_work_only(runner: CliRunner) -> None:
    from threadpoolctl import threadpool_info

    from featswap import threads
    from featswap.cli import app

    before = torch.get_num_threads()
    try:
        result = runner.invoke(app, ["--threads", "1", "layers", "--model", "tiny-resnet"])
        assert result.exit_code == 0, result.output
        assert torch.get_num_threads() == 1
        assert all(pool["num_threads"] == 1 for pool in threadpool_info() if pool["user_api"] == "blas")
        with torch_threads_for(10**12) as chosen:  # large work: the user's count
            assert chosen == 1
    finally:
        if threads._blas_limit is not None:
            threads._blas_limit.restore_original_limits()  # type: ignore[attr-defined]
            threads._blas_limit = None
        torch.set_num_threads(before)
    assert torch.get_num_threads() == before


def test_the_threads_option_refuses_zero(runner: CliRunner) -> None:
    from featswap.cli import app

    result = runner.invoke(app, ["--threads", "0", "layers", "--model", "tiny-resnet"])
    assert result.exit_code == 2
    assert "error: --threads must be at least 1; got 0." in result.output


def test_the_threads_option_refuses_more_threads_than_cpus(runner: CliRunner) -> None:
    import os

    from featswap.cli import app

    before = torch.get_num_threads()
    result = runner.invoke(app, ["--threads", "100000", "layers", "--model", "tiny-resnet"])
    assert result.exit_code == 2
    assert f"error: --threads 100000 is more than this machine's {os.cpu_count()} CPUs" in result.output
    assert torch.get_num_threads() == before  # refused before anything changed
