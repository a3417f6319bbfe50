"""The calibration check picture: a metre grid laid on a frame, and a bird's-eye view of the ground.

It is the one image sanitary ever writes, and only when the operator asks for it (`calibrate --plot`). People
and faces found by the detectors are pixelated before anything is drawn, so the picture shows the ground, not
who stood on it.
"""

from __future__ import annotations

import cv2
import numpy as np

from sanitary.geometry.homography import on_ground, points_in_polygon, to_ground
from sanitary.perception.boxes import Detections
from sanitary.perception.faces import Faces

GRID = (0, 220, 255)
IMAGE_POINT = (60, 200, 60)
REPROJECTED = (40, 40, 230)
PANEL_PX = 360
BLOCK_PX = 8


def anonymise(frame: np.ndarray, people: Detections, faces: Faces) -> np.ndarray:
    """Pixelate every person and face box, with a margin: the detectors' boxes can be a little tight."""
    out = frame.copy()
    h, w = out.shape[:2]
    for x1, y1, x2, y2 in np.concatenate([people.boxes, faces.boxes]).reshape(-1, 4):
        mx, my = 0.1 * (x2 - x1), 0.1 * (y2 - y1)
        a, b = int(max(0, x1 - mx)), int(max(0, y1 - my))
        c, d = int(min(w, x2 + mx)), int(min(h, y2 + my))
        if c - a < 2 or d - b < 2:
            continue
        small = cv2.resize(out[b:d, a:c], (max(1, (c - a) // BLOCK_PX), max(1, (d - b) // BLOCK_PX)))
        out[b:d, a:c] = cv2.resize(small, (c - a, d - b), interpolation=cv2.INTER_NEAREST)
    return out


def _visible(H: np.ndarray, ground: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Ground points in image pixels, and which of them are in front of the camera and inside the frame."""
    q = np.c_[ground, np.ones(len(ground))] @ np.linalg.inv(H).T
    w = q[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        px = q[:, :2] / w[:, None]
    inside = (w > 0) & (px[:, 0] >= -width) & (px[:, 0] <= 2 * width) & (px[:, 1] >= -height) & (px[:, 1] <= 2 * height)
    return px, inside


def ground_extent(H: np.ndarray, region: np.ndarray) -> tuple[float, float, float, float]:
    """The ground (x0, y0, x1, y1) in metres under an image region (the walkable area, or the frame)."""
    (x0, y0), (x1, y1) = region.min(axis=0), region.max(axis=0)
    xs, ys = np.meshgrid(np.linspace(x0, x1, 33), np.linspace(y0, y1, 25))
    pts = np.c_[xs.ravel(), ys.ravel()]
    pts = pts[points_in_polygon(pts, region) & on_ground(H, pts)]
    ground = to_ground(H, pts)
    # The last rows before the horizon reach hundreds of metres; the bulk of the visible ground is what matters.
    lo, hi = np.percentile(ground, 2, axis=0), np.percentile(ground, 98, axis=0)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def grid_step(extent: tuple[float, float, float, float]) -> float:
    span = max(extent[2] - extent[0], extent[3] - extent[1])
    return next(step for step in (1.0, 2.0, 5.0, 10.0, 25.0, 100.0) if span / step <= 40)


def draw_grid(image: np.ndarray, H: np.ndarray, extent: tuple[float, float, float, float], step: float) -> None:
    h, w = image.shape[:2]
    x0, y0, x1, y1 = extent
    lines = [np.c_[np.full(100, x), np.linspace(y0, y1, 100)] for x in np.arange(np.ceil(x0 / step) * step, x1, step)]
    lines += [np.c_[np.linspace(x0, x1, 100), np.full(100, y)] for y in np.arange(np.ceil(y0 / step) * step, y1, step)]
    for line in lines:
        px, ok = _visible(H, line, w, h)
        if ok.sum() >= 2:
            cv2.polylines(image, [px[ok].round().astype(np.int32)], False, GRID, 1, cv2.LINE_AA)


def birds_eye(
    H: np.ndarray,
    width: int,
    height: int,
    extent: tuple[float, float, float, float],
    step: float,
    ground_points: np.ndarray,
    image_points: np.ndarray,
) -> np.ndarray:
    """The ground from above: the metre grid, what the frame sees, the calibration points (green: their given
    ground position; red: where their image point lands)."""
    x0, y0, x1, y1 = extent
    scale = (PANEL_PX - 20) / max(x1 - x0, y1 - y0)
    panel = np.full((PANEL_PX, PANEL_PX, 3), 32, np.uint8)

    def to_panel(pts: np.ndarray) -> np.ndarray:
        return np.c_[10 + (pts[:, 0] - x0) * scale, PANEL_PX - 10 - (pts[:, 1] - y0) * scale].round().astype(np.int32)

    for x in np.arange(np.ceil(x0 / step) * step, x1, step):
        cv2.line(panel, *map(tuple, to_panel(np.array([[x, y0], [x, y1]]))), (70, 70, 70), 1)
    for y in np.arange(np.ceil(y0 / step) * step, y1, step):
        cv2.line(panel, *map(tuple, to_panel(np.array([[x0, y], [x1, y]]))), (70, 70, 70), 1)
    border = np.r_[
        np.c_[np.linspace(0, width - 1, 50), np.full(50, height - 1)],
        np.c_[np.full(50, width - 1), np.linspace(height - 1, 0, 50)],
        np.c_[np.linspace(width - 1, 0, 50), np.zeros(50)],
        np.c_[np.zeros(50), np.linspace(0, height - 1, 50)],
    ]
    seen = border[on_ground(H, border)]
    if len(seen) >= 2:
        cv2.polylines(panel, [to_panel(to_ground(H, seen))], False, GRID, 1, cv2.LINE_AA)
    for g in to_panel(ground_points):
        cv2.circle(panel, tuple(int(v) for v in g), 4, IMAGE_POINT, -1)
    if len(image_points):
        for g in to_panel(to_ground(H, image_points)):
            cv2.drawMarker(panel, tuple(int(v) for v in g), REPROJECTED, cv2.MARKER_CROSS, 9, 1)
    cv2.putText(panel, f"grid {step:g} m", (10, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (220, 220, 220), 1)
    return panel


def calibration_plot(
    frame: np.ndarray,
    H: np.ndarray,
    region: np.ndarray,
    people: Detections,
    faces: Faces,
    image_points: np.ndarray,
    ground_points: np.ndarray,
) -> np.ndarray:
    """The anonymised frame with its metre grid over `region` (the walkable area) and the calibration points,
    beside the bird's-eye view."""
    h, w = frame.shape[:2]
    picture = anonymise(frame, people, faces)
    extent = ground_extent(H, region)
    step = grid_step(extent)
    draw_grid(picture, H, extent, step)
    for p in image_points:
        cv2.circle(picture, tuple(int(v) for v in p), 4, IMAGE_POINT, -1)
    panel = birds_eye(H, w, h, extent, step, ground_points, image_points)
    panel = cv2.resize(panel, (h, h))
    return np.hstack([picture, panel])
