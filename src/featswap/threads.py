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


#: Decoding worker processes per usable CPU at most: beyond two, workers only wait for the CPUs (and each holds its
#: own copy of the decoding libraries and a batch in flight).
WORKERS_PER_CPU = 2

#: Open files a decoding worker holds at most: its queues' pipes and the shared-memory batches in flight (torch
#: passes each tensor through a file descriptor); `RESERVED_FILES` stay for the store, images and libraries.
FILES_PER_WORKER = 16
RESERVED_FILES = 256


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, as taskset and containers set it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def max_workers() -> tuple[int, str]:
    """The most decoding workers this machine allows, and why: `WORKERS_PER_CPU` per usable CPU, and as many as the
    open-file limit leaves room for."""
    import resource

    cpus = usable_cpus()
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    by_cpus = WORKERS_PER_CPU * cpus
    if soft == resource.RLIM_INFINITY:
        return by_cpus, f"{WORKERS_PER_CPU} per CPU of its {cpus} usable CPUs"
    by_files = max(0, (soft - RESERVED_FILES) // FILES_PER_WORKER)
    if by_files < by_cpus:
        return by_files, f"its open-file limit of {soft:,} (ulimit -n) leaves room for {by_files:,}"
    return by_cpus, f"{WORKERS_PER_CPU} per CPU of its {cpus} usable CPUs"


def check_workers(name: str, value: object) -> int:
    """`value` as a number of decoding workers: a whole number from 0 to `max_workers()` (SpecError otherwise)."""
    from featswap import validate
    from featswap.errors import SpecError

    count = validate.integer(name, value, 0)
    most, why = max_workers()
    if count > most:
        raise SpecError(
            f"{name} {count:,} is more worker processes than this machine allows ({why}); use at most {most:,}."
        )
    return count


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
