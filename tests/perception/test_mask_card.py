"""The mask classes and the mask model's card as the run time reads them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from sanitary.errors import SanitaryError
from sanitary.perception.mask_card import CARD_FILE, load_card, read_card
from sanitary.perception.mask_classes import LABELS, READ, MaskClass
from sanitary.perception.masks import MODEL_FILE
from sanitary.perception.models import WEIGHTS_DIR
from tests.conftest import run_cli


def test_mask_classes_keep_their_stored_values_and_names() -> None:
    assert [(int(c), c.label) for c in MaskClass] == [
        (-1, "unknown"),
        (0, "with_mask"),
        (1, "without_mask"),
        (2, "mask_weared_incorrect"),
    ]
    assert READ == (MaskClass.WITH_MASK, MaskClass.WITHOUT_MASK, MaskClass.INCORRECT)
    assert LABELS == ("with_mask", "without_mask", "mask_weared_incorrect")
    assert [MaskClass.from_label(name) for name in LABELS] == list(READ)
    with pytest.raises(ValueError, match="'unknown' is not one of with_mask, without_mask, mask_weared_incorrect"):
        MaskClass.from_label("unknown")


def test_shipped_card_loads_once_into_its_typed_value() -> None:
    card = load_card()
    assert load_card() is card
    assert card.sha256 == hashlib.sha256((WEIGHTS_DIR / MODEL_FILE).read_bytes()).hexdigest()
    assert card.confusion.dtype == np.int64
    assert card.confusion.tolist() == [[492, 10, 1], [1, 117, 2], [4, 0, 16]]
    with pytest.raises(ValueError, match="read-only"):
        card.confusion[0, 0] = 0


def broken_card(folder: Path, change) -> Path:
    """A copy of the shipped card in `folder`, changed in place by `change`."""
    document = json.loads((WEIGHTS_DIR / CARD_FILE).read_text())
    change(document)
    path = folder / CARD_FILE
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["validation"].pop("confusion"), "mask model card has no validation.confusion; restore"),
        (lambda d: d.pop("validation"), "mask model card has no validation; restore"),
        (lambda d: d.pop("sha256"), "mask model card has no sha256; restore"),
        (lambda d: d.update(sha256=None), "sha256 None is not the model file's hash; restore"),
        (lambda d: d["classes"].reverse(), r"classes \['mask_weared_incorrect', 'without_mask', 'with_mask'\] are not"),
        (lambda d: d["validation"]["confusion"].pop(), "validation.confusion is not 3x3 face counts; restore"),
        (lambda d: d["validation"]["confusion"][1].append(0), "validation.confusion is not 3x3 face counts"),
        (lambda d: d["validation"]["confusion"][2].__setitem__(0, 1.5), "validation.confusion is not 3x3 face counts"),
        (lambda d: d["validation"]["confusion"][2].__setitem__(0, -1), "validation.confusion is not 3x3 face counts"),
    ],
)
def test_a_broken_card_is_one_line_naming_the_file(tmp_path: Path, change, message: str) -> None:
    path = broken_card(tmp_path, change)
    with pytest.raises(SanitaryError, match=f"^{path}: {message}") as error:
        read_card(path)
    assert "\n" not in str(error.value)


def test_an_unreadable_card_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SanitaryError, match=f"^{tmp_path / 'none.json'}: mask model card unreadable"):
        read_card(tmp_path / "none.json")
    (tmp_path / "cut.json").write_text('{"classes": [')
    with pytest.raises(SanitaryError, match=f"^{tmp_path / 'cut.json'}: mask model card unreadable"):
        read_card(tmp_path / "cut.json")


def test_a_card_lacking_the_confusion_stops_the_command_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = tmp_path / "weights"
    weights.mkdir()
    for model in WEIGHTS_DIR.glob("*.onnx"):
        (weights / model.name).symlink_to(model)
    path = broken_card(weights, lambda d: d["validation"].pop("confusion"))
    (tmp_path / "faces" / "with_mask").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "faces" / "with_mask" / "a.png"), np.zeros((32, 32, 3), np.uint8))
    monkeypatch.setenv("SANITARY_WEIGHTS", str(weights))
    result = run_cli("eval-mask", str(tmp_path / "faces"))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"error: {path}: mask model card has no validation.confusion; restore the card from the repository, "
        "or retrain with `sanitary train-mask`"
    ]
