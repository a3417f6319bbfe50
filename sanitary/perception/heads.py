"""Heads in a crowd: points where a head is, found where bodies are hidden.

The project's head model (weights/head_points.onnx, trained by `sanitary train-crowd`, see its card) maps a uint8
RGB image to a head-centre heatmap at a quarter of its resolution; a head is a local maximum of that map above a
score. The frame is first resized so that heads come out at the size the model counts best (its training photos'
heads, enlarged by the card's photo_scale): a standing person is about seven heads tall, which gives the head size
from the people the detector found, with no per-camera setting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import cv2
import numpy as np

from sanitary.config import HeadConfig
from sanitary.errors import SanitaryError
from sanitary.perception.boxes import Detections
from sanitary.perception.models import WEIGHTS_DIR, open_session

MODEL_FILE = "head_points.onnx"
CARD_FILE = "head_points.json"
STRIDE = 4  # input pixels per heatmap cell
MULTIPLE = 16  # the graph's input sides must be multiples of its coarsest feature map
HEADS_PER_PERSON_HEIGHT = 7.0
# Heads in the training photos at their own size, measured as this module measures them (median person height / 7):
# the median over the training photos (weights/measure_head_scale.py, ByteTrack-Nano people: 17.5 px, quartiles
# 14.8-26.1). The model is run on frames resized so that heads look like the training photos' heads enlarged by
# the card's `scale.photo_scale`, the enlargement that counted best on the tuning photos.
TRAINING_HEAD_PX = 17.5
# With no person to measure, the frame is given the width of the training photos (times photo_scale): they show
# street crowds from a distance, as most overhead cameras do.
TRAINING_WIDTH_PX = 1024
MIN_SCALE, MAX_SCALE = 0.25, 4.0


@dataclass(frozen=True)
class Heads:
    """Head centres found in one frame. Per-person data like boxes: held in memory only, never written."""

    points: np.ndarray  # (N, 2) float32: x, y in frame pixels
    scores: np.ndarray  # (N,) float32
    sizes: np.ndarray  # (N,) float32: each head's side in frame pixels, as the model sees it

    def __len__(self) -> int:
        return len(self.points)

    @staticmethod
    def none() -> Heads:
        return Heads(np.zeros((0, 2), np.float32), np.zeros(0, np.float32), np.zeros(0, np.float32))


def find_peaks(heat: np.ndarray, min_score: float, stride: int = STRIDE) -> Heads:
    """Cells of a (h, w) heatmap that are the maximum of their 3x3 neighbourhood and reach `min_score`, as points
    at the centre of the cell in input pixels. Equal neighbours (a plateau) give one point each."""
    heat = np.ascontiguousarray(heat, np.float32)
    peak = (heat >= cv2.dilate(heat, np.ones((3, 3), np.uint8))) & (heat >= min_score)
    rows, cols = np.nonzero(peak)
    points = np.stack([(cols + 0.5) * stride, (rows + 0.5) * stride], axis=1).astype(np.float32)
    return Heads(points.reshape(-1, 2), heat[rows, cols], np.full(len(rows), np.nan, np.float32))


def choose_scale(
    people_heights: np.ndarray, frame_hw: tuple[int, int], max_pixels: int, photo_scale: float = 1.0
) -> float:
    """Factor the frame is resized by before the model: heads (median person height / 7) to TRAINING_HEAD_PX x
    `photo_scale`, or the frame to TRAINING_WIDTH_PX x `photo_scale` wide when no person was found; then capped so
    that the resized frame has at most `max_pixels`."""
    h, w = frame_hw
    if len(people_heights):
        head_px = float(np.median(people_heights)) / HEADS_PER_PERSON_HEIGHT
        scale = TRAINING_HEAD_PX * photo_scale / max(head_px, 1.0)
    else:
        scale = TRAINING_WIDTH_PX * photo_scale / w
    scale = min(scale, (max_pixels / (h * w)) ** 0.5)
    return float(np.clip(scale, MIN_SCALE, MAX_SCALE))


def model_input(image_bgr: np.ndarray, scale: float) -> np.ndarray:
    """(1, H, W, 3) uint8 RGB: the frame resized by `scale`, then padded at the right and bottom (black) to
    multiples of MULTIPLE."""
    h, w = image_bgr.shape[:2]
    size = (max(round(w * scale), 1), max(round(h * scale), 1))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image_bgr, size, interpolation=interpolation) if scale != 1 else image_bgr
    pad_h, pad_w = -size[1] % MULTIPLE, -size[0] % MULTIPLE
    padded = cv2.copyMakeBorder(resized, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    return np.ascontiguousarray(padded[None, :, :, ::-1])


def photo_scale() -> float:
    """The card's enlargement of the training photos that the model counts best at."""
    path = WEIGHTS_DIR / CARD_FILE
    try:
        return float(json.loads(path.read_text())["scale"]["photo_scale"])
    except (OSError, ValueError, KeyError, TypeError):
        raise SanitaryError(
            f"{path}: head model card missing or without scale.photo_scale; reinstall sanitary"
        ) from None


class HeadFinder:
    def __init__(self, config: HeadConfig) -> None:
        self.config = config
        self.session = open_session(MODEL_FILE, config.threads)
        self.photo_scale = photo_scale()

    def heatmap(self, rgb: np.ndarray) -> np.ndarray:
        """The model's (h, w) head-centre scores for one (1, H, W, 3) input from `model_input`."""
        (heat,) = self.session.run(["heat"], {"image": rgb})
        return heat[0]

    def __call__(self, image_bgr: np.ndarray, people: Detections) -> Heads:
        h, w = image_bgr.shape[:2]
        heights = people.boxes[:, 3] - people.boxes[:, 1] if len(people) else np.zeros(0, np.float32)
        scale = choose_scale(heights, (h, w), self.config.max_pixels, self.photo_scale)
        found = find_peaks(self.heatmap(model_input(image_bgr, scale)), self.config.min_score)
        points = found.points / scale
        inside = (points[:, 0] < w) & (points[:, 1] < h)  # peaks in the padding are not in the frame
        # This model was trained on heads of one size: it finds heads where the frame was resized to bring them.
        size = TRAINING_HEAD_PX * self.photo_scale / scale
        return Heads(
            points[inside].astype(np.float32),
            found.scores[inside].astype(np.float32),
            np.full(int(inside.sum()), size, np.float32),
        )
