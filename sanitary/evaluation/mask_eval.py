"""How well the mask classifier reads faces: per-class precision, recall and F1, confusion, coverage.

Faces the classifier leaves `unknown` stay in every denominator and in a column of their own, so a model cannot
look better by refusing the hard faces. With `detect`, faces are first found by the pipeline's face detector on
the whole image, as the pipeline would see them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from sanitary.config import DetectionConfig, MaskConfig
from sanitary.errors import SanitaryError
from sanitary.evaluation.crop_folders import is_crop_folder, read_crop_folder
from sanitary.evaluation.voc import AnnotatedFace, read_voc
from sanitary.perception.boxes import Detections, iou_matrix
from sanitary.perception.faces import FaceDetector, Faces
from sanitary.perception.mask_classes import LABELS, MaskClass
from sanitary.perception.masks import MaskClassifier, face_crops, read_masks

MATCH_IOU = 0.3
NO_PEOPLE = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))


@dataclass(frozen=True)
class ClassScore:
    precision: float
    recall: float
    recall_low: float  # 95% Wilson interval
    recall_high: float
    f1: float
    support: int


@dataclass(frozen=True)
class MaskReport:
    classes: tuple[str, ...]
    confusion: list[list[int]]  # rows: true class; columns: predicted class, then unknown
    per_class: dict[str, ClassScore]
    macro_f1: float  # over the classes with faces
    accuracy: float  # right / all faces: an unknown face is not right
    coverage: float  # faces given a class / all faces
    detect: dict[str, dict[str, int]] | None = None  # per class: annotated, found, right

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def report(truth: Iterable[int], predicted: Iterable[int]) -> MaskReport:
    """Scores from true classes and predicted ones (MaskClass.UNKNOWN for a face left unread)."""
    k = len(LABELS)
    confusion = np.zeros((k, k + 1), np.int64)
    for t, p in zip(truth, predicted, strict=True):
        confusion[t, k if p == MaskClass.UNKNOWN else p] += 1
    total = int(confusion.sum())
    if total == 0:
        raise SanitaryError("no face to evaluate: the data holds no annotated face of the three classes")
    per_class = {}
    for c, name in enumerate(LABELS):
        right, support, called = int(confusion[c, c]), int(confusion[c].sum()), int(confusion[:, c].sum())
        precision = right / called if called else 0.0
        recall = right / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        low, high = wilson(right, support)
        per_class[name] = ClassScore(precision, recall, low, high, f1, support)
    return MaskReport(
        classes=LABELS,
        confusion=confusion.tolist(),
        per_class=per_class,
        # Over the classes the faces hold: a crop set without bare faces is not scored 0 on them.
        macro_f1=float(np.mean([s.f1 for s in per_class.values() if s.support])),
        accuracy=float(np.trace(confusion[:, :k])) / total,
        coverage=1 - float(confusion[:, k].sum()) / total,
    )


def load_faces(data: Path, only: set[str] | None) -> list[AnnotatedFace]:
    """Annotated faces of a VOC folder, or whole images of class subfolders as face crops."""
    if (data / "annotations").is_dir():
        faces = read_voc(data)
    elif is_crop_folder(data):
        faces = read_crop_folder(data)
    else:
        raise SanitaryError(
            f"{data}: neither a VOC folder (images/, annotations/) nor a folder of class subfolders "
            f"({', '.join(LABELS)})"
        )
    if only is not None:
        faces = [f for f in faces if f.image.name in only]
    if not faces:
        raise SanitaryError(f"{data}: no face left to evaluate (check --only)")
    return faces


def crops_are_faces(data: Path) -> bool:
    """A crop folder's images are the faces; a VOC folder's boxes get the pipeline's margin."""
    return not (data / "annotations").is_dir()


def evaluate(faces: list[AnnotatedFace], masks: MaskConfig, crops_are_faces: bool) -> MaskReport:
    """Classify each annotated face from its annotated box, as a face detector would hand it over."""
    classifier = MaskClassifier(masks)
    truth, predicted = [], []
    for image_path, group in by_image(faces):
        image = cv2.imread(str(image_path))
        boxes = np.array([f.box for f in group], np.float32)
        # A crop image is the face already; an annotated box gets the same margin as in the pipeline.
        crops = face_crops(image, boxes, margin=0.0) if crops_are_faces else face_crops(image, boxes)
        # Annotations carry no landmarks: the side-on rule is left to --detect.
        predicted.extend(read_masks(classifier.probabilities(crops), boxes, masks).classes.tolist())
        truth.extend(MaskClass.from_label(f.label) for f in group)
    return report(truth, predicted)


def evaluate_detected(faces: list[AnnotatedFace], masks: MaskConfig, detection: DetectionConfig) -> MaskReport:
    """Find faces on whole images first; an annotated face no detection matches counts as unknown."""
    detector = FaceDetector(dataclasses.replace(detection, face_search="frame"))
    classifier = MaskClassifier(masks)
    truth, predicted = [], []
    found = {name: {"annotated": 0, "found": 0, "right": 0} for name in LABELS}
    for image_path, group in by_image(faces):
        image = cv2.imread(str(image_path))
        detected: Faces = detector(image, NO_PEOPLE)
        readings = classifier(image, detected)
        annotated = np.array([f.box for f in group], np.float32)
        match = match_boxes(annotated, detected.boxes)
        for face, j in zip(group, match, strict=True):
            t = MaskClass.from_label(face.label)
            p = MaskClass.UNKNOWN if j < 0 else int(readings.classes[j])
            truth.append(t)
            predicted.append(p)
            found[face.label]["annotated"] += 1
            found[face.label]["found"] += int(j >= 0)
            found[face.label]["right"] += int(p == t)
    return dataclasses.replace(report(truth, predicted), detect=found)


def match_boxes(annotated: np.ndarray, detected: np.ndarray) -> list[int]:
    """Greedy one-to-one matching at IoU >= MATCH_IOU: for each annotated face, its detection or -1."""
    ious = iou_matrix(annotated, detected)
    match = [-1] * len(annotated)
    taken: set[int] = set()
    for flat in np.argsort(-ious, axis=None):
        i, j = np.unravel_index(flat, ious.shape)
        if ious[i, j] < MATCH_IOU:
            break
        if match[i] < 0 and j not in taken:
            match[i] = int(j)
            taken.add(int(j))
    return match


def by_image(faces: list[AnnotatedFace]) -> list[tuple[Path, list[AnnotatedFace]]]:
    groups: dict[Path, list[AnnotatedFace]] = {}
    for f in faces:
        groups.setdefault(f.image, []).append(f)
    return list(groups.items())
