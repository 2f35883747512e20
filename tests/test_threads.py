"""Small repeated products run on one thread; large ones keep torch's setting, which is restored afterwards."""

from __future__ import annotations

import numpy as np
import torch

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
