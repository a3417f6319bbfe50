"""Mask wearing per face: the project's own three-class classifier (weights/mask_classifier.onnx).

Training and inference cut faces the same way, through `face_crops`: a square around the face box with a
margin, so that the chin, nose and mask edge are in view. The ONNX graph holds its own normalisation, the reading
chosen in training (the class bias and, where the card's `decision` says so, the mean of each crop's logits and its
mirror image's) and softmax; it takes uint8 RGB crops as they come from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from sanitary.config import MaskConfig
from sanitary.perception.faces import Faces
from sanitary.perception.mask_card import load_card
from sanitary.perception.mask_classes import READ, MaskClass
from sanitary.perception.models import open_session

MODEL_FILE = "mask_classifier.onnx"
CROP_PX = 112
MARGIN = 0.2  # of the face box side, on each side


def face_crops(image_bgr: np.ndarray, boxes: np.ndarray, size: int = CROP_PX, margin: float = MARGIN) -> np.ndarray:
    """Square RGB crops (N, size, size, 3) uint8 around each face box; borders are replicated, not black,
    so a face at the frame edge does not look like a dark mask."""
    h, w = image_bgr.shape[:2]
    crops = np.empty((len(boxes), size, size, 3), np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, np.float64)):
        side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        left, top = round(cx - side / 2), round(cy - side / 2)
        right, bottom = left + max(round(side), 1), top + max(round(side), 1)
        pad = max(0, -left, -top, right - w, bottom - h)
        source = image_bgr
        if pad:
            source = cv2.copyMakeBorder(image_bgr, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        patch = source[top + pad : bottom + pad, left + pad : right + pad]
        shrink = patch.shape[0] > size
        resized = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        crops[i] = resized[:, :, ::-1]
    return crops


def nose_offset(landmarks: np.ndarray) -> np.ndarray:
    """How far the nose sits from the middle of the eyes, in eye distances: 0 frontal, ~0.5 and more side-on."""
    left_eye, right_eye, nose = landmarks[:, 0], landmarks[:, 1], landmarks[:, 2]
    eye_distance = np.linalg.norm(right_eye - left_eye, axis=1)
    middle = (left_eye + right_eye) / 2
    return np.abs(nose[:, 0] - middle[:, 0]) / np.maximum(eye_distance, 1e-6)


@dataclass(frozen=True)
class MaskReadings:
    """One reading per face: its `MaskClass` value and the classifier's confidence."""

    classes: np.ndarray  # (N,) int64
    confidence: np.ndarray  # (N,) float32

    @staticmethod
    def empty() -> MaskReadings:
        return MaskReadings(np.zeros(0, np.int64), np.zeros(0, np.float32))


class MaskClassifier:
    def __init__(self, thresholds: MaskConfig, threads: int = 0) -> None:
        self.thresholds = thresholds
        self.session = open_session(MODEL_FILE, threads)
        # Read on opening: a bad card stops the run before any footage is analysed.
        self.card = load_card()

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        """Class probabilities (N, 3) for uint8 RGB crops from `face_crops`."""
        if len(crops) == 0:
            return np.zeros((0, len(READ)), np.float32)
        (probs,) = self.session.run_batches("crops", crops)
        return probs

    def __call__(self, image_bgr: np.ndarray, faces: Faces) -> MaskReadings:
        if len(faces) == 0:
            return MaskReadings.empty()
        nose = nose_offset(faces.landmarks)
        # A face too small or too side-on is unknown whatever the classifier would say, so it is not classified
        # (confidence 0): about 3 in 10 of the faces found in street crowds, at 5 ms a face on 2 cores.
        readable = np.flatnonzero(~unreadable(faces.boxes, self.thresholds, nose))
        probs = np.zeros((len(faces), len(READ)), np.float32)
        probs[readable] = self.probabilities(face_crops(image_bgr, faces.boxes[readable]))
        return read_masks(probs, faces.boxes, self.thresholds, nose)


def read_masks(
    probs: np.ndarray, boxes: np.ndarray, thresholds: MaskConfig, nose: np.ndarray | None = None
) -> MaskReadings:
    """Class probabilities to readings. Too small to see a nose, turned too far to see both sides of the mouth
    (when landmarks give `nose` offsets), or not sure enough: such a face is counted as seen, never guessed
    into either side of the mask rate."""
    classes = probs.argmax(axis=1).astype(np.int64)
    confidence = probs.max(axis=1).astype(np.float32)
    classes[unreadable(boxes, thresholds, nose) | (confidence < thresholds.min_confidence)] = MaskClass.UNKNOWN
    return MaskReadings(classes, confidence)


def unreadable(boxes: np.ndarray, thresholds: MaskConfig, nose: np.ndarray | None = None) -> np.ndarray:
    """(N,) bool: faces too small to show a nose or mouth, or (given `nose` offsets) turned too far to show both
    sides of the mouth."""
    sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    unknown = sides < thresholds.min_face_px
    if nose is not None:
        unknown |= nose > thresholds.max_nose_offset
    return unknown
