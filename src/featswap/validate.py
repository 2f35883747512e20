"""Checks for numbers where they enter featswap (command-line options, config files, solver settings).

Each returns the value, converted, or raises a SpecError naming the setting, the value and the range.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from featswap.errors import SpecError


def integer(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """`value` as an int within `[minimum, maximum]` (a float, even 20.0, text or a bool is refused: settings
    that count things are integers wherever they come from)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):  # numpy's integers are Integral too
        raise SpecError(f"{name} must be a whole number (an integer, such as 20); got {value!r}.")
    number = int(value)
    if minimum is not None and number < minimum:
        raise SpecError(f"{name} must be at least {minimum}; got {number}.")
    if maximum is not None and number > maximum:
        raise SpecError(f"{name} must be at most {maximum}; got {number}.")
    return number


def real(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """`value` as a finite float within the interval from `low` to `high` (ends excluded when `*_open`)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy's floats and integers too
        raise SpecError(f"{name} must be a number; got {value!r}.")
    number = float(value)
    if not math.isfinite(number):
        raise SpecError(f"{name} must be a finite number; got {value!r}.")
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and (number >= high if high_open else number > high)
    if too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        span = f"{left}{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}{right}"
        raise SpecError(f"{name} must lie in {span}; got {value!r}.")
    return number


def flag(name: str, value: Any) -> bool:
    """`value` as a bool (only true/false, not 0/1 or text)."""
    if not isinstance(value, bool):
        raise SpecError(f"{name} must be true or false; got {value!r}.")
    return value


def choice(name: str, value: Any, options: tuple[str, ...]) -> str:
    if value not in options:
        raise SpecError(f"{name} must be one of {', '.join(options)}; got {value!r}.")
    return str(value)
