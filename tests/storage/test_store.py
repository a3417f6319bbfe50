import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest

from sanitary.analytics.observations import MaskCounts, Observation
from sanitary.analytics.windows import aggregate
from sanitary.config import PrivacyConfig
from sanitary.errors import SanitaryError
from sanitary.storage.connection import DatabaseLocked
from sanitary.storage.schema import MIGRATIONS, SCHEMA_VERSION
from sanitary.storage.store import RunStart, Store, WindowHealth
from tests.conftest import hold_lock

T0 = datetime(2021, 3, 1, 8, 0, tzinfo=UTC)


def windows(source: str, people: int) -> list:
    obs = [Observation(frame=i, t=float(i), people=people, masks=MaskCounts(with_mask=1)) for i in range(150)]
    return aggregate(
        obs,
        site_id="s",
        camera_id="c",
        source=source,
        start=T0,
        duration_s=150.0,
        window_s=60,
        confusion=np.diag([50, 50, 50]),
    )


def run_start(source: str, params_hash: str = "p1") -> RunStart:
    return RunStart(source, f"/footage/{source}.mp4", "c", "s", "unit-1", params_hash, {"sample_fps": 5})


def rows(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "SELECT source, minute(window_start), frames_analysed, people_sum FROM window_aggregates ORDER BY 1, 2"
    ).fetchall()


def test_rerun_replaces_and_never_counts_twice(tmp_path: Path) -> None:
    db = tmp_path / "a.duckdb"
    with Store(db) as store:
        first = store.begin_run(run_start("h1"))
        store.finish_run(first, windows("h1", 2), status="done", error=None, frames_analysed=150, footage=None)
        other = store.begin_run(run_start("h2"))
        store.finish_run(other, windows("h2", 1), status="done", error=None, frames_analysed=150, footage=None)
        assert store.is_done("h1", "c", "p1") and not store.is_done("h1", "c", "p2")
        again = store.begin_run(run_start("h1", "p2"))
        store.finish_run(again, windows("h1", 3), status="done", error=None, frames_analysed=150, footage=None)
        statuses = dict(store.con.execute("SELECT run_id, status FROM runs").fetchall())
        stored = rows(store.con)
    assert stored == [
        ("h1", 0, 60, 180),
        ("h1", 1, 60, 180),
        ("h1", 2, 30, 90),
        ("h2", 0, 60, 60),
        ("h2", 1, 60, 60),
        ("h2", 2, 30, 30),
    ]
    assert statuses == {first: "replaced", other: "done", again: "done"}


def test_a_failed_write_keeps_what_was_stored(tmp_path: Path) -> None:
    db = tmp_path / "a.duckdb"
    with Store(db) as store:
        run = store.begin_run(run_start("h1"))
        store.finish_run(run, windows("h1", 2), status="done", error=None, frames_analysed=150, footage=None)
        before = rows(store.con)
        rerun = store.begin_run(run_start("h1", "p2"))
        broken = windows("h1", 5)
        broken.append(broken[0])  # a duplicate key makes the insert fail halfway
        with pytest.raises(duckdb.ConstraintException):
            store.finish_run(rerun, broken, status="done", error=None, frames_analysed=150, footage=None)
        store.fail_run(rerun, "insert failed")
        assert rows(store.con) == before


def test_a_run_killed_midway_leaves_no_window(tmp_path: Path) -> None:
    db = tmp_path / "killed.duckdb"
    code = (
        "import os, sys\n"
        "from sanitary.storage.store import Store\n"
        f"from tests.storage.test_store import run_start, windows\n"
        f"store = Store(__import__('pathlib').Path({str(db)!r}))\n"
        "run = store.begin_run(run_start('h1'))\n"
        "store.con.execute('BEGIN TRANSACTION')\n"
        "store.con.execute('DELETE FROM window_aggregates')\n"
        "os._exit(9)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2], check=False, timeout=60)
    with Store(db) as store:
        assert store.interrupted == 1
        status, error, finished = store.con.execute("SELECT status, error, finished_at FROM runs").fetchone()
        assert status == "interrupted" and finished is not None
        assert error.startswith("interrupted: process ") and "ended without closing it (killed" in error
        assert store.con.execute("SELECT count(*) FROM window_aggregates").fetchone() == (0,)
        assert not store.is_done("h1", "c", "p1")
        # The rerun stores the file once.
        run = store.begin_run(run_start("h1"))
        store.finish_run(run, windows("h1", 2), status="done", error=None, frames_analysed=150, footage=None)
        assert store.con.execute("SELECT sum(frames_analysed) FROM window_aggregates").fetchone() == (150,)
    with Store(db) as store:
        assert store.interrupted == 0
        assert sorted(store.con.execute("SELECT status FROM runs").fetchall()) == [("done",), ("interrupted",)]


def test_a_running_run_is_closed_only_when_its_process_is_gone(tmp_path: Path) -> None:
    """A live unit holds the file only while it commits: its run, `running` between commits, is left alone."""
    db = tmp_path / "live.duckdb"
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from sanitary.storage.store import Store\n"
        "from tests.storage.test_store import run_start\n"
        f"with Store(Path({str(db)!r})) as store:\n"
        "    store.begin_run(run_start('live'))\n"
        "print('begun', flush=True)\n"
        "time.sleep(60)\n"
    )
    unit = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, cwd=Path(__file__).parents[2])
    try:
        assert unit.stdout is not None and unit.stdout.readline() == b"begun\n"
        with Store(db) as store:
            # Runs of a release that recorded no owner: one whose footage was run again since, one not.
            legacy = [store.begin_run(run_start("old")), store.begin_run(run_start("old live"))]
            store.begin_run(run_start("old"))
            other_host = store.begin_run(run_start("far"))
            store.con.execute("UPDATE runs SET owner = NULL WHERE run_id IN (?, ?)", legacy)
            store.con.execute("UPDATE runs SET owner = 'elsewhere - 1 1' WHERE run_id = ?", [other_host])
        with Store(db) as store:
            assert store.interrupted == 1
            status = store.con.execute("SELECT source, status FROM runs ORDER BY started_at").fetchall()
        assert status == [
            ("live", "running"), ("old", "interrupted"), ("old live", "running"), ("old", "running"),
            ("far", "running"),
        ]  # fmt: skip
    finally:
        unit.kill()
        unit.wait()
    with Store(db) as store:
        assert store.interrupted == 1
        assert store.con.execute("SELECT status FROM runs WHERE source = 'live'").fetchone() == ("interrupted",)


def test_a_partial_window_ends_the_runs_footage_where_it_stopped(tmp_path: Path) -> None:
    window = windows("live", 1)[2]  # 30 s of footage in the window from 08:02 to 08:03
    health = WindowHealth("unit-1", 30.0, 30, 30, 0, 1.0, 0, None, None, 0.0, 0)
    with Store(tmp_path / "live.duckdb") as store:
        run = store.begin_run(run_start("live"))
        store.commit_window(
            run, window, health, privacy=PrivacyConfig(), dwell_bins_s=(), alerts=(), partial=True, tags=None
        )
        end = store.con.execute("SELECT footage_end FROM runs").fetchone()
    assert window.covered_s == 30.0 and end == (T0.replace(minute=2, second=30),)


def test_a_v1_database_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
        MIGRATIONS[0](con)
        con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        con.execute(
            "INSERT INTO window_aggregates VALUES ('s', 'c', 'h0', '2021-03-01 08:00:00+00', '2021-03-01 08:01:00+00',"
            " 'u', 'r', 10, 60.0, 30, 5, 2)"
        )
    with Store(db) as store:
        version = store.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert version == (str(SCHEMA_VERSION),)
        old = store.con.execute(
            "SELECT people_sum, faces_sum, faces_with_mask, mask_rate, close_pairs_sum FROM window_aggregates"
            " WHERE source = 'h0'"
        ).fetchone()
        assert old == (30, 2, None, None, None)  # never measured: NULL, not zero
        run = store.begin_run(run_start("h1"))
        store.finish_run(run, windows("h1", 2), status="done", error=None, frames_analysed=150, footage=None)
        view = store.con.execute(
            "SELECT occupancy_mean, faces_with_mask, mask_rate_n, mask_rate FROM camera_windows"
            " WHERE minute(window_start) = 2"
        ).fetchone()
    assert view[:3] == (2.0, 30, 30)
    assert view[3] == pytest.approx(1.0)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "new.duckdb"
    Store(db).close()
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    with pytest.raises(SanitaryError, match=rf"schema v{SCHEMA_VERSION + 1} is newer than this sanitary"):
        Store(db)


def test_not_a_database_and_locked(tmp_path: Path) -> None:
    text = tmp_path / "notes.duckdb"
    text.write_text("hello\n" * 100)
    with pytest.raises(SanitaryError, match=r"notes\.duckdb: cannot open as a DuckDB database \(IO Error: "):
        Store(text)
    db = tmp_path / "busy.duckdb"
    Store(db).close()
    holder = hold_lock(db, 60.0)
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseLocked, match="in use by another process"):
            Store(db)  # no wait unless asked for
        assert time.monotonic() - started < 0.5
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    Store(db).close()


def test_retention_deletes_old_windows_with_their_rows_and_logs_it(tmp_path: Path) -> None:
    with Store(tmp_path / "a.duckdb") as store:
        run = store.begin_run(run_start("h1"))
        store.finish_run(run, windows("h1", 2), status="done", error=None, frames_analysed=150, footage=None,
                         dwell_bins_s=(10.0,))  # fmt: skip
        store.con.execute("INSERT INTO line_windows VALUES ('s', 'c', 'h1', ?, 'door', 1, 0)", [T0])
        # The first two windows ended by 08:02; the third (08:02-08:03) has not.
        now = datetime(2021, 3, 2, 8, 2, 30, tzinfo=UTC)
        assert store.apply_retention("s", "c", 0, now) == 0
        assert store.apply_retention("other", "c", 1, now) == 0
        assert store.apply_retention("s", "c", 1, now) == 2
        left = [r[1] for r in rows(store.con)]
        lines = store.con.execute("SELECT count(*) FROM line_windows").fetchone()
        log = store.con.execute("SELECT site_id, camera_id, cutoff, windows_deleted, rows_deleted FROM retention_log")
        logged = log.fetchall()
    assert left == [2] and lines == (0,)
    assert logged == [("s", "c", datetime(2021, 3, 1, 8, 2, 30, tzinfo=UTC), 2, 3)]


def test_the_whole_file_replaces_its_cut_export_of_the_same_camera_and_time(tmp_path: Path) -> None:
    """A cut file is stored `truncated` with "re-export the file and run again"; the whole file, which has another
    content hash, then replaces it: the footage is counted once. A cut file of another time stays."""
    minute = timedelta(seconds=60)
    with Store(tmp_path / "a.duckdb") as store:
        cut = store.begin_run(run_start("cut"))
        store.finish_run(cut, windows("cut", 2)[:2], status="truncated", error="cut short", frames_analysed=120,
                         footage=(T0, T0 + 2 * minute))  # fmt: skip
        later = store.begin_run(run_start("later"))
        store.finish_run(later, windows("later", 1)[:1], status="truncated", error="cut short", frames_analysed=60,
                         footage=(T0 + minute, T0 + 2 * minute))  # fmt: skip
        whole = store.begin_run(run_start("whole"))
        store.finish_run(whole, windows("whole", 3), status="done", error=None, frames_analysed=150,
                         footage=(T0, T0 + 150 * minute / 60))  # fmt: skip
        statuses = dict(store.con.execute("SELECT source, status FROM runs").fetchall())
        stored = store.con.execute("SELECT source, count(*) FROM window_aggregates GROUP BY 1 ORDER BY 1").fetchall()
    assert statuses == {"cut": "replaced", "later": "truncated", "whole": "done"}
    assert stored == [("later", 1), ("whole", 3)]
