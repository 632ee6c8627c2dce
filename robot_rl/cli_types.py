"""argparse types that refuse a bad number while parsing, before anything is loaded or created."""

from __future__ import annotations

import argparse
import math


def int_at_least(low: int):
    """An integer >= low: `type=int_at_least(1)` for counts, `int_at_least(0)` where 0 means off."""

    def integer(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    return integer


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def float_in(low: float, high: float = math.inf, *, open_low: bool = False, open_high: bool = False):
    """A finite number in [low, high] (an open end excludes its bound): the twin of int_at_least."""
    brackets = ("(" if open_low else "[", ")" if open_high or high == math.inf else "]")
    interval = f"{brackets[0]}{low:g}, {high:g}{brackets[1]}"

    def number(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        inside = (value > low if open_low else value >= low) and (
            value < high if open_high else value <= high
        )
        if not (math.isfinite(value) and inside):
            raise argparse.ArgumentTypeError(f"must be a finite number in {interval}, got {text}")
        return value

    return number


non_negative_float = float_in(0.0)
positive_float = float_in(0.0, open_low=True)
fraction = float_in(0.0, 1.0)  # a discount, a sampling fraction
decay = float_in(0.0, 1.0, open_high=True)  # an EMA decay
