"""Photos with every head marked, as the head model's training and the crowd benchmark read them, and their fixed
splits.

A source is a folder of the shared data of one of two kinds:
- points: `images/`, `points.csv` (`image,x,y`: one point per head), `counts.csv` (`image,n_heads,...`), like
  ShanghaiTech. Head sizes are unknown.
- boxes: `images/`, `heads.csv` (`image,x1,y1,x2,y2`: one box per head), `counts.csv`, like SCUT-HEAD. A box's centre
  is the head's point and the side of the square of its area (sqrt(w h)) the head's size.

Each source's split lives beside the model as `weights/head_splits/<folder name>/validation.txt` and `tuning.txt`,
each made once (its header says how) and committed: training takes the rest, tuning photos choose the decoding,
validation photos are scored once and never trained or tuned on. No torch here: the benchmark reads it too.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from sanitary.errors import SanitaryError
from sanitary.perception.models import WEIGHTS_DIR

SPLITS_DIR = WEIGHTS_DIR / "head_splits"
SPLIT_SEED = 0

Kind = Literal["points", "boxes"]


@dataclass(frozen=True)
class CrowdImage:
    name: str  # file name in the source's images/
    points: np.ndarray  # (N, 2) float32: head centres x, y in image pixels
    boxes: np.ndarray | None  # (N, 4) float32 x1, y1, x2, y2 of the same heads (a box source), else None

    @property
    def sizes(self) -> np.ndarray | None:
        """(N,) float32: each head's side in image pixels, sqrt(w h) of its box; None where sizes are unknown."""
        if self.boxes is None:
            return None
        w, h = self.boxes[:, 2] - self.boxes[:, 0], self.boxes[:, 3] - self.boxes[:, 1]
        return np.sqrt(np.clip(w, 0, None) * np.clip(h, 0, None)).astype(np.float32)


@dataclass(frozen=True)
class CrowdSource:
    name: str  # the folder's name: the name of its split lists and of its rows in cards and reports
    kind: Kind
    folder: Path
    images: dict[str, CrowdImage]  # by name, in natural name order

    def path(self, name: str) -> Path:
        return self.folder / "images" / name

    def select(self, names: list[str]) -> list[CrowdImage]:
        return [self.images[name] for name in names]


@dataclass(frozen=True)
class Splits:
    train: list[str]
    tuning: list[str]
    validation: list[str]


def natural(name: str) -> tuple[str, int]:
    """Sort key putting IMG_2 before IMG_10."""
    stem = Path(name).stem
    digits = stem.rstrip("0123456789")
    return (digits, int(stem[len(digits) :] or 0))


def read_source(data: Path) -> CrowdSource:
    """The source in folder `data`: every image of its counts.csv with its heads."""
    counts_file = data / "counts.csv"
    kind: Kind = "boxes" if (data / "heads.csv").is_file() else "points"
    heads_file = data / ("heads.csv" if kind == "boxes" else "points.csv")
    for file in (heads_file, counts_file):
        if not file.is_file():
            raise SanitaryError(
                f"{file}: missing; a crowd source holds images/, counts.csv and points.csv (image,x,y) or "
                "heads.csv (image,x1,y1,x2,y2)"
            )
    columns = ("x1", "y1", "x2", "y2") if kind == "boxes" else ("x", "y")
    try:
        with counts_file.open() as f:
            counts = {row["image"]: int(row["n_heads"]) for row in csv.DictReader(f)}
        rows: dict[str, list[list[float]]] = {name: [] for name in counts}
        with heads_file.open() as f:
            for row in csv.DictReader(f):
                rows.setdefault(row["image"], []).append([float(row[c]) for c in columns])
    except (KeyError, ValueError) as exc:
        raise SanitaryError(
            f"{data}: {heads_file.name} needs image,{','.join(columns)} and counts.csv image,n_heads ({exc})"
        ) from None
    wrong = [name for name, n in counts.items() if len(rows[name]) != n]
    if wrong or len(rows) != len(counts):
        first = wrong[0] if wrong else sorted(set(rows) - set(counts))[0]
        raise SanitaryError(f"{data}: {first}: counts.csv and {heads_file.name} disagree; restore the data set")
    images = {}
    for name in sorted(counts, key=natural):
        marks = np.asarray(rows[name], np.float32).reshape(-1, len(columns))
        if kind == "boxes":
            centres = np.stack([(marks[:, 0] + marks[:, 2]) / 2, (marks[:, 1] + marks[:, 3]) / 2], axis=1)
            images[name] = CrowdImage(name, centres.astype(np.float32), marks)
        else:
            images[name] = CrowdImage(name, marks, None)
    return CrowdSource(data.resolve().name, kind, data, images)


# ---------------------------------------------------------------- splits


def split_file(source_name: str, part: Literal["validation", "tuning"], lists: Path = SPLITS_DIR) -> Path:
    return lists / source_name / f"{part}.txt"


def read_list(path: Path) -> list[str]:
    """Image names of a list file, one a line; lines starting with # are its header."""
    if not path.is_file():
        raise SanitaryError(f"{path}: split list missing; a source needs its committed validation and tuning lists")
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def splits(source: CrowdSource, lists: Path = SPLITS_DIR) -> Splits:
    """The source's committed validation and tuning photos, and the rest for training, each in natural order."""
    held = {}
    for part in ("validation", "tuning"):
        path = split_file(source.name, part, lists)
        names = read_list(path)
        unknown = [n for n in names if n not in source.images]
        if unknown:
            raise SanitaryError(f"{path}: {unknown[0]} is not in {source.folder}/counts.csv; check the list or DATA")
        held[part] = set(names)
    both = held["validation"] & held["tuning"]
    if both:
        raise SanitaryError(f"{source.name}: {sorted(both)[0]} is in both its validation and tuning lists")
    order = list(source.images)
    return Splits(
        train=[n for n in order if n not in held["validation"] and n not in held["tuning"]],
        tuning=[n for n in order if n in held["tuning"]],
        validation=[n for n in order if n in held["validation"]],
    )


def split_by_count(names: list[str], counts: list[int], every: int, seed: int = SPLIT_SEED) -> list[str]:
    """One name out of each run of `every` consecutive names when sorted by head count (then name), chosen by a
    seeded draw: the held-out part has the crowd sizes of the whole. A last, shorter run gives one too. The rule
    that made ShanghaiTech's lists (and SCUT-A's tuning list)."""
    order = sorted(range(len(names)), key=lambda i: (counts[i], names[i]))
    rng = np.random.default_rng(seed)
    chosen = []
    for start in range(0, len(order), every):
        run = order[start : start + every]
        chosen.append(names[run[int(rng.integers(len(run)))]])
    return sorted(chosen, key=natural)
