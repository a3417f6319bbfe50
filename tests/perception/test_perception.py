"""Detector plumbing with exact numbers, and the shipped models on real frames."""

import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest

from sanitary.config import DetectionConfig, load_camera
from sanitary.perception.boxes import Detections, iou_matrix, nms
from sanitary.perception.faces import FaceDetector, head_regions
from sanitary.perception.people import PersonDetector, merge_tiles, tile_grid, walkable_roi
from tests.conftest import PETS_CAMERA, pets_counts


def test_iou_and_nms_exact() -> None:
    a = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    m = iou_matrix(a, a)
    assert m[0, 1] == pytest.approx(50 / 150)
    assert m[0, 2] == 0.0
    assert list(nms(a, np.array([0.9, 0.8, 0.7], np.float32), 0.3)) == [0, 2]
    assert list(nms(a, np.array([0.9, 0.8, 0.7], np.float32), 0.5)) == [0, 1, 2]


def test_tiles_cover_the_region_and_grow_towards_the_camera() -> None:
    tiles = tile_grid((0, 40, 480, 360), near_px=300, far_px=150, overlap=0.2)
    sizes = tiles[:, 2] - tiles[:, 0]
    assert (tiles[:, 3] - tiles[:, 1] == sizes).all()
    assert tiles[:, 0].min() == 0 and tiles[:, 2].max() == 480
    assert tiles[:, 1].min() == 40 and tiles[:, 3].max() == 360
    assert sizes[0] == 150 and sizes[-1] == sizes.max() <= 300
    covered = np.zeros((360, 480), bool)
    for x0, y0, x1, y1 in tiles:
        covered[y0:y1, x0:x1] = True
    assert covered[40:, :].all()
    uniform = tile_grid((0, 0, 480, 360), near_px=200, far_px=200, overlap=0.25)
    # Two rows of 200 px cannot cover 360 px with 50 px shared, so three rows spread evenly.
    assert sorted(set(uniform[:, 1].tolist())) == [0, 80, 160]
    assert sorted(set(uniform[:, 0].tolist())) == [0, 140, 280]
    assert set((uniform[:, 2] - uniform[:, 0]).tolist()) == {200}


def test_walkable_roi_leaves_head_room_above_the_feet() -> None:
    assert walkable_roi([], 480, 360) == (0, 0, 480, 360)
    assert walkable_roi([(10, 100), (400, 100), (400, 300)], 480, 360) == (10, 46, 400, 300)


def test_fragments_cut_by_a_tile_edge_are_merged() -> None:
    boxes = np.array(
        [[100, 100, 130, 180], [100, 100, 130, 135], [200, 100, 230, 180], [205, 100, 235, 180]], np.float32
    )
    scores = np.array([0.6, 0.9, 0.8, 0.7], np.float32)
    # The head-only fragment (0.9) lies inside the whole person (0.6); the two overlapping people are one.
    assert sorted(merge_tiles(boxes, scores).tolist()) == [0, 2]


def test_head_regions_only_for_people_tall_enough() -> None:
    people = Detections(np.array([[10, 10, 40, 100], [100, 50, 110, 80]], np.float32), np.ones(2, np.float32))
    regions, owners = head_regions(people, 200, 200, min_person_px=60)
    assert owners.tolist() == [0]
    side = 0.45 * 90
    assert regions[0].tolist() == pytest.approx([25 - side / 2, 10 - 0.1 * side, 25 + side / 2, 10 + 0.9 * side])


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


def test_default_tiles_scale_with_the_frame() -> None:
    detector = PersonDetector(DetectionConfig())
    small, large, wide = detector.tiles_for(480, 360), detector.tiles_for(1280, 960), detector.tiles_for(1920, 1080)
    assert len(small) == len(large) == 9  # the same shape of frame, the same tiles, whatever the resolution
    assert set((small[:, 2] - small[:, 0]).tolist()) == {198}
    assert set((large[:, 2] - large[:, 0]).tolist()) == {528}
    assert len(wide) == 12 and set((wide[:, 2] - wide[:, 0]).tolist()) == {594}
