"""People in a frame: a YOLOX-Nano person detector, one pass over the whole frame.

Two exports of the same architecture can be chosen (`detection.model`): ByteTrack's, trained on crowds for one
class, person (the default), and YOLOX's COCO model (person is its class 0). Both have a YOLOX head exported
without its decoding: per anchor, raw centre offsets and log sizes, then objectness and class scores. The frame is
letterboxed to a size set by its shape alone (long side `LONG_SIDE`), so no camera needs tuning; weights/ has each
model's card with what each choice measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from sanitary.config import DetectionConfig
from sanitary.perception.boxes import Detections, as_polygon, nms, on_walkable
from sanitary.perception.models import open_session

# The network's long side in pixels, whatever the frame's (see weights/bytetrack_nano.json, "input_size").
LONG_SIDE = 512
# The head's strides: the network's height and width must be multiples of the coarsest.
STRIDES = (8, 16, 32)
# YOLOX's letterbox fills the canvas beyond the resized frame with this grey.
PAD_GREY = 114
# Two boxes overlapping more than this are one person (the YOLOX demo's value).
NMS_IOU = 0.45
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


@dataclass(frozen=True)
class PersonModel:
    """A YOLOX-head export of weights/ and the input its training used."""

    file: str
    # ByteTrack: RGB scaled to 0..1 and normalised by ImageNet's mean and std. YOLOX (weights >= 0.1.1rc0): BGR
    # 0..255 as it is.
    imagenet_rgb: bool


MODELS = {
    "bytetrack-nano": PersonModel("bytetrack_nano.dynamic.onnx", imagenet_rgb=True),
    "yolox-nano-coco": PersonModel("yolox_nano.dynamic.onnx", imagenet_rgb=False),
}


def input_size(frame_w: int, frame_h: int) -> tuple[int, int]:
    """(height, width) of the network's input for a frame: the long side `LONG_SIDE`, the aspect kept, both sides
    rounded up to a multiple of the coarsest stride (the letterbox pads the rest)."""
    scale = LONG_SIDE / max(frame_w, frame_h)
    step = STRIDES[-1]
    # Rounded first: 360 x 512 / 480 is 384 exactly, and must not become 384.00000001 and round up to 416.
    height, width = (math.ceil(round(side * scale, 6) / step) * step for side in (frame_h, frame_w))
    return height, width


def letterbox(image: np.ndarray, height: int, width: int) -> tuple[np.ndarray, float]:
    """The image scaled to fit `height` x `width` with its aspect kept, at the top-left of a grey canvas, and the
    scale (input pixels per frame pixel)."""
    scale = min(height / image.shape[0], width / image.shape[1])
    h, w = int(image.shape[0] * scale), int(image.shape[1] * scale)
    canvas = np.full((height, width, 3), PAD_GREY, np.uint8)
    canvas[:h, :w] = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    return canvas, scale


def network_input(canvas_bgr: np.ndarray, model: PersonModel) -> np.ndarray:
    """The letterboxed canvas as the model's (1, 3, H, W) float32 tensor; the grey padding is normalised too, as
    in training."""
    if model.imagenet_rgb:
        x = (canvas_bgr[:, :, ::-1].astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    else:
        x = canvas_bgr.astype(np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def anchor_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The cell (x, y) and the stride of every output row: stride 8's cells first, then 16's, then 32's, each
    row by row."""
    cells, strides = [], []
    for s in STRIDES:
        ys, xs = np.meshgrid(np.arange(height // s), np.arange(width // s), indexing="ij")
        cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides.append(np.full(xs.size, s))
    return np.concatenate(cells).astype(np.float32), np.concatenate(strides).astype(np.float32)


def decode(raw: np.ndarray, cells: np.ndarray, strides: np.ndarray) -> np.ndarray:
    """Boxes (x1, y1, x2, y2) in input pixels from the head's raw rows (x, y offsets in cells, log w, log h):
    centre = (offset + cell) x stride, size = exp(log size) x stride."""
    centre = (raw[:, :2] + cells) * strides[:, None]
    half = np.exp(raw[:, 2:4]) * strides[:, None] / 2
    return np.concatenate([centre - half, centre + half], axis=1)


class PersonDetector:
    def __init__(self, config: DetectionConfig) -> None:
        self.config = config
        self.model = MODELS[config.model]
        self.session = open_session(self.model.file, config.threads)
        self.input_name = self.session.get_inputs()[0].name
        self.walkable = as_polygon(config.walkable)
        self._grids: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def grid(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """The anchor grid of an input size; a folder of photos can mix sizes, a camera keeps one."""
        if (height, width) not in self._grids:
            self._grids[height, width] = anchor_grid(height, width)
        return self._grids[height, width]

    def __call__(self, image: np.ndarray) -> Detections:
        frame_h, frame_w = image.shape[:2]
        height, width = input_size(frame_w, frame_h)
        canvas, scale = letterbox(image, height, width)
        (raw,) = self.session.run(None, {self.input_name: network_input(canvas, self.model)})
        rows = raw[0]
        # Objectness times the person class (column 5: ByteTrack's only class, COCO's class 0).
        scores = rows[:, 4] * rows[:, 5]
        chosen = np.flatnonzero(scores >= self.config.person_score)
        cells, strides = self.grid(height, width)
        boxes = decode(rows[chosen, :4], cells[chosen], strides[chosen]) / scale
        boxes = np.clip(boxes, 0, [frame_w, frame_h, frame_w, frame_h]).astype(np.float32)
        scores = scores[chosen].astype(np.float32)
        keep = nms(boxes, scores, NMS_IOU)
        return on_walkable(Detections(boxes[keep], scores[keep]), self.walkable)
