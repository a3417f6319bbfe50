"""Crowd sources: reading point and box folders, the committed splits, and the rule that drew them."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from sanitary.errors import SanitaryError
from sanitary.evaluation.crowd_sources import SPLITS_DIR, read_list, read_source, split_by_count, splits
from tests.conftest import DATASETS

SHB = DATASETS / "crowd-shanghaitech-b-train"
SCUT = DATASETS / "heads-scut-a"


def _folder(root: Path, heads: str, counts: str) -> Path:
    (root / "images").mkdir(parents=True)
    (root / ("heads.csv" if heads.startswith("image,x1") else "points.csv")).write_text(heads)
    (root / "counts.csv").write_text(counts)
    return root


def test_a_box_is_a_point_at_its_centre_with_its_area_side(tmp_path: Path) -> None:
    data = _folder(
        tmp_path / "boxes",
        "image,x1,y1,x2,y2\nb.jpg,10,20,14,29\nb.jpg,0,0,8,8\n",
        "image,n_heads\na.jpg,0\nb.jpg,2\n",
    )
    source = read_source(data)
    assert (source.name, source.kind, list(source.images)) == ("boxes", "boxes", ["a.jpg", "b.jpg"])
    b = source.images["b.jpg"]
    assert b.points.tolist() == [[12.0, 24.5], [4.0, 4.0]]
    assert b.sizes.tolist() == [6.0, 8.0]  # sqrt(4 x 9), sqrt(8 x 8)
    assert source.images["a.jpg"].points.shape == (0, 2) and source.images["a.jpg"].boxes.shape == (0, 4)
    assert source.path("b.jpg") == data / "images" / "b.jpg"


def test_a_point_source_has_no_sizes_and_is_in_natural_order(tmp_path: Path) -> None:
    data = _folder(
        tmp_path / "points",
        "image,x,y\nIMG_10.jpg,1,2\nIMG_2.jpg,3,4\nIMG_2.jpg,5,6\n",
        "image,n_heads,width,height\nIMG_10.jpg,1,8,8\nIMG_2.jpg,2,8,8\n",
    )
    source = read_source(data)
    assert source.kind == "points" and list(source.images) == ["IMG_2.jpg", "IMG_10.jpg"]
    assert source.images["IMG_2.jpg"].points.tolist() == [[3.0, 4.0], [5.0, 6.0]]
    assert source.images["IMG_2.jpg"].boxes is None and source.images["IMG_2.jpg"].sizes is None


@pytest.mark.parametrize(
    ("heads", "counts", "message"),
    [
        ("image,x,y\na.jpg,1,2\n", "image,n_heads\na.jpg,2\n", "a.jpg: counts.csv and points.csv disagree"),
        ("image,x,y\nz.jpg,1,2\n", "image,n_heads\n", "z.jpg: counts.csv and points.csv disagree"),
        ("image,x,y\na.jpg,1,oops\n", "image,n_heads\na.jpg,1\n", "points.csv needs image,x,y"),
    ],
)
def test_bad_source_is_one_clear_error(tmp_path: Path, heads: str, counts: str, message: str) -> None:
    with pytest.raises(SanitaryError, match=message):
        read_source(_folder(tmp_path / "bad", heads, counts))
    with pytest.raises(SanitaryError, match=r"points.csv: missing; a crowd source holds images/, counts.csv"):
        read_source(tmp_path)


def test_splits_read_the_lists_and_give_the_rest_to_training(tmp_path: Path) -> None:
    counts = "image,n_heads\n" + "".join(f"p{i}.jpg,0\n" for i in range(1, 7))
    source = read_source(_folder(tmp_path / "src", "image,x,y\n", counts))
    lists = tmp_path / "lists" / "src"
    lists.mkdir(parents=True)
    (lists / "validation.txt").write_text("# header\np5.jpg\np2.jpg\n")
    (lists / "tuning.txt").write_text("p3.jpg\n")
    got = splits(source, tmp_path / "lists")
    assert (got.train, got.tuning, got.validation) == (["p1.jpg", "p4.jpg", "p6.jpg"], ["p3.jpg"], ["p2.jpg", "p5.jpg"])
    (lists / "tuning.txt").write_text("p2.jpg\n")
    with pytest.raises(SanitaryError, match=r"p2\.jpg is in both its validation and tuning lists"):
        splits(source, tmp_path / "lists")
    (lists / "tuning.txt").write_text("p9.jpg\n")
    with pytest.raises(SanitaryError, match=r"p9\.jpg is not in"):
        splits(source, tmp_path / "lists")
    (lists / "tuning.txt").unlink()
    with pytest.raises(SanitaryError, match=r"tuning\.txt: split list missing"):
        splits(source, tmp_path / "lists")


def test_split_takes_one_per_run_of_head_counts() -> None:
    names = [f"IMG_{i}.jpg" for i in range(1, 12)]
    counts = [50, 10, 40, 20, 30, 100, 90, 80, 70, 60, 5]
    # By count: IMG_11 IMG_2 IMG_4 IMG_5 IMG_3 | IMG_1 IMG_10 IMG_9 IMG_8 IMG_7 | IMG_6; seed 0 draws 4, 3, 0.
    draws = np.random.default_rng(0)
    assert [int(draws.integers(5)), int(draws.integers(5)), int(draws.integers(1))] == [4, 3, 0]
    assert split_by_count(names, counts, 5, seed=0) == ["IMG_3.jpg", "IMG_6.jpg", "IMG_8.jpg"]


def test_shanghaitech_lists_are_the_seeded_rule_over_the_data() -> None:
    if not (SHB / "points.csv").is_file():
        pytest.skip(f"ShanghaiTech B train split not found at {SHB} (see ../shared/datasets/README.md)")
    source = read_source(SHB)
    names = list(source.images)
    count = {n: len(source.images[n].points) for n in names}
    got = splits(source)
    assert (len(got.train), len(got.tuning), len(got.validation)) == (280, 40, 80)
    assert got.validation == split_by_count(names, [count[n] for n in names], 5)
    rest = [n for n in names if n not in set(got.validation)]
    assert got.tuning == split_by_count(rest, [count[n] for n in rest], 8)


def test_scut_validation_is_whole_rooms_never_trained_or_tuned_on() -> None:
    if not (SCUT / "heads.csv").is_file():
        pytest.skip(f"SCUT-HEAD part A not found at {SCUT} (see ../shared/datasets/README.md)")
    source = read_source(SCUT)
    assert source.kind == "boxes" and len(source.images) == 800
    with (SPLITS_DIR / source.name / "rooms.csv").open() as f:
        room = {row["image"]: row["room"] for row in csv.DictReader(line for line in f if not line.startswith("#"))}
    got = splits(source)
    assert (len(got.train), len(got.tuning), len(got.validation)) == (629, 70, 101)
    assert {room[n] for n in got.validation} == {"other"}
    assert {room[n] for n in got.train + got.tuning} == {"1-401", "1-403"}
    big = [n for n in source.images if room[n] != "other"]
    assert got.tuning == split_by_count(big, [len(source.images[n].points) for n in big], 10)
    assert read_list(SPLITS_DIR / source.name / "validation.txt") == got.validation
