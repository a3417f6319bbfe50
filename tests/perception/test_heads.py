"""Head points: peak decoding, the two passes' scales, tiles, scoring, and the shipped head model on real photos."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from sanitary.config import HeadConfig, load_camera
from sanitary.errors import SanitaryError
from sanitary.evaluation.crowd import count_errors, matched, matched_in_boxes
from sanitary.evaluation.crowd_sources import read_source, splits
from sanitary.perception.boxes import Detections
from sanitary.perception.heads import (
    CARD_FILE,
    MODEL_FILE,
    TILE_MARGIN,
    HeadFinder,
    HeadMaps,
    HeadModel,
    Heads,
    find_peaks,
    first_scale,
    in_frame,
    model_input,
    second_scale,
    tiles,
)
from sanitary.perception.models import WEIGHTS_DIR, cpu_session
from tests.conftest import DATASETS

SHB = DATASETS / "crowd-shanghaitech-b-train"
SCUT = DATASETS / "heads-scut-a"
NOBODY = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))


def test_peaks_are_local_maxima_above_the_score_with_their_size() -> None:
    heat = np.zeros((5, 6), np.float32)
    heat[1, 1] = 0.9
    heat[1, 2] = 0.5  # beside a higher cell: not a peak
    heat[3, 4] = 0.4
    heat[4, 0] = 0.2  # a peak, below the score
    size = np.arange(30, dtype=np.float32).reshape(5, 6)
    found = find_peaks(HeadMaps(heat, size), 0.3)
    assert found.points.tolist() == [[6.0, 6.0], [18.0, 14.0]]  # (col + 0.5) * 4, (row + 0.5) * 4
    assert found.scores.tolist() == [pytest.approx(0.9), pytest.approx(0.4)]
    assert found.sizes.tolist() == [7.0, 22.0]  # size[1, 1], size[3, 4]
    assert len(find_peaks(HeadMaps(heat, size), 0.95)) == 0
    assert find_peaks(HeadMaps(np.zeros((3, 3), np.float32), np.ones((3, 3), np.float32)), 0.1).points.shape == (0, 2)


def test_first_pass_fits_a_million_pixels_within_the_cap() -> None:
    assert first_scale((720, 1280), 3_200_000) == pytest.approx((1e6 / 921_600) ** 0.5)
    assert first_scale((360, 480), 3_200_000) == pytest.approx((1e6 / 172_800) ** 0.5)
    assert first_scale((360, 480), 345_600) == pytest.approx(2**0.5)  # the cap: twice the frame's pixels
    assert first_scale((4320, 7680), 3_200_000) == 0.25  # never below a quarter


def test_second_pass_brings_the_lower_quartile_sure_head_to_the_model_size() -> None:
    sizes = np.array([8.0, 12.0, 12.0, 30.0, 40.0])  # lower quartile 12 px
    # Heads of 12 px in a 1280x720 frame, the model's size 24 px: x2, under the cap.
    assert second_scale(1.0, sizes, 24.0, (720, 1280), 4_000_000) == pytest.approx(2.0)
    # The cap: 2 million pixels allow x1.47.
    assert second_scale(1.0, sizes, 24.0, (720, 1280), 2_000_000) == pytest.approx((2e6 / 921_600) ** 0.5)
    # Large heads (a close camera, 96 px) are brought down to x0.25.
    assert second_scale(1.0, np.full(5, 96.0), 24.0, (720, 1280), 4_000_000) == pytest.approx(0.25)
    # Within x1.25 of the first pass, or too few sure heads to measure: the first pass stands.
    assert second_scale(1.0, np.full(5, 21.0), 24.0, (720, 1280), 4_000_000) == 1.0
    assert second_scale(1.1, np.array([8.0, 8.0]), 24.0, (720, 1280), 4_000_000) == 1.1


def test_tile_cores_partition_the_input_and_windows_fit() -> None:
    assert tiles(720, 1280) == tiles(720, 1280, 1_048_576)
    assert len(tiles(720, 1280)) == 1  # 921,600 pixels: one pass
    grid = tiles(1536, 2048, 1_048_576)
    cover = np.zeros((1536, 2048), np.int32)
    for tile in grid:
        y0, y1, x0, x1 = tile.window
        cy0, cy1, cx0, cx1 = tile.core
        assert (y1 - y0) * (x1 - x0) <= 1_048_576
        assert all(v % 16 == 0 for v in (*tile.window, *tile.core))
        assert y0 <= cy0 < cy1 <= y1 and x0 <= cx0 < cx1 <= x1
        # Context on every side that is not the input's edge.
        assert (cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1) == (
            TILE_MARGIN if cy0 else 0,
            TILE_MARGIN if cy1 < 1536 else 0,
            TILE_MARGIN if cx0 else 0,
            TILE_MARGIN if cx1 < 2048 else 0,
        )
        cover[cy0:cy1, cx0:cx1] += 1
    assert (cover == 1).all()
    assert len(grid) == 4  # 2x2 of 1088x832 windows: the least total area that fits


def test_model_input_is_rgb_padded_to_multiples_of_16() -> None:
    image = np.zeros((50, 100, 3), np.uint8)
    image[..., 0] = 255  # blue in BGR
    rgb = model_input(image, 1.0)
    assert rgb.shape == (1, 64, 112, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0, 0].tolist() == [0, 0, 255] and rgb[0, 60, 0].tolist() == [0, 0, 0]
    assert model_input(image, 2.0).shape == (1, 112, 208, 3)


def test_heads_come_back_in_frame_pixels_without_the_padding() -> None:
    found = Heads(
        np.array([[20.0, 10.0], [210.0, 10.0], [20.0, 106.0]], np.float32),
        np.array([0.9, 0.8, 0.7], np.float32),
        np.array([30.0, 30.0, 10.0], np.float32),
    )
    heads = in_frame(found, 2.0, (50, 100))
    assert heads.points.tolist() == [[10.0, 5.0]]  # the others fall in the padding beyond 100x50
    assert heads.sizes.tolist() == [15.0] and heads.scores.tolist() == [pytest.approx(0.9)]


def test_matching_within_a_radius_is_one_to_one() -> None:
    truth = np.array([[0, 0], [10, 0], [50, 50]], np.float32)
    found = np.array([[1, 0], [2, 0], [50, 58], [100, 100]], np.float32)
    # (1,0)->(0,0) and not (2,0), which is the only one within 8 of (10,0); (50,58) is exactly 8 away.
    assert matched(found, truth, 8.0) == 3
    assert matched(found, truth, 7.9) == 1
    assert matched(found[:0], truth, 8.0) == 0


def test_count_errors() -> None:
    errors = count_errors(np.array([8, 12, 0]), np.array([10, 10, 0]))
    assert (errors.mae, errors.mean_error, errors.images) == (pytest.approx(4 / 3), 0.0, 3)
    assert errors.rmse == pytest.approx((8 / 3) ** 0.5)
    assert errors.mean_relative_error == pytest.approx(0.2)  # images with no heads are left out


def test_heads_section_is_validated(tmp_path: Path) -> None:
    base = 'camera_id = "c"\nsite_id = "s"\nsite_kind = "market"\n'
    path = tmp_path / "cam.toml"
    path.write_text(base + "[heads]\nevery_s = 2.5\n")
    assert load_camera(path).heads.every_s == 2.5
    path.write_text(base + "[heads]\nmin_score = 1.5\n")
    with pytest.raises(SanitaryError, match=r"heads\.min_score must be between 0 and 1"):
        load_camera(path)


# ---------------------------------------------------------------- the shipped model


def _card() -> dict:
    return json.loads((WEIGHTS_DIR / CARD_FILE).read_text())


def test_default_score_is_the_cards() -> None:
    assert HeadConfig().min_score == _card()["decision"]["min_score"]


@pytest.fixture(scope="module")
def finder() -> HeadFinder:
    # The card's score, whatever the config's default: these test the model.
    return HeadFinder(HeadConfig(threads=2, min_score=_card()["decision"]["min_score"]))


@pytest.mark.parametrize("grey", [0, 128])
def test_shipped_model_finds_nothing_in_a_blank_frame(finder: HeadFinder, grey: int) -> None:
    assert len(finder(np.full((360, 480, 3), grey, np.uint8), NOBODY)) == 0


def test_tiles_find_the_heads_of_one_pass_on_a_real_photo() -> None:
    if not (SHB / "counts.csv").is_file():
        pytest.skip(f"ShanghaiTech B train split not found at {SHB} (see ../shared/datasets/README.md)")
    session = cpu_session(WEIGHTS_DIR / MODEL_FILE, 2)
    rgb = model_input(cv2.imread(str(SHB / "images" / "IMG_20.jpg")), 1.25)  # 1280x960: 4 tiles of 400,000
    assert len(tiles(960, 1280, 400_000)) == 4
    one, tiled = HeadModel(session, 10**9)(rgb), HeadModel(session, 400_000)(rgb)
    min_score = _card()["decision"]["min_score"]
    a, b = find_peaks(one, min_score), find_peaks(tiled, min_score)
    assert len(a) > 50 and len(a) == len(b) == matched(a.points, b.points, 4.0)  # every head within a cell
    assert np.abs(one.heat - tiled.heat).max() < 0.02


def _photos(data: Path, picked: slice) -> list:
    source = read_source(data)
    return [(cv2.imread(str(source.path(i.name))), i) for i in source.select(splits(source).validation[picked])]


def test_shipped_model_counts_street_validation_photos(finder: HeadFinder) -> None:
    if not (SHB / "counts.csv").is_file():
        pytest.skip(f"ShanghaiTech B train split not found at {SHB} (see ../shared/datasets/README.md)")
    photos = _photos(SHB, slice(None, None, 10))  # 8 photos across the list
    found = np.array([len(finder(image, NOBODY)) for image, _ in photos])
    errors = count_errors(found, np.array([len(truth.points) for _, truth in photos]))
    # Measured with the shipped model on these 8 photos: MAE 22.6, mean relative error 0.160 (found 173 37 60 192 68
    # 130 24 67 against 233 30 67 253 65 161 26 77: dense streets undercounted); the bounds leave a head or two for
    # other onnxruntime builds.
    assert errors.mae <= 24.0
    assert errors.mean_relative_error <= 0.17


def test_shipped_model_finds_seated_heads_and_their_size(finder: HeadFinder) -> None:
    if not (SCUT / "heads.csv").is_file():
        pytest.skip(f"SCUT-HEAD part A not found at {SCUT} (see ../shared/datasets/README.md)")
    photos = _photos(SCUT, slice(None, None, 12))  # 9 photos of rooms never trained on
    hits = n_found = n_true = 0
    ratios = []
    for image, truth in photos:
        heads = finder(image, NOBODY)
        hits += matched_in_boxes(heads.points, truth.boxes)
        n_found, n_true = n_found + len(heads), n_true + len(truth.points)
        if len(heads):
            ratios.append(np.median(heads.sizes) / np.median(truth.sizes))
    # Measured: 521 of 606 points in 521 of 629 boxes (precision 0.860, recall 0.828); median size ratio 0.87 (one
    # photo, a room seen from much higher, gave no head at all).
    assert hits / n_found >= 0.84 and hits / n_true >= 0.81
    assert 0.75 <= np.median(ratios) <= 1.1  # sizes in frame pixels, from the size output at each peak
