"""The torch implementation of the streamed statistics, for a GPU (`device="cuda"`) and, in tests, the CPU.

Precision: float64 throughout. Each chunk of float32 features is copied to the device, widened to float64,
centred there on its own mean and multiplied in float64: the results equal the CPU's float64 path to rounding
(1e-15 relative, far inside the 1e-6 the statistics promise), whatever the offset of the features. float64 rather
than float32 block products added up in float64: on the data-centre GPUs this is for (A100, H100) float64
matrix products run on tensor cores at the speed of float32 ones without TF32, and TF32 (10-bit mantissas) would
break 1e-6; a stream of 1.28 M x (1536 + 2048) features is then bound by reading the store, not by the products.
(Consumer GPUs multiply float64 at 1/32 to 1/64 of float32: there the CPU path may be faster.)

Chunks are read from the store by a background thread while the device computes (`prefetched`), so that
reading and decompressing the next chunk overlaps the products of this one.

A device is `"cpu"` (the NumPy path: float32 BLAS products where the result allows, `featswap.mapping.products`)
or any torch device string, `"cuda"`, `"cuda:1"`...; `"cpu:0"` names the CPU through torch, which the tests use to
run this module without a GPU.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import numpy as np
import torch

from featswap.errors import SpecError

T = TypeVar("T")

#: Chunks read ahead of the one being computed.
PREFETCH = 2


def check_device(device: str) -> str:
    """`device` when torch knows it and it is present; a `SpecError` saying what to do otherwise."""
    if device == "cpu":
        return device
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise SpecError(f"Unknown device {device!r}; use cpu or cuda (cuda:N for the N-th GPU).") from err
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise SpecError(f"device={device!r} was asked for but no CUDA GPU is available; use device='cpu'.")
    return device


def to_device(array: np.ndarray, device: str) -> torch.Tensor:
    """A float64 copy `(n, D)` on `device` of a float array of any dtype or memory order (never its memory)."""
    tensor = torch.as_tensor(np.ascontiguousarray(array))
    if torch.device(device).type == "cuda":
        tensor = tensor.pin_memory().to(device, non_blocking=True)
    else:
        tensor = tensor.to(device)
    return tensor.to(torch.float64, copy=True)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.cpu().numpy()


def _centred(x: np.ndarray, device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`(mean (D,), u = x - mean (n, D), a = ||u_i||^2 (n,))` in float64 on `device`."""
    u = to_device(x, device)
    mean = u.mean(0)
    u.sub_(mean)
    return mean, u, torch.einsum("ij,ij->i", u, u)


def side_sums(x: np.ndarray, device: str) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """`(mean (D,), scatter (D, D), saa, xa (D,))` of rows `x` `(n, D)`, n >= 1, in float64 on `device`
    (`featswap.similarity.parts.SideStats`)."""
    with exact_products():
        mean, u, a = _centred(x, device)
        scatter = u.T @ u
        scatter = (scatter + scatter.T) / 2  # exactly symmetric despite rounding
        return _np(mean), _np(scatter), float(a @ a), _np(u.T @ a)


def cross_sums(
    x: np.ndarray, y: np.ndarray, device: str
) -> tuple[np.ndarray, np.ndarray, float, float, np.ndarray, float, np.ndarray, np.ndarray]:
    """`(mx, my, sa, sb, cxy (D1, D2), sab, xb (D1,), ya (D2,))` of paired rows `x` `(n, D1)`, `y` `(n, D2)`,
    n >= 1, in float64 on `device` (`featswap.similarity.parts.CrossStats`)."""
    with exact_products():
        mx, u, a = _centred(x, device)
        my, v, b = _centred(y, device)
        return (_np(mx), _np(my), float(a.sum()), float(b.sum()), _np(u.T @ v), float(a @ b), _np(u.T @ b),
                _np(v.T @ a))  # fmt: skip


@contextlib.contextmanager
def exact_products() -> Iterator[None]:
    """Matrix products and convolutions in full float32 precision inside (TF32 off, whatever the process set):
    TF32 keeps 10 bits of mantissa, a relative error of 5e-4 per product, which would break the statistics'
    1e-6 and change the iterative solvers' trajectories. float64 products never use TF32; the float32 solvers
    (`paper`, `refine`) run inside this too."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    precision = torch.get_float32_matmul_precision()
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn
        torch.set_float32_matmul_precision(precision)


_DONE = object()


def prefetched(items: Iterable[T], depth: int = PREFETCH) -> Iterator[T]:
    """The items of `items`, in order, produced by a background thread up to `depth` ahead of the consumer (a
    store's chunks read while the device computes). An exception in the thread is raised here; a consumer that
    stops early stops the thread at its next item."""
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                slots.put(item)
            slots.put(_DONE)
        except BaseException as err:  # handed to the consumer, raised there
            slots.put(_Failed(err))

    thread = threading.Thread(target=produce, name="featswap-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                slots.get(timeout=0.05)
        thread.join()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error
