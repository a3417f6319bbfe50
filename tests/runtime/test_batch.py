"""Planning a batch: start times, consecutive files, gaps, files set aside, and the parameters that decide whether
a file is done (no model is run here)."""

import dataclasses
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest

from sanitary.config import (
    AlertRule,
    CameraConfig,
    DetectionConfig,
    PrivacyConfig,
    PrivacyMask,
    TimeConfig,
    default_camera,
    load_camera,
)
from sanitary.runtime import batch
from sanitary.runtime.batch import FileResult, run_batch
from sanitary.runtime.runs import FileJob, RunOptions, SetAside, params_hash, plan_batch, run_params
from sanitary.storage.store import Store
from tests.conftest import NO_SIGN, PETS_CAMERA, ROOT

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
    assert plan.continuity == [] and plan.set_aside == []


def test_file_name_times_gaps_and_a_file_set_aside(tmp_path: Path) -> None:
    cam = load_camera(camera(tmp_path, 'filename_pattern = "%Y%m%d_%H%M%S"\n'))
    a = video(tmp_path / "door1_20210301_080000.avi", 20)
    b = video(tmp_path / "door1_20210301_080010.avi", 21)  # starts 8 s after a ends
    c = video(tmp_path / "door1_clip.avi", 22)  # no time in its name
    plan = plan_batch([a, b, c, str(tmp_path / "missing.avi")], cam, RunOptions())
    assert [f.job.start.second for f in plan.files] == [0, 10]
    assert [(x.previous.name, round(x.seconds, 3)) for x in plan.continuity] == [("door1_20210301_080000.avi", 8.0)]
    assert sorted(Path(o.path).name for o in plan.set_aside) == ["door1_clip.avi", "missing.avi"]
    assert all(o.status == "failed" and o.error for o in plan.set_aside)


def params_of(camera: CameraConfig) -> str:
    return params_hash(run_params(FileJob("f.avi", camera, "h", datetime(2009, 3, 1, 12, tzinfo=UTC), 7.0, 2.0)))


def test_todays_configs_keep_the_parameters_hash_files_were_stored_under() -> None:
    """Hashes of the parameters as listed by hand before they were derived from the config: a rerun of files done
    then skips them. Changed on purpose with issue 15 (detection.model in, the tile settings and SSDLite's
    file out, the head model's [heads] and tracking.start_score in) and with issue 18 (the mask model retrained,
    given the mirror average, then trained 30 epochs: its sha256 is a parameter) and with issue 29 (time.sequence
    in: a folder played as a sequence is counted otherwise) and with issue 28 (the head model retrained on two
    sources, its sha256 a parameter, and the crowd rule's keys in) and with issue 29's speed (masks.every_s in: a
    tracked person's reading carried between readings moves the stored face counts a little) and with issue 28 again
    (the head model retrained with street head sizes, the crowd rule re-swept), so that files counted before are
    analysed again."""
    pets = load_camera(PETS_CAMERA)
    assert params_of(pets) == "46f0dd1d893dd27c"
    assert params_of(default_camera()) == "1f52e67881bbf59b"
    masked = dataclasses.replace(
        pets,
        privacy_masks=[PrivacyMask([(0.0, 0.0), (40.0, 0.0), (40.0, 30.0)])],
        privacy=PrivacyConfig(profile="fr-transport-2021-269", k_min=7, retention_days=30.0),
    )
    assert params_of(masked) == "a80b8928cbf63bf2"


def extended(section: Any, **field: Any) -> Any:
    """`section` with one field more, as a later version of the config would have it."""
    ((name, value),) = field.items()
    kind = dataclasses.make_dataclass(
        f"Later{type(section).__name__}", [(name, type(value), dataclasses.field(default=value))],
        bases=(type(section),), frozen=True,
    )  # fmt: skip
    return kind(**{f.name: getattr(section, f.name) for f in dataclasses.fields(section)})


def test_a_setting_added_to_the_config_changes_the_hash_unless_listed_as_changing_no_result() -> None:
    pets = load_camera(PETS_CAMERA)
    before = params_of(pets)
    later = [
        dataclasses.replace(pets, time=extended(pets.time, frame_stride=2)),
        dataclasses.replace(pets, detection=extended(pets.detection, min_height_px=12)),
        dataclasses.replace(pets, privacy_masks=[extended(PrivacyMask([(0.0, 0.0), (1.0, 1.0)]), feather_px=3)]),
        extended(pets, crowd_model="crowd.onnx"),  # a whole new section
    ]
    assert len({before, *(params_of(c) for c in later)}) == 1 + len(later)
    unchanged = [
        dataclasses.replace(pets, detection=dataclasses.replace(pets.detection, threads=1)),
        dataclasses.replace(pets, privacy=dataclasses.replace(pets.privacy, retention_days=30.0)),
        dataclasses.replace(pets, time=TimeConfig(window_seconds=60, fps=10.0, filename_pattern="%Y%m%d")),
        dataclasses.replace(pets, alerts=[AlertRule("crowded", "occupancy", above=5.0)], unit_id="bus-12"),
    ]
    assert {params_of(c) for c in unchanged} == {before}
    assert params_of(dataclasses.replace(pets, detection=DetectionConfig())) != before


def test_a_copy_in_the_batch_is_set_aside_as_a_duplicate_and_takes_no_time(tmp_path: Path) -> None:
    cam = load_camera(camera(tmp_path, 'start = "2021-03-01T08:00:00"\n'))
    a, b = video(tmp_path / "a.avi", 20), video(tmp_path / "b.avi", 30)
    copy = tmp_path / "copy_of_a.avi"
    shutil.copyfile(a, copy)
    plan = plan_batch([a, str(copy), b, b], cam, RunOptions())
    start = datetime(2021, 3, 1, 8, tzinfo=PARIS)
    assert [(Path(f.job.spec).name, f.job.start) for f in plan.files] == [
        ("a.avi", start),
        ("b.avi", start + timedelta(seconds=2)),
    ]
    a_hash, b_hash = (f.job.source_hash for f in plan.files)
    assert plan.set_aside == [
        SetAside(str(copy), "duplicate", f"{copy}: same content as {a}, analysed once", a_hash),
        SetAside(b, "duplicate", f"{b}: given twice, analysed once", b_hash),
    ]


def stored_runs(db: Path) -> list[tuple[str, str, str | None]]:
    with Store(db) as store:
        return store.con.execute("SELECT source_path, status, error FROM runs ORDER BY source_path").fetchall()


def test_every_file_of_a_batch_ends_with_a_run_row_in_a_known_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Done, duplicate, failed at planning, failed by an unexpected error: each says so in runs, none `running`."""
    cam = load_camera(camera(tmp_path, 'start = "2021-03-01T08:00:00"\n'))
    good, bad = video(tmp_path / "good.avi", 20), video(tmp_path / "bad.avi", 30)
    copy = tmp_path / "good_copy.avi"
    shutil.copyfile(good, copy)
    missing = tmp_path / "missing.avi"

    def analyse(job: FileJob, on_frames: Any = None) -> FileResult:
        if job.spec == bad:
            raise RuntimeError("cannot broadcast shapes (3,) and (4,)\nsecond line")
        return FileResult(job, [], 0, 20, 2.0)

    monkeypatch.setattr(batch, "analyse_file", analyse)
    options = RunOptions(signage_override="test footage")
    plan = plan_batch([good, str(copy), str(missing), bad], cam, options)
    db = tmp_path / "runs.duckdb"
    outcomes = run_batch(plan, db, options).outcomes
    unexpected = (
        f"{bad}: analysis failed with RuntimeError (cannot broadcast shapes (3,) and (4,)); a fault of sanitary's,"
        " please report it"
    )
    assert {(Path(o.path).name, o.status, o.error) for o in outcomes} == {
        ("good.avi", "done", None),
        ("good_copy.avi", "duplicate", f"{copy}: same content as {good}, analysed once"),
        ("missing.avi", "failed", plan.set_aside[1].error),
        ("bad.avi", "failed", unexpected),
    }
    assert stored_runs(db) == [
        (bad, "failed", unexpected),
        (good, "done", None),
        (str(copy), "duplicate", f"{copy}: same content as {good}, analysed once"),
        (str(missing), "failed", plan.set_aside[1].error),
    ]
    assert plan.set_aside[1].error.startswith(f"{missing}: ")


def test_a_stopped_batch_closes_its_open_runs_as_interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cam = load_camera(camera(tmp_path, 'start = "2021-03-01T08:00:00"\n'))
    a, b = video(tmp_path / "a.avi", 20), video(tmp_path / "b.avi", 30)

    def analyse(job: FileJob, on_frames: Any = None) -> FileResult:
        if job.spec == b:
            raise KeyboardInterrupt
        return FileResult(job, [], 0, 20, 2.0)

    monkeypatch.setattr(batch, "analyse_file", analyse)
    options = RunOptions(signage_override="test footage")
    db = tmp_path / "runs.duckdb"
    with pytest.raises(KeyboardInterrupt):
        run_batch(plan_batch([a, b], cam, options), db, options)
    assert stored_runs(db) == [
        (a, "done", None),
        (b, "interrupted", "interrupted: the batch was stopped (KeyboardInterrupt)"),
    ]


def test_an_unexpected_error_is_one_line_and_the_run_says_failed(tmp_path: Path) -> None:
    """Whatever breaks while a file is analysed (here a fault injected into the analysis), the CLI prints one
    line and exits 1, and the file's run reads `failed` with the reason."""
    cam = camera(tmp_path, 'start = "2021-03-01T08:00:00"\n')
    clip = video(tmp_path / "a.avi", 20)
    db = tmp_path / "runs.duckdb"
    code = (
        "import sys\n"
        "import sanitary.runtime.batch as batch\n"
        "def boom(job, on_frames=None):\n"
        "    raise IndexError('index 3 is out of bounds for axis 0 with size 3')\n"
        "batch.analyse_file = boom\n"
        "from sanitary.cli.app import app\n"
        "app(sys.argv[1:], prog_name='sanitary')\n"
    )
    args = ["run", *NO_SIGN, clip, "--camera", str(cam), "--db", str(db)]
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)
    expected = (
        f"{clip}: analysis failed with IndexError (index 3 is out of bounds for axis 0 with size 3); a fault of"
        " sanitary's, please report it"
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"error: {expected}"
    assert stored_runs(db) == [(clip, "failed", expected)]
