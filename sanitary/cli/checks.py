"""The commands' number options, checked before anything is read or written: a nan, an infinity, a zero or a
negative rate would otherwise be ignored, or give a misleading error (or a file analysed from one frame) later."""

from __future__ import annotations

import math

from sanitary.errors import SanitaryError

# Seconds: a live run or a Ray segment longer than this is a typo.
MAX_SECONDS = 10 * 365 * 86_400.0
MAX_WORKERS = 256


def positive(value: float | None, option: str, high: float) -> None:
    """Refuse a given option that is not a finite number above 0 and at most `high` (None: not given)."""
    within(value, option, 0.0, high, low_open=True)


def within(value: float | None, option: str, low: float, high: float, *, low_open: bool = False) -> None:
    """Refuse a given option that is not a finite number in [low, high] ((low, high] with `low_open`)."""
    if value is None:
        return
    above = value > low if low_open else value >= low
    if not (math.isfinite(value) and above and value <= high):
        floor = f"above {low:g}" if low_open else f"at least {low:g}"
        raise SanitaryError(f"{option} is {value:g}; it must be a number {floor} and at most {high:g}")
