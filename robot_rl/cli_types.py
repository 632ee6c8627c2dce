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


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value >= 0.0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0.0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1] (a discount, a sampling fraction)."""
    value = non_negative_float(text)
    if value > 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def decay(text: str) -> float:
    """An EMA decay in [0, 1)."""
    value = fraction(text)
    if value == 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value
