"""The mask report's arithmetic, on faces counted by hand."""

from __future__ import annotations

from sanitary.evaluation.mask_eval import report
from sanitary.perception.mask_classes import MaskClass

WITH, WITHOUT, INCORRECT, UNKNOWN = MaskClass.WITH_MASK, MaskClass.WITHOUT_MASK, MaskClass.INCORRECT, MaskClass.UNKNOWN


def test_macro_f1_averages_the_classes_the_faces_hold() -> None:
    # No bare face (a crop set of drawn-on masks): with_mask P 1 R 1/3, incorrect P 2/3 R 1, unknown a miss.
    result = report([WITH, WITH, WITH, INCORRECT, INCORRECT], [WITH, INCORRECT, UNKNOWN, INCORRECT, INCORRECT])
    assert result.confusion == [[1, 0, 1, 1], [0, 0, 0, 0], [0, 0, 2, 0]]
    assert round(result.per_class["with_mask"].f1, 4) == 0.5
    assert round(result.per_class["mask_weared_incorrect"].f1, 4) == 0.8
    assert round(result.macro_f1, 4) == 0.65
    assert result.accuracy == 0.6 and result.coverage == 0.8


def test_a_class_only_predicted_still_lowers_the_others() -> None:
    result = report([WITH, WITH], [WITH, WITHOUT])
    assert result.per_class["without_mask"].support == 0
    assert round(result.macro_f1, 4) == round(result.per_class["with_mask"].f1, 4) == 0.6667
