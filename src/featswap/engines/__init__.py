"""The engines that run featswap's work: this process (`local`) or a Ray cluster (`ray`)."""

from __future__ import annotations

from featswap.errors import SpecError

ENGINES = ("local", "ray")


def check_engine(engine: str, address: str | None = None) -> None:
    """Refuse an unknown engine, and a Ray address given to the local engine."""
    if engine not in ENGINES:
        raise SpecError(f"--engine must be local or ray; got {engine!r}.")
    if address is not None and engine != "ray":
        raise SpecError(f"--address {address!r} only applies to --engine ray.")
