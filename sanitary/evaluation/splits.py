"""The mask classifier's fixed validation splits, one per data source, by original photo.

Each source (a folder of the shared data) gets a list of the image files held out for validation, committed
beside the model as `weights/mask_validation/<folder name>.txt`. It is drawn once, seeded, and never again:
training reads it, `eval-mask --validation` reads it, and nothing is chosen on it. Faces of one original photo
(one image of a VOC folder; one `source_image` of a crop folder) are near copies of one scene, so they all fall on
one side.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from sanitary.evaluation.voc import AnnotatedFace
from sanitary.perception.mask_classes import LABELS
from sanitary.perception.models import WEIGHTS_DIR

SPLITS = WEIGHTS_DIR / "mask_validation"
VALIDATION_SHARE = 0.2
SPLIT_SEED = 0


def source_name(source: Path) -> str:
    """What a data source is known by, in its validation list's name, the card and the reports: its folder's name."""
    return source.resolve().name


def split_file(splits: Path, source: Path) -> Path:
    """Where the validation list of the data folder `source` lives in the folder of lists `splits`."""
    return splits / f"{source_name(source)}.txt"


def make_validation_list(
    faces: list[AnnotatedFace], share: float = VALIDATION_SHARE, seed: int = SPLIT_SEED
) -> list[str]:
    """Image names holding about `share` of each class's faces: original photos in a seeded random order, taken
    rarest class first while that class is short of its target and no class would overshoot its own by much."""
    per_photo: dict[str, Counter] = {}
    images: dict[str, list[str]] = {}
    for face in faces:
        per_photo.setdefault(face.group, Counter())[face.label] += 1
        images.setdefault(face.group, []).append(face.image.name)
    totals = Counter(face.label for face in faces)
    target = {c: share * totals[c] for c in LABELS}
    photos = sorted(per_photo)
    order = [photos[i] for i in np.random.default_rng(seed).permutation(len(photos))]
    chosen: set[str] = set()
    held: Counter = Counter()
    for rare_first in sorted(LABELS, key=lambda c: totals[c]):
        for photo in order:
            counts = per_photo[photo]
            if photo in chosen or counts[rare_first] == 0 or held[rare_first] >= target[rare_first]:
                continue
            # A crowded photo of with_mask faces would blow that class's share; 10% slack plus one face.
            if all(held[c] + counts[c] <= target[c] * 1.1 + 1 for c in LABELS):
                chosen.add(photo)
                held.update(counts)
    return sorted({name for photo in chosen for name in images[photo]})


def write_validation_list(path: Path, names: list[str], faces: list[AnnotatedFace], source: Path) -> None:
    chosen = set(names)
    held = Counter(f.label for f in faces if f.image.name in chosen)
    totals = Counter(f.label for f in faces)
    share = ", ".join(f"{c} {held[c]}/{totals[c]}" for c in LABELS if totals[c])
    photos = len({f.group for f in faces})
    held_photos = len({f.group for f in faces if f.image.name in chosen})
    header = (
        f"# Validation images of the face-mask classifier from {source_name(source)}: {len(names)} images of "
        f"{held_photos} of its {photos} original photos, faces {share}.\n"
        f"# Made once by sanitary.evaluation.splits.make_validation_list (seed {SPLIT_SEED}, share "
        f"{VALIDATION_SHARE}): photos shuffled, taken rarest class first until each class holds ~20% of its faces.\n"
        "# Fixed from then on: it is the split the card reports; training chooses nothing on it.\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "".join(f"{name}\n" for name in names))
