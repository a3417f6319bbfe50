"""The commands' options, checked before anything is read or written: a nan, an infinity, a zero or a negative
rate would otherwise be ignored, or give a misleading error (or a file analysed from one frame) later; a local time
the clocks skipped or showed twice would be stored as an instant nobody meant; a language that is not a tag could
not be matched to a sign's readers."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import typer

from sanitary.errors import SanitaryError

if TYPE_CHECKING:
    from sanitary.config import CameraConfig

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


# BCP 47's shape, as signs need it: a language of 2 or 3 letters, then a script, a region and variants if any.
LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(-[a-z]{4})?(-([a-z]{2}|[0-9]{3}))?(-([a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*", re.I)


def language_tag(value: str, option: str) -> None:
    """Refuse a value that is not a language tag such as fr, fr-FR, de-CH or zh-Hant-TW."""
    if not LANGUAGE_TAG.fullmatch(value):
        raise SanitaryError(
            f"{option} {value!r} is not a language tag; write the language's code and, if it matters, its region:"
            " fr, fr-FR, de-CH, zh-Hant-TW"
        )


def local_time(text: str, tz: ZoneInfo, option: str) -> datetime:
    """An ISO 8601 time (naive: in `tz`). A local time the clocks skipped (spring forward) is refused, naming the
    two instants it could mean; one they showed twice (fall back) is taken the first time, saying so on stderr."""
    from sanitary.config import parse_start

    when = parse_start(text, tz, option)
    first, second = when.replace(fold=0), when.replace(fold=1)
    if first.utcoffset() == second.utcoffset():  # an ordinary time, or written with its offset
        return when
    wall = when.replace(tzinfo=None)
    readings = [t.astimezone(UTC).astimezone(tz) for t in (first, second)]
    if all(r.replace(tzinfo=None) == wall for r in readings):
        typer.echo(
            f"warning: {option} {text} happened twice in {tz.key} (the clocks went back): taken as"
            f" {_instant(readings[0])}, the first; the second is {_instant(readings[1])}; write the offset to choose",
            err=True,
        )
        return readings[0]
    raise SanitaryError(
        f"{option} {text} did not happen in {tz.key} (the clocks skipped it): write it with its offset,"
        f" {_instant(first)} (that is {_instant(readings[0])}) or {_instant(second)} (that is {_instant(readings[1])})"
    )


def _instant(when: datetime) -> str:
    return when.isoformat(timespec="minutes") if when.second == 0 and not when.microsecond else when.isoformat()


def footage_start(start: str | None, camera: CameraConfig) -> datetime | None:
    """`run`'s --start; without it, the camera's time.start (the start of its footage when no file name gives one)
    is checked in the same way."""
    if start is not None:
        return local_time(start, camera.tz, "--start")
    if camera.time.start is not None and not camera.time.filename_pattern:
        local_time(camera.time.start, camera.tz, f"{camera.path}: time.start")
    return None
