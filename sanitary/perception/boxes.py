"""Boxes as the detectors hand them on, and the box arithmetic they share: boxes are float32 arrays of
(x1, y1, x2, y2) in pixels. No model here: the stages after perception import this, not the detectors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Detections:
    """People in one frame, in frame pixels."""

    boxes: np.ndarray  # (N, 4) float32, x1 y1 x2 y2
    scores: np.ndarray  # (N,) float32

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def feet(self) -> np.ndarray:
        """Bottom-centre of each box: where the person stands, (N, 2)."""
        return np.stack([(self.boxes[:, 0] + self.boxes[:, 2]) / 2, self.boxes[:, 3]], axis=1)


def areas(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def intersection_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Overlap area of every box in `a` with every box in `b`, shape (len(a), len(b))."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    return np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in `a` with every box in `b`, shape (len(a), len(b))."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    inter = intersection_matrix(a, b)
    area_a, area_b = areas(a), areas(b)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, best score first."""
    order = np.argsort(-scores, kind="stable")
    ious = iou_matrix(boxes[order], boxes[order])
    keep: list[int] = []
    suppressed = np.zeros(len(order), dtype=bool)
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(int(order[i]))
        suppressed |= ious[i] > iou_threshold
    return np.asarray(keep, dtype=np.int64)


def as_polygon(corners: list[tuple[float, float]]) -> np.ndarray | None:
    """A configured image polygon as (K, 2) float32, or None when none is configured (the whole frame)."""
    return np.asarray(corners, np.float32) if corners else None


def inside_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Which of the (N, 2) points lie inside or on the edge of the (K, 2) float32 polygon."""
    import cv2  # here: the stages after perception import this module without wanting OpenCV

    return np.array([cv2.pointPolygonTest(polygon, (float(x), float(y)), False) >= 0 for x, y in points], bool)


def on_walkable(people: Detections, walkable: np.ndarray | None) -> Detections:
    """The people standing inside the walkable area (None: the whole frame): not posters, reflections, people on a
    balcony."""
    if walkable is None or len(people) == 0:
        return people
    inside = inside_polygon(people.feet, walkable)
    return Detections(people.boxes[inside], people.scores[inside])
