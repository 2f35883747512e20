"""Progress bars for long work (rich), quiet when output is not a terminal unless asked."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True, soft_wrap=True)

#: Whether work deep in the library (a solver's iterations) shows a progress bar: off unless a run turns it on
#: (`shown`), so that the Python API and tests print nothing of their own accord.
_SHOWN: ContextVar[bool] = ContextVar("featswap_progress_shown", default=False)


def bar(unit: str = "images", disable: bool = False) -> Progress:
    """A progress bar showing done/total, rate in `unit`/s, elapsed and remaining time."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=disable,
        transient=False,
    )


def rate(done: int, seconds: float, unit: str = "images") -> str:
    return f"{done / seconds:,.0f} {unit}/s" if seconds > 0 else ""


@contextmanager
def counting(
    description: str, total: int, disable: bool = False, unit: str = "images"
) -> Iterator[Callable[[int], None]]:
    """A progress bar of `total` items (`unit`); yields `advance(n)`, which counts `n` more done and shows the rate
    and the time remaining."""
    began = time.perf_counter()
    done = [0]
    with bar(unit, disable=disable) as progress:
        task = progress.add_task(description, total=total, rate="")

        def advance(n: int) -> None:
            done[0] += n
            progress.update(task, advance=n, rate=rate(done[0], time.perf_counter() - began, unit))

        yield advance


@contextmanager
def shown(enabled: bool = True) -> Iterator[None]:
    """Within this block, `steps` bars are shown (`enabled`) or not."""
    token = _SHOWN.set(enabled)
    try:
        yield
    finally:
        _SHOWN.reset(token)


def steps(description: str, total: int) -> Any:
    """A progress bar of `total` iterations with its ETA, shown only within `shown()`: yields `advance(n)`."""
    return counting(description, total, disable=not _SHOWN.get(), unit="iterations")
