"""Heads in a crowd: points where a head is, and its size, found where bodies are hidden or seated.

The project's head model (weights/head_points.onnx, trained by `sanitary train-crowd`, see its card) maps a uint8
RGB image to two maps at a quarter of its resolution: a head-centre score and the side of the head there, in input
pixels. A head is a local maximum of the score above a threshold.

The model counts best when heads come out at one size (the card's `decision.head_px`, chosen on tuning photos), so
the frame is measured by the model itself, with no person detection and no per-camera setting: a first pass at about
a million pixels, the size of the heads it is sure of (their lower quartile), then a second pass with the frame
resized to bring that size to head_px, when that is a different enough scale. Inputs larger than a tile run as
overlapping tiles, so that the activations, and onnxruntime's memory, never exceed one tile's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

import cv2
import numpy as np

from sanitary.config import HeadConfig
from sanitary.errors import SanitaryError
from sanitary.perception.boxes import Detections
from sanitary.perception.models import WEIGHTS_DIR, ModelSession, open_session

MODEL_FILE = "head_points.onnx"
CARD_FILE = "head_points.json"
STRIDE = 4  # input pixels per output cell
MULTIPLE = 16  # the graph's input sides must be multiples of its coarsest feature map
# The first pass: the frame resized to about this many pixels, where heads of 10-60 px in a 1280x720 frame come out
# at 10-60 px too, sizes the model was trained on (6-70 px).
FIRST_PASS_PIXELS = 1_000_000
SURE_SCORE = 0.5  # heads this sure measure the frame's head size
MIN_SURE = 3  # fewer sure heads than this: the first pass is kept, there is nothing to measure
# The sure heads' size that is brought to the model's head size: their lower quartile, not the median, since the
# smaller heads of a frame are where counts are lost (with the first model trained this way, on the tuning photos:
# summed relative error 0.300 against 0.310 with the median); in a room of equal heads it is nearly the median.
SIZE_QUANTILE = 0.25
SECOND_PASS_RATIO = 1.25  # a second pass only when it changes the scale by more than this factor
MIN_SCALE, MAX_SCALE = 0.25, 4.0
# One run of the graph sees at most this many input pixels: MobileNetV2's early layers hold about 100 MB of
# activations a million input pixels, and a unit has 1-2 GB for everything. A whole PETS run (480x360, every frame)
# peaked at 485 MB with tiles of a million pixels, 462 MB with half a million and 374 MB with a quarter, for 10%
# more time (the tiles' margins are computed twice); heads off, 284 MB.
TILE_PIXELS = 512 * 512
# Context around each tile's core: a few heads at the sizes the model is run at (~20-30 px), enough for the score and
# size at the core's edge to be those of one pass (tests/perception/test_heads.py checks on a real photo).
TILE_MARGIN = 64


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


@dataclass(frozen=True)
class HeadMaps:
    """The model's output for one input: per cell, the head-centre score (0..1) and the head side in input px."""

    heat: np.ndarray  # (h, w) float32
    size: np.ndarray  # (h, w) float32


def find_peaks(maps: HeadMaps, min_score: float, stride: int = STRIDE) -> Heads:
    """Cells that are the maximum of their 3x3 neighbourhood and reach `min_score`, as points at the centre of the
    cell in input pixels, with the size read at that cell. Equal neighbours (a plateau) give one point each."""
    heat = np.ascontiguousarray(maps.heat, np.float32)
    peak = (heat >= cv2.dilate(heat, np.ones((3, 3), np.uint8))) & (heat >= min_score)
    rows, cols = np.nonzero(peak)
    points = np.stack([(cols + 0.5) * stride, (rows + 0.5) * stride], axis=1).astype(np.float32)
    return Heads(points.reshape(-1, 2), heat[rows, cols], maps.size[rows, cols].astype(np.float32))


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


# ---------------------------------------------------------------- scales


def _capped(scale: float, frame_hw: tuple[int, int], max_pixels: int) -> float:
    h, w = frame_hw
    return float(np.clip(min(scale, math.sqrt(max_pixels / (h * w))), MIN_SCALE, MAX_SCALE))


def first_scale(frame_hw: tuple[int, int], max_pixels: int) -> float:
    """The first pass's factor: the frame to FIRST_PASS_PIXELS (or `max_pixels`, when fewer)."""
    h, w = frame_hw
    return _capped(math.sqrt(FIRST_PASS_PIXELS / (h * w)), frame_hw, max_pixels)


def second_scale(
    first: float, sure_sizes: np.ndarray, head_px: float, frame_hw: tuple[int, int], max_pixels: int
) -> float:
    """The factor that brings the median of `sure_sizes` (head sides in frame pixels) to `head_px`, capped at
    `max_pixels`; `first` when fewer than MIN_SURE sizes were measured or the change is within SECOND_PASS_RATIO."""
    if len(sure_sizes) < MIN_SURE:
        return first
    wanted = _capped(head_px / max(float(np.quantile(sure_sizes, SIZE_QUANTILE)), 1.0), frame_hw, max_pixels)
    return first if abs(math.log(wanted / first)) < math.log(SECOND_PASS_RATIO) else wanted


# ---------------------------------------------------------------- tiles


@dataclass(frozen=True)
class Tile:
    window: tuple[int, int, int, int]  # y0, y1, x0, x1: the part of the input the graph runs on
    core: tuple[int, int, int, int]  # y0, y1, x0, x1: the part of the window whose outputs are kept


def _cuts(length: int, parts: int) -> list[int]:
    step = -(-length // parts // MULTIPLE) * MULTIPLE if parts > 1 else length
    return [min(i * step, length) for i in range(parts)] + [length]


@lru_cache(maxsize=64)
def tiles(height: int, width: int, tile_pixels: int = TILE_PIXELS, margin: int = TILE_MARGIN) -> tuple[Tile, ...]:
    """Overlapping windows of at most `tile_pixels` over an input of `height` x `width` (multiples of MULTIPLE),
    whose cores partition it: the grid with the least total window area. One tile when the input fits."""
    if height * width <= tile_pixels:
        return (Tile((0, height, 0, width), (0, height, 0, width)),)
    best: tuple[int, tuple[Tile, ...]] | None = None
    for rows in range(1, min(height // MULTIPLE, 32) + 1):
        # For each number of rows, the fewest columns that fit: more would only add margins.
        for cols in range(1, width // MULTIPLE + 1):
            ys, xs = _cuts(height, rows), _cuts(width, cols)
            grid = tuple(
                Tile(
                    (max(y0 - margin, 0), min(y1 + margin, height), max(x0 - margin, 0), min(x1 + margin, width)),
                    (y0, y1, x0, x1),
                )
                for y0, y1 in pairwise(ys)
                for x0, x1 in pairwise(xs)
                if y1 > y0 and x1 > x0
            )
            areas = [(t.window[1] - t.window[0]) * (t.window[3] - t.window[2]) for t in grid]
            if max(areas) <= tile_pixels:
                if best is None or sum(areas) < best[0]:
                    best = (sum(areas), grid)
                break
    if best is None:
        raise SanitaryError(f"a {width}x{height} input cannot be tiled in {tile_pixels} pixels; raise the tile size")
    return best[1]


# ---------------------------------------------------------------- the model


def head_px() -> float:
    """The card's head size: the side, in model input pixels, at which the model counts best."""
    path = WEIGHTS_DIR / CARD_FILE
    try:
        return float(json.loads(path.read_text())["decision"]["head_px"])
    except (OSError, ValueError, KeyError, TypeError):
        raise SanitaryError(
            f"{path}: head model card missing or without decision.head_px; reinstall sanitary"
        ) from None


class HeadModel:
    """The ONNX graph, run over tiles."""

    def __init__(self, session: ModelSession, tile_pixels: int = TILE_PIXELS) -> None:
        self.session = session
        self.tile_pixels = tile_pixels

    def __call__(self, rgb: np.ndarray) -> HeadMaps:
        """The maps of one (1, H, W, 3) input from `model_input`, stitched from the cores of its tiles."""
        _, height, width, _ = rgb.shape
        heat = np.zeros((height // STRIDE, width // STRIDE), np.float32)
        size = np.zeros_like(heat)
        for tile in tiles(height, width, self.tile_pixels):
            wy0, wy1, wx0, wx1 = tile.window
            cy0, cy1, cx0, cx1 = (v // STRIDE for v in tile.core)
            out_heat, out_size = self.session.run(["heat", "size"], {"image": rgb[:, wy0:wy1, wx0:wx1]})
            keep = (slice(cy0 - wy0 // STRIDE, cy1 - wy0 // STRIDE), slice(cx0 - wx0 // STRIDE, cx1 - wx0 // STRIDE))
            heat[cy0:cy1, cx0:cx1] = out_heat[0][keep]
            size[cy0:cy1, cx0:cx1] = out_size[0][keep]
        return HeadMaps(heat, size)


@dataclass(frozen=True)
class Measured:
    """One frame through the two passes: the maps used and the scale they were made at."""

    maps: HeadMaps
    scale: float
    first: float


def measure(model: HeadModel, image_bgr: np.ndarray, target_px: float, max_pixels: int) -> Measured:
    """Run the model at the first scale, measure the sure heads, and again at the second scale if it differs."""
    frame_hw = image_bgr.shape[:2]
    first = first_scale(frame_hw, max_pixels)
    maps = model(model_input(image_bgr, first))
    sure = find_peaks(maps, SURE_SCORE)
    scale = second_scale(first, sure.sizes / first, target_px, frame_hw, max_pixels)
    if scale != first:
        maps = model(model_input(image_bgr, scale))
    return Measured(maps, scale, first)


def in_frame(found: Heads, scale: float, frame_hw: tuple[int, int]) -> Heads:
    """Heads found at `scale`, in frame pixels; peaks in the padding are not in the frame."""
    h, w = frame_hw
    points = found.points / scale
    inside = (points[:, 0] < w) & (points[:, 1] < h)
    return Heads(
        points[inside].astype(np.float32),
        found.scores[inside].astype(np.float32),
        (found.sizes[inside] / scale).astype(np.float32),
    )


class HeadFinder:
    def __init__(self, config: HeadConfig) -> None:
        self.config = config
        self.model = HeadModel(open_session(MODEL_FILE, config.threads))
        self.head_px = head_px()

    def __call__(self, image_bgr: np.ndarray, people: Detections) -> Heads:
        """The heads of one frame. `people` is not needed: the model measures the heads itself (kept so that the
        analyser's call is that of every stage)."""
        measured = measure(self.model, image_bgr, self.head_px, self.config.max_pixels)
        found = find_peaks(measured.maps, self.config.min_score)
        return in_frame(found, measured.scale, image_bgr.shape[:2])
