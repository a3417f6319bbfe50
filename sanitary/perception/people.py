"""People in a frame: SSDLite-MobileNetV2 over overlapping tiles of the walkable area.

The detector sees 300x300 pixels. A 45 px tall person in a 480x360 frame shrinks to 28 px in a full-frame pass
and is mostly missed; in a 150 px tile upscaled to 300, the same person is 90 px tall. Tiles grow with the
distance to the camera (people near it are larger), and all of them, with the full frame where configured, go
through the network in one batched call. See README "Benchmarks" for what each choice measured.
"""

from __future__ import annotations

import cv2
import numpy as np

from sanitary.config import DetectionConfig
from sanitary.perception.boxes import Detections, areas, intersection_matrix, nms
from sanitary.perception.models import open_session

INPUT_PX = 300
# Without a configured tile size, tiles are this share of the frame height: as many tiles at any resolution
# of a frame shape, and a person half the frame tall still fits whole in one.
AUTO_TILE = 0.55
COCO_PERSON = 1
MERGE_IOU = 0.35
# A box cut by a tile edge lies mostly inside the whole box found by a neighbouring tile.
CONTAINED = 0.8


def tile_grid(roi: tuple[int, int, int, int], near_px: int, far_px: int, overlap: float) -> np.ndarray:
    """Square tiles (x1, y1, x2, y2) covering `roi`, neighbours sharing at least `overlap` of a tile.

    Tiles grow from `far_px` at the top of the region to `near_px` at its bottom: a fixed camera sees people
    smaller the further up the image they stand, and each tile should upscale them to a size the detector knows.
    """
    x0, y0, x1, y1 = roi
    rows: list[tuple[float, int]] = []
    y = float(y0)
    while True:
        depth = (y - y0) / max(y1 - y0, 1)
        size = min(round(far_px + (near_px - far_px) * depth), y1 - y0, x1 - x0)
        rows.append((y, size))
        if y + size >= y1:
            break
        y += size * (1 - overlap)
    # Pull the rows together so the last one ends on the region's edge: overlaps grow, the count does not.
    last_top, last_size = rows[-1]
    squeeze = (y1 - last_size - y0) / (last_top - y0) if last_top > y0 else 0.0
    rows = [(y0 + (top - y0) * squeeze, size) for top, size in rows]
    tiles = []
    for top, size in rows:
        span = x1 - x0 - size
        n = int(np.ceil(span / (size * (1 - overlap)))) + 1 if span > 0 else 1
        for left in np.linspace(x0, x1 - size, n).round().astype(int):
            tiles.append((left, round(top), left + size, round(top) + size))
    return np.array(tiles, dtype=np.int64)


def walkable_roi(polygon: list[tuple[float, float]], frame_w: int, frame_h: int) -> tuple[int, int, int, int]:
    """The pixel rectangle holding the walkable polygon, padded upwards by a person's height at its top edge."""
    if not polygon:
        return 0, 0, frame_w, frame_h
    pts = np.asarray(polygon, dtype=np.float64)
    x0, y0 = np.floor(pts.min(axis=0)).astype(int)
    x1, y1 = np.ceil(pts.max(axis=0)).astype(int)
    # Feet stand in the polygon; heads stand above it.
    head_room = int(0.15 * frame_h)
    return max(0, x0), max(0, y0 - head_room), min(frame_w, x1), min(frame_h, y1)


def merge_tiles(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Indices kept after merging detections of overlapping tiles: fragments cut by a tile edge go first,
    whatever their score, then NMS keeps the best of each group."""
    size = areas(boxes)
    # Box i is a fragment when most of it lies inside a box j at least 1.5x its area.
    inside = intersection_matrix(boxes, boxes) / np.maximum(size[:, None], 1e-9)
    bigger = size[None, :] >= 1.5 * size[:, None]
    whole = np.flatnonzero(~((inside >= CONTAINED) & bigger).any(axis=1))
    return whole[nms(boxes[whole], scores[whole], MERGE_IOU)]


class PersonDetector:
    def __init__(self, config: DetectionConfig) -> None:
        self.config = config
        self.session = open_session("ssdlite_mobilenet_v2_coco.onnx", config.threads)
        self.walkable = np.asarray(config.walkable, np.float32) if config.walkable else None
        self._tiles: dict[tuple[int, int], np.ndarray] = {}

    def tiles_for(self, frame_w: int, frame_h: int) -> np.ndarray:
        """The tiles of a frame size; a folder of photos can mix sizes, a camera keeps one."""
        if (frame_w, frame_h) not in self._tiles:
            c = self.config
            roi = walkable_roi(c.walkable, frame_w, frame_h)
            near = c.tile_px or round(AUTO_TILE * frame_h)
            tiles = tile_grid(roi, near, c.tile_px_far or near, c.tile_overlap)
            if c.full_frame:
                tiles = np.vstack([[0, 0, frame_w, frame_h], tiles])
            self._tiles[frame_w, frame_h] = tiles
        return self._tiles[frame_w, frame_h]

    def __call__(self, image: np.ndarray) -> Detections:
        tiles = self.tiles_for(image.shape[1], image.shape[0])
        batch = np.stack(
            [
                cv2.resize(image[y0:y1, x0:x1], (INPUT_PX, INPUT_PX), interpolation=cv2.INTER_LINEAR)[:, :, ::-1]
                for x0, y0, x1, y1 in tiles
            ]
        )
        boxes, scores, classes, counts = self.session.run(
            ["detection_boxes:0", "detection_scores:0", "detection_classes:0", "num_detections:0"],
            {"image_tensor:0": batch},
        )
        found_boxes, found_scores = [], []
        for i, (x0, y0, x1, y1) in enumerate(tiles):
            n = int(counts[i])
            chosen = (classes[i, :n] == COCO_PERSON) & (scores[i, :n] >= self.config.person_score)
            ymin, xmin, ymax, xmax = boxes[i, :n][chosen].T
            w, h = x1 - x0, y1 - y0
            found_boxes.append(np.stack([x0 + xmin * w, y0 + ymin * h, x0 + xmax * w, y0 + ymax * h], axis=1))
            found_scores.append(scores[i, :n][chosen])
        all_boxes = np.concatenate(found_boxes).astype(np.float32)
        all_scores = np.concatenate(found_scores).astype(np.float32)
        keep = merge_tiles(all_boxes, all_scores)
        people = Detections(all_boxes[keep], all_scores[keep])
        return self._on_walkable(people)

    def _on_walkable(self, people: Detections) -> Detections:
        """Drop detections standing outside the walkable area (posters, reflections, people on a balcony)."""
        if self.walkable is None or len(people) == 0:
            return people
        feet = people.feet
        inside = np.array([cv2.pointPolygonTest(self.walkable, (float(x), float(y)), False) >= 0 for x, y in feet])
        return Detections(people.boxes[inside], people.scores[inside])
