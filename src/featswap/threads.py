"""Torch's thread count chosen for the size of the work.

Small products repeated many times (the `paper` solver's Adam steps on a 2,048-row batch of a few hundred
features, `refine`'s) gain nothing from a second thread, and lose most of their speed when another process keeps
a core busy: every step waits at a barrier for the thread that shares a core. They run on one thread; large
products keep torch's setting.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

#: Multiply-adds per step below which a step runs on one thread (a 2,048 x 96 by 96 x 128 product is 25 million;
#: ImageNet's 2,048 x 1,536 by 1,536 x 2,048, 6.4 billion).
SMALL_WORK = 100_000_000


def threads_for(work: int, available: int) -> int:
    """Threads for steps of `work` multiply-adds each, of `available`."""
    return 1 if work < SMALL_WORK else available


@contextmanager
def torch_threads_for(work: int) -> Iterator[int]:
    """Run the block with `threads_for(work, ...)` torch threads (restored afterwards); yields the count."""
    import torch

    before = torch.get_num_threads()
    chosen = threads_for(work, before)
    torch.set_num_threads(chosen)
    try:
        yield chosen
    finally:
        torch.set_num_threads(before)
