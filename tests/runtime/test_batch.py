"""Planning a batch: start times, consecutive files, gaps, and files set aside (no model is run here)."""

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import numpy as np

from sanitary.config import load_camera
from sanitary.runtime.batch import RunOptions, plan_batch

PARIS = ZoneInfo("Europe/Paris")


def camera(tmp_path: Path, time_table: str) -> Path:
    path = tmp_path / "cam.toml"
    path.write_text(
        f'camera_id = "c"\nsite_id = "s"\nsite_kind = "bus"\ntimezone = "Europe/Paris"\n[time]\n{time_table}'
    )
    return path


def video(path: Path, frames: int, fps: float = 10.0) -> str:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (32, 24))
    for i in range(frames):
        writer.write(np.full((24, 32, 3), i, np.uint8))
    writer.release()
    return str(path)


def test_one_start_makes_files_consecutive(tmp_path: Path) -> None:
    cam = load_camera(camera(tmp_path, 'start = "2021-03-01T08:00:00"\n'))
    a, b = video(tmp_path / "a.avi", 20), video(tmp_path / "b.avi", 30)
    plan = plan_batch([a, b], cam, RunOptions())
    start = datetime(2021, 3, 1, 8, tzinfo=PARIS)
    assert [f.job.start for f in plan.files] == [start, start + timedelta(seconds=2)]
    assert plan.continuity == [] and plan.failed == []


def test_file_name_times_gaps_and_a_file_set_aside(tmp_path: Path) -> None:
    cam = load_camera(camera(tmp_path, 'filename_pattern = "%Y%m%d_%H%M%S"\n'))
    a = video(tmp_path / "door1_20210301_080000.avi", 20)
    b = video(tmp_path / "door1_20210301_080010.avi", 20)  # starts 8 s after a ends
    c = video(tmp_path / "door1_clip.avi", 20)  # no time in its name
    plan = plan_batch([a, b, c, str(tmp_path / "missing.avi")], cam, RunOptions())
    assert [f.job.start.second for f in plan.files] == [0, 10]
    assert [(x.previous.name, round(x.seconds, 3)) for x in plan.continuity] == [("door1_20210301_080000.avi", 8.0)]
    assert sorted(Path(o.path).name for o in plan.failed) == ["door1_clip.avi", "missing.avi"]
    assert all(o.status == "failed" and o.error for o in plan.failed)
