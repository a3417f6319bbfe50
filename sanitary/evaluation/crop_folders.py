"""Face crops in class folders (`with_mask/`, `without_mask/`, `mask_weared_incorrect/`), as many mask data sets
come, with the optional `source.csv` that says which photo each crop was cut from and where its face is.

The whole crop is the face as `eval-mask` reads it (a crop set's faces are cut close, and a user's crops come
without any box). `source.csv`, when present, adds what training needs: the original photo (`source_image`), so
that crops of one photo stay on one side of a split, and the annotated face box inside the crop (`box_*` within
`crop_*` of the original photo, scaled to the saved crop), so that training can cut it with the pipeline's margin
as well as close.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2

from sanitary.capture.sources import IMAGE_SUFFIXES
from sanitary.errors import SanitaryError
from sanitary.evaluation.voc import AnnotatedFace
from sanitary.perception.mask_classes import LABELS

SOURCE_FILE = "source.csv"
BOX_COLUMNS = ("box_xmin", "box_ymin", "box_xmax", "box_ymax")
CROP_COLUMNS = ("crop_xmin", "crop_ymin", "crop_xmax", "crop_ymax")


def is_crop_folder(folder: Path) -> bool:
    return any((folder / name).is_dir() for name in LABELS)


def read_crop_folder(folder: Path) -> list[AnnotatedFace]:
    """Every image of the class subfolders, in class then name order; the face is the whole image."""
    rows = _source_rows(folder)
    faces = []
    for label in LABELS:
        if not (folder / label).is_dir():
            continue
        for image in sorted((folder / label).iterdir()):
            if image.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            pixels = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
            if pixels is None:
                raise SanitaryError(f"{image}: cannot decode this image; remove it or re-export it")
            h, w = pixels.shape[:2]
            row = rows.get(f"{label}/{image.name}")
            faces.append(
                AnnotatedFace(
                    image,
                    (0.0, 0.0, float(w), float(h)),
                    label,
                    photo=row["source_image"] if row and row.get("source_image") else "",
                    face_box=_face_in_crop(row, w, h, folder) if row else None,
                )
            )
    if not faces:
        raise SanitaryError(f"{folder}: no image in its class folders ({', '.join(LABELS)})")
    return faces


def _source_rows(folder: Path) -> dict[str, dict[str, str]]:
    path = folder / SOURCE_FILE
    if not path.is_file():
        return {}
    try:
        with path.open(newline="") as file:
            rows = list(csv.DictReader(file))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SanitaryError(f"{path}: unreadable ({exc}); restore it or remove it") from None
    if rows and "crop" not in rows[0]:
        raise SanitaryError(f"{path}: no `crop` column; it must name each crop as class/file")
    return {row["crop"]: row for row in rows}


def _face_in_crop(
    row: dict[str, str], width: int, height: int, folder: Path
) -> tuple[float, float, float, float] | None:
    if not all(row.get(k) for k in (*BOX_COLUMNS, *CROP_COLUMNS)):
        return None
    try:
        bx1, by1, bx2, by2 = (float(row[k]) for k in BOX_COLUMNS)
        cx1, cy1, cx2, cy2 = (float(row[k]) for k in CROP_COLUMNS)
    except ValueError:
        raise SanitaryError(f"{folder / SOURCE_FILE}: {row['crop']}: box or crop is not numbers") from None
    if not (cx2 > cx1 and cy2 > cy1 and bx2 > bx1 and by2 > by1):
        raise SanitaryError(f"{folder / SOURCE_FILE}: {row['crop']}: empty box or crop")
    sx, sy = width / (cx2 - cx1), height / (cy2 - cy1)  # the saved crop may have been shrunk
    return ((bx1 - cx1) * sx, (by1 - cy1) * sy, (bx2 - cx1) * sx, (by2 - cy1) * sy)
