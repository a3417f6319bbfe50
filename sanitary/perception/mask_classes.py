"""The mask classes a face is read as: the classifier's output order, the VOC annotation and model card names,
and the value stored for a face left unread. A module of its own, without model or image code, so that the
stages downstream (tracking, analytics) and the VOC reader name the classes without loading a model."""

from __future__ import annotations

from enum import IntEnum


class MaskClass(IntEnum):
    """A face's mask reading; the values are the classifier's output indices, and are what the stages hand on."""

    UNKNOWN = -1  # seen but not read (too small, side-on, unsure): never folded into either side of a rate
    WITH_MASK = 0
    WITHOUT_MASK = 1
    INCORRECT = 2

    @property
    def label(self) -> str:
        """The class's name in VOC annotations and the model card ("unknown", which neither holds, for UNKNOWN)."""
        return _LABELS[self]

    @classmethod
    def from_label(cls, label: str) -> MaskClass:
        """The read class named `label` in an annotation or a card; ValueError for any other name."""
        if label not in LABELS:
            raise ValueError(f"{label!r} is not one of {', '.join(LABELS)}")
        return READ[LABELS.index(label)]


_LABELS = {
    MaskClass.UNKNOWN: "unknown",
    MaskClass.WITH_MASK: "with_mask",
    MaskClass.WITHOUT_MASK: "without_mask",
    MaskClass.INCORRECT: "mask_weared_incorrect",
}
# The classes the classifier outputs, in its output order, and their names in that order.
READ = (MaskClass.WITH_MASK, MaskClass.WITHOUT_MASK, MaskClass.INCORRECT)
LABELS = tuple(c.label for c in READ)
