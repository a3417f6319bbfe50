"""Scoring head counts and head points against annotated heads: count errors per image, points matched within
a radius."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class CountErrors:
    mae: float
    rmse: float
    mean_relative_error: float  # mean of |found - true| / true over images with heads
    mean_error: float  # signed: found - true; negative is undercounting
    images: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "mae": round(self.mae, 3),
            "rmse": round(self.rmse, 3),
            "mean_relative_error": round(self.mean_relative_error, 4),
            "mean_error": round(self.mean_error, 3),
            "images": self.images,
        }


def count_errors(found: np.ndarray, truth: np.ndarray) -> CountErrors:
    found, truth = np.asarray(found, np.float64), np.asarray(truth, np.float64)
    error = found - truth
    some = truth > 0
    relative = float(np.mean(np.abs(error[some]) / truth[some])) if some.any() else 0.0
    return CountErrors(
        mae=float(np.mean(np.abs(error))),
        rmse=float(np.sqrt(np.mean(error**2))),
        mean_relative_error=relative,
        mean_error=float(np.mean(error)),
        images=len(truth),
    )


def matched(found: np.ndarray, truth: np.ndarray, radius: float) -> int:
    """Most pairs of a found point and a true head, each used once, no farther apart than `radius` pixels."""
    if len(found) == 0 or len(truth) == 0:
        return 0
    distance = np.linalg.norm(found[:, None, :] - truth[None, :, :], axis=2)
    # Pairs beyond the radius cost more than all in-radius pairs together, so the assignment never trades one.
    far = distance > radius
    cost = np.where(far, len(found) + len(truth) + 1.0, 0.0) + np.where(far, 0.0, distance / (radius + 1))
    rows, cols = linear_sum_assignment(cost)
    return int((~far[rows, cols]).sum())


def matched_in_boxes(found: np.ndarray, boxes: np.ndarray) -> int:
    """Most pairs of a found point and a true head box (x1, y1, x2, y2), each used once, the point inside the box.
    Among equal numbers of pairs, points nearer their box's centre (in box sides) are preferred."""
    if len(found) == 0 or len(boxes) == 0:
        return 0
    boxes = np.asarray(boxes, np.float64)
    x, y = found[:, None, 0].astype(np.float64), found[:, None, 1].astype(np.float64)
    inside = (x >= boxes[:, 0]) & (x <= boxes[:, 2]) & (y >= boxes[:, 1]) & (y <= boxes[:, 3])
    side = np.maximum(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]), 1.0)
    off = np.hypot(x - (boxes[:, 0] + boxes[:, 2]) / 2, y - (boxes[:, 1] + boxes[:, 3]) / 2) / side
    # A pair outside its box costs more than all inside pairs together (each costs under 1), as in `matched`.
    cost = np.where(inside, off, len(found) + len(boxes) + 1.0)
    rows, cols = linear_sum_assignment(cost)
    return int(inside[rows, cols].sum())
