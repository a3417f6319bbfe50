"""`sanitary calibrate`: the config writer, the CSV reader, refusals, and the command on PETS."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from sanitary.config import load_camera
from sanitary.errors import SanitaryError
from sanitary.geometry.calibration import read_points_csv, write_calibration
from sanitary.geometry.homography import to_ground
from tests.conftest import PETS_CAMERA, run_cli

BASE = 'camera_id = "c"\nsite_id = "s"\nsite_kind = "market"\n'
SQUARE = "image_points = [[0, 0], [100, 0], [100, 100], [0, 100]]\nground_points = [[0, 0], [1, 0], [1, 1], [0, 1]]\n"


def test_writer_keeps_comments_and_replaces_its_own_keys(tmp_path: Path) -> None:
    path = tmp_path / "cam.toml"
    path.write_text(BASE + "# the operator's note\n[calibration]\n# measured with a tape\n" + SQUARE + "[masks]\n")
    first = write_calibration(path, np.diag([0.01, 0.01, 1.0]), 640, 480)
    second = write_calibration(path, np.diag([0.02, 0.02, 1.0]), 640, 480)
    text = path.read_text()
    assert "# the operator's note" in text and "# measured with a tape" in text
    assert text.count("homography =") == 1 and text.count("image_size =") == 1
    assert first.calibration.homography[0][0] == 0.01
    assert second.calibration.homography[0][0] == 0.02
    assert second.calibration.image_size == [640, 480]
    assert second.calibration.image_points[2] == (100.0, 100.0)
    assert "[masks]" in text


def test_writer_adds_a_table_when_there_is_none(tmp_path: Path) -> None:
    path = tmp_path / "cam.toml"
    path.write_text(BASE)
    cam = write_calibration(path, np.eye(3), 10, 10)
    assert cam.ground_homography() is not None and cam.calibration.image_size == [10, 10]


def test_points_csv(tmp_path: Path) -> None:
    good = tmp_path / "p.csv"
    good.write_text("image_x,image_y,ground_x,ground_y\n1,2,3,4\n5,6,7,8\n")
    pairs = read_points_csv(good)
    assert pairs.image.tolist() == [[1, 2], [5, 6]] and pairs.ground.tolist() == [[3, 4], [7, 8]]
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n")
    with pytest.raises(SanitaryError, match="missing column"):
        read_points_csv(bad)
    worse = tmp_path / "worse.csv"
    worse.write_text("image_x,image_y,ground_x,ground_y\n1,2,3,four\n")
    with pytest.raises(SanitaryError, match="line 2 is not four numbers"):
        read_points_csv(worse)


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ("image_points = [[0, 0], [1, 0], [1, 1]]\nground_points = [[0, 0], [1, 0], [1, 1]]\n", "4"),
        ("image_points = [[0, 0], [50, 0], [100, 0], [0, 100]]\nground_points = [[0, 0], [1, 0], [2, 0], [0, 1]]\n",
         "collinear"),
        ("image_points = [[0, 0], [0, 0], [100, 100], [0, 100]]\nground_points = [[0, 0], [1, 0], [1, 1], [0, 1]]\n",
         "the same"),
    ],
)  # fmt: skip
def test_calibrate_refuses_bad_points(tmp_path: Path, points: str, message: str) -> None:
    path = tmp_path / "cam.toml"
    path.write_text(BASE + "[calibration]\nimage_size = [200, 200]\n" + points)
    before = path.read_text()
    result = run_cli("calibrate", str(path))
    assert result.returncode == 2
    assert message in result.stderr.lower() and "Traceback" not in result.stderr
    assert path.read_text() == before


def test_calibrate_pets_with_plot(pets: Path, tmp_path: Path) -> None:
    camera = tmp_path / "pets.toml"
    camera.write_text(PETS_CAMERA.read_text())
    plot = tmp_path / "check.png"
    frame = pets / "frames" / "frame_0100.jpg"
    result = run_cli("calibrate", str(camera), "--frame", str(frame), "--plot", str(plot))
    assert result.returncode == 0, result.stderr
    assert "RMS" in result.stderr and "leave-one-out" in result.stderr
    picture = cv2.imread(str(plot))
    assert picture is not None and picture.shape[0] == 360 and picture.shape[1] > 480
    cam = load_camera(camera)
    H = cam.ground_homography()
    assert H is not None
    # A ground-truth feet point not among the eight calibration pairs (frame 0, id 15) lands within 10 cm.
    foot = np.array([[274.491 * 0.625, (263.0 + 88.702 / 2) * 0.625]])
    assert np.linalg.norm(to_ground(H, foot)[0] - [-11.3631, -5.68]) < 0.10


def test_tsai_import_through_the_command(pets: Path, tmp_path: Path) -> None:
    camera = tmp_path / "pets.toml"
    camera.write_text(PETS_CAMERA.read_text())
    xml = pets / "calibration_View_001_tsai.xml"
    result = run_cli("calibrate", str(camera), "--tsai", str(xml))
    assert result.returncode == 0, result.stderr
    H = load_camera(camera).ground_homography()
    foot = np.array([[274.491 * 0.625, (263.0 + 88.702 / 2) * 0.625]])
    assert np.linalg.norm(to_ground(H, foot)[0] - [-11.3631, -5.68]) < 0.15
