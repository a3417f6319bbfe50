"""Training of the head-point model shipped as weights/head_points.onnx, and its card.

Street-crowd photos with one point per head (ShanghaiTech part B, train split) teach a CenterNet-style heatmap:
a Gaussian bump at each head centre, learnt with the penalty-reduced focal loss of CenterNet (Zhou et al. 2019),
decoded as local maxima (`sanitary.perception.heads.find_peaks`, the function inference uses). A second output
channel learns a density map (each head a Gaussian of total mass 1), so that a count can also be read as its sum.

The network is the ImageNet MobileNetV2 up to stride 16, with a small feature pyramid back to stride 4 (a head of
5 px still gets its own cell). The stride-4 stem stays frozen at its ImageNet weights and statistics (it is the
costliest part to train at full resolution and learns little from 300 photos); every BatchNorm keeps ImageNet's
statistics, as batches of a few crops would give noisy ones.

Images are split once, by a seeded rule over their head counts: a validation list (committed; training never
sees it) and a tuning part of the training images, also never trained on, where the peak score is chosen.
"""

from __future__ import annotations

import copy
import csv
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
from sanitary.evaluation.crowd import count_errors, matched
from sanitary.perception.heads import (
    CARD_FILE,
    MODEL_FILE,
    MULTIPLE,
    STRIDE,
    TRAINING_HEAD_PX,
    TRAINING_WIDTH_PX,
    find_peaks,
    model_input,
)
from sanitary.perception.models import cpu_session
from sanitary.train.backbone import BACKBONE_FILE, BACKBONE_PACKAGE, OPSET, Normalise, backbone_path, load_backbone
from sanitary.train.colour import jitter_colour
from sanitary.train.records import sha256_file, shown, versions

SPLIT_SEED = 0
VALIDATION_EVERY = 5  # one image in 5 (by head count) is validation: 80 of 400
TUNING_EVERY = 8  # one of the remaining in 8 tunes the peak score: 40 of 320
CROP_PX = 256
SCALE_RANGE = (0.5, 2.0)  # log-uniform: heads of the photos' ~8-80 px reach ~4-160 px
BATCH = 8
LR_HEAD = 1e-3
LR_BACKBONE = 3e-4
WEIGHT_DECAY = 1e-4
# Gaussian of a head: sigma a share of the distance to its nearest neighbour (bumps of a dense crowd stay apart),
# in heatmap cells, clipped so that a lone head is neither a dot nor a blob.
SIGMA_SHARE = 0.25
SIGMA_CELLS = (0.5, 2.5)
DENSITY_WEIGHT = 10.0  # brings the density error, ~1/(4 pi sigma^2) a head, level with the focal loss
PRIOR = 0.05  # initial heat everywhere: the focal loss starts from few heads, not from 0.5 everywhere
SCORE_GRID = np.round(np.arange(0.05, 0.951, 0.025), 3)
# Enlargements of the photos tried on the tuning photos (small heads are found better enlarged); 2 already makes a
# 1024x768 photo 3 million pixels.
PHOTO_SCALES = (1.0, 1.25, 1.5, 2.0)
MATCH_RADII_PX = (8.0, 16.0)
TARGET_MAE = 15.0

AUGMENTATION = {
    "crop": f"{CROP_PX}x{CROP_PX} px of the photo scaled by a factor drawn log-uniformly in {SCALE_RANGE}, "
    "anywhere in the photo (black beyond its edges)",
    "flip": "horizontal, p 0.5",
    "photometric": "contrast x0.7..1.3 about the mean, brightness +-25, per-channel gain 0.9..1.1; greyscale p 0.1",
    "blur": "Gaussian sigma 0.5..1.5, p 0.2 (compressed, out-of-focus footage)",
}


@dataclass
class Photo:
    name: str
    image: np.ndarray  # BGR
    points: np.ndarray  # (N, 2) float32 x, y
    spacing: np.ndarray  # (N,) float32: distance to the nearest other head, inf when alone


# ---------------------------------------------------------------- splits


def split_by_count(names: list[str], counts: list[int], every: int, seed: int = SPLIT_SEED) -> list[str]:
    """One name out of each run of `every` consecutive names when sorted by head count (then name), chosen by a
    seeded draw: the held-out part has the crowd sizes of the whole. A last, shorter run gives one too."""
    order = sorted(range(len(names)), key=lambda i: (counts[i], names[i]))
    rng = np.random.default_rng(seed)
    chosen = []
    for start in range(0, len(order), every):
        run = order[start : start + every]
        chosen.append(names[run[int(rng.integers(len(run)))]])
    return sorted(chosen, key=_natural)


def _natural(name: str) -> tuple[str, int]:
    stem = Path(name).stem
    digits = stem.rstrip("0123456789")
    return (digits, int(stem[len(digits) :] or 0))


def write_validation_list(path: Path, names: list[str], total: int, data: Path) -> None:
    header = (
        f"# Validation photos of the head-point model: {len(names)} of the {total} photos of {data.name}.\n"
        f"# Made once by sanitary.train.crowd_heads.split_by_count (seed {SPLIT_SEED}, every {VALIDATION_EVERY}): "
        "photos sorted by head count, one drawn from each run of that many.\n"
        "# Fixed from then on: it is the split the card reports; training sees none of it and chooses nothing on it.\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "".join(f"{name}\n" for name in names))


def read_list(path: Path) -> set[str]:
    return {line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")}


# ---------------------------------------------------------------- data


def read_points(data: Path) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Head points per image name, and the counts file's head count per image name."""
    points_file, counts_file = data / "points.csv", data / "counts.csv"
    for file in (points_file, counts_file):
        if not file.is_file():
            raise SanitaryError(f"{file}: missing; DATA must hold images/, points.csv and counts.csv")
    try:
        with counts_file.open() as f:
            counts = {row["image"]: int(row["n_heads"]) for row in csv.DictReader(f)}
        rows: dict[str, list[tuple[float, float]]] = {name: [] for name in counts}
        with points_file.open() as f:
            for row in csv.DictReader(f):
                rows.setdefault(row["image"], []).append((float(row["x"]), float(row["y"])))
    except (KeyError, ValueError) as exc:
        raise SanitaryError(f"{data}: points.csv needs image,x,y and counts.csv image,n_heads ({exc})") from None
    return {name: np.asarray(p, np.float32).reshape(-1, 2) for name, p in rows.items()}, counts


def nearest_spacing(points: np.ndarray) -> np.ndarray:
    """Distance from each point to its nearest other point; inf for a lone point."""
    if len(points) < 2:
        return np.full(len(points), np.inf, np.float32)
    d = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=2)
    np.fill_diagonal(d, np.inf)
    return d.min(axis=1).astype(np.float32)


def load_photos(data: Path, names: list[str], points: dict[str, np.ndarray]) -> list[Photo]:
    photos = []
    for name in names:
        image = cv2.imread(str(data / "images" / name), cv2.IMREAD_COLOR)
        if image is None:
            raise SanitaryError(f"{data / 'images' / name}: image unreadable; restore it from the data set")
        photos.append(Photo(name, image, points[name], nearest_spacing(points[name])))
    return photos


def data_sha256(data: Path, names: list[str]) -> str:
    """Over points.csv and counts.csv (name, NUL, bytes), then each used image's name, NUL and bytes by name."""
    digest = hashlib.sha256()
    for file in (data / "points.csv", data / "counts.csv"):
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    for name in sorted(names, key=_natural):
        digest.update(name.encode() + b"\0" + (data / "images" / name).read_bytes())
    return digest.hexdigest()


# ---------------------------------------------------------------- targets and augmentation


def head_targets(points: np.ndarray, spacing: np.ndarray, shape: tuple[int, int], stride: int = STRIDE):
    """Heatmap and density targets (h, w) float32 for heads at `points` (input pixels) with nearest-neighbour
    `spacing` (input pixels). Heat: the maximum of unit-peak Gaussians, exactly 1 at each head's cell. Density:
    the sum of Gaussians of total mass 1 each (a head near the edge keeps only its inside part)."""
    h, w = shape
    heat = np.zeros(shape, np.float32)
    density = np.zeros(shape, np.float32)
    sigmas = np.clip(SIGMA_SHARE * spacing / stride, *SIGMA_CELLS)
    for (x, y), sigma in zip(points, sigmas, strict=True):
        cx, cy = int(x // stride), int(y // stride)
        if not (0 <= cx < w and 0 <= cy < h):
            continue
        r = math.ceil(3 * sigma)
        ys, xs = np.arange(-r, r + 1), np.arange(-r, r + 1)
        bump = np.exp(-(ys[:, None] ** 2 + xs[None, :] ** 2) / (2 * sigma**2)).astype(np.float32)
        mass = bump / bump.sum()
        top, left = cy - r, cx - r
        t0, l0 = max(0, -top), max(0, -left)
        t1, l1 = min(2 * r + 1, h - top), min(2 * r + 1, w - left)
        window = (slice(top + t0, top + t1), slice(left + l0, left + l1))
        heat[window] = np.maximum(heat[window], bump[t0:t1, l0:l1])
        density[window] += mass[t0:t1, l0:l1]
    return heat, density


def sample_crop(photo: Photo, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A training crop (size, size, 3) uint8 RGB, augmented, with its head points and spacings in crop pixels."""
    scale = float(np.exp(rng.uniform(*np.log(SCALE_RANGE))))
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
    spacing = photo.spacing * scale
    inside = (points[:, 0] >= 0) & (points[:, 0] < size) & (points[:, 1] >= 0) & (points[:, 1] < size)
    points, spacing = points[inside], spacing[inside]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
        points = np.stack([size - points[:, 0], points[:, 1]], axis=1)
    if rng.random() < 0.2:
        crop = cv2.GaussianBlur(np.ascontiguousarray(crop), (0, 0), float(rng.uniform(0.5, 1.5)))
    rgb = jitter_colour(crop, rng, brightness=25)[:, :, ::-1]
    return np.ascontiguousarray(rgb), points.astype(np.float32), spacing.astype(np.float32)


# ---------------------------------------------------------------- model


class HeadNet(nn.Module):
    """MobileNetV2 to stride 16, a feature pyramid back to stride 4, two maps out: heat logits and density."""

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
        nn.init.constant_(self.head[-1].bias, 0.0)
        with torch.no_grad():
            self.head[-1].bias[0] = math.log(PRIOR / (1 - PRIOR))
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
    """The shipped graph: uint8 (1, H, W, 3) RGB in, H and W multiples of 16; heat (1, H/4, W/4) in 0..1 and
    density (1, H/4, W/4), heads a cell, out."""

    def __init__(self, net: HeadNet) -> None:
        super().__init__()
        self.normalise = Normalise()
        self.net = net

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(self.normalise(image))
        return torch.sigmoid(out[:, 0]), out[:, 1]


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss (alpha 2, beta 4), summed and divided by the number of heads."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    positive = target >= 1.0
    pos = (torch.log(p) * (1 - p) ** 2)[positive].sum()
    neg = (torch.log(1 - p) * p**2 * (1 - target) ** 4)[~positive].sum()
    return -(pos + neg) / positive.sum().clamp(min=1)


def training_batch(photos: list[Photo], picks: np.ndarray, rng: np.random.Generator):
    crops, heats, densities = [], [], []
    cells = CROP_PX // STRIDE
    for i in picks:
        crop, points, spacing = sample_crop(photos[i], CROP_PX, rng)
        heat, density = head_targets(points, spacing, (cells, cells))
        crops.append(crop)
        heats.append(heat)
        densities.append(density)
    return torch.from_numpy(np.stack(crops)), torch.from_numpy(np.stack(heats)), torch.from_numpy(np.stack(densities))


def fit(net: HeadNet, photos: list[Photo], epochs: int, rng: np.random.Generator, log_every: int = 10) -> list[dict]:
    """Train for `epochs` passes of one crop per photo; AdamW, cosine decay; the loss per epoch."""
    normalise = Normalise()
    steps_per_epoch = max(len(photos) // BATCH, 1)
    backbone = [*net.s8.parameters(), *net.s16.parameters()]
    new = [p for name, p in net.named_parameters() if not name.startswith(("stem.", "s8.", "s16."))]
    optimiser = torch.optim.AdamW(
        [{"params": backbone, "lr": LR_BACKBONE}, {"params": new, "lr": LR_HEAD}], weight_decay=WEIGHT_DECAY
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, epochs * steps_per_epoch)
    history = []
    net.train()
    for epoch in range(1, epochs + 1):
        tick = time.perf_counter()
        order = rng.permutation(len(photos))
        focal_sum = density_sum = 0.0
        for step in range(steps_per_epoch):
            picks = order[step * BATCH : (step + 1) * BATCH]
            if len(picks) == 0:
                picks = rng.choice(len(photos), BATCH)
            crops, heat, density = training_batch(photos, picks, rng)
            out = net(normalise(crops))
            heads = (heat >= 1.0).sum().clamp(min=1)
            focal = focal_loss(out[:, 0], heat)
            dense = DENSITY_WEIGHT * ((out[:, 1] - density) ** 2).sum() / heads
            loss = focal + dense
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            focal_sum += focal.item()
            density_sum += dense.item()
            if log_every and (step + 1) % log_every == 0:
                _log(
                    f"epoch {epoch} step {step + 1}/{steps_per_epoch} focal {focal.item():.3f} dense {dense.item():.3f}"
                )
        seconds = time.perf_counter() - tick
        entry = {
            "epoch": epoch,
            "focal": round(focal_sum / steps_per_epoch, 4),
            "density": round(density_sum / steps_per_epoch, 4),
            "seconds": round(seconds, 1),
        }
        history.append(entry)
        _log(f"epoch {epoch}/{epochs} focal {entry['focal']} density {entry['density']} {seconds:.0f}s")
    net.eval()
    return history


# ---------------------------------------------------------------- export and scoring


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
            output_names=["heat", "density"],
            dynamic_axes={"image": {1: "H", 2: "W"}, "heat": {1: "h", 2: "w"}, "density": {1: "h", 2: "w"}},
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


@dataclass
class Maps:
    scale: float  # the photos were enlarged by this before the model
    heat: list[np.ndarray]
    density_counts: np.ndarray  # (N,) sum of the density map per photo
    seconds: list[float]


def run_model(path: Path, photos: list[Photo], threads: int, scale: float) -> Maps:
    session = cpu_session(path, threads)
    heats, sums, seconds = [], [], []
    for photo in photos:
        rgb = model_input(photo.image, scale)
        tick = time.perf_counter()
        heat, density = session.run(None, {"image": rgb})
        seconds.append(time.perf_counter() - tick)
        heats.append(heat[0])
        sums.append(float(np.clip(density[0], 0, None).sum()))
    return Maps(scale, heats, np.asarray(sums), seconds)


@dataclass
class Choice:
    photo_scale: float
    min_score: float
    mae: float
    tried: dict[str, float]  # "scale/score" -> tuning MAE of the best score at each scale


def choose(path: Path, photos: list[Photo], threads: int) -> tuple[Choice, Maps]:
    """The photo enlargement and peak score with the lowest count MAE on `photos` (the smaller on ties), and the
    maps at that enlargement."""
    truth = np.array([len(p.points) for p in photos])
    best: tuple[float, float, float, Maps] | None = None
    tried = {}
    for scale in PHOTO_SCALES:
        maps = run_model(path, photos, threads, scale)
        maes = [
            count_errors(np.array([len(find_peaks(h, float(s))) for h in maps.heat]), truth).mae for s in SCORE_GRID
        ]
        i = int(np.argmin(maes))
        tried[f"{scale:g}/{SCORE_GRID[i]:g}"] = round(float(maes[i]), 3)
        _log(f"photo scale {scale:g}: best peak score {SCORE_GRID[i]:g}, tuning MAE {maes[i]:.2f}")
        if best is None or maes[i] < best[2]:
            best = (scale, float(SCORE_GRID[i]), float(maes[i]), maps)
    assert best is not None
    return Choice(best[0], best[1], best[2], tried), best[3]


def score(maps: Maps, photos: list[Photo], min_score: float) -> dict:
    truth = np.array([len(p.points) for p in photos])
    found = [find_peaks(h, min_score) for h in maps.heat]
    localisation = {}
    for radius in MATCH_RADII_PX:
        hits = sum(matched(f.points / maps.scale, p.points, radius) for f, p in zip(found, photos, strict=True))
        n_found, n_true = sum(len(f) for f in found), int(truth.sum())
        localisation[f"within_{radius:g}px"] = {
            "precision": round(hits / max(n_found, 1), 4),
            "recall": round(hits / max(n_true, 1), 4),
        }
    return {
        "photos": len(photos),
        "heads": int(truth.sum()),
        "photo_scale": maps.scale,
        "count_by_peaks": count_errors(np.array([len(f) for f in found]), truth).as_dict(),
        "count_by_density_sum": count_errors(maps.density_counts, truth).as_dict(),
        "localisation": localisation,
        "ms_per_photo": round(float(np.median(maps.seconds)) * 1000, 1),
    }


# ---------------------------------------------------------------- the command


def _log(message: str) -> None:
    print(f"[train-crowd] {message}", file=sys.stderr, flush=True)


@dataclass
class Splits:
    train: list[str]
    tuning: list[str]
    validation: list[str]


def make_splits(data: Path, validation: Path, counts: dict[str, int]) -> Splits:
    names = sorted(counts, key=_natural)
    if not validation.is_file():
        chosen = split_by_count(names, [counts[n] for n in names], VALIDATION_EVERY)
        write_validation_list(validation, chosen, len(names), data)
        _log(f"validation list made: {validation}")
    held = read_list(validation)
    unknown = held - set(names)
    if unknown:
        raise SanitaryError(f"{validation}: {len(unknown)} names not in {data}/counts.csv; check the list or DATA")
    rest = [n for n in names if n not in held]
    tuning = set(split_by_count(rest, [counts[n] for n in rest], TUNING_EVERY))
    return Splits(
        train=[n for n in rest if n not in tuning],
        tuning=[n for n in rest if n in tuning],
        validation=[n for n in names if n in held],
    )


def earlier_runs(card_path: Path, data_hash: str, split_hash: str) -> list[dict]:
    """Runs already scored on this validation split into this folder: every one counts as a try."""
    try:
        old = json.loads(card_path.read_text())
    except (OSError, json.JSONDecodeError):
        return []
    if old.get("training_data", {}).get("sha256") != data_hash or old.get("validation_list", {}).get("sha256") != (
        split_hash
    ):
        return []
    summary = {
        "trained_at": old.get("trained_at"),
        "epochs": old.get("epochs"),
        "settings": old.get("training", {}).get("settings"),
        "min_score": old.get("decision", {}).get("min_score"),
        "validation_count_by_peaks": old.get("validation", {}).get("count_by_peaks"),
        "validation_count_by_density_sum": old.get("validation", {}).get("count_by_density_sum"),
    }
    return [*old.get("earlier_runs", []), summary]


def train(
    data: Path,
    out_dir: Path,
    validation: Path,
    epochs: int,
    limit: int | None,
    seed: int,
    threads: int,
    *,
    command: str | None = None,
) -> dict:
    """Train on the training photos, export `out_dir/head_points.onnx`, choose the peak score on the tuning photos,
    score the validation photos once, and write the card (returned). `limit` keeps only the first N photos of each
    part (a quick check)."""
    started = time.perf_counter()
    if epochs < 1:
        raise SanitaryError(f"epochs must be at least 1, not {epochs}")
    torch.set_num_threads(threads)
    random.seed(seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    points, counts = read_points(data)
    splits = make_splits(data, validation, counts)
    parts = {name: names[:limit] if limit else names for name, names in vars(splits).items()}
    train_photos = load_photos(data, parts["train"], points)
    tuning_photos = load_photos(data, parts["tuning"], points)
    val_photos = load_photos(data, parts["validation"], points)
    loaded = time.perf_counter()
    _log(f"photos: train {len(train_photos)}, tuning {len(tuning_photos)}, validation {len(val_photos)}")

    weights = backbone_path()
    net = HeadNet(load_backbone(weights))
    history = fit(net, train_photos, epochs, rng)
    trained = time.perf_counter()

    out_dir.mkdir(parents=True, exist_ok=True)
    partial = out_dir / (MODEL_FILE + ".partial")
    export_onnx(net, partial)
    max_diff = check_onnx(partial, net, val_photos[0].image)
    choice, tuning_maps = choose(partial, tuning_photos, threads)
    min_score = choice.min_score
    tuning = score(tuning_maps, tuning_photos, min_score)
    _log(f"photo scale {choice.photo_scale:g}, peak score {min_score}: tuning MAE {choice.mae:.2f}")
    # Scored once, by onnxruntime on the exported graph, after every choice was made.
    validation_figures = score(run_model(partial, val_photos, threads, choice.photo_scale), val_photos, min_score)
    model_path, card_path = out_dir / MODEL_FILE, out_dir / CARD_FILE
    os.replace(partial, model_path)
    finished = time.perf_counter()

    used = [*parts["train"], *parts["tuning"], *parts["validation"]]
    data_hash = data_sha256(data, used)
    earlier = earlier_runs(card_path, data_hash, sha256_file(validation))
    card = {
        "name": "Head points in crowds: MobileNetV2 + feature pyramid, CenterNet-style heatmap, ONNX",
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
            "density": f"(1, H/{STRIDE}, W/{STRIDE}) float32: heads per cell (sum for a count; clip at 0)",
            "decoding": "sanitary.perception.heads.find_peaks: 3x3 local maxima with heat >= min_score, the cell "
            f"centre in input pixels ((col + 0.5) * {STRIDE})",
        },
        "decision": {
            "min_score": min_score,
            "photo_scale": choice.photo_scale,
            "chosen_by": f"lowest count MAE by peaks on the {len(tuning_photos)} tuning photos (training photos never "
            f"trained on), over photo enlargements {list(PHOTO_SCALES)} and peak scores {SCORE_GRID[0]}.."
            f"{SCORE_GRID[-1]} step 0.025; the smaller on ties",
            "tuning_mae": round(choice.mae, 3),
            "tried": choice.tried,
        },
        "scale": {
            "photo_scale": choice.photo_scale,
            "model_head_px": round(TRAINING_HEAD_PX * choice.photo_scale, 2),
            "default_width_px": round(TRAINING_WIDTH_PX * choice.photo_scale),
            "how": "sanitary.perception.heads.choose_scale resizes a frame so that heads (median person height / 7) "
            "come out at model_head_px (the training photos' median head, 17.5 px, times photo_scale), or to "
            "default_width_px wide when no person was found, capped by [heads] max_pixels; training saw the photos "
            f"scaled by {SCALE_RANGE[0]}..{SCALE_RANGE[1]} (log-uniform)",
        },
        "onnx": {
            "opset": OPSET,
            "exporter": "torch.onnx.export (TorchScript, dynamo=False), dynamic H and W",
            "graph": "cast, /255, ImageNet mean/std, MobileNetV2 features 0-13, lateral 1x1 convs, nearest x2 "
            "upsampling to stride 4, separable 3x3 head, sigmoid on the heat channel",
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
        "training_data": {
            "name": "ShanghaiTech part B, train split (Zhang et al., CVPR 2016)",
            "folder": data.name,
            "sha256": data_hash,
            "sha256_of": "points.csv then counts.csv (name, NUL, bytes), then each used image (name, NUL, bytes) "
            "in name order",
            "licence": "Research use only: ShanghaiTech has no stated licence and is used in the literature for "
            "research. The weights learnt from it inherit that caveat; they are not cleared for commercial use.",
            "limit": limit,
            "train": {"photos": len(train_photos), "heads": int(sum(len(p.points) for p in train_photos))},
            "tuning": {
                "photos": len(tuning_photos),
                "how": f"split_by_count (seed {SPLIT_SEED}, every {TUNING_EVERY}) over the non-validation photos",
            },
        },
        "validation_list": {
            "file": shown(validation),
            "sha256": sha256_file(validation),
            "how": f"made once by split_by_count (seed {SPLIT_SEED}, every {VALIDATION_EVERY}); see its header. A "
            "validation split of the TRAIN part; the public test split is not used anywhere",
        },
        "command": command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "seed": seed,
        "threads": threads,
        "epochs": epochs,
        "training": {
            "crops_per_epoch": len(train_photos),
            "settings": {
                "crop_px": CROP_PX,
                "batch": BATCH,
                "lr_backbone": LR_BACKBONE,
                "lr_head": LR_HEAD,
                "weight_decay": WEIGHT_DECAY,
                "sigma_share": SIGMA_SHARE,
                "sigma_cells": list(SIGMA_CELLS),
                "density_weight": DENSITY_WEIGHT,
                "prior": PRIOR,
            },
            "loss": "CenterNet focal loss (alpha 2, beta 4) on the heat channel / heads, plus "
            f"{DENSITY_WEIGHT} x squared density error summed / heads",
            "targets": f"heat: max of unit-peak Gaussians at each head's cell; density: Gaussians of mass 1; sigma "
            f"{SIGMA_SHARE} x nearest-neighbour distance in cells, clipped to {SIGMA_CELLS}",
            "schedule": "AdamW, cosine decay to 0 per step, last epoch kept",
            "augmentation": AUGMENTATION,
            "environment": versions(),
        },
        "timings": {
            "load_s": round(loaded - started, 1),
            "train_s": round(trained - loaded, 1),
            "per_epoch_s": round((trained - loaded) / epochs, 1),
            "export_and_scoring_s": round(finished - trained, 1),
            "total_s": round(finished - started, 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores shared with other work, "
            f"load average at the end {os.getloadavg()[0]:.1f}",
        },
        "tuning_figures": tuning,
        "validation": {
            "note": "Whole photos enlarged by decision.photo_scale, onnxruntime on the exported graph, scored once "
            "after the enlargement and peak score were chosen on the tuning photos. Localisation: found points "
            "(in photo pixels) matched one-to-one to true heads within the radius (Hungarian).",
            **validation_figures,
        },
        "target": {"mae": TARGET_MAE, "met": validation_figures["count_by_peaks"]["mae"] <= TARGET_MAE},
        "history": history,
        "runs_tried": len(earlier) + 1,
        "earlier_runs": earlier,
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    _log(f"wrote {model_path} and {card_path}: validation {validation_figures['count_by_peaks']}")
    return card
