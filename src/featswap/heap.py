"""Freed memory kept for the next batch, so that forward passes on the CPU do not spend as long in the kernel as
in the network.

glibc's malloc gives every large block (above its mmap threshold, 128 KB to 32 MB) fresh pages from the kernel and
hands them back when the block is freed. Torch allocates and frees every layer's activations anew for every batch
(a ResNet-50 batch of 32 at 224 px holds 100 MB tensors), so every page of them is faulted in and zeroed again:
on a 2-core machine (2026-12-07) a bare forward pass of MobileNet-v1 spent as much system time as user time.
`keep_freed_memory` sets malloc's `M_TOP_PAD`: the heap grows by at least that much at a time and keeps that much
of its freed memory, so the next batch's activations come from pages already mapped (and `M_MMAP_THRESHOLD` at its
largest, so that blocks up to 32 MB are always taken from the heap). Features are the same bit
for bit; the process keeps its peak memory instead of returning it (`benchmarks/heap.py` measures both).

Only glibc (Linux) has this setting; elsewhere nothing changes. A user's own `MALLOC_TOP_PAD_`,
`MALLOC_TRIM_THRESHOLD_` or `MALLOC_MMAP_THRESHOLD_` is left as it is, and `FEATSWAP_KEEP_FREED_MEMORY=0` keeps
glibc's defaults (memory returned to the system as soon as it is freed).
"""

from __future__ import annotations

import ctypes
import os
import platform

#: glibc's `mallopt` parameter numbers (malloc.h).
M_TOP_PAD, M_MMAP_THRESHOLD = -2, -3

#: The largest mmap threshold glibc accepts on 64-bit machines: blocks below it always come from the heap.
MMAP_THRESHOLD = 32 * 1024 * 1024

#: Freed memory the heap keeps: above the largest activations of the networks featswap was timed on (MobileNet-v1 at
#: batch 50 needs it whole; 512 MB left half of its page faults).
HEAP_PAD = 1 << 30

#: Environment variables through which a user tunes glibc's malloc themselves.
USER_SETTINGS = ("MALLOC_TOP_PAD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")

#: Set to 0 to keep glibc's defaults.
OPT_OUT = "FEATSWAP_KEEP_FREED_MEMORY"


def keep_freed_memory(pad: int = HEAP_PAD) -> bool:
    """Let this process's heap keep up to `pad` bytes of freed memory (glibc's `mallopt(M_TOP_PAD, pad)`, with
    blocks below `MMAP_THRESHOLD` always from the heap, so that the first of them grows it by `pad`); True where
    the settings took effect; False on another C library, where the user tunes malloc through the environment,
    or with `FEATSWAP_KEEP_FREED_MEMORY=0`. Calling it again changes nothing more."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if any(name in os.environ for name in USER_SETTINGS) or os.environ.get(OPT_OUT, "1").strip() == "0":
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    return mallopt is not None and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TOP_PAD, pad))
