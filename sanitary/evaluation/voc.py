"""Annotated faces from PASCAL VOC folders (`images/` + `annotations/`), as the shared face-mask set is laid out."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from sanitary.errors import SanitaryError
from sanitary.perception.mask_classes import LABELS


@dataclass(frozen=True)
class AnnotatedFace:
    image: Path
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels: the face as eval-mask reads it
    label: str  # one of the mask classes' LABELS
    # The original photo: faces of one photo are near copies of one scene, so splits and folds never part them.
    photo: str = ""
    # The annotated face inside a crop (a crop folder's source.csv has it), for training; None: `box` is the face.
    face_box: tuple[float, float, float, float] | None = None

    @property
    def group(self) -> str:
        return self.photo or self.image.name

    @property
    def training_box(self) -> tuple[float, float, float, float]:
        return self.face_box or self.box


def read_voc(folder: Path) -> list[AnnotatedFace]:
    """Every face of every annotation file, in file order; an unknown class name is an error, not a skip."""
    annotations, images = folder / "annotations", folder / "images"
    if not annotations.is_dir() or not images.is_dir():
        raise SanitaryError(f"{folder}: not a VOC folder; it needs images/ and annotations/ inside")
    faces = []
    for xml in sorted(annotations.glob("*.xml")):
        try:
            root = ET.parse(xml).getroot()
        except ET.ParseError as exc:
            raise SanitaryError(f"{xml}: not valid XML ({exc}); fix or remove the file") from None
        name = root.findtext("filename") or xml.with_suffix(".jpg").name
        image = _find_image(images, name, xml.stem)
        for obj in root.iter("object"):
            label = (obj.findtext("name") or "").strip()
            if label not in LABELS:
                raise SanitaryError(f"{xml}: class {label!r} is not one of {', '.join(LABELS)}")
            box = obj.find("bndbox")
            if box is None:
                raise SanitaryError(f"{xml}: an object of class {label} has no bndbox")
            x1, y1, x2, y2 = (float(box.findtext(k) or "nan") for k in ("xmin", "ymin", "xmax", "ymax"))
            if not (x2 > x1 and y2 > y1):
                raise SanitaryError(f"{xml}: box ({x1}, {y1}, {x2}, {y2}) is empty; fix the annotation")
            faces.append(AnnotatedFace(image, (x1, y1, x2, y2), label))
    if not faces:
        raise SanitaryError(f"{folder}: no annotated face found in annotations/*.xml")
    return faces


def _find_image(images: Path, name: str, stem: str) -> Path:
    """The annotation's image, also when it was re-encoded under another extension (PNG to JPEG)."""
    direct = images / name
    if direct.is_file():
        return direct
    for candidate in sorted(images.glob(f"{Path(name).stem or stem}.*")):
        return candidate
    raise SanitaryError(f"{images}: image {name} of its annotation is missing; restore it or drop the annotation")


def read_split(path: Path) -> set[str]:
    """Image file names, one a line: the committed validation split."""
    if not path.is_file():
        raise SanitaryError(f"{path}: split list not found")
    return {line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")}
