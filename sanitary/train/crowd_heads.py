"""Training of the head model shipped as weights/head_points.onnx, and its card.

Photos with every head marked, from several sources at once (`sanitary.evaluation.crowd_sources`): street crowds
with one point per head (ShanghaiTech part B) and ceiling cameras over seated rows with one box per head (SCUT-HEAD
part A). The model learns a CenterNet-style heatmap (a Gaussian bump at each head centre, the penalty-reduced focal
loss of Zhou et al. 2019, decoded as local maxima by `sanitary.perception.heads.find_peaks`, the function inference
uses) and, beside it, the head's size: the log of its side in input pixels, learnt by L1 on the cells at and around
each head (a box's sqrt(w h); a point source's estimated from the heads' spacing, `estimated_sizes`). Inference measures
a frame's heads with it and resizes the frame so that heads come out at the size the model counts best.

The network is the ImageNet MobileNetV2 up to stride 16, with a small feature pyramid back to stride 4 (a head of
6 px still gets its own cell). The stride-4 stem stays frozen at its ImageNet weights and statistics; every
BatchNorm keeps ImageNet's statistics, as batches of a few crops would give noisy ones.

Each source's validation and tuning photos are fixed, committed lists (weights/head_splits/); training never sees
either. The head size and the peak score are chosen on the tuning photos of every source, validation is scored
once at the end.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import math
import os
import platform
import random
import shlex
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sanitary.errors import SanitaryError
from sanitary.evaluation.crowd import count_errors, matched, matched_in_boxes
from sanitary.evaluation.crowd_sources import SPLITS_DIR, CrowdSource, read_source, split_file, splits
from sanitary.perception.heads import (
    CARD_FILE,
    FIRST_PASS_PIXELS,
    MODEL_FILE,
    MULTIPLE,
    STRIDE,
    SURE_SCORE,
    TILE_MARGIN,
    TILE_PIXELS,
    HeadMaps,
    HeadModel,
    find_peaks,
    first_scale,
    in_frame,
    measure,
    model_input,
    second_scale,
)
from sanitary.perception.models import cpu_session
from sanitary.train.backbone import BACKBONE_FILE, BACKBONE_PACKAGE, OPSET, Normalise, backbone_path, load_backbone
from sanitary.train.colour import jitter_colour
from sanitary.train.records import sha256_file, shown, versions

CROP_PX = 256
# Each crop is scaled so that its photo's median head lands at a size drawn log-uniformly in this range; with the
# spread of sizes within a photo (about x0.6-x1.6 of the median), heads reach ~5-75 px, beyond the 10-60 px asked of
# the model in frames once the first pass has measured them.
HEAD_RANGE_PX = (8.0, 48.0)
# ShanghaiTech gives no head sizes, so they are estimated from how far apart its heads stand along the photo's
# perspective (`estimated_sizes`): the log of each head's mean distance to its SPACING_NEIGHBOURS nearest heads, fitted
# by a line in y, times SPACING_TO_SIZE: the median over SCUT-A's photos of (box side / that fit), where both are
# known (0.576; 10th-90th percentiles 0.18-0.74). Sizing every street photo alike instead (its median head taken as
# 17.5 px, a person's height / 7 by the person detector) let the size channel learn streets from seated rooms only,
# and street recall fell as it learnt them (card: earlier runs).
SPACING_NEIGHBOURS = 3
SPACING_TO_SIZE = 0.576
SPACING_REFITS = 2  # the line refitted without heads farther off it than twice the median residual: a lone head
# at the back of a sparse photo is far from its neighbours, not large
MIN_SPACED_HEADS = 4  # fewer heads give no perspective: their photo's median head is taken as FALLBACK_HEAD_PX
FALLBACK_HEAD_PX = 17.5
BATCH = 8
LR_HEAD = 1e-3
LR_BACKBONE = 3e-4
WEIGHT_DECAY = 1e-4
# Gaussian of a head: sigma a share of the distance to its nearest neighbour (bumps of a dense crowd stay apart),
# in heatmap cells, clipped so that a lone head is neither a dot nor a blob.
SIGMA_SHARE = 0.25
SIGMA_CELLS = (0.5, 2.5)
SIZE_WEIGHT = 1.0  # L1 of log sizes (~0.1-0.5) beside a focal loss of ~0.7-2
SIZE_RADIUS_CELLS = 1  # the size is learnt on the head's cell and its 8 neighbours: peaks land within a cell
PRIOR = 0.05  # initial heat everywhere: the focal loss starts from few heads, not from 0.5 everywhere
INITIAL_SIZE_PX = 20.0
SCORE_GRID = np.round(np.arange(0.05, 0.951, 0.025), 3)
# Head sizes (input pixels) that frames are brought to, tried on the tuning photos.
HEAD_PX_GRID = (16.0, 20.0, 24.0, 28.0)
TUNING_MAX_PIXELS = 3_200_000  # [heads] max_pixels while tuning and scoring: the photos' own cap, not a unit's
MATCH_RADII_PX = (8.0, 16.0)
TIMING_FRAME = (720, 1280)
TARGETS = {"heads-scut-a": "head points precision and recall >= 0.85", "crowd-shanghaitech-b-train": "MAE < 15"}

AUGMENTATION = {
    "scale": f"the photo scaled so that its median head is {HEAD_RANGE_PX[0]:g}-{HEAD_RANGE_PX[1]:g} px "
    "(log-uniform; a point source's heads sized from their spacing, `estimated_sizes`)",
    "crop": f"{CROP_PX}x{CROP_PX} px anywhere in the scaled photo (black beyond its edges)",
    "flip": "horizontal, p 0.5",
    "photometric": "contrast x0.7..1.3 about the mean, brightness +-25, per-channel gain 0.9..1.1; greyscale p 0.1",
    "blur": "Gaussian sigma 0.5..1.5, p 0.2 (compressed, out-of-focus footage)",
    "balance": "each epoch, as many crops from every source as the smallest source has training photos",
}


@dataclass
class Photo:
    source: str
    name: str
    image: np.ndarray  # BGR
    points: np.ndarray  # (N, 2) float32 x, y
    spacing: np.ndarray  # (N,) float32: distance to the nearest other head, inf when alone
    sizes: np.ndarray | None  # (N,) float32 head sides in pixels (estimated for a point source), None where unknown
    boxes: np.ndarray | None  # (N, 4) float32, for scoring points inside boxes


# ---------------------------------------------------------------- data


def nearest_spacing(points: np.ndarray) -> np.ndarray:
    """Distance from each point to its nearest other point; inf for a lone point."""
    if len(points) < 2:
        return np.full(len(points), np.inf, np.float32)
    d = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=2)
    np.fill_diagonal(d, np.inf)
    return d.min(axis=1).astype(np.float32)


def estimated_sizes(points: np.ndarray) -> np.ndarray | None:
    """(N,) float32 head sides for heads known only as points, from their spacing along the photo's perspective
    (see SPACING_TO_SIZE); None with fewer than MIN_SPACED_HEADS heads."""
    n = len(points)
    if n < MIN_SPACED_HEADS:
        return None
    distance = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=2)
    np.fill_diagonal(distance, np.inf)
    spacing = np.log(np.maximum(np.sort(distance, axis=1)[:, :SPACING_NEIGHBOURS].mean(axis=1), 1.0))
    y = points[:, 1].astype(np.float64)
    keep = np.ones(n, bool)
    for _ in range(SPACING_REFITS + 1):
        flat = np.ptp(y[keep]) == 0  # one row: no perspective to fit
        slope, intercept = (0.0, float(spacing[keep].mean())) if flat else np.polyfit(y[keep], spacing[keep], 1)
        residual = np.abs(spacing - (intercept + slope * y))
        keep = residual <= 2 * np.median(residual) + 1e-9
    return (SPACING_TO_SIZE * np.exp(intercept + slope * y)).astype(np.float32)


def load_photos(source: CrowdSource, names: list[str]) -> list[Photo]:
    photos = []
    for image in source.select(names):
        pixels = cv2.imread(str(source.path(image.name)), cv2.IMREAD_COLOR)
        if pixels is None:
            raise SanitaryError(f"{source.path(image.name)}: image unreadable; restore it from the data set")
        photos.append(
            Photo(
                source.name,
                image.name,
                pixels,
                image.points,
                nearest_spacing(image.points),
                image.sizes if source.kind == "boxes" else estimated_sizes(image.points),
                image.boxes,
            )
        )
    return photos


def data_sha256(source: CrowdSource, names: list[str]) -> str:
    """Over the source's head file and counts.csv (name, NUL, bytes), then each used image's name, NUL and bytes
    in the source's order."""
    digest = hashlib.sha256()
    heads_file = "heads.csv" if source.kind == "boxes" else "points.csv"
    for file in (source.folder / heads_file, source.folder / "counts.csv"):
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    used = set(names)
    for name in source.images:
        if name in used:
            digest.update(name.encode() + b"\0" + source.path(name).read_bytes())
    return digest.hexdigest()


# ---------------------------------------------------------------- targets and augmentation


@dataclass
class Targets:
    heat: np.ndarray  # (h, w) float32: 1 at each head's cell, Gaussian around
    log_size: np.ndarray  # (h, w) float32: log of the head side in input pixels where `size_mask`
    size_mask: np.ndarray  # (h, w) bool


def head_targets(
    points: np.ndarray, spacing: np.ndarray, sizes: np.ndarray | None, shape: tuple[int, int], stride: int = STRIDE
) -> Targets:
    """Targets for heads at `points` (input pixels) with nearest-neighbour `spacing` and, when known, `sizes` (input
    pixels). Heat: the maximum of unit-peak Gaussians, exactly 1 at each head's cell. Size: on each head's cell and
    its neighbours within SIZE_RADIUS_CELLS, the smaller head where two meet (in a dense crowd, a small head's
    cells lie among its own kind)."""
    h, w = shape
    heat = np.zeros(shape, np.float32)
    log_size = np.zeros(shape, np.float32)
    mask = np.zeros(shape, bool)
    sigmas = np.clip(SIGMA_SHARE * spacing / stride, *SIGMA_CELLS)
    for (x, y), sigma in zip(points, sigmas, strict=True):
        cx, cy = int(x // stride), int(y // stride)
        if not (0 <= cx < w and 0 <= cy < h):
            continue
        r = math.ceil(3 * sigma)
        ys, xs = np.arange(-r, r + 1), np.arange(-r, r + 1)
        bump = np.exp(-(ys[:, None] ** 2 + xs[None, :] ** 2) / (2 * sigma**2)).astype(np.float32)
        top, left = cy - r, cx - r
        t0, l0 = max(0, -top), max(0, -left)
        t1, l1 = min(2 * r + 1, h - top), min(2 * r + 1, w - left)
        window = (slice(top + t0, top + t1), slice(left + l0, left + l1))
        heat[window] = np.maximum(heat[window], bump[t0:t1, l0:l1])
    if sizes is not None:
        k = SIZE_RADIUS_CELLS
        for i in np.argsort(-sizes, kind="stable"):  # largest first: smaller heads overwrite shared cells
            cx, cy = int(points[i, 0] // stride), int(points[i, 1] // stride)
            if not (0 <= cx < w and 0 <= cy < h):
                continue
            window = (slice(max(cy - k, 0), cy + k + 1), slice(max(cx - k, 0), cx + k + 1))
            log_size[window] = math.log(max(float(sizes[i]), 1.0))
            mask[window] = True
    return Targets(heat, log_size, mask)


def median_head_px(photo: Photo) -> float:
    if photo.sizes is None or len(photo.sizes) == 0:
        return FALLBACK_HEAD_PX
    return float(np.median(photo.sizes))


@dataclass
class Crop:
    rgb: np.ndarray  # (size, size, 3) uint8
    points: np.ndarray  # (N, 2) float32 in crop pixels
    spacing: np.ndarray  # (N,) float32
    sizes: np.ndarray | None  # (N,) float32


def sample_crop(photo: Photo, size: int, rng: np.random.Generator) -> Crop:
    """A training crop, augmented, with its heads in crop pixels."""
    target = float(np.exp(rng.uniform(*np.log(HEAD_RANGE_PX))))
    scale = target / median_head_px(photo)
    h, w = photo.image.shape[:2]
    side = size / scale
    x0 = rng.uniform(min(0.0, w - side), max(0.0, w - side))
    y0 = rng.uniform(min(0.0, h - side), max(0.0, h - side))
    matrix = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float64)
    # Shrinking: blur first as INTER_AREA would (warpAffine has no area filter).
    source = photo.image
    if scale < 0.8:
        source = cv2.GaussianBlur(source, (0, 0), 0.5 / scale)
    crop = cv2.warpAffine(source, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    points = (photo.points - np.array([x0, y0], np.float32)) * scale
    inside = (points[:, 0] >= 0) & (points[:, 0] < size) & (points[:, 1] >= 0) & (points[:, 1] < size)
    points, spacing = points[inside], photo.spacing[inside] * scale
    sizes = None if photo.sizes is None else photo.sizes[inside] * scale
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
        points = np.stack([size - points[:, 0], points[:, 1]], axis=1)
    if rng.random() < 0.2:
        crop = cv2.GaussianBlur(np.ascontiguousarray(crop), (0, 0), float(rng.uniform(0.5, 1.5)))
    rgb = jitter_colour(crop, rng, brightness=25)[:, :, ::-1]
    return Crop(
        np.ascontiguousarray(rgb),
        points.astype(np.float32),
        spacing.astype(np.float32),
        None if sizes is None else sizes.astype(np.float32),
    )


# ---------------------------------------------------------------- model


class HeadNet(nn.Module):
    """MobileNetV2 to stride 16, a feature pyramid back to stride 4, two maps out: heat logits and log head size."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        features = backbone.features
        self.stem = features[:4]  # stride 4, 24 channels; frozen
        self.s8 = features[4:7]  # stride 8, 32 channels
        self.s16 = features[7:14]  # stride 16, 96 channels
        self.lateral16 = nn.Conv2d(96, 64, 1)
        self.lateral8 = nn.Conv2d(32, 64, 1)
        self.merge8 = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(64, 32, 1))
        self.lateral4 = nn.Conv2d(24, 32, 1)
        self.head = nn.Sequential(
            nn.Conv2d(32, 32, 3, padding=1, groups=32),
            nn.Conv2d(32, 32, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 2, 1),
        )
        with torch.no_grad():
            self.head[-1].bias[0] = math.log(PRIOR / (1 - PRIOR))
            self.head[-1].bias[1] = math.log(INITIAL_SIZE_PX)
        self.stem.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c4 = self.stem(x)
        c8 = self.s8(c4)
        c16 = self.s16(c8)
        p8 = self.merge8(self.lateral8(c8) + F.interpolate(self.lateral16(c16), scale_factor=2.0, mode="nearest"))
        p4 = self.lateral4(c4) + F.interpolate(p8, scale_factor=2.0, mode="nearest")
        return self.head(p4)

    def train(self, mode: bool = True) -> HeadNet:
        super().train(mode)
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()  # ImageNet statistics kept: batches of a few crops would give noisy ones
        return self


class Exported(nn.Module):
    """The shipped graph: uint8 (1, H, W, 3) RGB in, H and W multiples of 16; heat (1, H/4, W/4) in 0..1 and size
    (1, H/4, W/4), the head side in input pixels, out."""

    def __init__(self, net: HeadNet) -> None:
        super().__init__()
        self.normalise = Normalise()
        self.net = net

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(self.normalise(image))
        return torch.sigmoid(out[:, 0]), torch.exp(out[:, 1])


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss (alpha 2, beta 4), summed and divided by the number of heads."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    positive = target >= 1.0
    pos = (torch.log(p) * (1 - p) ** 2)[positive].sum()
    neg = (torch.log(1 - p) * p**2 * (1 - target) ** 4)[~positive].sum()
    return -(pos + neg) / positive.sum().clamp(min=1)


def size_loss(log_size: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error of the log size over the cells where a size is known; 0 where none is."""
    if not bool(mask.any()):
        return log_size.sum() * 0.0
    return (log_size[mask] - target[mask]).abs().mean()


def training_batch(photos: list[Photo], picks: np.ndarray, rng: np.random.Generator):
    crops, heats, sizes, masks = [], [], [], []
    cells = CROP_PX // STRIDE
    for i in picks:
        crop = sample_crop(photos[i], CROP_PX, rng)
        targets = head_targets(crop.points, crop.spacing, crop.sizes, (cells, cells))
        crops.append(crop.rgb)
        heats.append(targets.heat)
        sizes.append(targets.log_size)
        masks.append(targets.size_mask)
    return tuple(torch.from_numpy(np.stack(a)) for a in (crops, heats, sizes, masks))


def epoch_order(groups: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """One epoch's photo indices: from every group (a source's photos) as many, drawn without replacement, as the
    smallest group has, shuffled together."""
    per_group = min(len(g) for g in groups)
    picks = np.concatenate([rng.permutation(g)[:per_group] for g in groups])
    return rng.permutation(picks)


def fit(
    net: HeadNet,
    photos: list[Photo],
    epochs: int,
    rng: np.random.Generator,
    lr_scale: float = 1.0,
    log_every: int = 20,
) -> list[dict]:
    """Train for `epochs` balanced passes (`epoch_order`); AdamW from the learning rates times `lr_scale`, cosine
    decay; the losses per epoch."""
    normalise = Normalise()
    sources = sorted({p.source for p in photos})
    groups = [np.array([i for i, p in enumerate(photos) if p.source == s]) for s in sources]
    steps_per_epoch = max(min(len(g) for g in groups) * len(groups) // BATCH, 1)
    backbone = [*net.s8.parameters(), *net.s16.parameters()]
    new = [p for name, p in net.named_parameters() if not name.startswith(("stem.", "s8.", "s16."))]
    optimiser = torch.optim.AdamW(
        [{"params": backbone, "lr": LR_BACKBONE * lr_scale}, {"params": new, "lr": LR_HEAD * lr_scale}],
        weight_decay=WEIGHT_DECAY,
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, epochs * steps_per_epoch)
    history = []
    net.train()
    for epoch in range(1, epochs + 1):
        tick = time.perf_counter()
        order = epoch_order(groups, rng)
        focal_sum = size_sum = 0.0
        for step in range(steps_per_epoch):
            picks = order[step * BATCH : (step + 1) * BATCH]
            if len(picks) == 0:
                picks = rng.choice(len(photos), BATCH)
            crops, heat, log_size, mask = training_batch(photos, picks, rng)
            out = net(normalise(crops))
            focal = focal_loss(out[:, 0], heat)
            size = SIZE_WEIGHT * size_loss(out[:, 1], log_size, mask)
            loss = focal + size
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            focal_sum += focal.item()
            size_sum += size.item()
            if log_every and (step + 1) % log_every == 0:
                _log(f"epoch {epoch} step {step + 1}/{steps_per_epoch} focal {focal.item():.3f} size {size.item():.3f}")
        seconds = time.perf_counter() - tick
        entry = {
            "epoch": epoch,
            "focal": round(focal_sum / steps_per_epoch, 4),
            "size": round(size_sum / steps_per_epoch, 4),
            "seconds": round(seconds, 1),
        }
        history.append(entry)
        _log(f"epoch {epoch}/{epochs} focal {entry['focal']} size {entry['size']} {seconds:.0f}s")
    net.eval()
    return history


def load_onnx(net: HeadNet, path: Path) -> None:
    """Start from an earlier head model of this architecture exported to ONNX: its BatchNorms folded into the
    backbone's convolutions come back as those convolutions with a BatchNorm that only adds the folded bias; the
    pyramid and the heat channel by name, and the size channel when the model has one (not the first model's
    density, which starts afresh)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    channels = 2 if [o.name for o in graph.output] == ["heat", "size"] else 1
    folded = [
        (weights[node.input[1]], weights[node.input[2]])
        for node in graph.node
        if node.op_type == "Conv" and not node.input[1].startswith("net.")
    ]
    pairs = []
    for part in (net.stem, net.s8, net.s16):
        modules = list(part.modules())
        pairs += [(m, modules[i + 1]) for i, m in enumerate(modules) if isinstance(m, nn.Conv2d)]
    if len(pairs) != len(folded):
        raise SanitaryError(f"{path}: {len(folded)} backbone convolutions, not {len(pairs)}; not a head model")
    with torch.no_grad():
        for (conv, norm), (weight, bias) in zip(pairs, folded, strict=True):
            if not isinstance(norm, nn.BatchNorm2d) or tuple(conv.weight.shape) != weight.shape:
                raise SanitaryError(f"{path}: its backbone is not this model's; train from ImageNet instead")
            conv.weight.copy_(torch.from_numpy(np.array(weight)))
            norm.weight.fill_(1.0)
            norm.bias.copy_(torch.from_numpy(np.array(bias)))
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)
        for name, tensor in net.state_dict().items():
            key = f"net.{name}"
            if name.startswith(("stem.", "s8.", "s16.")) or key not in weights:
                continue
            value = torch.from_numpy(np.array(weights[key]))
            if name.startswith("head.3."):
                tensor[:channels].copy_(value[:channels])
            else:
                tensor.copy_(value)


# ---------------------------------------------------------------- export


def export_onnx(net: HeadNet, path: Path) -> None:
    exported = Exported(copy.deepcopy(net)).eval()
    example = torch.zeros((1, 64, 96, 3), dtype=torch.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            exported,
            (example,),
            str(path),
            input_names=["image"],
            output_names=["heat", "size"],
            dynamic_axes={"image": {1: "H", 2: "W"}, "heat": {1: "h", 2: "w"}, "size": {1: "h", 2: "w"}},
            opset_version=OPSET,
            dynamo=False,
        )


def check_onnx(path: Path, net: HeadNet, image_bgr: np.ndarray) -> float:
    """Largest difference between onnxruntime's and torch's heat on one photo; refuses a graph that disagrees."""
    rgb = model_input(image_bgr, 1.0)
    heat, _ = cpu_session(path, 2).run(None, {"image": rgb})
    with torch.inference_mode():
        reference = Exported(net).eval()(torch.from_numpy(rgb))[0].numpy()
    diff = float(np.abs(heat - reference).max())
    if diff > 1e-3:
        raise SanitaryError(f"{path}: onnxruntime differs from torch by {diff:.2e}; the export is broken")
    return diff


# ---------------------------------------------------------------- choosing on tuning photos, scoring


@dataclass
class PhotoRuns:
    """One photo through the model: the first pass's scale and sure head sizes (frame pixels), and the maps at
    every scale run so far."""

    first: float
    sure_sizes: np.ndarray
    maps: dict[float, HeadMaps]


def first_passes(model: HeadModel, photos: list[Photo]) -> list[PhotoRuns]:
    runs = []
    for photo in photos:
        first = first_scale(photo.image.shape[:2], TUNING_MAX_PIXELS)
        maps = model(model_input(photo.image, first))
        runs.append(PhotoRuns(first, find_peaks(maps, SURE_SCORE).sizes / first, {first: maps}))
    return runs


def maps_for(model: HeadModel, photo: Photo, runs: PhotoRuns, head_px: float) -> tuple[float, HeadMaps]:
    """The scale and maps `measure` would use for this photo with this head size (run once per scale)."""
    scale = second_scale(runs.first, runs.sure_sizes, head_px, photo.image.shape[:2], TUNING_MAX_PIXELS)
    if scale not in runs.maps:
        runs.maps[scale] = model(model_input(photo.image, scale))
    return scale, runs.maps[scale]


@dataclass
class Choice:
    head_px: float
    min_score: float
    objective: float  # sum over sources of the mean relative count error on their tuning photos
    tried: dict[str, float]  # "head_px/score" -> objective of the best score at each head size


def choose(model: HeadModel, tuning: dict[str, list[Photo]]) -> Choice:
    """The head size and peak score with the lowest sum over sources of the mean relative count error on the
    tuning photos (the smaller size, then score, on ties)."""
    runs = {s: first_passes(model, photos) for s, photos in tuning.items()}
    best: Choice | None = None
    tried = {}
    for head_px in HEAD_PX_GRID:
        objective = np.zeros(len(SCORE_GRID))
        for source, photos in tuning.items():
            truth = np.array([len(p.points) for p in photos])
            heats = [maps_for(model, p, r, head_px)[1] for p, r in zip(photos, runs[source], strict=True)]
            objective += [
                count_errors(np.array([len(find_peaks(m, float(s))) for m in heats]), truth).mean_relative_error
                for s in SCORE_GRID
            ]
        i = int(np.argmin(objective))
        tried[f"{head_px:g}/{SCORE_GRID[i]:g}"] = round(float(objective[i]), 4)
        _log(f"head size {head_px:g} px: best peak score {SCORE_GRID[i]:g}, summed relative error {objective[i]:.4f}")
        if best is None or objective[i] < best.objective:
            best = Choice(head_px, float(SCORE_GRID[i]), float(objective[i]), tried)
    assert best is not None
    return best


def score_source(model: HeadModel, photos: list[Photo], choice: Choice) -> dict:
    """Counts, head points and head sizes of `photos` through `measure` with the chosen head size and score."""
    found, scales = [], []
    for photo in photos:
        measured = measure(model, photo.image, choice.head_px, TUNING_MAX_PIXELS)
        found.append(in_frame(find_peaks(measured.maps, choice.min_score), measured.scale, photo.image.shape[:2]))
        scales.append(measured.scale)
    truth = np.array([len(p.points) for p in photos])
    n_found, n_true = sum(len(f) for f in found), int(truth.sum())
    figures: dict = {
        "photos": len(photos),
        "heads": n_true,
        "count": count_errors(np.array([len(f) for f in found]), truth).as_dict(),
        "scales": {
            "median": round(float(np.median(scales)), 3),
            "min": round(min(scales), 3),
            "max": round(max(scales), 3),
        },
    }
    if photos[0].boxes is not None:
        hits = sum(matched_in_boxes(f.points, p.boxes) for f, p in zip(found, photos, strict=True))
        figures["points_in_boxes"] = {
            "precision": round(hits / max(n_found, 1), 4),
            "recall": round(hits / max(n_true, 1), 4),
        }
        true_median = np.array([np.median(p.sizes) for p in photos if len(p.sizes)])
        found_median = np.array(
            [np.median(f.sizes) if len(f) else np.nan for f, p in zip(found, photos, strict=True) if len(p.sizes)]
        )
        ratio = (found_median / true_median)[np.isfinite(found_median)]
        figures["median_size_ratio"] = round(float(np.median(ratio)), 3) if len(ratio) else None
    else:
        for radius in MATCH_RADII_PX:
            hits = sum(matched(f.points, p.points, radius) for f, p in zip(found, photos, strict=True))
            figures[f"points_within_{radius:g}px"] = {
                "precision": round(hits / max(n_found, 1), 4),
                "recall": round(hits / max(n_true, 1), 4),
            }
    return figures


def time_runs(model: HeadModel, photos: list[Photo], head_px: float, repeats: int = 5) -> dict:
    """Milliseconds of one `measure` (both passes when taken) on photos resized to 1280x720, the unit's frame."""
    seconds = []
    for photo in photos[:repeats]:
        frame = cv2.resize(photo.image, TIMING_FRAME[::-1], interpolation=cv2.INTER_LINEAR)
        tick = time.perf_counter()
        measure(model, frame, head_px, TUNING_MAX_PIXELS)
        seconds.append(time.perf_counter() - tick)
    return {"median": round(float(np.median(seconds)) * 1000, 1), "max": round(float(np.max(seconds)) * 1000, 1)}


# ---------------------------------------------------------------- the command


def _log(message: str) -> None:
    print(f"[train-crowd] {message}", file=sys.stderr, flush=True)


def earlier_runs(card_path: Path) -> list[dict]:
    """The runs the card at `card_path` knew, that card's own, and the runs tried after it and not shipped (its
    `later_runs_not_shipped`): every run counts as a try."""
    try:
        old = json.loads(card_path.read_text())
    except (OSError, json.JSONDecodeError):
        return []
    summary = {
        "trained_at": old.get("trained_at"),
        "sha256": old.get("sha256"),
        "command": old.get("command"),
        "epochs": old.get("epochs"),
        "sources": [s.get("folder") for s in old.get("sources", [])] or [old.get("training_data", {}).get("folder")],
        "decision": old.get("decision"),
        "validation": old.get("validation"),
    }
    return [*old.get("earlier_runs", []), summary, *old.get("later_runs_not_shipped", [])]


def train(
    data: list[Path],
    out_dir: Path,
    epochs: int,
    limit: int | None,
    seed: int,
    threads: int,
    *,
    lists: Path = SPLITS_DIR,
    init: Path | None = None,
    lr_scale: float = 1.0,
    earlier_card: Path | None = None,
    command: str | None = None,
) -> dict:
    """Train on the training photos of every source in `data`, export `out_dir/head_points.onnx`, choose the head
    size and peak score on the tuning photos, score the validation photos once, and write the card (returned).
    `limit` keeps only the first N photos of each part of each source (a quick check). `init`: an earlier head
    model (ONNX) to start from instead of ImageNet alone; `lr_scale` multiplies the learning rates (below 1 to
    fine-tune it). The card's earlier runs come from `earlier_card` (the card in `out_dir` when not given)."""
    started = time.perf_counter()
    if epochs < 1:
        raise SanitaryError(f"epochs must be at least 1, not {epochs}")
    torch.set_num_threads(threads)
    random.seed(seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    sources = [read_source(folder) for folder in data]
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise SanitaryError(f"DATA: a source is given twice ({', '.join(names)}); give each folder once")
    parts = {}
    for source in sources:
        split = splits(source, lists)
        parts[source.name] = {part: names[:limit] if limit else names for part, names in vars(split).items()}
    photos = {s.name: {part: load_photos(s, part_names) for part, part_names in parts[s.name].items()} for s in sources}
    loaded = time.perf_counter()
    for s in sources:
        _log(f"{s.name}: " + ", ".join(f"{part} {len(p)}" for part, p in photos[s.name].items()))

    weights = backbone_path()
    net = HeadNet(load_backbone(weights))
    if init is not None:
        load_onnx(net, init)
    history = fit(net, [p for s in sources for p in photos[s.name]["train"]], epochs, rng, lr_scale)
    trained = time.perf_counter()

    out_dir.mkdir(parents=True, exist_ok=True)
    partial = out_dir / (MODEL_FILE + ".partial")
    export_onnx(net, partial)
    max_diff = check_onnx(partial, net, photos[sources[0].name]["validation"][0].image)
    model = HeadModel(cpu_session(partial, threads))
    choice = choose(model, {s.name: photos[s.name]["tuning"] for s in sources})
    _log(f"head size {choice.head_px:g} px, peak score {choice.min_score}: tuning objective {choice.objective:.4f}")
    tuning = {s.name: score_source(model, photos[s.name]["tuning"], choice) for s in sources}
    # Scored once, by onnxruntime on the exported graph, after every choice was made.
    validation = {s.name: score_source(model, photos[s.name]["validation"], choice) for s in sources}
    for s in sources:
        validation[s.name]["ms_per_run_1280x720"] = time_runs(model, photos[s.name]["validation"], choice.head_px)
    model_path, card_path = out_dir / MODEL_FILE, out_dir / CARD_FILE
    os.replace(partial, model_path)
    finished = time.perf_counter()

    earlier = earlier_runs(earlier_card or card_path)
    card = {
        "name": "Head points and head sizes in crowds and seated rows: MobileNetV2 + feature pyramid, "
        "CenterNet-style heatmap with a size map, ONNX",
        "file": shown(model_path),
        "sha256": sha256_file(model_path),
        "input": {
            "name": "image",
            "dtype": "uint8",
            "layout": "NHWC, N = 1",
            "shape": [1, "H", "W", 3],
            "channels": "RGB uint8, normalisation inside the graph",
            "sides": f"H and W multiples of {MULTIPLE} (pad right and bottom with black)",
        },
        "output": {
            "heat": f"(1, H/{STRIDE}, W/{STRIDE}) float32 in 0..1: head-centre score per cell",
            "size": f"(1, H/{STRIDE}, W/{STRIDE}) float32: side of the head at that cell, in input pixels",
            "decoding": "sanitary.perception.heads.find_peaks: 3x3 local maxima with heat >= min_score, the cell "
            f"centre in input pixels ((col + 0.5) * {STRIDE}), the size read at that cell",
        },
        "decision": {
            "head_px": choice.head_px,
            "min_score": choice.min_score,
            "chosen_by": "lowest sum over sources of the mean relative count error on their tuning photos (never "
            f"trained on), over head sizes {list(HEAD_PX_GRID)} px and peak scores {SCORE_GRID[0]}..{SCORE_GRID[-1]} "
            "step 0.025; the smaller on ties",
            "tuning_objective": round(choice.objective, 4),
            "tried": choice.tried,
        },
        "inference": {
            "how": "sanitary.perception.heads.measure: a first pass with the frame resized to "
            f"{FIRST_PASS_PIXELS} pixels; the lower quartile of the sizes of its heads scoring >= {SURE_SCORE}; a "
            "second pass with the frame resized so that this size is decision.head_px, when that changes the scale "
            "by more than x1.25 (capped by [heads] max_pixels); no person detections, no per-camera setting",
            "tiles": f"inputs over {TILE_PIXELS} pixels run as overlapping tiles ({TILE_MARGIN} px of context around "
            "each core), the maps stitched from the cores",
            "max_pixels_while_scoring": TUNING_MAX_PIXELS,
        },
        "onnx": {
            "opset": OPSET,
            "exporter": "torch.onnx.export (TorchScript, dynamo=False), dynamic H and W",
            "graph": "cast, /255, ImageNet mean/std, MobileNetV2 features 0-13, lateral 1x1 convs, nearest x2 "
            "upsampling to stride 4, separable 3x3 head, sigmoid on the heat channel, exp on the size channel",
            "max_abs_diff_vs_torch": max_diff,
        },
        "backbone": {
            "architecture": "MobileNetV2 width 1.0, ImageNet-1k, layers 0-13 (to stride 16); layers 0-3 frozen, "
            "every BatchNorm with ImageNet statistics",
            "source": {
                "package": BACKBONE_PACKAGE,
                "file": BACKBONE_FILE,
                "sha256": sha256_file(weights),
                "licence": "MIT",
            },
        },
        "initialised_from": None
        if init is None
        else {
            "file": shown(init),
            "sha256": sha256_file(init),
            "what": "an earlier run's model: its backbone (BatchNorms folded, given back as an added bias), pyramid, "
            "heat channel, and size channel when it has one (the first model's density channel is not one)",
        },
        "sources": [source_entry(s, parts[s.name], photos[s.name], lists, limit) for s in sources],
        "licence_of_the_weights": "Research use only: learnt from data sets with no stated licence, used in the "
        "literature for research (see each source). The weights inherit that caveat; they are not cleared for "
        "commercial use.",
        "command": command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "seed": seed,
        "threads": threads,
        "epochs": epochs,
        "training": {
            "crops_per_epoch": steps_of(photos, sources) * BATCH,
            "settings": {
                "crop_px": CROP_PX,
                "batch": BATCH,
                "lr_backbone": LR_BACKBONE * lr_scale,
                "lr_head": LR_HEAD * lr_scale,
                "weight_decay": WEIGHT_DECAY,
                "sigma_share": SIGMA_SHARE,
                "sigma_cells": list(SIGMA_CELLS),
                "size_weight": SIZE_WEIGHT,
                "size_radius_cells": SIZE_RADIUS_CELLS,
                "prior": PRIOR,
                "head_range_px": list(HEAD_RANGE_PX),
            },
            "loss": "CenterNet focal loss (alpha 2, beta 4) on the heat channel / heads, plus "
            f"{SIZE_WEIGHT} x mean absolute error of the log head size on the cells within {SIZE_RADIUS_CELLS} of "
            "each head (box sources: the box; point sources: estimated from the heads' spacing along the photo's "
            f"perspective, x{SPACING_TO_SIZE} the fitted mean distance to the {SPACING_NEIGHBOURS} nearest heads)",
            "targets": f"heat: max of unit-peak Gaussians at each head's cell, sigma {SIGMA_SHARE} x nearest-neighbour "
            f"distance in cells, clipped to {SIGMA_CELLS}; size: log of the head side in input pixels",
            "schedule": "AdamW, cosine decay to 0 per step, last epoch kept",
            "augmentation": AUGMENTATION,
            "environment": versions(),
        },
        "timings": {
            "load_s": round(loaded - started, 1),
            "train_s": round(trained - loaded, 1),
            "per_epoch_s": round((trained - loaded) / epochs, 1),
            "choice_and_scoring_s": round(finished - trained, 1),
            "total_s": round(finished - started, 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores shared with other work, "
            f"load average at the end {os.getloadavg()[0]:.1f}",
        },
        "tuning_figures": tuning,
        "validation": {
            "note": "Whole photos through sanitary.perception.heads.measure (onnxruntime, the exported graph), "
            "scored once after the head size and peak score were chosen on the tuning photos. Point sources: found "
            "points matched one to one to true heads within the radius (Hungarian); box sources: a found point inside "
            "a true head box, one to one (sanitary.evaluation.crowd.matched_in_boxes); median_size_ratio: the median "
            "over photos of (median found head size / median true head size). ms_per_run_1280x720: one measure "
            "(both passes when taken) on validation photos resized to 1280x720, 2 threads, on a shared machine.",
            **validation,
        },
        "targets": TARGETS,
        "history": history,
        "runs_tried": len(earlier) + 1,
        "earlier_runs": earlier,
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    _log(f"wrote {model_path} and {card_path}: validation {json.dumps(validation)}")
    return card


def steps_of(photos: dict[str, dict[str, list[Photo]]], sources: list[CrowdSource]) -> int:
    groups = [len(photos[s.name]["train"]) for s in sources]
    return max(min(groups) * len(groups) // BATCH, 1)


def source_entry(
    source: CrowdSource, parts: dict[str, list[str]], photos: dict[str, list[Photo]], lists: Path, limit: int | None
) -> dict:
    used = [n for names in parts.values() for n in names]
    return {
        "folder": source.name,
        "kind": source.kind,
        "name": SOURCE_NAMES.get(source.name, source.name),
        "licence": SOURCE_LICENCES.get(source.name, "unknown: check before use"),
        "sha256": data_sha256(source, used),
        "sha256_of": "the head file then counts.csv (name, NUL, bytes), then each used image (name, NUL, bytes)",
        "limit": limit,
        "photos": {part: len(p) for part, p in photos.items()},
        "heads": {part: int(sum(len(x.points) for x in p)) for part, p in photos.items()},
        "splits": {
            part: {
                "file": shown(split_file(source.name, part, lists)),
                "sha256": sha256_file(split_file(source.name, part, lists)),
            }
            for part in ("validation", "tuning")
        },
        "split_how": SPLIT_HOW.get(source.name, "see the lists' headers"),
    }


SOURCE_NAMES = {
    "crowd-shanghaitech-b-train": "ShanghaiTech part B, train split (Zhang et al., CVPR 2016): street crowds, one "
    "point per head",
    "heads-scut-a": "SCUT-HEAD part A (Peng et al., ICPR 2018), 800 photos outside its official test list, scaled "
    "by 0.75: classroom ceiling cameras over seated rows, one box per head",
}
SOURCE_LICENCES = {
    "crowd-shanghaitech-b-train": "no stated licence; used in the literature for research: research use only",
    "heads-scut-a": "no licence stated (research data set of the South China University of Technology): research "
    "use only",
}
SPLIT_HOW = {
    "crowd-shanghaitech-b-train": "by photo: validation one photo in 5 and tuning one in 8 of the rest, drawn from "
    "runs of photos sorted by head count (seed 0); the public test split is not used anywhere",
    "heads-scut-a": "by room for validation: every photo of the rooms other than 1-401 and 1-403 (101 photos, room "
    "names read from the cameras' caption, checked by eye; rooms.csv); tuning by photo: 70 of the two big rooms' "
    "photos, one in 10 by head count (seed 0), optimistic since those rooms are trained on",
}
