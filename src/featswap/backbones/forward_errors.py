"""A network that fails in its own forward pass: one `ModelError` that says so, instead of a bug report.

A user's factory whose layers do not fit each other, a Hugging Face config that its own model cannot run, or an
input size the network cannot take all fail inside torch with a `RuntimeError` (or `ValueError`, `TypeError`,
`IndexError`) raised from the network's code: that is the network's failure, not featswap's. Memory exhaustion
is not: it is passed on as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from featswap.errors import FeatswapError, ModelError

#: What torch and model code raise when a network cannot run on its input.
FORWARD_FAILURES = (RuntimeError, ValueError, TypeError, IndexError, AssertionError)


@contextmanager
def network_runs(name: str, shape: tuple[int, ...]) -> Iterator[None]:
    """Run the block, a forward pass of network `name` on a batch of `shape` `(N, C, H, W)`; its failure is
    raised as a `ModelError` naming the network and what it raised."""
    import torch

    try:
        yield
    except (FeatswapError, torch.OutOfMemoryError):
        raise
    except FORWARD_FAILURES as err:
        said = (str(err).strip().splitlines() or [""])[0][:300]
        size = " x ".join(str(d) for d in shape[1:])
        raise ModelError(
            f"{name} fails in its own forward pass on {size} inputs ({type(err).__name__}: {said}). Check that its "
            "code, its weights and its input size (--data-config) fit each other."
        ) from err
