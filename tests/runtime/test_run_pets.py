"""End to end on real PETS 2009 footage: the CLI as an operator runs it, counts checked against ground truth."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import duckdb
import pytest

from sanitary.governance.audit import audit_paths
from sanitary.storage.schema import SCHEMA_VERSION
from tests.conftest import NO_HEADS, NO_SIGN, PETS_CAMERA, SPARSE_HEADS, pets_camera, pets_counts, run_cli

# Real footage through the real pipeline, end to end: the quick lane (`pytest -m "not slow"`) leaves it out.
pytestmark = pytest.mark.slow

WINDOW_S = 10


@pytest.fixture(scope="module")
def camera(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped PETS config with 10 s windows, so a short stretch of footage spans several windows, and the head
    model off: these files are folders of frames, and it would run on every one of them (a folder may hold unrelated
    photos), three quarters of the run's time. What it adds to the count is checked on the whole clip, at its
    shipped cadence (test_whole_clip_at_one_frame_a_second)."""
    return pets_camera(tmp_path_factory.mktemp("cam"), NO_HEADS, WINDOW_S)


def run_first_stretch(pets: Path, camera: Path, db: Path) -> subprocess.CompletedProcess[str]:
    """Frames 0-209 as two files (two globs): 30 s of footage at the true 7 fps, every frame analysed."""
    return run_cli(
        "run",
        *NO_SIGN,
        str(pets / "frames" / "frame_0[0-1]*.jpg"),
        str(pets / "frames" / "frame_020*.jpg"),
        "--camera",
        str(camera),
        "--db",
        str(db),
        "--sample-fps",
        "7",
        "--start",
        "2009-03-01T12:00:00",
    )


@pytest.fixture(scope="module")
def first_run(pets: Path, camera: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("run")
    db = out / "agg.duckdb"
    result = run_first_stretch(pets, camera, db)
    assert result.returncode == 0, result.stderr
    return out, db


def windows(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            "SELECT window_start, frames_analysed, covered_s, people_sum, people_max, faces_sum, source"
            " FROM window_aggregates ORDER BY source, window_start"
        ).fetchall()


def test_windows_match_ground_truth(pets: Path, first_run: tuple[Path, Path]) -> None:
    _, db = first_run
    rows = windows(db)
    # Two sources (the two globs), consecutive: 200 frames then 10 frames.
    assert sum(r[1] for r in rows) == 210
    truth = pets_counts(pets)
    by_window: dict[int, list[int]] = {}
    for frame in range(210):
        by_window.setdefault(int(frame / 7 // WINDOW_S), []).append(truth[frame])
    combined: dict[int, list[int]] = {}
    for start, frames, covered, people_sum, people_max, _faces, _source in rows:
        k = (start.minute * 60 + start.second) // WINDOW_S
        acc = combined.setdefault(k, [0, 0, 0.0, 0])
        acc[0] += frames
        acc[1] += people_sum
        acc[2] += covered
        acc[3] = max(acc[3], people_max)
    assert sorted(combined) == [0, 1, 2]
    for k, (frames, people_sum, covered, people_max) in combined.items():
        assert frames == len(by_window[k]) == 70
        assert covered == pytest.approx(10.0)
        mean_truth = sum(by_window[k]) / 70
        assert people_sum / frames == pytest.approx(mean_truth, rel=0.2)
        assert abs(people_max - max(by_window[k])) <= 2


def test_distinct_people_per_window_from_tracks(pets: Path, first_run: tuple[Path, Path]) -> None:
    _, db = first_run
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT people_distinct, occupancy_max FROM window_aggregates JOIN camera_windows USING (window_start)"
            " WHERE second(window_start) < 20 ORDER BY window_start"
        ).fetchall()
        dwell = con.execute("SELECT sum(people) FROM dwell_windows").fetchone()[0]
    truth: dict[int, set[int]] = {}
    together: dict[int, int] = {}  # the most true people in one frame
    for line in (pets / "gt_mot_480x360.txt").read_text().splitlines():
        frame, person = (int(v) for v in line.split(",")[:2])
        if frame <= 140:
            truth.setdefault((frame - 1) // 70, set()).add(person)
    for frame, n in pets_counts(pets).items():
        if frame < 140:
            together[frame // 70] = max(together.get(frame // 70, 0), n)
    for (distinct, most), k in zip(rows, (0, 1), strict=True):
        # Each person once: at least the most there at one time, about the number of true identities. Occupancy
        # (the people detected in a frame) is near that most, not bounded by tracks.
        assert together[k] <= distinct <= len(truth[k]) + 3
        assert abs(most - together[k]) <= 1
    assert dwell > 0


def test_rerun_skips_and_counts_nothing_twice(pets: Path, camera: Path, first_run: tuple[Path, Path]) -> None:
    _, db = first_run
    before = windows(db)
    result = run_first_stretch(pets, camera, db)
    assert result.returncode == 0, result.stderr
    assert "skipped" in result.stderr
    assert windows(db) == before


def test_nothing_personal_is_written(first_run: tuple[Path, Path]) -> None:
    out, db = first_run
    assert db.exists()
    assert audit_paths([out]) == []
    result = run_cli("audit", str(out))
    assert result.returncode == 0 and "clean" in result.stdout


def test_audit_command_flags_a_leaked_crop(pets: Path, tmp_path: Path) -> None:
    crop = cv2.imread(str(pets / "frames" / "frame_0000.jpg"))[100:160, 300:330]
    # A debugging dump with a misleading name: the bytes, not the extension, give it away.
    (tmp_path / "debug.bin").write_bytes(cv2.imencode(".jpg", crop)[1].tobytes())
    result = run_cli("audit", str(tmp_path))
    assert result.returncode == 1
    assert "debug.bin" in result.stdout and "possible leaks" in result.stderr


def test_whole_clip_at_one_frame_a_second(pets: Path, tmp_path: Path) -> None:
    db = tmp_path / "clip.duckdb"
    avi = pets / "pets09_s2l1_view001_480x360.avi"
    result = run_cli("run", *NO_SIGN, str(avi), "--camera", str(PETS_CAMERA), "--db", str(db), "--sample-fps", "1")
    assert result.returncode == 0, result.stderr
    rows = windows(db)
    # 795 frames at 7 fps from 12:00:00: 12:00 full, 12:01 holds 53.57 s; frames 0, 7, ..., 791 analysed.
    assert [(r[0].hour, r[0].minute, r[1], round(r[2], 3)) for r in rows] == [(12, 0, 60, 60.0), (12, 1, 54, 53.571)]
    truth = pets_counts(pets)
    mean_truth = sum(truth[f] for f in range(0, 795, 7)) / 114
    assert sum(r[3] for r in rows) / 114 == pytest.approx(mean_truth, rel=0.15)


def test_count_json_lines(pets: Path, tmp_path: Path) -> None:
    result = run_cli("count", str(pets / "frames" / "frame_001*.jpg"), "--json", "--camera", str(PETS_CAMERA))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [set(line) for line in lines] == [{"frame", "file", "people", "detected", "heads", "faces", "tracks"}] * 10
    assert lines[0]["tracks"] == 0 and max(line["tracks"] for line in lines) > 0  # confirmed after 3 frames
    assert [line["frame"] for line in lines] == list(range(10))
    assert lines[3]["file"] == "frame_0013.jpg"
    truth = pets_counts(pets)
    assert sum(abs(line["people"] - truth[10 + line["frame"]]) for line in lines) / 10 <= 1.0
    sampled = run_cli(
        "count",
        str(pets / "pets09_s2l1_view001_480x360.avi"),
        "--json",
        "--camera",
        str(pets_camera(tmp_path, SPARSE_HEADS)),
        "--sample-fps",
        "0.5",
    )
    frames = [json.loads(line)["frame"] for line in sampled.stdout.splitlines()]
    assert frames[:4] == [0, 14, 28, 42] and all(
        f is None for f in [json.loads(x)["file"] for x in sampled.stdout.splitlines()]
    )


def test_parallel_workers_store_each_file(pets: Path, camera: Path, tmp_path: Path) -> None:
    db = tmp_path / "par.duckdb"
    result = run_cli(
        "run",
        *NO_SIGN,
        str(pets / "frames" / "frame_030*.jpg"),
        str(pets / "frames" / "frame_031*.jpg"),
        "--camera",
        str(camera),
        "--db",
        str(db),
        "--sample-fps",
        "7",
        "--workers",
        "2",
        "--start",
        "2009-03-01T12:05:00",
    )
    assert result.returncode == 0, result.stderr
    rows = windows(db)
    assert len({r[6] for r in rows}) == 2
    assert sum(r[1] for r in rows) == 20
    # The second file starts where the first ends: 12:05:00 + 10 frames / 7 fps.
    assert sorted({(r[0].minute, r[0].second) for r in rows}) == [(5, 0)]


def test_truncated_video_keeps_what_came_before_the_cut(pets: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.avi"
    data = (pets / "pets09_s2l1_view001_480x360.avi").read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    db = tmp_path / "cut.duckdb"
    cam = pets_camera(tmp_path, SPARSE_HEADS)
    result = run_cli("run", *NO_SIGN, str(cut), "--camera", str(cam), "--db", str(db), "--sample-fps", "1")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "truncated" in result.stderr and "Traceback" not in result.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT status FROM runs").fetchall() == [("truncated",)]
        frames, covered = con.execute("SELECT sum(frames_analysed), sum(covered_s) FROM window_aggregates").fetchone()
    assert 0 < frames < 114 and 0 < covered < 113


def test_bad_input_one_line_and_nothing_lost(pets: Path, first_run: tuple[Path, Path], tmp_path: Path) -> None:
    _, db = first_run
    before = windows(db)
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text(PETS_CAMERA.read_text().replace("face_score", "face_scorr"))
    missing = tmp_path / "nowhere.mp4"
    cases = [
        (
            ("run", *NO_SIGN, str(missing), "--camera", str(PETS_CAMERA), "--db", str(db)),
            1,
            "nowhere.mp4: no such file",
        ),
        (
            ("run", *NO_SIGN, str(pets / "frames"), "--camera", str(bad_config), "--db", str(db)),
            2,
            "unknown key 'detection.face_scorr'",
        ),
        (
            ("run", *NO_SIGN, str(missing), "--camera", str(tmp_path / "none.toml"), "--db", str(db)),
            2,
            "camera config not found",
        ),
        (("count", str(tmp_path / "empty"), "--json"), 2, "no such file or folder"),
    ]
    for args, code, message in cases:
        result = run_cli(*args)
        assert result.returncode == code, (args, result.stderr)
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("error: ") and message in last, result.stderr
        assert "Traceback" not in result.stderr
    assert windows(db) == before


def test_newer_schema_refused_by_the_cli(pets: Path, tmp_path: Path) -> None:
    db = tmp_path / "future.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
        con.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    result = run_cli(
        "run", *NO_SIGN, str(pets / "frames" / "frame_000*.jpg"), "--camera", str(PETS_CAMERA), "--db", str(db)
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {db}: database schema v99 is newer than this sanitary (v{SCHEMA_VERSION}); upgrade sanitary to use it"
    )
