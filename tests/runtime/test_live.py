"""Live mode as a bus unit lives it: killed at random moments and restarted, a camera that is down and comes back,
a clock set back, labels from the unit's other software. Every check reads the real DuckDB file between runs."""

from __future__ import annotations

import functools
import http.server
import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import duckdb
import numpy as np
import pytest

from sanitary.config import load_camera
from sanitary.errors import SanitaryError
from sanitary.runtime import live
from sanitary.runtime.live import CameraSession, LiveCamera, LiveOptions, TagReader, run_live, session_start
from sanitary.storage.query import run_query
from sanitary.storage.store import Store
from tests.conftest import NO_SIGN, PETS_CAMERA, ROOT, SPARSE_HEADS, hold_lock, pets_camera

T0 = datetime(2021, 3, 1, 8, 0, tzinfo=UTC)


def test_a_session_never_starts_before_the_last_committed_window() -> None:
    assert session_start(T0, None) == (T0, 0.0)
    assert session_start(T0, T0 - timedelta(minutes=5)) == (T0, 0.0)
    # The clock came back at 1970 after a power cut: windows go on from where they stopped, the jump recorded.
    late = datetime(1970, 1, 1, tzinfo=UTC)
    assert session_start(late, T0) == (T0, (late - T0).total_seconds())


def camera(tmp_path: Path, window_s: int) -> Path:
    return pets_camera(tmp_path, SPARSE_HEADS, window_s)


def start_live(source: str, cam: Path, db: Path, *extra: str) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "sanitary", "live", source, "--camera", str(cam), "--db", str(db), *NO_SIGN]
    return subprocess.Popen([*args, *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def committed(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            "SELECT source, window_start, frames_analysed, people_sum, partial FROM window_aggregates ORDER BY 2, 1"
        ).fetchall()


def committed_now(db: Path) -> list[tuple]:
    """The windows committed so far, read between the unit's commits."""
    if not db.exists():
        return []
    try:
        return run_query(db, "SELECT source, window_start FROM window_aggregates").rows
    except SanitaryError:
        return []  # the schema is still being created


def wait_for_windows(db: Path, beyond: int, timeout_s: float = 60) -> None:
    """Until the unit has committed more than `beyond` windows (or `timeout_s` passed: the caller's check fails)."""
    deadline = time.monotonic() + timeout_s
    while len(committed_now(db)) <= beyond and time.monotonic() < deadline:
        time.sleep(0.2)


@pytest.mark.slow
def test_killed_at_random_moments_loses_and_duplicates_nothing(pets: Path, tmp_path: Path) -> None:
    db = tmp_path / "unit.duckdb"
    avi = str(pets / "pets09_s2l1_view001_480x360.avi")
    cam = camera(tmp_path, 2)
    rng = random.Random(7)
    before: list[tuple] = []
    for round_ in range(6):
        unit = start_live(avi, cam, db, "--realtime", "--loop", "--fps", "7", "--analysis-fps", "2")
        # Killed at a random moment once it has committed a window: start-up (loading the models) takes longer
        # on a busy machine, and a kill before the first commit would test nothing.
        wait_for_windows(db, beyond=len(before))
        time.sleep(rng.uniform(0.0, 4.0))
        graceful = round_ % 3 == 2
        unit.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
        _out, err = unit.communicate(timeout=60)
        assert unit.returncode == (0 if graceful else -signal.SIGKILL), err
        with Store(db):  # opens cleanly (and would migrate): no corrupt or half-written state
            pass
        after = committed(db)
        assert set(before) <= set(after), "a committed window was lost"
        keys = [(source, start) for source, start, *_ in after]
        assert len(keys) == len(set(keys)), "a window was written twice"
        assert any(r not in before for r in after), f"round {round_} committed nothing: {err}"
        if graceful:  # the open window was flushed and marked partial
            assert after[-1][-1] is True
        before = after
    with duckdb.connect(str(db), read_only=True) as con:
        sessions = con.execute("SELECT count(DISTINCT source), count(*) FROM window_aggregates").fetchone()
        health = con.execute("SELECT count(*) FROM health").fetchone()
        statuses = dict(con.execute("SELECT status, count(*) FROM runs GROUP BY 1").fetchall())
        # Each session starts after the last one's windows: window starts never go backwards between sessions.
        firsts = con.execute(
            "SELECT min(window_start), max(window_start) FROM window_aggregates GROUP BY source ORDER BY 1"
        ).fetchall()
    assert sessions is not None and sessions[0] == 6 and health == (sessions[1],)
    assert statuses == {"interrupted": 4, "stopped": 2}  # a killed run is closed by the next writer, saying so
    assert all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(firsts))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CameraPaced(http.server.SimpleHTTPRequestHandler):
    """Serves the PETS clip at the pace its camera filmed it (its bytes spread over its 795 frames at 7 fps), as a
    camera's stream arrives, not as fast as the loopback allows: served whole at once, the unit read it to its end
    in under a second and its windows held no more than that of stream."""

    SECONDS = 795 / 7

    def copyfile(self, source, outputfile) -> None:  # type: ignore[no-untyped-def]
        rate = os.fstat(source.fileno()).st_size / self.SECONDS
        start, sent = time.monotonic(), 0
        try:
            while chunk := source.read(16384):
                outputfile.write(chunk)
                sent += len(chunk)
                time.sleep(max(0.0, start + sent / rate - time.monotonic()))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the unit stopped or reconnected

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.slow
def test_a_camera_down_reads_as_missing_and_is_retried_until_it_is_back(pets: Path, tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / "door.avi").symlink_to(pets / "pets09_s2l1_view001_480x360.avi")
    port = free_port()
    db = tmp_path / "unit.duckdb"
    unit = start_live(f"http://127.0.0.1:{port}/door.avi", camera(tmp_path, 3), db, "--analysis-fps", "2",
                      "--seconds", "16")  # fmt: skip
    # Nobody serves the stream yet. The unit holds the file only while it commits: an official's query gets in
    # between, and sees the down windows as they are committed (start-up takes longer on a busy machine).
    wait_for_windows(db, beyond=0)
    assert run_query(db, "SELECT count(*) FROM window_aggregates").rows[0][0] >= 1
    handler = functools.partial(CameraPaced, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _out, err = unit.communicate(timeout=120)
    finally:
        server.shutdown()
    assert unit.returncode == 0, err
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT w.covered_s, w.frames_analysed, w.people_sum, h.source_up_s, h.reconnects"
            " FROM window_aggregates w JOIN health h USING (site_id, camera_id, source, window_start)"
            " ORDER BY window_start"
        ).fetchall()
        missing = con.execute("SELECT count(*) FROM occupancy_hourly WHERE occupancy_mean IS NULL").fetchone()
    down, up = rows[0], max(rows[1:])
    assert down[:3] == (0.0, 0, 0) and down[3] == 0.0  # down: no coverage, no frames: missing, not zero people
    # Back: covered and counting, in the best-covered window once it is back (the stream paced as a camera's, a
    # whole window is covered).
    assert up[0] > 1.0 and up[1] > 0 and up[2] > 0
    assert sum(r[4] for r in rows) >= 2  # it retried with backoff while the stream was down
    assert missing is not None


def old_window(db: Path, start: datetime) -> None:
    """A one-minute window committed by an earlier session (source 'live:old')."""
    with Store(db) as store:
        store.con.execute(
            "INSERT INTO window_aggregates (site_id, camera_id, source, window_start, window_end, unit_id, run_id,"
            " frames_analysed, covered_s, people_sum, people_max, faces_sum) VALUES"
            " ('pets2009-reading', 'pets2009-view001', 'live:old', ?, ?, 'u', 'r', 1, 60, 1, 1, 0)",
            [start, start + timedelta(minutes=1)],
        )


@pytest.mark.slow
def test_a_clock_set_back_keeps_windows_monotonic_and_is_recorded(pets: Path, tmp_path: Path) -> None:
    db = tmp_path / "unit.duckdb"
    # On a minute, so that the 2 s windows that follow start exactly there.
    future = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=2)
    old_window(db, future - timedelta(minutes=1))
    avi = str(pets / "pets09_s2l1_view001_480x360.avi")
    tags = tmp_path / "tags.json"
    tags.write_text('{"route": "12", "stop": "Gare"}')
    unit = start_live(avi, camera(tmp_path, 2), db, "--fps", "7", "--analysis-fps", "3", "--seconds", "6", "--tags",
                      str(tags))  # fmt: skip
    _out, err = unit.communicate(timeout=120)
    assert unit.returncode == 0, err
    assert "before the last committed window" in err
    with duckdb.connect(str(db), read_only=True) as con:
        starts = con.execute("SELECT min(window_start) FROM window_aggregates WHERE source <> 'live:old'").fetchone()
        jumps = con.execute("SELECT DISTINCT clock_jump_s < -7000 FROM health").fetchall()
        labels = con.execute("SELECT DISTINCT tags ->> 'route', tags ->> 'stop' FROM window_aggregates"
                             " WHERE source <> 'live:old'").fetchall()  # fmt: skip
    assert starts is not None and starts[0] >= future
    assert jumps == [(True,)]
    assert labels == [("12", "Gare")]


@pytest.mark.slow
def test_a_live_unit_applies_retention(pets: Path, tmp_path: Path) -> None:
    db = tmp_path / "unit.duckdb"
    old = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=3)
    old_window(db, old)
    cam = tmp_path / "kept-a-day.toml"
    cam.write_text(camera(tmp_path, 2).read_text() + "\n[privacy]\nretention_days = 1\n")
    avi = str(pets / "pets09_s2l1_view001_480x360.avi")
    unit = start_live(avi, cam, db, "--fps", "7", "--analysis-fps", "2", "--seconds", "4")
    _out, err = unit.communicate(timeout=120)
    assert unit.returncode == 0, err
    assert "pets2009-view001: retention deleted 1 windows older than 1 days (logged)" in err
    with duckdb.connect(str(db), read_only=True) as con:
        sources = con.execute("SELECT DISTINCT source LIKE 'live:old' FROM window_aggregates").fetchall()
        log = con.execute("SELECT windows_deleted FROM retention_log").fetchall()
    assert sources == [(False,)] and log == [(1,)]  # the old window went, this session's windows stay


@pytest.mark.slow
def test_bad_live_input_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "unit.duckdb"
    for args, message in [
        (("nowhere.mp4", "--camera", str(PETS_CAMERA)), "nowhere.mp4: no such file"),
        (("0", "1", "--camera", str(PETS_CAMERA)), "2 source(s) but 1 --camera"),
    ]:
        result = subprocess.run([sys.executable, "-m", "sanitary", "live", *args, "--db", str(db), *NO_SIGN],
                                cwd=ROOT, capture_output=True, text=True, timeout=60, env=os.environ)  # fmt: skip
        assert result.returncode == 2 and message in result.stderr, result.stderr


DISK_FULL = """
import resource, signal, sys, threading, time
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) rather than killing us
INF = resource.RLIM_INFINITY

def disk() -> None:
    time.sleep({full_at})
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, INF))  # no regular file can grow: the disk is full
    print("disk full", file=sys.stderr, flush=True)
    time.sleep({full_for})
    resource.setrlimit(resource.RLIMIT_FSIZE, (INF, INF))
    print("disk back", file=sys.stderr, flush=True)

threading.Thread(target=disk, daemon=True).start()
from sanitary.cli.app import app
sys.argv = ["sanitary", *{args!r}]
app()
"""


@pytest.mark.slow
def test_a_full_disk_delays_commits_and_loses_no_window(pets: Path, tmp_path: Path) -> None:
    """The disk full for 6 s (three windows): they wait, and are committed in order once it has room again."""
    db = tmp_path / "unit.duckdb"
    avi = str(pets / "pets09_s2l1_view001_480x360.avi")
    args = ["live", avi, "--camera", str(camera(tmp_path, 2)), "--db", str(db), *NO_SIGN, "--realtime", "--loop",
            "--fps", "7", "--analysis-fps", "2", "--seconds", "30"]  # fmt: skip
    code = DISK_FULL.format(full_at=12, full_for=6, args=args)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "disk full" in result.stderr and "disk back" in result.stderr
    assert "commits delayed" in result.stderr and " lost (" not in result.stderr, result.stderr
    with Store(db) as store:  # the file opens cleanly
        starts = [r[0] for r in store.con.execute("SELECT window_start FROM window_aggregates ORDER BY 1").fetchall()]
        counted = store.con.execute("SELECT max(windows_lost) FROM health").fetchone()
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(starts)] == [2.0] * (len(starts) - 1)
    assert len(starts) >= 15 and counted == (0,)  # 30 s of 2 s windows (aligned on the epoch), none missing


@pytest.mark.slow
def test_a_looped_file_read_at_full_speed_stops_at_its_length(pets: Path, tmp_path: Path) -> None:
    db = tmp_path / "unit.duckdb"
    avi = str(pets / "pets09_s2l1_view001_480x360.avi")  # 113.6 s of footage: 120 s needs a second pass
    unit = start_live(
        avi, camera(tmp_path, 10), db, "--fps", "7", "--loop", "--analysis-fps", "0.5", "--seconds", "120"
    )
    _out, err = unit.communicate(timeout=180)
    assert unit.returncode == 0, err
    with duckdb.connect(str(db), read_only=True) as con:
        frames, end = con.execute(
            "SELECT sum(frames_analysed), max(window_end) - min(window_start) FROM window_aggregates"
        ).fetchone()
    assert frames == 61 and end <= timedelta(seconds=130)  # t = 0, 2, ..., 120, in 10 s windows on the clock


def door_clip(tmp_path: Path, more_config: str = "") -> tuple[Path, Path]:
    """Three seconds of a 160x120 door camera at 10 fps, and its camera config."""
    clip = tmp_path / "door.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    for i in range(30):
        writer.write(np.full((120, 160, 3), i, np.uint8))
    writer.release()
    cam = tmp_path / "cam.toml"
    cam.write_text('camera_id = "c"\nsite_id = "s"\nsite_kind = "bus"\ntimezone = "UTC"\n' + more_config)
    return clip, cam


def test_an_unexpected_error_ends_the_live_run_failed_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault injected into the analysis: the error goes on up, and the run reads `failed` saying why, not `done`."""
    clip, cam = door_clip(tmp_path)

    def boom(self: CameraSession, frame: object) -> None:
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(CameraSession, "analyse", boom)
    db = tmp_path / "unit.duckdb"
    options = LiveOptions(analysis_fps=2.0, signage_override="test footage")
    with pytest.raises(ZeroDivisionError):
        run_live([LiveCamera(str(clip), load_camera(cam))], db, options, threading.Event(), log=lambda line: None)
    with duckdb.connect(str(db), read_only=True) as con:
        runs = con.execute("SELECT status, error FROM runs").fetchall()
    assert runs == [
        ("failed", f"{clip}: analysis failed with ZeroDivisionError (float division by zero); a fault of sanitary's,"
                   " please report it")
    ]  # fmt: skip


def test_a_live_unit_stores_through_duckdb_on_one_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each commit writes a few rows: DuckDB's worker thread would add no speed, only its malloc arena beside the
    pipeline's memory and a thread competing with the models."""
    clip, cam = door_clip(tmp_path, "[time]\nwindow_seconds = 1\n")
    seen: list[int] = []

    class Seen(Store):
        def __init__(self, path: Path, *, wait_s: float = 0.0, threads: int | None = None) -> None:
            super().__init__(path, wait_s=wait_s, threads=threads)
            seen.append(self.con.execute("SELECT current_setting('threads')").fetchone()[0])

    monkeypatch.setattr(live, "Store", Seen)
    options = LiveOptions(analysis_fps=5.0, signage_override="test footage")
    run_live([LiveCamera(str(clip), load_camera(cam))], tmp_path / "unit.duckdb", options, threading.Event(), print)
    assert len(seen) >= 3 and set(seen) == {1}  # the start, each window's commit, the end


def test_tags_keep_declared_keys_with_short_values_and_say_once_what_they_drop(tmp_path: Path) -> None:
    """A driver's name under an undeclared key, a card number, a long text: dropped, each said once on stderr."""
    tags = tmp_path / "tags.json"
    tags.write_text('{"route": "12", "stop": "Gare", "driver": "Jean Dupont", "vehicle": "4532 1234 5678 9012",'
                    ' "line": "' + "x" * 40 + '", "direction": 2}')  # fmt: skip
    said: list[str] = []
    reader = TagReader(tags, said.append)
    assert reader.read() == '{"direction": 2, "route": "12", "stop": "Gare"}'
    assert reader.read() == '{"direction": 2, "route": "12", "stop": "Gare"}'
    assert said == [
        f"{tags}: tag 'driver' dropped: not one of the tag keys route, line, stop, direction, vehicle, trip",
        f"{tags}: tag 'vehicle' dropped: more than 6 digits (a card or phone number is not a label)",
        f"{tags}: tag 'line' dropped: a tag's value is printable text of 1 to 32 characters",
    ]


def test_a_window_closed_late_covers_no_more_than_its_span(pets: Path, tmp_path: Path) -> None:
    """A stop (SIGTERM, --seconds) can come after the open window's end, before its commit was due (a stream's
    commit waits two analysis periods for late frames): the window closed then covers its span at most (2.09 s in a
    2 s window before), and the stop commits it whole."""
    avi = str(pets / "pets09_s2l1_view001_480x360.avi")
    live = LiveCamera(avi, load_camera(camera(tmp_path, 2)))
    session = CameraSession(live, LiveOptions(analysis_fps=2.0, realtime=True, fps=7.0), T0, "live:test", "run")
    session.source.start()
    try:
        while session.now_t() < 2.6:  # the stream is up past the end of the window [0, 2)
            time.sleep(0.05)
        closed = session.close(session.now_t(), True, 0.0, None)
    finally:
        session.source.stop()
    assert closed.window.key.window_start == T0
    assert 1.0 < closed.window.covered_s <= 2.0


@pytest.mark.slow
def test_a_file_held_by_a_long_query_delays_commits_and_loses_no_window(pets: Path, tmp_path: Path) -> None:
    db = tmp_path / "unit.duckdb"
    avi = str(pets / "pets09_s2l1_view001_480x360.avi")
    unit = start_live(avi, camera(tmp_path, 2), db, "--realtime", "--loop", "--fps", "7", "--analysis-fps", "2",
                      "--seconds", "16")  # fmt: skip
    wait_for_windows(db, beyond=0)
    holder = hold_lock(db, 7.0)  # a query holding the file for three windows and more
    _out, err = unit.communicate(timeout=120)
    holder.wait(timeout=30)
    assert unit.returncode == 0, err
    assert "commits delayed" in err and " lost (" not in err, err
    with Store(db) as store:
        starts = [r[0] for r in store.con.execute("SELECT window_start FROM window_aggregates ORDER BY 1").fetchall()]
        lost = store.con.execute("SELECT max(windows_lost) FROM health").fetchone()
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(starts)] == [2.0] * (len(starts) - 1)
    assert len(starts) >= 8 and lost == (0,)  # 16 s of 2 s windows (aligned on the epoch), none missing
