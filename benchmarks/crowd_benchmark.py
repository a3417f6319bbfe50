"""Crowd counting benchmark: people counted per frame against the truth, by each way of counting side by side.

    .venv/bin/python benchmarks/crowd_benchmark.py [--pets-every N] [--limit N] [--out JSON]
    .venv/bin/python benchmarks/crowd_benchmark.py --sweep [--pets-every 8]

Three sets: each head source's VALIDATION photos (its committed split, never trained or tuned on): ShanghaiTech
part B (street crowds, a point a head) and SCUT-HEAD part A (seated classroom rows from the ceiling, a box a
head); and PETS 2009 S2L1 View_001 (795 frames of 2-8 walking people at 480x360, counts_per_frame.csv), every
`--pets-every`th frame. Each way of counting is a column: per-frame MAE, RMSE, mean relative error, mean signed
error and the median milliseconds a frame it took, and for the columns that find heads, the head points'
precision and recall (ShanghaiTech: a found point within 8 and 16 px of a true head, one to one; SCUT: inside a
true head box, one to one). Columns: the head model alone (`heads`: it measures the heads
itself, given no people); the person detector alone with default settings (`detected`); the count the pipeline
gives with default settings (`fused`: detected people plus the heads none of them accounts for,
perception/crowd.py); and on PETS both again with the example camera config (`*_example`: its walkable area and
threshold). Each column's time is what it adds: the head model, the detector, the fusion.

`--sweep` instead computes the fused count at each setting of the fusion's rule (heads.unboxed_score,
heads.crowd_heads, heads.crowd_share) on each source's TUNING photos and on PETS, and names the setting with the
lowest sum of the sets' mean relative errors among those that keep PETS within PETS_MAX_MAE a frame
(crowd_sweep.json).
Prints a table and writes JSON; exits 0 with "skipped: ..." when a data set is absent.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import itertools
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from sanitary.config import CameraConfig, HeadConfig, default_camera, load_camera
from sanitary.errors import SanitaryError
from sanitary.evaluation.crowd import count_errors, matched, matched_in_boxes
from sanitary.evaluation.crowd_sources import read_source, splits
from sanitary.perception.boxes import Detections, as_polygon
from sanitary.perception.crowd import fuse
from sanitary.perception.heads import CARD_FILE, HeadFinder, Heads
from sanitary.perception.models import WEIGHTS_DIR
from sanitary.perception.people import PersonDetector

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "pets2009-view001.toml"
DATASETS = ROOT.parent / "shared" / "datasets"
# The targets: (set, column, measure, largest value).
TARGETS = (
    ("shb", "fused", "mae", 11.0),
    ("scut", "fused", "mean_relative_error", 0.08),
    ("pets", "fused", "mae", 0.40),
)
# The per-frame count error on PETS (a sparse walking scene, which the detector alone counts within 0.35) that the
# sweep's choice may not exceed: issue 28's target for PETS, the bound the project's count held before the head
# model.
PETS_MAX_MAE = 0.4
# The fusion's settings tried by --sweep: the score a lone head needs outside a crowd, and what makes a crowd
# (1000000 lone heads: never, the rule before crowds were told apart).
UNBOXED_SCORES = (0.35, 0.4, 0.45, 0.5, 0.6)
CROWD_HEADS = (3, 5, 10, 20, 1_000_000)
CROWD_SHARES = (0.25, 0.4, 0.5, 0.6, 0.75, 0.9)
SWEEP_SHOWN = 15  # settings printed, the best first
RADII = (8, 16)
NOBODY = Detections(
    np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
)  # px: a found point within this of a true ShanghaiTech head is that head


@dataclass(frozen=True)
class Frame:
    name: str
    image: np.ndarray  # BGR
    truth: int  # people (heads) in the frame
    head_points: np.ndarray | None  # (N, 2) true head centres (the head sources)
    head_boxes: np.ndarray | None  # (N, 4) true head boxes (SCUT), else None


@dataclass(frozen=True)
class Found:
    count: int
    points: np.ndarray | None = None  # the head points found, when the column finds heads


@dataclass(frozen=True)
class Column:
    """One way of counting: a name, the sets it applies to, and what it finds in a frame."""

    name: str
    sets: tuple[str, ...]
    count: Callable[[Frame], Found]


class Seen:
    """The people and heads of the frame last asked about, each found once when first asked: the columns share them,
    so a column's time is what it adds (`heads`: the head model; `detected`: the detector; `fused`: the fusion)."""

    def __init__(self, camera: CameraConfig) -> None:
        self.camera = camera
        self.detector = PersonDetector(dataclasses.replace(camera.detection, threads=2))
        self.finder = HeadFinder(dataclasses.replace(camera.heads, threads=2))
        self.walkable = as_polygon(camera.detection.walkable)
        self.frame = ""
        self.found: tuple[Detections | None, Heads | None] = (None, None)

    def _look(self, frame: Frame) -> None:
        if self.frame != frame.name:
            self.frame, self.found = frame.name, (None, None)

    def found_people(self, frame: Frame) -> Detections:
        self._look(frame)
        people = self.found[0] if self.found[0] is not None else self.detector(frame.image)
        self.found = (people, self.found[1])
        return people

    def found_heads(self, frame: Frame) -> Heads:
        """The head model measures the heads itself: it is given nobody, as the pipeline's people change nothing."""
        self._look(frame)
        heads = self.found[1] if self.found[1] is not None else self.finder(frame.image, NOBODY)
        self.found = (self.found[0], heads)
        return heads

    def people(self, frame: Frame) -> Found:
        return Found(len(self.found_people(frame)))

    def heads(self, frame: Frame) -> Found:
        heads = self.found_heads(frame)
        return Found(len(heads), heads.points)

    def fused(self, frame: Frame, config: HeadConfig) -> Found:
        heads = self.found_heads(frame)
        return Found(fuse(self.found_people(frame), heads, self.walkable, config).count, heads.points)


def pipeline_columns(seen: Seen, suffix: str, sets: tuple[str, ...]) -> list[Column]:
    """The detector alone and the fused count, as the pipeline makes them with `seen`'s camera settings."""
    return [
        Column(f"detected{suffix}", sets, seen.people),
        Column(f"fused{suffix}", sets, lambda frame: seen.fused(frame, seen.camera.heads)),
    ]


def sweep_columns(sets: tuple[str, ...]) -> list[Column]:
    """The fused count with defaults but the fusion's rule, at each of its settings tried."""
    camera = default_camera("crowd", "benchmark")
    seen = Seen(camera)
    columns = []
    for score, heads, share in itertools.product(UNBOXED_SCORES, CROWD_HEADS, CROWD_SHARES):
        if heads == CROWD_HEADS[-1] and share != CROWD_SHARES[0]:
            continue  # never a crowd: the share does not matter
        rule = dataclasses.replace(camera.heads, unboxed_score=score, crowd_heads=heads, crowd_share=share)
        name = f"fused@{score:g}/{heads}/{share:g}"
        columns.append(Column(name, sets, lambda frame, rule=rule: seen.fused(frame, rule)))
    return columns


def columns() -> list[Column]:
    default = Seen(default_camera("crowd", "benchmark"))
    return [
        Column("heads", ("shb", "scut", "pets"), default.heads),
        *pipeline_columns(default, "", ("shb", "scut", "pets")),
        *pipeline_columns(Seen(load_camera(EXAMPLE)), "_example", ("pets",)),
    ]


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise SystemExit(f"{path}: unreadable; restore it from the data set")
    return image


def photo_frames(data: Path, part: str, limit: int | None) -> Iterator[Frame]:
    """The photos of one part (`validation` or `tuning`) of a head source's committed split, with their heads."""
    source = read_source(data)
    for photo in source.select(getattr(splits(source), part)[:limit]):
        image = read_image(source.path(photo.name))
        yield Frame(photo.name, image, len(photo.points), photo.points, photo.boxes)


def pets_frames(data: Path, every: int, limit: int | None) -> Iterator[Frame]:
    with (data / "counts_per_frame.csv").open() as f:
        counts = {int(row["frame"]): int(row["n_persons"]) for row in csv.DictReader(f)}
    for index in sorted(counts)[::every][:limit]:
        name = f"frame_{index:04d}.jpg"
        yield Frame(name, read_image(data / "frames" / name), counts[index], None, None)


@dataclass
class PointScore:
    """Head points found and matched to true heads, summed over a set's frames."""

    found: int = 0
    true: int = 0
    matched: dict[str, int] = dataclasses.field(default_factory=dict)

    def add(self, frame: Frame, points: np.ndarray) -> None:
        assert frame.head_points is not None
        self.found += len(points)
        self.true += len(frame.head_points)
        if frame.head_boxes is not None:
            pairs = {"in_box": matched_in_boxes(points, frame.head_boxes)}
        else:
            pairs = {f"{r}px": matched(points, frame.head_points, r) for r in RADII}
        for key, n in pairs.items():
            self.matched[key] = self.matched.get(key, 0) + n

    def as_dict(self) -> dict[str, float]:
        return {
            f"{measure}_{key}": round(n / max(total, 1), 3)
            for key, n in self.matched.items()
            for measure, total in (("precision", self.found), ("recall", self.true))
        }


def run_set(frames: Iterator[Frame], cols: list[Column]) -> dict:
    truth: list[int] = []
    found: dict[str, list[int]] = {c.name: [] for c in cols}
    seconds: dict[str, list[float]] = {c.name: [] for c in cols}
    points = {c.name: PointScore() for c in cols}
    for frame in frames:
        truth.append(frame.truth)
        for column in cols:
            tick = time.perf_counter()
            got = column.count(frame)
            seconds[column.name].append(time.perf_counter() - tick)
            found[column.name].append(got.count)
            if got.points is not None and frame.head_points is not None:
                points[column.name].add(frame, got.points)
    return {
        "frames": len(truth),
        "true_mean": round(float(np.mean(truth)), 2),
        "columns": {
            c.name: {
                **count_errors(np.array(found[c.name]), np.array(truth)).as_dict(),
                "found_mean": round(float(np.mean(found[c.name])), 2),
                "ms_per_frame": round(float(np.median(seconds[c.name])) * 1000, 1),
                **points[c.name].as_dict(),
            }
            for c in cols
        },
    }


def print_table(results: dict) -> None:
    for name, result in results["sets"].items():
        print(f"{name}: {result['frames']} frames, {result['true_mean']} people a frame on average")
        print(
            f"  {'column':24}{'MAE':>8}{'RMSE':>8}{'mean rel.':>10}{'signed':>9}{'found':>8}{'ms/frame':>10}"
            "  head points precision / recall"
        )
        for column, c in result["columns"].items():
            pr = "  ".join(
                f"{key.removeprefix('precision_')} {c[key]:.3f} / {c['recall_' + key.removeprefix('precision_')]:.3f}"
                for key in c
                if key.startswith("precision_")
            )
            print(
                f"  {column:24}{c['mae']:>8.2f}{c['rmse']:>8.2f}{c['mean_relative_error']:>10.3f}"
                f"{c['mean_error']:>9.2f}{c['found_mean']:>8.1f}{c['ms_per_frame']:>10.1f}  {pr}"
            )
    for set_name, column, measure, bound in TARGETS:
        if column in results["sets"].get(set_name, {}).get("columns", {}):
            value = results["sets"][set_name]["columns"][column][measure]
            print(
                f"target: {set_name} {column} {measure} <= {bound}: {value:g} {'met' if value <= bound else 'NOT MET'}"
            )
    print(f"load average {results['load_average']} ({results['machine']})")


def print_sweep(results: dict) -> str:
    """Each setting's MAE and mean relative error on each set, the best first (and those never a crowd, as before);
    the setting with the lowest sum of the sets' mean relative errors."""
    sets = results["sets"]
    total = {
        name: sum(r["columns"][name]["mean_relative_error"] for r in sets.values())
        for name in next(iter(sets.values()))["columns"]
    }
    # A sparse scene must keep the count the detector gives it: settings whose PETS count errs by more than
    # PETS_MAX_MAE a frame are not chosen, however well they count crowds.
    sparse_ok = {name for name in total if "pets" not in sets or sets["pets"]["columns"][name]["mae"] <= PETS_MAX_MAE}
    ranked = sorted(total, key=lambda name: (name not in sparse_ok, total[name], name))
    shown = ranked[:SWEEP_SHOWN] + [n for n in ranked[SWEEP_SHOWN:] if n.split("/")[1] == str(CROWD_HEADS[-1])]
    print("fused count at each unboxed_score/crowd_heads/crowd_share: MAE / mean relative error")
    heading = "".join(f"{name + ' (' + str(r['frames']) + ')':>22}" for name, r in sets.items())
    print(f"  {'setting':26}{heading}{'sum rel.':>10}")
    for name in shown:
        errors = [r["columns"][name] for r in sets.values()]
        cells = "".join(
            f"{format(e['mae'], '.2f') + ' / ' + format(e['mean_relative_error'], '.3f'):>22}" for e in errors
        )
        print(f"  {name:26}{cells}{total[name]:>10.3f}")
    print(f"load average {results['load_average']} ({results['machine']})")
    print(
        f"lowest mean relative error summed over the sets, PETS MAE at most {PETS_MAX_MAE}: {ranked[0]} "
        f"({total[ranked[0]]:.3f})"
    )
    return ranked[0]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shb", type=Path, default=DATASETS / "crowd-shanghaitech-b-train")
    parser.add_argument("--scut", type=Path, default=DATASETS / "heads-scut-a")
    parser.add_argument("--pets", type=Path, default=DATASETS / "pets2009-s2l1")
    parser.add_argument("--pets-every", type=int, default=1, help="Every Nth PETS frame (1: all 795).")
    parser.add_argument("--limit", type=int, default=None, help="At most N frames a set (a quick check).")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "crowd.json")
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="Instead: the fused count at each setting of the fusion's rule, on the tuning photos and PETS "
        "(crowd_sweep.json).",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except SanitaryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    needed = (args.shb / "points.csv", args.scut / "heads.csv", args.pets / "counts_per_frame.csv")
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        print(f"skipped: {', '.join(missing)} not found (see ../shared/datasets/README.md)")
        return 0
    part = "tuning" if args.sweep else "validation"
    names = ("shb_tuning", "scut_tuning", "pets") if args.sweep else ("shb", "scut", "pets")
    cols = sweep_columns(names) if args.sweep else columns()
    frames = (
        photo_frames(args.shb, part, args.limit),
        photo_frames(args.scut, part, args.limit),
        pets_frames(args.pets, args.pets_every, args.limit),
    )
    sets = {name: run_set(f, [c for c in cols if name in c.sets]) for name, f in zip(names, frames, strict=True)}
    card = json.loads((WEIGHTS_DIR / CARD_FILE).read_text())
    results = {
        "head_model_sha256": card["sha256"],
        "heads": dataclasses.asdict(HeadConfig()),
        "pets_every": args.pets_every,
        "limit": args.limit,
        "sets": sets,
        "load_average": round(os.getloadavg()[0], 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores; onnxruntime with 2 threads",
    }
    if args.sweep:
        args.out = args.out.with_name("crowd_sweep.json")
        results["chosen"] = print_sweep(results)
    else:
        print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
