"""Ground-plane geometry benchmark on PETS 2009 S2L1 View_001: calibration, feet and distance errors, close pairs.

    .venv/bin/python benchmarks/geometry_benchmark.py [--camera TOML] [--data DIR] [--step N] [--out JSON]

(1) a homography fitted from 8 ground-truth feet (image) and their world positions (ground), scored on every other
ground-truth foot, beside the official Tsai calibration imported as a homography; (2) end to end: the configured
person detector on every `step`-th frame, detections matched to ground-truth boxes, detected feet and pairwise
distances against the truth; (3) close-pair decisions at 1 m and 2 m, from ground-truth boxes and end to end;
(4) how often the reported 90% interval of a distance holds the true one, which sets the feet-sigma fraction.
Prints one table and writes every figure and the targets of the issue to a JSON file; exits 0 with "skipped: ..."
when the data set is absent.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sanitary.config import load_camera
from sanitary.geometry import homography
from sanitary.perception.boxes import Detections, iou_matrix
from sanitary.perception.people import PersonDetector

ROOT = Path(__file__).resolve().parents[1]
FRAMES = "frames"
GT_MOT = "gt_mot_480x360.txt"
GT_WORLD = "gt_world_view001.csv"
TSAI = "calibration_View_001_tsai.xml"
WORLD_PX = (768, 576)  # the size gt_world_view001.csv and the Tsai calibration are in
MATCH_IOU = 0.3
THRESHOLDS_M = (1.0, 2.0)
INTERVAL = 0.90
# Where the 8 calibration points are sought, as shares of the walkable area's bounding box: its corners and
# edge midpoints, pulled in by 10% so that real feet stand near each.
CALIBRATION_TARGETS = tuple((fx, fy) for fy in (0.1, 0.5, 0.9) for fx in (0.1, 0.5, 0.9) if (fx, fy) != (0.5, 0.5))
# Two calibration points closer than this (pixels) would add little: take the next nearest foot instead.
CALIBRATION_MIN_GAP_PX = 30.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camera", type=Path, default=ROOT / "examples" / "pets2009-view001.toml")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "pets2009-s2l1")
    parser.add_argument("--step", type=int, default=3, help="detect on every N-th frame (default 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "geometry.json")
    return parser.parse_args(argv)


# ---------------------------------------------------------------- ground truth


@dataclass(frozen=True)
class Truth:
    """Every ground-truth person-frame, rows aligned."""

    frame: np.ndarray  # (M,) 0-based
    ids: np.ndarray  # (M,)
    boxes: np.ndarray  # (M, 4) x1 y1 x2 y2 at the footage's 480x360
    ground: np.ndarray  # (M, 2) feet on the ground, metres

    @property
    def feet(self) -> np.ndarray:
        return Detections(self.boxes, np.ones(len(self.boxes), np.float32)).feet.astype(np.float64)

    @property
    def heights(self) -> np.ndarray:
        return (self.boxes[:, 3] - self.boxes[:, 1]).astype(np.float64)


def load_truth(data: Path) -> Truth:
    """MOT boxes (1-based frames, 480x360) joined on (frame, id) to the world feet (0-based frames)."""
    mot = np.loadtxt(data / GT_MOT, delimiter=",", ndmin=2)
    world = np.loadtxt(data / GT_WORLD, delimiter=",", skiprows=1, ndmin=2)
    feet_m = {(int(f), int(i)): (x, y) for f, i, x, y in world[:, [0, 1, 6, 7]]}
    frame = mot[:, 0].astype(int) - 1
    ids = mot[:, 1].astype(int)
    x, y, w, h = mot[:, 2:6].T
    ground = np.array([feet_m[f, i] for f, i in zip(frame, ids, strict=True)])
    return Truth(frame, ids, np.stack([x, y, x + w, y + h], axis=1), ground)


# ---------------------------------------------------------------- (1) calibration


def pick_calibration(truth: Truth, walkable: np.ndarray) -> np.ndarray:
    """Rows of 8 ground-truth feet spread over the walkable area: the foot nearest each target, no two close."""
    feet = truth.feet
    low, high = walkable.min(axis=0), walkable.max(axis=0)
    chosen: list[int] = []
    for share in CALIBRATION_TARGETS:
        target = low + np.asarray(share) * (high - low)
        for row in np.argsort(np.hypot(*(feet - target).T)):
            if all(np.hypot(*(feet[row] - feet[c])) >= CALIBRATION_MIN_GAP_PX for c in chosen):
                chosen.append(int(row))
                break
    return np.array(chosen)


def calibration(truth: Truth, walkable: np.ndarray, tsai_xml: Path, size: tuple[int, int]) -> dict[str, Any]:
    rows = pick_calibration(truth, walkable)
    fit = homography.fit_homography(truth.feet[rows], truth.ground[rows])
    homography.check_horizon(fit.H, walkable)
    others = np.setdiff1d(np.arange(len(truth.frame)), rows)
    error = np.hypot(*(homography.to_ground(fit.H, truth.feet[others]) - truth.ground[others]).T)
    tsai_h = homography.tsai_ground_homography(tsai_xml, *size)
    tsai_error = np.hypot(*(homography.to_ground(tsai_h, truth.feet) - truth.ground).T)
    return {
        "H": fit.H,
        "points": [
            {
                "frame": int(truth.frame[r]),
                "id": int(truth.ids[r]),
                "image_px": truth.feet[r].round(2).tolist(),
                "ground_m": truth.ground[r].tolist(),
            }
            for r in rows
        ],
        "inliers": int(fit.inliers.sum()),
        "rms_px": fit.rms_px,
        "rms_m": fit.rms_m,
        "loo_m_median": float(np.nanmedian(fit.loo_m)) if fit.loo_m is not None else None,
        "error_m": summary(error),
        "tsai_error_m": summary(tsai_error),
    }


def summary(values: np.ndarray) -> dict[str, float]:
    return {"n": len(values), "median": float(np.median(values)), "p90": float(np.percentile(values, 90))}


# ---------------------------------------------------------------- (2) end to end


def detect(camera_path: Path, data: Path, frames: Sequence[int]) -> tuple[list[Detections], float]:
    detector = PersonDetector(load_camera(camera_path).detection)
    start = time.perf_counter()
    found = [detector(cv2.imread(str(data / FRAMES / f"frame_{f:04d}.jpg"), cv2.IMREAD_COLOR)) for f in frames]
    return found, len(frames) / (time.perf_counter() - start)


def match(detected: np.ndarray, truth: np.ndarray, min_iou: float) -> dict[int, int]:
    """Detection -> ground-truth index, greedily by highest IoU, one to one."""
    iou = iou_matrix(detected, truth).astype(np.float64)
    pairs: dict[int, int] = {}
    while iou.size and iou.max() >= min_iou:
        i, j = np.unravel_index(iou.argmax(), iou.shape)
        pairs[int(i)] = int(j)
        iou[i, :] = -1
        iou[:, j] = -1
    return pairs


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    # End to end only: the part of the errors the detector makes, not the geometry.
    fp_unmatched: int = 0  # a pair with a detection that matches nobody (a duplicate, a false alarm)
    fn_missed: int = 0  # a truly close pair with a person the detector missed

    @property
    def f1(self) -> float:
        return 2 * self.tp / max(2 * self.tp + self.fp + self.fn, 1)

    def as_dict(self) -> dict[str, float]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": self.tp / max(self.tp + self.fp, 1),
            "recall": self.tp / max(self.tp + self.fn, 1),
            "f1": self.f1,
            "fp_unmatched": self.fp_unmatched,
            "fn_missed": self.fn_missed,
        }


def upper(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, k=1)


@dataclass(frozen=True)
class Frame:
    """What one analysed frame contributes: matched feet and pairs, and the inputs of the close-pair decisions."""

    feet_error: np.ndarray  # (K,) m, matched detections
    pair_true: np.ndarray  # (P,) m, pairs of matched detections
    pair_est: np.ndarray
    pair_unit_sigma: np.ndarray  # sigma at a feet-sigma fraction of 1 (sigma scales with the fraction)
    gt_d: np.ndarray  # (G, G) true distances between all ground-truth people
    gt_est_d: np.ndarray  # from ground-truth boxes through the homography
    gt_unit_sigma: np.ndarray
    det_d: np.ndarray  # (D, D) between detections
    det_unit_sigma: np.ndarray
    det_to_gt: dict[int, int]


def unit_sigma(H: np.ndarray, feet: np.ndarray, heights: np.ndarray) -> np.ndarray:
    return homography.distance_sigma(H, feet, homography.feet_sigma_px(heights, fraction=1.0))


def analyse_frame(H: np.ndarray, truth: Truth, rows: np.ndarray, people: Detections) -> Frame:
    gt_feet = truth.feet[rows]
    det_feet = people.feet.astype(np.float64)
    det_heights = (people.boxes[:, 3] - people.boxes[:, 1]).astype(np.float64)
    det_ground = homography.to_ground(H, det_feet)
    pairs = match(people.boxes, truth.boxes[rows], MATCH_IOU)
    det_idx = np.array(list(pairs), dtype=int)
    gt_idx = np.array(list(pairs.values()), dtype=int)
    gt_d = homography.pairwise_distances(truth.ground[rows])
    det_d = homography.pairwise_distances(det_ground)
    det_sigma = unit_sigma(H, det_feet, det_heights)
    a, b = upper(len(det_idx))
    return Frame(
        feet_error=np.hypot(*(det_ground[det_idx] - truth.ground[rows][gt_idx]).reshape(-1, 2).T),
        pair_true=gt_d[gt_idx[a], gt_idx[b]],
        pair_est=det_d[det_idx[a], det_idx[b]],
        pair_unit_sigma=det_sigma[det_idx[a], det_idx[b]],
        gt_d=gt_d,
        gt_est_d=homography.pairwise_distances(homography.to_ground(H, gt_feet)),
        gt_unit_sigma=unit_sigma(H, gt_feet, truth.heights[rows]),
        det_d=det_d,
        det_unit_sigma=det_sigma,
        det_to_gt=pairs,
    )


def close_from_truth_boxes(frames: list[Frame], threshold: float, fraction: float, confidence: float) -> Tally:
    tally = Tally()
    for f in frames:
        a, b = upper(len(f.gt_d))
        truly = f.gt_d[a, b] < threshold
        said = homography.close_pairs(f.gt_est_d, fraction * f.gt_unit_sigma, threshold, confidence)[a, b]
        tally.tp += int((truly & said).sum())
        tally.fp += int((~truly & said).sum())
        tally.fn += int((truly & ~said).sum())
    return tally


def close_end_to_end(frames: list[Frame], threshold: float, fraction: float, confidence: float) -> Tally:
    """Detected close pairs against true ones; a pair with an unmatched detection is false, a pair with a missed
    person is missed."""
    tally = Tally()
    for f in frames:
        said = homography.close_pairs(f.det_d, fraction * f.det_unit_sigma, threshold, confidence)
        found: set[tuple[int, int]] = set()
        for i, j in zip(*np.nonzero(np.triu(said, k=1)), strict=True):
            gi, gj = f.det_to_gt.get(int(i)), f.det_to_gt.get(int(j))
            if gi is None or gj is None:
                tally.fp_unmatched += 1
            if gi is not None and gj is not None and f.gt_d[gi, gj] < threshold:
                found.add((min(gi, gj), max(gi, gj)))
            else:
                tally.fp += 1
        tally.tp += len(found)
        a, b = upper(len(f.gt_d))
        truly = f.gt_d[a, b] < threshold
        tally.fn += int(truly.sum()) - len(found)
        seen = np.zeros(len(f.gt_d), dtype=bool)
        seen[list(f.det_to_gt.values())] = True
        tally.fn_missed += int((truly & ~(seen[a] & seen[b])).sum())
    return tally


def end_to_end(frames: list[Frame]) -> dict[str, Any]:
    true = np.concatenate([f.pair_true for f in frames])
    est = np.concatenate([f.pair_est for f in frames])
    relative = np.abs(est - true) / np.maximum(true, 1e-9)
    return {
        "feet_error_m": summary(np.concatenate([f.feet_error for f in frames])),
        "pair_relative_error": summary(relative),
        "pairs": len(true),
    }


# ---------------------------------------------------------------- (4) uncertainty


def coverage(frames: list[Frame], fraction: float) -> float:
    """Share of matched pairs whose true distance lies in the reported two-sided `INTERVAL` interval."""
    z = homography.normal_quantile((1 + INTERVAL) / 2)
    err = np.concatenate([np.abs(f.pair_est - f.pair_true) for f in frames])
    sigma = np.concatenate([f.pair_unit_sigma for f in frames])
    return float((err <= z * fraction * sigma).mean())


def fitted_fraction(frames: list[Frame]) -> float:
    """The feet-sigma fraction whose 90% intervals hold exactly 90% of these pairs' true distances."""
    z = homography.normal_quantile((1 + INTERVAL) / 2)
    err = np.concatenate([np.abs(f.pair_est - f.pair_true) for f in frames])
    sigma = np.concatenate([f.pair_unit_sigma for f in frames])
    return float(np.quantile(err / (z * sigma), INTERVAL))


def uncertainty(frames: list[Frame]) -> dict[str, Any]:
    # Chosen on half the frames, checked on the other half (alternate frames: the scene's crowd changes slowly,
    # so neither half sees only one part of the clip).
    choose, check = frames[0::2], frames[1::2]
    fraction = fitted_fraction(choose)
    return {
        "fitted_fraction": fraction,
        "default_fraction": homography.FEET_SIGMA_FRACTION,
        "coverage_held_out_fitted": coverage(check, fraction),
        "coverage_held_out_default": coverage(check, homography.FEET_SIGMA_FRACTION),
        "coverage_all_default": coverage(frames, homography.FEET_SIGMA_FRACTION),
        "sweep": {f"{s:.3f}": coverage(frames, s) for s in (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.10)},
    }


# ---------------------------------------------------------------- report


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    e2e = report["end_to_end"]
    checks: list[tuple[str, float, float, float]] = [
        ("(1) 8-point calibration: feet error median (m)", report["calibration"]["error_m"]["median"], -math.inf, 0.10),
        ("(2) detected feet error median (m)", e2e["feet_error_m"]["median"], -math.inf, 0.30),
        ("(2) detected feet error p90 (m)", e2e["feet_error_m"]["p90"], -math.inf, 0.60),
        ("(2) pairwise distance relative error median", e2e["pair_relative_error"]["median"], -math.inf, 0.10),
    ]
    for t in THRESHOLDS_M:
        close = report["close_pairs"][f"{t:g}"]
        checks.append((f"(3) close < {t:g} m, F1 from GT boxes", close["gt_boxes"]["f1"], 0.95, math.inf))
        checks.append((f"(3) close < {t:g} m, F1 end to end", close["end_to_end"]["f1"], 0.80, math.inf))
    checks.append(
        (
            "(4) 90% interval coverage, held-out frames, default fraction",
            report["uncertainty"]["coverage_held_out_default"],
            0.85,
            0.95,
        )
    )
    return [
        {"target": name, "value": value, "low": low, "high": high, "met": low <= value <= high}
        for name, value, low, high in checks
    ]


def bound(low: float, high: float) -> str:
    if low == -math.inf:
        return f"<= {high:g}"
    if high == math.inf:
        return f">= {low:g}"
    return f"{low:g}-{high:g}"


def table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    ]


def render(report: dict[str, Any]) -> str:
    cal, e2e, unc = report["calibration"], report["end_to_end"], report["uncertainty"]
    points = ", ".join(f"{p['frame']}/{p['id']}" for p in cal["points"])
    lines = [
        f"PETS 2009 S2L1 View_001; detector on one frame in {report['step']} ({report['frames']} frames, "
        f"{report['detector_fps']:.1f} fps); {report['camera']}",
        f"(1) calibration points (frame/id): {points}",
        f"    fit: {cal['inliers']}/8 inliers, rms {cal['rms_px']:.2f} px / {cal['rms_m']:.3f} m, "
        f"leave-one-out median {cal['loo_m_median']:.3f} m",
        f"    error on the other {cal['error_m']['n']} GT feet: median {cal['error_m']['median']:.3f} m, "
        f"p90 {cal['error_m']['p90']:.3f} m",
        f"    Tsai calibration imported: median {cal['tsai_error_m']['median']:.3f} m, "
        f"p90 {cal['tsai_error_m']['p90']:.3f} m on all {cal['tsai_error_m']['n']} GT feet",
        f"(2) {e2e['feet_error_m']['n']} matched detections (IoU >= {MATCH_IOU}): feet median "
        f"{e2e['feet_error_m']['median']:.3f} m, p90 {e2e['feet_error_m']['p90']:.3f} m; {e2e['pairs']} pairs: "
        f"relative distance error median {e2e['pair_relative_error']['median']:.3f}, "
        f"p90 {e2e['pair_relative_error']['p90']:.3f}",
        "(3) close pairs (P, R, F1)          confidence 0.5             confidence 0.9",
    ]
    for t in THRESHOLDS_M:
        for source in ("gt_boxes", "end_to_end"):
            cells = []
            for conf in ("0.5", "0.9"):
                c = report["close_pairs"][f"{t:g}"][source if conf == "0.5" else f"{source}_0.9"]
                cells.append(f"{c['precision']:.3f} {c['recall']:.3f} {c['f1']:.3f} ({c['tp'] + c['fn']} true)")
            lines.append(f"    < {t:g} m, {source:<11} {cells[0]:>24}   {cells[1]:>24}")
        e2e_close = report["close_pairs"][f"{t:g}"]["end_to_end"]
        lines.append(
            f"      end to end at 0.5, detector's share: {e2e_close['fp_unmatched']} of {e2e_close['fp']} false pairs "
            f"have an unmatched detection, {e2e_close['fn_missed']} of {e2e_close['fn']} missed pairs a missed person"
        )
    sweep = "  ".join(f"{k}: {v:.3f}" for k, v in unc["sweep"].items())
    lines += [
        f"(4) feet sigma fraction fitted on alternate frames: {unc['fitted_fraction']:.4f} of box height "
        f"(default FEET_SIGMA_FRACTION = {unc['default_fraction']}); 90% interval coverage on the held-out frames: "
        f"{unc['coverage_held_out_fitted']:.3f} fitted, {unc['coverage_held_out_default']:.3f} default",
        f"    coverage by fraction, all frames: {sweep}",
        "",
        *table(
            [("target", "value", "bound", "status")]
            + [
                (c["target"], f"{c['value']:.3f}", bound(c["low"], c["high"]), "met" if c["met"] else "NOT MET")
                for c in report["targets"]
            ]
        ),
    ]
    return "\n".join(lines)


def missing_inputs(data: Path, camera: Path) -> list[Path]:
    return [p for p in (data / FRAMES, data / GT_MOT, data / GT_WORLD, data / TSAI, camera) if not p.exists()]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    missing = missing_inputs(args.data, args.camera)
    if missing:
        print(f"skipped: {', '.join(map(str, missing))} not found")
        return 0
    camera = load_camera(args.camera)
    size = cv2.imread(str(args.data / FRAMES / "frame_0000.jpg")).shape[1::-1]
    walkable = (
        np.asarray(camera.detection.walkable, np.float64)
        if camera.detection.walkable
        else homography.frame_region(*size)
    )
    truth = load_truth(args.data)
    n_frames = len(list((args.data / FRAMES).glob("frame_*.jpg")))
    cal = calibration(truth, walkable, args.data / TSAI, size)
    H = cal.pop("H")

    frame_ids = list(range(0, n_frames, args.step))
    found, fps = detect(args.camera, args.data, frame_ids)
    frames = [
        analyse_frame(H, truth, np.flatnonzero(truth.frame == f), p) for f, p in zip(frame_ids, found, strict=True)
    ]
    unc = uncertainty(frames)
    fraction = unc["fitted_fraction"]
    close: dict[str, Any] = {}
    for t in THRESHOLDS_M:
        close[f"{t:g}"] = {
            f"{name}{suffix}": fn(frames, t, fraction, conf).as_dict()
            for name, fn in (("gt_boxes", close_from_truth_boxes), ("end_to_end", close_end_to_end))
            for suffix, conf in (("", 0.5), ("_0.9", 0.9))
        }
    report: dict[str, Any] = {
        "camera": str(args.camera),
        "step": args.step,
        "frames": len(frame_ids),
        "detector_fps": fps,
        "H": (H / H[2, 2]).tolist(),
        "calibration": cal,
        "end_to_end": end_to_end(frames),
        "close_pairs": close,
        "uncertainty": unc,
    }
    report["targets"] = targets(report)
    print(render(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
