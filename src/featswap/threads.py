"""Torch's thread count chosen for the size of the work.

Small products repeated many times (the `paper` solver's Adam steps on a 2,048-row batch of a few hundred
features, `refine`'s) gain nothing from a second thread, and lose most of their speed when another process keeps
a core busy: every step waits at a barrier for the thread that shares a core. They run on one thread, whatever
the machine, so that their numbers do not depend on it either; large work (forward passes, products of many rows)
keeps torch's setting, which `featswap --threads N` (`set_threads`) chooses for torch and for numpy's BLAS.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

#: Multiply-adds per step below which a step runs on one thread (a 2,048 x 96 by 96 x 128 product is 25 million;
#: ImageNet's 2,048 x 1,536 by 1,536 x 2,048, 6.4 billion).
SMALL_WORK = 100_000_000


#: The numpy BLAS limit `set_threads` applies, kept so that it lasts as long as the process.
_blas_limit: object = None


def set_threads(count: int) -> None:
    """Use `count` threads for large work in this process: torch's intra-op threads and numpy's BLAS (through
    threadpoolctl). Small steps stay on one thread (`torch_threads_for`). More threads than CPUs are refused:
    they only make every thread wait for the others (and a count in the thousands crashes the thread pools)."""
    global _blas_limit
    import torch
    from threadpoolctl import threadpool_limits

    from featswap.errors import SpecError

    cpus = os.cpu_count() or 1
    if count > cpus:
        raise SpecError(f"--threads {count} is more than this machine's {cpus} CPUs; use at most {cpus}.")

    _blas_limit = threadpool_limits(limits=count, user_api="blas")
    torch.set_num_threads(count)  # after: a BLAS built on OpenMP sets OpenMP's count too


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
