"""Mask data as it comes from several sources: crop folders with their source.csv, and the validation splits that
keep every face of one original photo on one side."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from sanitary.errors import SanitaryError
from sanitary.evaluation.crop_folders import read_crop_folder
from sanitary.evaluation.mask_eval import load_faces
from sanitary.evaluation.splits import SPLITS, make_validation_list, split_file
from sanitary.evaluation.voc import AnnotatedFace, read_split, read_voc
from tests.conftest import DATASETS

COLUMNS = ["crop", "label", "box_xmin", "box_ymin", "box_xmax", "box_ymax"]
COLUMNS += ["crop_xmin", "crop_ymin", "crop_xmax", "crop_ymax", "source_image"]


def crop_folder(root: Path, rows: list[tuple[str, tuple[int, int], list[float], str]]) -> Path:
    """Crops of the given (class/name, (width, height)) with source.csv rows: box and crop, then the photo."""
    with (root / "source.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for crop, (w, h), numbers, photo in rows:
            path = root / crop
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), np.full((h, w, 3), 90, np.uint8))
            writer.writerow([crop, crop.split("/")[0], *numbers, photo])
    return root


def test_a_crop_is_the_face_and_source_csv_places_the_annotated_box_in_it(tmp_path: Path) -> None:
    folder = crop_folder(
        tmp_path,
        [
            # Cut at (100, 50)-(200, 250) of the photo and saved at half size: the box lands at half its offsets.
            ("with_mask/a_00.jpg", (50, 100), [120, 70, 180, 230, 100, 50, 200, 250], "JPEGImages/a.jpg"),
            ("mask_weared_incorrect/a_01.jpg", (40, 40), [10, 10, 30, 30, 0, 0, 40, 40], "JPEGImages/a.jpg"),
        ],
    )
    (folder / "without_mask").mkdir()
    cv2.imwrite(str(folder / "without_mask" / "no_row.png"), np.zeros((30, 20, 3), np.uint8))
    (folder / "without_mask" / "notes.txt").write_text("not an image")
    faces = read_crop_folder(folder)
    assert [(f.image.name, f.label, f.box, f.face_box, f.group) for f in faces] == [
        ("a_00.jpg", "with_mask", (0.0, 0.0, 50.0, 100.0), (10.0, 10.0, 40.0, 90.0), "JPEGImages/a.jpg"),
        ("no_row.png", "without_mask", (0.0, 0.0, 20.0, 30.0), None, "no_row.png"),
        ("a_01.jpg", "mask_weared_incorrect", (0.0, 0.0, 40.0, 40.0), (10.0, 10.0, 30.0, 30.0), "JPEGImages/a.jpg"),
    ]
    assert faces[0].training_box == (10.0, 10.0, 40.0, 90.0) and faces[1].training_box == (0.0, 0.0, 20.0, 30.0)
    assert load_faces(folder, {"a_01.jpg"}) == faces[2:]


def test_a_broken_source_csv_is_one_line_naming_it(tmp_path: Path) -> None:
    folder = crop_folder(tmp_path, [("with_mask/a.jpg", (20, 20), [1, 1, 0, 9, 0, 0, 20, 20], "p.jpg")])
    with pytest.raises(SanitaryError, match=f"^{folder / 'source.csv'}: with_mask/a.jpg: empty box or crop$"):
        read_crop_folder(folder)
    (folder / "source.csv").write_text("name,label\nwith_mask/a.jpg,with_mask\n")
    with pytest.raises(SanitaryError, match=r"source\.csv: no `crop` column"):
        read_crop_folder(folder)


def faces_of(photos: dict[str, list[str]]) -> list[AnnotatedFace]:
    """Crops named photo_k.jpg, grouped by photo."""
    return [
        AnnotatedFace(Path(f"{photo}_{k}.jpg"), (0, 0, 10, 10), label, photo=photo)
        for photo, labels in photos.items()
        for k, label in enumerate(labels)
    ]


def test_a_split_keeps_each_photo_whole_and_takes_a_fifth_of_each_class() -> None:
    rng = np.random.default_rng(3)
    labels = ("with_mask", "without_mask", "mask_weared_incorrect")
    photos = {f"p{i}": [labels[j] for j in rng.choice(3, rng.integers(1, 4), p=[0.6, 0.3, 0.1])] for i in range(300)}
    faces = faces_of(photos)
    chosen = set(make_validation_list(faces))
    assert make_validation_list(faces) == sorted(chosen)  # seeded: the same list every time
    for photo, group in photos.items():
        names = {f"{photo}_{k}.jpg" for k in range(len(group))}
        assert names <= chosen or not names & chosen, photo
    held = Counter(f.label for f in faces if f.image.name in chosen)
    totals = Counter(f.label for f in faces)
    for label in labels:
        assert 0.15 <= held[label] / totals[label] <= 0.25, (label, held, totals)


def test_the_committed_splits_are_the_seeded_rule_over_each_shared_source() -> None:
    sources = [DATASETS / name for name in ("facemask-andrewmvd", "facemask-extra-ilc2021")]
    sources.append(DATASETS / "facemask-extra-maskedfacenet")
    missing = [str(s) for s in sources if not s.is_dir()]
    if missing:
        pytest.skip(f"face-mask sources not found: {', '.join(missing)} (see ../shared/datasets/README.md)")
    for source in sources:
        faces = read_voc(source) if (source / "annotations").is_dir() else read_crop_folder(source)
        assert set(make_validation_list(faces)) == read_split(split_file(SPLITS, source)), source
