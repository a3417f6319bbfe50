"""Detector plumbing with exact numbers, and the shipped models on real frames."""

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.pipeline_benchmark import Matches, load_gt, match
from sanitary.config import DetectionConfig, MaskConfig, load_camera
from sanitary.perception.boxes import Detections, iou_matrix, nms
from sanitary.perception.faces import MAX_TILES, FaceDetector, Faces, head_regions, mosaic_grid, tile_cells
from sanitary.perception.mask_classes import MaskClass
from sanitary.perception.masks import MaskClassifier
from sanitary.perception.people import (
    MODELS,
    PersonDetector,
    anchor_grid,
    decode,
    input_size,
    letterbox,
    network_input,
)
from tests.conftest import PETS_CAMERA, pets_counts


def test_iou_and_nms_exact() -> None:
    a = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    m = iou_matrix(a, a)
    assert m[0, 1] == pytest.approx(50 / 150)
    assert m[0, 2] == 0.0
    assert list(nms(a, np.array([0.9, 0.8, 0.7], np.float32), 0.3)) == [0, 2]
    assert list(nms(a, np.array([0.9, 0.8, 0.7], np.float32), 0.5)) == [0, 1, 2]


def test_input_size_follows_the_frame_shape_in_multiples_of_32() -> None:
    assert input_size(480, 360) == (384, 512)
    assert input_size(1280, 720) == (288, 512)  # 512 x 288 exactly
    assert input_size(1024, 768) == (384, 512)
    assert input_size(360, 480) == (512, 384)  # portrait
    assert input_size(1920, 1080) == input_size(1280, 720)  # the same shape, the same input, at any resolution
    assert input_size(640, 400) == (320, 512)  # 320 exactly
    assert input_size(500, 400) == (416, 512)  # 409.6 rounded up: the letterbox pads the rest


def test_letterbox_keeps_the_aspect_at_the_top_left_on_grey() -> None:
    image = np.zeros((300, 400, 3), np.uint8)
    canvas, scale = letterbox(image, 384, 512)
    assert scale == 384 / 300 and canvas.shape == (384, 512, 3)
    assert (canvas[:384, :512] == 0).all()  # 400 x 1.28 = 512: the frame fills the canvas
    canvas, scale = letterbox(np.zeros((360, 480, 3), np.uint8), 320, 512)
    assert scale == 320 / 360  # the height binds: 480 x 0.889 = 426 px wide
    assert (canvas[:, :426] == 0).all() and (canvas[:, 426:] == 114).all()


def test_network_input_of_each_model() -> None:
    canvas = np.zeros((32, 64, 3), np.uint8)
    canvas[..., 0] = 255  # pure blue in BGR
    yolox = network_input(canvas, MODELS["yolox-nano-coco"])
    assert yolox.shape == (1, 3, 32, 64) and yolox.dtype == np.float32
    assert yolox[0, :, 0, 0].tolist() == [255.0, 0.0, 0.0]  # BGR, 0..255
    bytetrack = network_input(canvas, MODELS["bytetrack-nano"])
    # RGB, /255, ImageNet mean and std: blue is the third channel.
    expected = [(0 - 0.485) / 0.229, (0 - 0.456) / 0.224, (1 - 0.406) / 0.225]
    assert bytetrack[0, :, 0, 0].tolist() == pytest.approx(expected, rel=1e-6)


def test_anchor_grid_orders_strides_then_rows() -> None:
    cells, strides = anchor_grid(64, 96)
    # 8 x 12 cells of stride 8, then 4 x 6 of 16, then 2 x 3 of 32.
    assert len(cells) == len(strides) == 96 + 24 + 6
    assert strides[[0, 95, 96, 119, 120, 125]].tolist() == [8, 8, 16, 16, 32, 32]
    assert cells[[0, 1, 12, 95, 96, 102, 125]].tolist() == [[0, 0], [1, 0], [0, 1], [11, 7], [0, 0], [0, 1], [2, 1]]


def test_decode_exact() -> None:
    raw = np.array([[0.5, 0.25, np.log(2), np.log(4)], [0, 0, np.log(3), np.log(5)]], np.float32)
    cells = np.array([[10, 20], [3, 2]], np.float32)
    boxes = decode(raw, cells, np.array([8, 32], np.float32))
    # Centre (10.5 x 8, 20.25 x 8) = (84, 162), size 16 x 32; centre (96, 64), size 96 x 160.
    np.testing.assert_allclose(boxes, [[76, 146, 92, 178], [48, -16, 144, 144]], atol=1e-4)


class ScriptedHead:
    """An ONNX session stand-in returning a given raw head output."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows
        self.shapes: list[tuple[int, ...]] = []

    def run(self, outputs: None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.shapes.append(feeds["images"].shape)
        return [self.rows[None]]


def test_detector_decodes_scores_suppresses_and_scales_back_to_the_frame() -> None:
    detector = PersonDetector(DetectionConfig(person_score=0.2))
    # A 1024 x 768 frame is seen at 512 x 384: scale 0.5, 64 x 48 + 32 x 24 + 16 x 12 anchors.
    rows = np.zeros((3072 + 768 + 192, 6), np.float32)
    person = 20 * 64 + 10  # stride 8, cell (10, 20)
    rows[person] = [0.5, 0.25, np.log(2), np.log(4), 0.9, 0.8]
    rows[person + 1] = [-0.5, 0.25, np.log(2), np.log(4), 0.8, 0.8]  # the same person, one cell right: suppressed
    edge = 3072 + 768 + 2 * 16 + 3  # stride 32, cell (3, 2): its box pokes above the frame
    rows[edge] = [0, 0, np.log(3), np.log(5), 0.5, 0.5]
    rows[100] = [0, 0, 0, 0, 0.5, 0.3]  # 0.15: below the threshold
    detector.session = ScriptedHead(rows)
    found = detector(np.zeros((768, 1024, 3), np.uint8))
    assert detector.session.shapes == [(1, 3, 384, 512)]
    assert found.scores.tolist() == pytest.approx([0.72, 0.25])
    np.testing.assert_allclose(found.boxes, [[152, 292, 184, 356], [96, 0, 288, 288]], atol=1e-3)


def test_walkable_area_drops_people_standing_outside_it() -> None:
    rows = np.zeros((3072 + 768 + 192, 6), np.float32)
    rows[20 * 64 + 10] = [0.5, 0.25, np.log(2), np.log(4), 0.9, 0.8]  # feet at (168, 356) in the frame
    rows[3072 + 768 + 2 * 16 + 3] = [0, 0, np.log(3), np.log(5), 0.5, 0.5]  # feet at (192, 288)
    detector = PersonDetector(DetectionConfig(person_score=0.2, walkable=[(0, 300), (1024, 300), (1024, 768)]))
    detector.session = ScriptedHead(rows)
    found = detector(np.zeros((768, 1024, 3), np.uint8))
    assert found.scores.tolist() == pytest.approx([0.72])


@pytest.mark.parametrize(
    ("model", "recall", "precision"), [("bytetrack-nano", 0.93, 0.88), ("yolox-nano-coco", 0.88, 0.88)]
)
def test_person_recall_and_precision_on_real_pets_frames(
    pets: Path, model: str, recall: float, precision: float
) -> None:
    camera = load_camera(PETS_CAMERA)
    detector = PersonDetector(dataclasses.replace(camera.detection, model=model))
    frames = range(0, 795, 20)
    gt = load_gt(pets / "gt_mot_480x360.txt", 795)
    total = Matches(0, 0, 0)
    for frame in frames:
        total += match(detector(cv2.imread(str(pets / "frames" / f"frame_{frame:04d}.jpg"))), gt[frame], 0.5)
    assert total.tp + total.fn == sum(len(gt[f]) for f in frames)
    assert total.recall >= recall and total.precision >= precision, (total.recall, total.precision)


def test_head_regions_only_for_people_tall_enough() -> None:
    people = Detections(np.array([[10, 10, 40, 100], [100, 50, 110, 80]], np.float32), np.ones(2, np.float32))
    regions, owners = head_regions(people, 200, 200, min_person_px=60)
    assert owners.tolist() == [0]
    square = 0.45 * 90  # wider than the box (30 px): 0.45 of its height
    top = 10 - 0.1 * square
    assert regions[0].tolist() == pytest.approx([25 - 0.4 * square, top, 25 + 0.4 * square, top + 0.8 * square])


def test_mosaic_grid_is_near_square_and_filled_row_by_row() -> None:
    assert [mosaic_grid(n) for n in (1, 2, 4, 5, 10, 16)] == [(1, 1), (2, 1), (2, 2), (3, 2), (4, 3), (4, 4)]
    assert tile_cells(5, 3) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]


def test_people_on_real_pets_frames(pets: Path) -> None:
    camera = load_camera(PETS_CAMERA)
    detector = PersonDetector(camera.detection)
    truth = pets_counts(pets)
    errors = []
    for frame in range(0, 795, 53):
        found = detector(cv2.imread(str(pets / "frames" / f"frame_{frame:04d}.jpg")))
        assert found.boxes.dtype == np.float32 and (found.scores >= camera.detection.person_score).all()
        errors.append(abs(len(found) - truth[frame]))
    assert np.mean(errors) <= 1.2


def annotated_faces(folder: Path, min_px: int, limit: int) -> list[tuple[Path, list[int]]]:
    faces = []
    for xml in sorted((folder / "annotations").glob("*.xml")):
        for box in ET.parse(xml).getroot().iter("bndbox"):
            b = [int(float(box.find(k).text)) for k in ("xmin", "ymin", "xmax", "ymax")]
            if b[2] - b[0] >= min_px:
                faces.append((folder / "images" / xml.with_suffix(".jpg").name, b))
        if len(faces) >= limit:
            return faces[:limit]
    return faces


def test_faces_found_in_head_regions_of_real_photos(pets: Path) -> None:
    masks = pets.parent / "facemask-andrewmvd"
    if not masks.is_dir():
        pytest.skip(f"face-mask photos not found at {masks}")
    detector = FaceDetector(DetectionConfig(face_min_person_px=0))
    found = 0
    faces = annotated_faces(masks, min_px=25, limit=20)
    for image_path, (x1, y1, x2, y2) in faces:
        image = cv2.imread(str(image_path))
        w, h = x2 - x1, y2 - y1
        # A person box as the person detector would give it: the face at the top, the body below.
        person = np.array([[x1 - w, y1 - 0.2 * h, x2 + w, y1 + 6 * h]], np.float32)
        result = detector(image, Detections(person, np.ones(1, np.float32)))
        assert result.landmarks.shape == (len(result), 5, 2)
        if len(result) and iou_matrix(result.boxes, np.array([[x1, y1, x2, y2]], np.float32)).max() >= 0.3:
            found += 1
    assert found >= 0.6 * len(faces)


def person_under(face: np.ndarray) -> np.ndarray:
    """A person box as the person detector would give it: the face at the top, the body below."""
    x1, y1, x2, y2 = face
    w, h = x2 - x1, y2 - y1
    return np.array([x1 - w, y1 - 0.2 * h, x2 + w, y1 + 6 * h], np.float32)


@pytest.fixture(scope="module")
def one_face(pets: Path) -> tuple[np.ndarray, np.ndarray]:
    """A real bare face 30-50 px wide with a face's width and height around it, and its box in that patch."""
    masks = pets.parent / "facemask-andrewmvd"
    if not masks.is_dir():
        pytest.skip(f"face-mask photos not found at {masks}")
    for image_path, (x1, y1, x2, y2) in annotated_faces(masks, min_px=30, limit=40):
        w, h = x2 - x1, y2 - y1
        image = cv2.imread(str(image_path))
        if w <= 50 and x1 >= w and y1 >= h and x2 + w <= image.shape[1] and y2 + h <= image.shape[0]:
            return image[y1 - h : y2 + h, x1 - w : x2 + w].copy(), np.array([w, h, 2 * w, 2 * h], np.float32)
    pytest.skip("no face 30-50 px wide with room around it")


def test_more_people_than_one_mosaic_holds_each_get_their_own_face(one_face: tuple[np.ndarray, np.ndarray]) -> None:
    patch, face = one_face
    frame = np.full((720, 1280, 3), 127, np.uint8)
    boxes = []
    for row in range(4):
        for column in range(5):
            x, y = 256 * column, 180 * row
            frame[y : y + patch.shape[0], x : x + patch.shape[1]] = patch
            boxes.append(face + np.array([x, y, x, y], np.float32))
    people = np.stack([person_under(b) for b in boxes])
    assert len(people) > MAX_TILES
    found = FaceDetector(DetectionConfig())(frame, Detections(people, np.ones(len(people), np.float32)))
    assert sorted(found.person.tolist()) == list(range(len(people)))
    assert all(iou_matrix(found.boxes[[i]], boxes[p][None])[0, 0] >= 0.5 for i, p in enumerate(found.person))


def test_a_face_at_the_rim_of_a_neighbours_square_is_left_to_its_own_person(
    one_face: tuple[np.ndarray, np.ndarray],
) -> None:
    patch, face = one_face
    frame = np.full((360, 480, 3), 127, np.uint8)
    at = np.array([200, 60, 200, 60], np.float32)
    frame[60 : 60 + patch.shape[0], 200 : 200 + patch.shape[1]] = patch
    own = person_under(face + at)
    square = max(own[2] - own[0], 0.45 * (own[3] - own[1]))
    # The neighbour stands to the left, the face's centre at 0.45 of their square from their middle.
    neighbour = own - np.array([0.45 * square, 0, 0.45 * square, 0], np.float32)
    people = Detections(np.stack([neighbour, own]), np.ones(2, np.float32))
    found = FaceDetector(DetectionConfig())(frame, people)
    assert found.person.tolist() == [1]


class ScriptedMasks:
    """Stands in for the mask classifier's session: every crop it is given reads as `with_mask`, sure."""

    def __init__(self) -> None:
        self.crops: list[int] = []

    def run_batches(self, input_name: str, items: np.ndarray) -> list[np.ndarray]:
        self.crops.append(len(items))
        return [np.tile(np.array([[0.9, 0.05, 0.05]], np.float32), (len(items), 1))]


def test_a_face_too_small_or_side_on_is_never_classified() -> None:
    classifier = MaskClassifier(MaskConfig())
    classifier.session = ScriptedMasks()
    frontal = [[10, 10], [20, 10], [15, 15], [11, 20], [19, 20]]
    side_on = [[10, 10], [20, 10], [25, 15], [11, 20], [19, 20]]  # the nose 1 eye distance off the middle
    faces = Faces(
        np.array([[0, 0, 30, 30], [40, 0, 70, 30], [80, 0, 82, 2]], np.float32),
        np.ones(3, np.float32),
        np.array([frontal, side_on, frontal], np.float32),
        np.arange(3),
    )
    readings = classifier(np.zeros((60, 100, 3), np.uint8), faces)
    assert classifier.session.crops == [1]
    assert readings.classes.tolist() == [MaskClass.WITH_MASK, MaskClass.UNKNOWN, MaskClass.UNKNOWN]
    assert readings.confidence.tolist() == pytest.approx([0.9, 0.0, 0.0])
