"""Progress bars for long work (rich), quiet when output is not a terminal unless asked."""

from __future__ import annotations

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
