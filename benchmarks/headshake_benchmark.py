"""Head-shake opt-out on real faces turned to known angles: yaw error per angle, shakes found, false triggers.

    .venv/bin/python benchmarks/headshake_benchmark.py [--data DIR] [--faces N] [--fps F] [--out JSON]

No footage of people shaking their heads with a known yaw exists in the shared data, so real, near-frontal face
photos are turned synthetically. A planar warp would not move the nose against the eyes, which is all a yaw
estimate from five points can see, so each face is mapped onto a 3D head: an ellipsoid (a cylinder's sideways
curvature, with the brow and chin curving back as well) plus a nose bump in front of it, at the nose the detector
found on the frontal photo, HEAD_NOSE_DEPTH eye distances in front of the eyes and mouth corners as
anthropometric means have it (interpupillary ~63 mm, nose tip ~30 mm ahead). The textured surface is rotated
(yaw about the vertical axis, pitch about the horizontal one), projected orthographically with a depth buffer,
and pasted on a grey frame; the pipeline's own face detector then reads it as it would a camera frame. The nose's
height is the one assumption the yaw scale rests on; `sanitary.tracking.headshake.NOSE_DEPTH` is smaller because the
detector under-reads the nose's movement, and the sweep here is where that was measured.

tests/tracking/test_headshake.py runs the same construction on a few faces.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

from sanitary.config import DetectionConfig, OptOutConfig
from sanitary.evaluation.voc import AnnotatedFace, read_voc
from sanitary.perception.boxes import Detections
from sanitary.perception.faces import FaceDetector
from sanitary.tracking.headshake import NOSE_DEPTH, ShakeDetector, yaw_from_landmarks

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "facemask-andrewmvd"
FRAME_PX = 320
FACE_PX = 100  # the face box side once pasted: a passenger near a bus camera, a shopper near a market one
GREY = 128
# A 320 px frame searched at 320 px: the face is large, so upscaling would only cost time.
DETECTION = DetectionConfig(face_search="frame", face_frame_px=FRAME_PX, face_score=0.5)
MIN_FACE_PX = 60
# A face counts as frontal when its yaw reads under this and its eye line is this close to level.
FRONTAL_DEG = 10.0
LEVEL_DEG = 12.0
SWEEP_DEG = tuple(range(-45, 50, 5))
FIT_DEG = 35  # NOSE_DEPTH is fitted over the yaws a shake passes through, not the profiles the detector loses
PITCH_SWEEP_DEG = (-20, -10, 10, 20)
HEAD_NOSE_DEPTH = 0.5
FPS = 7.0
SHAKE_DEG = 30.0
SHAKE_PERIOD_S = 1.0  # 0 -> one side -> other side -> first side -> 0 takes 1.5 periods: 1.5 s
NO_PEOPLE = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))  # a whole-frame search needs none
STILL_S = 0.5  # frontal frames before and after each movement, as a track would have


# ---------------------------------------------------------------- rendering


@dataclass(frozen=True)
class Head:
    """A face photo as a textured 3D surface, centred on its face box; coordinates in output pixels."""

    name: str
    label: str
    texture: np.ndarray  # (S, S, 3) uint8, SUPERSAMPLE x the output resolution
    alpha: np.ndarray  # (S, S) float32: 1 on the head, 0 off it, feathered at the edge
    depth: np.ndarray  # (S, S) float32: towards the camera, from the vertical axis the head turns about
    # Yaw read per (yaw, pitch) rendered, to the degree: movements and settings share their frames.
    readings: dict[tuple[int, int], float | None] = field(default_factory=dict, compare=False, repr=False)


SUPERSAMPLE = 2  # source samples per output pixel along each axis, so a turned surface leaves no holes
TEXTURE_SIDE = 2.0  # the texture spans this many face box sides around the face box


def cut_texture(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The face box and its surroundings as a square, resized so that the face box is FACE_PX * SUPERSAMPLE."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1)
    half = TEXTURE_SIDE * side / 2
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    scale = FACE_PX * SUPERSAMPLE / side
    # An affine map samples straight from the photo; replicated borders stand in for what lies off its edge.
    m = np.array([[scale, 0, -(cx - half) * scale], [0, scale, -(cy - half) * scale]], np.float64)
    size = round(2 * half * scale)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def head_surface(size: int, nose: np.ndarray | None, eye_px: float) -> tuple[np.ndarray, np.ndarray]:
    """(alpha, depth) over a texture of `size` px: an ellipsoid head, plus a nose at `nose` (texture px) if given.

    The ellipsoid is as wide as the face box plus a little, taller, and as deep as it is wide. The nose is a
    Gaussian bump whose height brings the nose tip HEAD_NOSE_DEPTH eye distances in front of the eyes and mouth.
    """
    c = (size - 1) / 2
    face = FACE_PX * SUPERSAMPLE
    a, b = 0.55 * face, 0.72 * face
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) - c
    r2 = (x / a) ** 2 + (y / b) ** 2
    depth = a * np.sqrt(np.clip(1 - r2, 0, None))
    alpha = np.clip((1.08 - np.sqrt(r2)) / 0.08, 0, 1).astype(np.float32)
    if nose is not None:
        ex = eye_px / 2
        curve = a * (1 - np.sqrt(max(1 - (ex / a) ** 2, 0.0)))  # what the ellipsoid alone puts the nose ahead
        height = max(HEAD_NOSE_DEPTH * eye_px - curve, 0.0)
        sx, sy = 0.16 * eye_px, 0.32 * eye_px
        depth = depth + height * np.exp(-(((x + c - nose[0]) / sx) ** 2 + ((y + c - nose[1]) / sy) ** 2) / 2)
    return alpha, depth.astype(np.float32)


def render(head: Head, yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """The head turned by yaw (positive: nose to the image's right) and pitch (positive: nose down), on grey.

    Forward projection with a depth buffer: every texture sample goes where the rotation takes it, and the one
    nearest the camera wins, so the nose hides the cheek behind it as it turns.
    """
    size = head.texture.shape[0]
    c = (size - 1) / 2
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) - c
    on = head.alpha > 0
    x, y, z = x[on] / SUPERSAMPLE, y[on] / SUPERSAMPLE, head.depth[on] / SUPERSAMPLE
    yaw, pitch = np.radians(yaw_deg), np.radians(pitch_deg)
    x, z = x * np.cos(yaw) + z * np.sin(yaw), -x * np.sin(yaw) + z * np.cos(yaw)
    y, z = y * np.cos(pitch) + z * np.sin(pitch), -y * np.sin(pitch) + z * np.cos(pitch)
    col = np.round(x + FRAME_PX / 2).astype(np.int64)
    row = np.round(y + FRAME_PX / 2).astype(np.int64)
    inside = (col >= 0) & (col < FRAME_PX) & (row >= 0) & (row < FRAME_PX)
    pixel = (row * FRAME_PX + col)[inside]
    order = np.lexsort((z[inside], pixel))
    last = np.r_[pixel[order][1:] != pixel[order][:-1], True]
    chosen = order[last]
    colour = head.texture[on][inside][chosen].astype(np.float32)
    alpha = head.alpha[on][inside][chosen]
    acc = np.zeros((FRAME_PX * FRAME_PX, 4), np.float32)
    acc[pixel[chosen]] = np.c_[colour * alpha[:, None], alpha]
    acc = acc.reshape(FRAME_PX, FRAME_PX, 4)
    hit = np.zeros(FRAME_PX * FRAME_PX, np.float32)
    hit[pixel[chosen]] = 1
    hit = hit.reshape(FRAME_PX, FRAME_PX)
    # A pixel no sample reached takes the mean of its neighbours that were reached.
    spread, reached = cv2.blur(acc, (3, 3)), cv2.blur(hit, (3, 3))
    fill = (hit == 0) & (reached > 0)
    acc[fill] = spread[fill] / reached[fill, None]
    a = acc[:, :, 3:]
    frame = acc[:, :, :3] + GREY * (1 - a)
    return np.clip(frame, 0, 255).astype(np.uint8)


def read_yaw(detector: FaceDetector, head: Head, yaw_deg: float, pitch_deg: float) -> float | None:
    """The yaw read off the best face the detector finds on the head rendered at a pose rounded to the degree;
    None when it finds no face (a dropped reading)."""
    key = round(yaw_deg), round(pitch_deg)
    if key not in head.readings:
        faces = detector(render(head, *key), NO_PEOPLE)
        best = faces.landmarks[[int(np.argmax(faces.scores))]] if len(faces) else None
        head.readings[key] = None if best is None else float(yaw_from_landmarks(best)[0])
    return head.readings[key]


def make_head(detector: FaceDetector, image: np.ndarray, face: AnnotatedFace) -> Head | None:
    """The face as a Head if the detector finds it frontal and level on the photo, else None."""
    texture = cut_texture(image, face.box)
    size = texture.shape[0]
    alpha, depth = head_surface(size, None, 0.0)
    flat = Head(face.image.name, face.label, texture, alpha, depth)
    found = detector(render(flat, 0, 0), NO_PEOPLE)
    if len(found) != 1:
        return None
    marks = found.landmarks[0]
    eye = marks[1] - marks[0]
    if abs(yaw_from_landmarks(marks[None])[0]) > FRONTAL_DEG or abs(np.degrees(np.arctan2(eye[1], eye[0]))) > LEVEL_DEG:
        return None
    # Frame pixels back to texture pixels: the render at 0, 0 is the texture shrunk by SUPERSAMPLE, centred.
    nose = (marks[2] - FRAME_PX / 2) * SUPERSAMPLE + (size - 1) / 2
    alpha, depth = head_surface(size, nose, float(np.linalg.norm(eye)) * SUPERSAMPLE)
    return Head(face.image.name, face.label, texture, alpha, depth)


def pick_heads(detector: FaceDetector, data: Path, labels: dict[str, int]) -> list[Head]:
    """Up to labels[label] frontal faces of each label, at most one per photo, in the data set's file order."""
    wanted = dict(labels)
    heads: list[Head] = []
    seen: set[Path] = set()
    for face in read_voc(data):
        x1, y1, x2, y2 = face.box
        if wanted.get(face.label, 0) == 0 or face.image in seen or min(x2 - x1, y2 - y1) < MIN_FACE_PX:
            continue
        head = make_head(detector, cv2.imread(str(face.image)), face)
        if head is not None:
            seen.add(face.image)
            heads.append(head)
            wanted[face.label] -= 1
        if not any(wanted.values()):
            break
    return heads


# ---------------------------------------------------------------- movements


Pose = tuple[float, float, float]  # t (s), yaw (deg), pitch (deg)


def sampled(duration_s: float, fps: float, phase_s: float) -> np.ndarray:
    """Frame times of a track analysed at `fps`, the movement starting `phase_s` after a frame."""
    return np.arange(-STILL_S - phase_s, duration_s + STILL_S, 1 / fps)


def swing(amplitude: float, period_s: float, t: np.ndarray) -> np.ndarray:
    """0 -> +amplitude -> -amplitude -> +amplitude -> 0 over 1.5 periods, still before and after."""
    inside = (t >= 0) & (t <= 1.5 * period_s)
    return np.where(inside, amplitude * np.sin(2 * np.pi * t / period_s), 0.0)


def turn(amplitude: float, duration_s: float, t: np.ndarray) -> np.ndarray:
    """0 -> amplitude -> 0, smoothly, over duration_s."""
    inside = (t >= 0) & (t <= duration_s)
    return np.where(inside, amplitude * (1 - np.cos(2 * np.pi * t / duration_s)) / 2, 0.0)


def movements(fps: float, phase_s: float, side: int) -> dict[str, list[Pose]]:
    """Each movement as the poses of its analysed frames; `side` (+1/-1) is which way the head goes first.

    Shakes: +-30 deg with a 1 s period (1.5 s in all), the same with a 0.6 s period, +-20 deg with 1 s. The rest
    must not fire: a nod (+-20 deg pitch), one turn to 35 deg and back in 1.5 s, a steady 30 deg profile for 3 s,
    and a +-30 deg shake spread over 4 s.
    """

    def poses(duration_s: float, yaw: object, pitch: object = 0.0) -> list[Pose]:
        t = sampled(duration_s, fps, phase_s)
        yaws = np.broadcast_to(yaw(t) if callable(yaw) else yaw, t.shape)
        pitches = np.broadcast_to(pitch(t) if callable(pitch) else pitch, t.shape)
        return [(float(a), float(b), float(c)) for a, b, c in zip(t, yaws, pitches, strict=True)]

    fast, faster, slow = SHAKE_PERIOD_S, 0.6, 4.0 / 1.5
    return {
        "shake": poses(1.5 * fast, lambda t: swing(side * SHAKE_DEG, fast, t)),
        "fast shake": poses(1.5 * faster, lambda t: swing(side * SHAKE_DEG, faster, t)),
        "small shake": poses(1.5 * fast, lambda t: swing(side * 20.0, fast, t)),
        "nod": poses(1.5 * fast, 0.0, lambda t: swing(20.0, fast, t)),
        "single turn": poses(1.5, lambda t: turn(side * 35.0, 1.5, t)),
        "profile walk-past": poses(3.0, side * 30.0),
        "slow shake": poses(1.5 * slow, lambda t: swing(side * SHAKE_DEG, slow, t)),
    }


SHAKES = ("shake", "fast shake", "small shake")  # the movements that should fire; none of the others should


def triggered(detector: FaceDetector, head: Head, poses: list[Pose], config: OptOutConfig) -> tuple[int, int]:
    """(times the ShakeDetector fired, frames without a face reading) over one movement."""
    shake = ShakeDetector(config)
    fired = dropped = 0
    for t, yaw, pitch in poses:
        reading = read_yaw(detector, head, yaw, pitch)
        dropped += reading is None
        fired += shake.update(t, reading)
    return fired, dropped


# ---------------------------------------------------------------- benchmark


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--faces", type=int, default=40, help="faces in all, half without a mask, half with one")
    parser.add_argument("--fps", type=float, default=FPS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "headshake.json")
    return parser.parse_args(argv)


def sweep(detector: FaceDetector, heads: list[Head]) -> dict[str, Any]:
    """Yaw read at each true yaw (pitch 0) and at each pitch (yaw 0): per pose, its bias, mean absolute error and
    readings; over the yaw sweep, the correlation with the true yaw and the NOSE_DEPTH that fits it best."""
    poses = [(float(a), 0.0) for a in SWEEP_DEG] + [(0.0, float(p)) for p in PITCH_SWEEP_DEG]
    reads = {pose: [read_yaw(detector, h, *pose) for h in heads] for pose in poses}
    rows: dict[str, dict[str, float]] = {}
    for (yaw, pitch), read in reads.items():
        values = np.array([r for r in read if r is not None and np.isfinite(r)])
        err = np.abs(values - yaw) if len(values) else np.array([np.nan])
        rows[f"yaw {yaw:+.0f}" if pitch == 0 else f"pitch {pitch:+.0f}"] = {
            "true_yaw": yaw,
            "pitch": pitch,
            "faces": len(heads),
            "read": len(values),
            "mean_read": float(values.mean()) if len(values) else float("nan"),
            "bias": float((values - yaw).mean()) if len(values) else float("nan"),
            "mae": float(err.mean()),
            "p90_abs_error": float(np.percentile(err, 90)),
        }
    pairs = np.array([(yaw, r) for (yaw, pitch), read in reads.items() if pitch == 0 for r in read if r is not None])
    true, read = pairs[:, 0], pairs[:, 1]
    # The offset each reading came from, refitted: the depth that minimises the mean error up to FIT_DEG.
    offset = NOSE_DEPTH * np.tan(np.radians(read[np.abs(true) <= FIT_DEG]))
    depths = np.round(np.arange(0.20, 0.70, 0.01), 2)
    errors = [np.abs(np.degrees(np.arctan(offset / d)) - true[np.abs(true) <= FIT_DEG]).mean() for d in depths]
    return {
        "rows": rows,
        "corr": float(np.corrcoef(true, read)[0, 1]),
        "sign_right": float(np.mean(np.sign(read[true != 0]) == np.sign(true[true != 0]))),
        "best_nose_depth": float(depths[int(np.argmin(errors))]),
        "best_nose_depth_mae": float(min(errors)),
    }


def detection(detector: FaceDetector, heads: list[Head], fps: float, configs: dict[str, OptOutConfig]) -> dict:
    """Per config, label and movement: on how many faces the ShakeDetector fired, and the frames without a face."""
    out: dict[str, dict[str, dict[str, dict[str, int]]]] = {}
    for cname, config in configs.items():
        for i, head in enumerate(heads):
            # Each face gets its own sampling phase and first side, so frames fall at different points of the swing.
            for move, poses in movements(fps, phase_s=(i * 0.37) % (1 / fps), side=1 if i % 2 == 0 else -1).items():
                fired, dropped = triggered(detector, head, poses, config)
                row = (
                    out.setdefault(cname, {})
                    .setdefault(head.label, {})
                    .setdefault(move, {"faces": 0, "fired": 0, "frames": 0, "dropped": 0})
                )
                row["faces"] += 1
                row["fired"] += fired > 0
                row["frames"] += len(poses)
                row["dropped"] += dropped
    return out


def print_table(results: dict) -> None:
    sw = results["sweep"]
    print(f"Head-shake opt-out on {results['faces']} real faces turned synthetically ({results['labels']})")
    print(f"yaw estimate (NOSE_DEPTH {results['nose_depth']}): correlation with the true yaw {sw['corr']:.3f}, "
          f"sign right {sw['sign_right']:.3f}; best NOSE_DEPTH up to {FIT_DEG} deg {sw['best_nose_depth']:.2f} "
          f"(MAE {sw['best_nose_depth_mae']:.1f} deg)")  # fmt: skip
    print(f"{'pose':12}{'read':>8}{'mean read':>11}{'bias':>8}{'MAE':>7}{'p90 |err|':>11}")
    for name, r in sw["rows"].items():
        print(f"{name:12}{r['read']:>4}/{r['faces']:<3}{r['mean_read']:>11.1f}{r['bias']:>8.1f}{r['mae']:>7.1f}"
              f"{r['p90_abs_error']:>11.1f}")  # fmt: skip
    print(f"shake detector at {results['fps']:g} fps: faces on which it fired / faces; shakes: {', '.join(SHAKES)}")
    first = next(iter(results["detection"].values()))
    moves = list(next(iter(first.values())))
    print(f"{'config':28}{'label':14}" + "".join(f"{m:>18}" for m in moves) + f"{'dropped frames':>16}")
    for cname, labels in results["detection"].items():
        for label, rows in labels.items():
            cells = "".join(f"{rows[m]['fired']}/{rows[m]['faces']}".rjust(18) for m in moves)
            dropped = sum(r["dropped"] for r in rows.values()) / sum(r["frames"] for r in rows.values())
            print(f"{cname:28}{label:14}{cells}{dropped:>16.3f}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.data / "annotations").is_dir():
        print(f"skipped: {args.data} not found (see ../shared/datasets/README.md)")
        return 0
    detector = FaceDetector(DETECTION)
    half = args.faces // 2
    heads = pick_heads(detector, args.data, {"without_mask": half, "with_mask": args.faces - half})
    configs = {
        f"yaw_deg={y:g} max_shake_s={s:g}": OptOutConfig(yaw_deg=y, max_shake_s=s)
        for y, s in ((15.0, 2.0), (12.0, 2.0), (10.0, 2.0), (20.0, 2.0), (15.0, 1.5))
    }
    results = {
        "data": str(args.data),
        "faces": len(heads),
        "labels": {label: sum(h.label == label for h in heads) for label in ("without_mask", "with_mask")},
        "face_names": [h.name for h in heads],
        "nose_depth": NOSE_DEPTH,
        "fps": args.fps,
        "sweep": sweep(detector, heads),
        "detection": detection(detector, heads, args.fps, configs),
        "machine": {"platform": platform.platform(), "onnxruntime": ort.__version__},
    }
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
