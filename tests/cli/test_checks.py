"""The commands' numbers and times checked before anything is read (issue 16, point 9), and footage whose frames
do not fit the camera config failing its file with the reason (points 2 and 4)."""

from __future__ import annotations

from pathlib import Path

import cv2
import duckdb
import numpy as np
import pytest
from typer.testing import CliRunner

from sanitary.cli.app import app
from tests.conftest import PETS_CAMERA

CAMERA = 'camera_id = "c1"\nsite_id = "s1"\nsite_kind = "market"\n[time]\nfps = 5\n'


def clip(path: Path, width: int, height: int, frames: int = 3) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 7, (width, height))
    for i in range(frames):
        writer.write(np.full((height, width, 3), 40 * i, np.uint8))
    writer.release()
    return path


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--fps", "0", "--fps is 0; it must be a number at least 0.01 and at most 1000"),
        ("--fps", "-5", "--fps is -5; it must be a number at least 0.01"),
        ("--sample-fps", "0", "--sample-fps is 0; it must be a number above 0"),
        ("--sample-fps", "-1", "--sample-fps is -1; it must be a number above 0"),
        ("--sample-fps", "nan", "--sample-fps is nan"),
        ("--workers", "0", "--workers is 0; it must be a number at least 1"),
        ("--start", "", "--start: start time '' is not ISO 8601"),
        ("--start", "9999-01-01T00:00:00", "--start: 9999-01-01T00:00:00 is not between 1970 and 2100"),
    ],
)
def test_run_refuses_bad_numbers_before_reading_anything(tmp_path: Path, option: str, value: str, message: str) -> None:
    camera = tmp_path / "cam.toml"
    camera.write_text(CAMERA)
    db = tmp_path / "a.duckdb"
    args = ["run", str(tmp_path / "missing.avi"), "--camera", str(camera), "--db", str(db), option, value]
    result = CliRunner().invoke(app, [*args, "--start", "2021-03-01T08:00:00"] if option != "--start" else args)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [f"error: {result.stderr.strip()[7:]}"]
    assert message in result.stderr
    assert not db.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "--from", "9999-01-01", "--to", "9999-01-02"], "--from: 9999-01-01 is not between 1970 and 2100"),
        (["export", "--since", "0001-01-01T00:00:00"], "--since: 0001-01-01T00:00:00 is not between 1970 and 2100"),
        (["export", "--since", ""], "--since: start time '' is not ISO 8601"),
        (["export", "--purge-days", "inf"], "--purge-days is inf; it must be a number at least 0"),
    ],
)
def test_officials_commands_refuse_times_and_numbers_out_of_range(
    tmp_path: Path, args: list[str], message: str
) -> None:
    db = tmp_path / "a.duckdb"
    result = CliRunner().invoke(app, [*args, "--db", str(db), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert not db.exists()


def test_frames_that_do_not_fit_the_config_fail_their_file_with_the_reason(tmp_path: Path) -> None:
    # The PETS config (480x360): the same shape at 240x180 is analysed, rescaled; a 1x1 video and a 320x180 one
    # fail, each with its run row `failed` and the reason.
    files = [
        clip(tmp_path / "tiny.avi", 1, 1),
        clip(tmp_path / "half.avi", 240, 180),
        clip(tmp_path / "wide.avi", 320, 180),
    ]
    db = tmp_path / "a.duckdb"
    result = CliRunner().invoke(
        app,
        ["run", *map(str, files), "--camera", str(PETS_CAMERA), "--db", str(db), "--without-signage", "test",
         "--start", "2009-03-01T12:00:00"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "error: the frames are 1x1 pixels, too small" in result.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        rows = dict(
            con.execute(
                "SELECT regexp_extract(source_path, '[a-z]+\\.avi'), status || ': ' || coalesce(error, '') FROM runs"
            ).fetchall()
        )
    assert rows["half.avi"] == "done: "
    assert rows["tiny.avi"].startswith("failed: the frames are 1x1 pixels, too small to find anyone in")
    assert rows["wide.avi"].startswith(
        f"failed: {PETS_CAMERA}: calibration.image_size is 480x360 but the frames are 320x180"
    )


def test_a_file_name_time_outside_the_span_fails_that_file_at_planning(tmp_path: Path) -> None:
    from sanitary.config import load_camera
    from sanitary.runtime.runs import RunOptions, plan_batch

    camera = tmp_path / "cam.toml"
    camera.write_text(CAMERA + 'filename_pattern = "%Y%m%d_%H%M%S"\n')
    far = clip(tmp_path / "door_99990301_080000.avi", 64, 48)
    plan = plan_batch([str(far)], load_camera(camera), RunOptions())
    assert plan.files == []
    (failed,) = plan.set_aside
    assert failed.status == "failed"
    assert (
        failed.error
        == f"{far}: the time in the file name: 9999-03-01T08:00:00+00:00 is not between 1970 and 2100; check the year"
    )
