"""`sanitary calibrate`: point pairs from the camera config or a CSV in, a homography written back into the config.

The config is edited as text, so its comments and layout stay as the operator wrote them: only the
`homography` and `image_size` keys of its [calibration] table are replaced.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sanitary.config import CameraConfig, load_camera
from sanitary.errors import SanitaryError
from sanitary.geometry.homography import HomographyFit, check_horizon, check_pairs, fit_homography, frame_region

CSV_COLUMNS = ("image_x", "image_y", "ground_x", "ground_y")
WRITTEN_KEYS = ("homography", "image_size")


@dataclass(frozen=True)
class PointPairs:
    image: np.ndarray  # (N, 2) px
    ground: np.ndarray  # (N, 2) m


def read_points_csv(path: Path) -> PointPairs:
    """Pairs from a CSV with a header naming image_x, image_y, ground_x, ground_y."""
    if not path.is_file():
        raise SanitaryError(f"{path}: calibration points CSV not found")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise SanitaryError(
                f"{path}: missing column(s) {', '.join(missing)}; the header needs {', '.join(CSV_COLUMNS)}"
            )
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                rows.append([float(row[c]) for c in CSV_COLUMNS])
            except (TypeError, ValueError):
                raise SanitaryError(f"{path}: line {line} is not four numbers; fix or remove it") from None
    values = np.asarray(rows, np.float64).reshape(-1, 4)
    return PointPairs(values[:, :2], values[:, 2:])


def point_pairs(camera: CameraConfig, extra_csv: Path | None) -> PointPairs:
    """The config's pairs, then those of its points_csv, then those of --points, in that order."""
    c = camera.calibration
    image = [np.asarray(c.image_points, np.float64).reshape(-1, 2)]
    ground = [np.asarray(c.ground_points, np.float64).reshape(-1, 2)]
    sources = [extra_csv] if extra_csv else []
    if c.points_csv:
        base = camera.path.parent if camera.path else Path.cwd()
        sources.insert(0, base / c.points_csv)
    for path in sources:
        pairs = read_points_csv(path)
        image.append(pairs.image)
        ground.append(pairs.ground)
    return PointPairs(np.concatenate(image), np.concatenate(ground))


def calibrate(camera: CameraConfig, pairs: PointPairs, width: int, height: int) -> HomographyFit:
    """Fit and check: the homography must keep the horizon out of the area where people stand."""
    image, ground = check_pairs(pairs.image, pairs.ground)
    fit = fit_homography(image, ground)
    walkable = camera.detection.walkable
    check_horizon(fit.H, np.asarray(walkable, np.float64) if walkable else frame_region(width, height))
    return fit


def write_calibration(path: Path, H: np.ndarray, width: int, height: int) -> CameraConfig:
    """Replace the homography and image size in the config's [calibration] table (made if absent); the
    result is loaded back, so a config that would not load is never left behind unnoticed."""
    text = path.read_text(encoding="utf-8")
    rows = ", ".join("[" + ", ".join(repr(float(v)) for v in row) + "]" for row in np.asarray(H, np.float64))
    new = [
        "# Written by `sanitary calibrate`: image pixels -> ground metres, for frames of image_size.",
        f"homography = [{rows}]",
        f"image_size = [{width}, {height}]",
    ]
    lines = text.splitlines()
    header = next((i for i, line in enumerate(lines) if line.strip() == "[calibration]"), None)
    if header is None:
        lines += ["", "[calibration]", *new]
    else:
        end = next((i for i in range(header + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
        kept = _without_keys(lines[header + 1 : end])
        lines = lines[: header + 1] + new + kept + lines[end:]
    previous = text
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        return load_camera(path)
    except SanitaryError:
        path.write_text(previous, encoding="utf-8")
        raise


def _without_keys(table: list[str]) -> list[str]:
    """The table's lines less earlier written keys (and their comment), values spanning lines included."""
    kept, skipping, depth = [], False, 0
    for line in table:
        if not skipping and line.startswith("# Written by `sanitary calibrate`"):
            continue
        if not skipping and re.match(rf"\s*({'|'.join(WRITTEN_KEYS)})\s*=", line):
            skipping, depth = True, 0
        if skipping:
            depth += line.count("[") - line.count("]")
            if depth <= 0:
                skipping = False
            continue
        kept.append(line)
    return kept
