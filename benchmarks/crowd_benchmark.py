"""Crowd counting benchmark: people counted per frame against the truth, by each way of counting side by side.

    .venv/bin/python benchmarks/crowd_benchmark.py [--pets-every N] [--out JSON]

Two sets: the validation photos of ShanghaiTech part B (the committed weights/head_points.validation.txt, 80 street
photos of 15-414 heads, a validation split of the TRAIN part: the model never trained on them) and PETS 2009 S2L1
View_001 (795 frames of 2-8 walking people at 480x360, counts_per_frame.csv). Each way of counting is a column:
per-frame MAE, RMSE, mean relative error, mean signed error and the median milliseconds a frame it took. Columns:
the head model alone (`heads`: HeadFinder with no people given, so the frame gets the default scale); on PETS, the
head model with the true people's boxes as the people (`heads_true_scale`: what a perfect detector would give the
scale rule); the person detector alone with default settings (`detected`); the count the pipeline gives with
default settings (`fused`: detected people plus the heads none of them accounts for, perception/crowd.py, the head
model scaled by the detected people); and on PETS both again with the example camera config (`*_example`: its
walkable area and threshold). `fused` times the detector, the head model and the fusion together.
Prints a table and writes JSON; exits 0 with "skipped: ..." when a data set is absent.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from sanitary.config import CameraConfig, HeadConfig, default_camera, load_camera
from sanitary.evaluation.crowd import count_errors
from sanitary.perception.boxes import Detections, as_polygon
from sanitary.perception.crowd import fuse
from sanitary.perception.heads import CARD_FILE, HeadFinder, Heads
from sanitary.perception.models import WEIGHTS_DIR
from sanitary.perception.people import PersonDetector
from sanitary.train.crowd_heads import make_splits

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "pets2009-view001.toml"
DATASETS = ROOT.parent / "shared" / "datasets"
# The targets: (set, column, largest MAE a frame).
TARGETS = (("shb", "heads", 15.0), ("shb", "fused", 15.0), ("pets", "fused", 0.5), ("pets", "fused_example", 0.45))
# Scores a head no detected body accounts for may need to count (`heads.unboxed_score`), swept with --sweep.
SWEEP = (0.225, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)


@dataclass(frozen=True)
class Frame:
    name: str
    image: np.ndarray  # BGR
    truth: int  # people (heads) in the frame
    boxes: np.ndarray  # (N, 4) x1 y1 x2 y2 of the true people when the set has boxes, else (0, 4)


@dataclass(frozen=True)
class Column:
    """One way of counting: a name, the sets it applies to, and the count it gives a frame."""

    name: str
    sets: tuple[str, ...]
    count: Callable[[Frame], int]


class Seen:
    """The people and heads of the frame last asked about, each found once when first asked: the columns share them,
    so a column's time is what it adds (`fused`: the head model and the fusion, beside `detected`'s detector)."""

    def __init__(self, camera: CameraConfig) -> None:
        self.detector = PersonDetector(dataclasses.replace(camera.detection, threads=2))
        self.finder = HeadFinder(dataclasses.replace(camera.heads, threads=2))
        self.walkable = as_polygon(camera.detection.walkable)
        self.frame = ""
        self.found: tuple[Detections, Heads | None] | None = None

    def people(self, frame: Frame) -> Detections:
        if self.found is None or self.frame != frame.name:
            self.frame, self.found = frame.name, (self.detector(frame.image), None)
        return self.found[0]

    def fused(self, frame: Frame, unboxed_score: float) -> int:
        people = self.people(frame)
        assert self.found is not None
        heads = self.found[1] if self.found[1] is not None else self.finder(frame.image, people)
        self.found = (people, heads)
        return fuse(people, heads, self.walkable, unboxed_score).count


def pipeline_columns(camera: CameraConfig, suffix: str, sets: tuple[str, ...]) -> list[Column]:
    """The detector alone and the fused count, as the pipeline makes them with `camera`'s settings."""
    seen = Seen(camera)
    return [
        Column(f"detected{suffix}", sets, lambda frame: len(seen.people(frame))),
        Column(f"fused{suffix}", sets, lambda frame: seen.fused(frame, camera.heads.unboxed_score)),
    ]


def sweep_columns() -> list[Column]:
    """The fused count with defaults at each `heads.unboxed_score` of SWEEP (how the default was chosen)."""
    seen = Seen(default_camera("crowd", "benchmark"))
    return [
        Column(f"fused@{score:g}", ("shb_tuning", "pets"), lambda frame, score=score: seen.fused(frame, score))
        for score in SWEEP
    ]


def columns() -> list[Column]:
    finder = HeadFinder(HeadConfig(threads=2))
    nobody = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))

    def true_people(frame: Frame) -> Detections:
        return Detections(frame.boxes.astype(np.float32), np.ones(len(frame.boxes), np.float32))

    return [
        Column("heads", ("shb", "pets"), lambda frame: len(finder(frame.image, nobody))),
        Column("heads_true_scale", ("pets",), lambda frame: len(finder(frame.image, true_people(frame)))),
        *pipeline_columns(default_camera("crowd", "benchmark"), "", ("shb", "pets")),
        *pipeline_columns(load_camera(EXAMPLE), "_example", ("pets",)),
    ]


def shb_frames(data: Path, part: str = "validation") -> Iterator[Frame]:
    """The photos of one part of the head model's split: `validation` (the committed list) or `tuning`."""
    with (data / "counts.csv").open() as f:
        counts = {row["image"]: int(row["n_heads"]) for row in csv.DictReader(f)}
    names = getattr(make_splits(data, WEIGHTS_DIR / "head_points.validation.txt", counts), part)
    for name in names:
        yield Frame(name, cv2.imread(str(data / "images" / name)), counts[name], np.zeros((0, 4), np.float32))


def pets_frames(data: Path, every: int) -> Iterator[Frame]:
    with (data / "counts_per_frame.csv").open() as f:
        counts = {int(row["frame"]): int(row["n_persons"]) for row in csv.DictReader(f)}
    boxes: dict[int, list[list[float]]] = {}
    for line in (data / "gt_mot_480x360.txt").read_text().splitlines():
        frame, _, x, y, w, h = (float(v) for v in line.split(",")[:6])
        boxes.setdefault(int(frame) - 1, []).append([x, y, x + w, y + h])
    for index in sorted(counts)[::every]:
        name = f"frame_{index:04d}.jpg"
        image = cv2.imread(str(data / "frames" / name))
        yield Frame(name, image, counts[index], np.asarray(boxes.get(index, []), np.float32).reshape(-1, 4))


def run_set(frames: Iterator[Frame], cols: list[Column]) -> dict:
    truth: list[int] = []
    found: dict[str, list[int]] = {c.name: [] for c in cols}
    seconds: dict[str, list[float]] = {c.name: [] for c in cols}
    for frame in frames:
        truth.append(frame.truth)
        for column in cols:
            tick = time.perf_counter()
            found[column.name].append(column.count(frame))
            seconds[column.name].append(time.perf_counter() - tick)
    return {
        "frames": len(truth),
        "true_mean": round(float(np.mean(truth)), 2),
        "columns": {
            c.name: {
                **count_errors(np.array(found[c.name]), np.array(truth)).as_dict(),
                "found_mean": round(float(np.mean(found[c.name])), 2),
                "ms_per_frame": round(float(np.median(seconds[c.name])) * 1000, 1),
            }
            for c in cols
        },
    }


def print_table(results: dict) -> None:
    for name, result in results["sets"].items():
        print(f"{name}: {result['frames']} frames, {result['true_mean']} people a frame on average")
        print(f"  {'column':20}{'MAE':>8}{'RMSE':>8}{'mean rel.':>10}{'signed':>9}{'found':>8}{'ms/frame':>10}")
        for column, c in result["columns"].items():
            print(
                f"  {column:20}{c['mae']:>8.2f}{c['rmse']:>8.2f}{c['mean_relative_error']:>10.3f}"
                f"{c['mean_error']:>9.2f}{c['found_mean']:>8.1f}{c['ms_per_frame']:>10.1f}"
            )
    for set_name, column, bound in TARGETS:
        if column in results["sets"].get(set_name, {}).get("columns", {}):
            mae = results["sets"][set_name]["columns"][column]["mae"]
            print(f"target: {set_name} {column} MAE <= {bound}: {mae:.2f} {'met' if mae <= bound else 'NOT MET'}")
    print(f"load average {results['load_average']} ({results['machine']})")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shb", type=Path, default=DATASETS / "crowd-shanghaitech-b-train")
    parser.add_argument("--pets", type=Path, default=DATASETS / "pets2009-s2l1")
    parser.add_argument("--pets-every", type=int, default=1, help="Every Nth PETS frame (1: all 795).")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "crowd.json")
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="Instead: the fused count at each heads.unboxed_score, on the tuning photos and PETS (crowd_sweep.json).",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    missing = [str(p) for p in (args.shb / "counts.csv", args.pets / "counts_per_frame.csv") if not p.is_file()]
    if missing:
        print(f"skipped: {', '.join(missing)} not found (see ../shared/datasets/README.md)")
        return 0
    cols = sweep_columns() if args.sweep else columns()
    card = json.loads((WEIGHTS_DIR / CARD_FILE).read_text())
    shb = "shb_tuning" if args.sweep else "shb"
    sets = {
        shb: run_set(
            shb_frames(args.shb, "tuning" if args.sweep else "validation"), [c for c in cols if shb in c.sets]
        ),
        "pets": run_set(pets_frames(args.pets, args.pets_every), [c for c in cols if "pets" in c.sets]),
    }
    if args.sweep:
        args.out = args.out.with_name("crowd_sweep.json")
    results = {
        "head_model_sha256": card["sha256"],
        "min_score": HeadConfig().min_score,
        "pets_every": args.pets_every,
        "sets": sets,
        "load_average": round(os.getloadavg()[0], 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores; onnxruntime with 2 threads",
    }
    print_table(results)
    if args.sweep:
        worst = {c.name: sum(r["columns"][c.name]["mean_relative_error"] for r in sets.values()) for c in cols}
        results["chosen"] = min(worst, key=lambda name: (worst[name], name))
        print(f"lowest mean relative error summed over both sets: {results['chosen']} ({worst[results['chosen']]:.3f})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
