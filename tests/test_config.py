from pathlib import Path

import pytest

from sanitary.config import load_camera, parse_start
from sanitary.errors import SanitaryError
from tests.conftest import PETS_CAMERA

BASE = 'camera_id = "c1"\nsite_id = "s1"\nsite_kind = "bus"\ntimezone = "Europe/Paris"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cam.toml"
    path.write_text(text)
    return path


def test_example_config_loads() -> None:
    cam = load_camera(PETS_CAMERA)
    assert cam.camera_id == "pets2009-view001"
    assert cam.time.fps == 7.0
    assert cam.detection.walkable[0] == (0.0, 95.0)
    assert cam.detection.model == "bytetrack-nano"


def test_defaults(tmp_path: Path) -> None:
    cam = load_camera(write(tmp_path, BASE))
    assert cam.time.window_seconds == 60
    assert cam.detection.walkable == []
    assert (cam.detection.model, cam.detection.person_score) == ("bytetrack-nano", 0.4)
    assert cam.site_kind == "bus"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("colour = 3\n", "unknown key 'colour' in the top level"),
        ("[detection]\nperson_scor = 0.3\n", "unknown key 'detection.person_scor' in [detection]"),
        ("[detection]\nperson_score = 1.5\n", "detection.person_score must be between 0 and 1"),
        ("[detection]\nperson_score = 'high'\n", "'detection.person_score' is 'high'"),
        ("[time]\nwindow_seconds = 0\n", "time.window_seconds must be a positive"),
        ("[time]\nstart = 'yesterday'\n", "start time 'yesterday' is not ISO 8601"),
        ("[detection]\nwalkable = [[0, 0], [1, 1]]\n", "walkable needs at least 3 points"),
        (
            "[detection]\nmodel = 'ssdlite'\n",
            "'detection.model' is 'ssdlite'; it must be one of 'bytetrack-nano', 'yolox-nano-coco'",
        ),
        (
            "[detection]\ntile_px = 300\n",
            "'detection.tile_px' is no longer used: the person detector now sees the whole frame in one pass",
        ),
        ("[detection]\nfull_frame = false\n", "'detection.full_frame' is no longer used"),
    ],
)
def test_bad_values_name_file_and_key(tmp_path: Path, extra: str, message: str) -> None:
    path = write(tmp_path, BASE + extra)
    with pytest.raises(SanitaryError, match=r".*") as err:
        load_camera(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_kind_timezone_missing_and_syntax(tmp_path: Path) -> None:
    for text, message in [
        (BASE.replace('"bus"', '"tram"'), "it must be one of 'market', 'bus'"),
        (BASE.replace("Europe/Paris", "Mars/Olympus"), "timezone 'Mars/Olympus' is unknown"),
        (BASE.replace('site_id = "s1"\n', ""), "missing required key 'site_id'"),
        (BASE + "[time\n", "not valid TOML"),
    ]:
        with pytest.raises(SanitaryError) as err:
            load_camera(write(tmp_path, text))
        assert message in str(err.value)
    with pytest.raises(SanitaryError, match="camera config not found"):
        load_camera(tmp_path / "absent.toml")


def test_naive_start_is_camera_local() -> None:
    cam = load_camera(PETS_CAMERA)
    start = parse_start("2021-07-01T08:00:00", cam.tz, "x")
    assert start.utcoffset().total_seconds() == 3600  # British Summer Time
