"""A camera's session with the store, begun and finished the same way everywhere: the site, the signs, retention
on a live unit under a fake clock (no model is run here)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from sanitary.analytics.observations import MaskCounts, Observation
from sanitary.analytics.windows import WindowAggregate, ZoneWindow, aggregate
from sanitary.config import PrivacyConfig, TimeConfig, default_camera
from sanitary.errors import SanitaryError
from sanitary.runtime import live
from sanitary.runtime.lifecycle import RetentionSchedule, begin_camera, finish_camera
from sanitary.runtime.live import CameraRun, ClosedWindow, LiveOptions, LiveTotals, commit
from sanitary.storage.signage import Sign
from sanitary.storage.store import RunStart, Store, WindowHealth
from tests.conftest import hold_lock

T0 = datetime(2021, 3, 1, 8, 0, tzinfo=UTC)
DAY = timedelta(days=1)
CAMERA = dataclasses.replace(
    default_camera("door", "bus-12"),
    time=TimeConfig(window_seconds=60),
    privacy=PrivacyConfig(retention_days=1.0),
)


def window(start: datetime) -> WindowAggregate:
    (w,) = aggregate(
        [Observation(0, 0.0, 2, MaskCounts())],
        site_id=CAMERA.site_id,
        camera_id=CAMERA.camera_id,
        source="live:unit:s1",
        start=start,
        duration_s=60.0,
        window_s=60,
        confusion=np.diag([50, 50, 50]),
    )
    return w


def health() -> WindowHealth:
    return WindowHealth("unit", 60.0, 60, 1, 0, 1.0, 0, None, None, 0.0, 0)


def stored(db: Path) -> list[timedelta]:
    with Store(db) as store:
        rows = store.con.execute("SELECT window_start FROM window_aggregates ORDER BY 1").fetchall()
    return [r[0] - T0 for r in rows]


def retention_log(db: Path) -> list[tuple[timedelta, int]]:
    with Store(db) as store:
        rows = store.con.execute("SELECT cutoff, windows_deleted FROM retention_log ORDER BY cutoff").fetchall()
    return [(cutoff - T0, n) for cutoff, n in rows]


def live_run(db: Path) -> CameraRun:
    """A live unit's run of CAMERA, begun in a new database at `db`."""
    with Store(db) as store:
        begin_camera(store, CAMERA, now=T0, override="test")
        run_id = store.begin_run(RunStart("live:unit:s1", "0", "door", "bus-12", "unit", "h", {}, "test"))
    return CameraRun(CAMERA, run_id, RetentionSchedule(CAMERA))


def test_a_live_unit_deletes_windows_past_retention_at_its_first_commit_and_then_hourly(tmp_path: Path) -> None:
    db = tmp_path / "unit.duckdb"
    run = live_run(db)
    options, totals, log = LiveOptions(signage_override="test"), LiveTotals(), []

    def commit_at(start: datetime, now: datetime) -> None:
        commit(ClosedWindow(run, window(start), health(), [], False, None), db, options, totals, log.append, now)

    minute = timedelta(minutes=1)
    commit_at(T0, T0 + minute)  # the first commit applies retention: nothing is a day old yet
    commit_at(T0 + DAY, T0 + DAY + timedelta(seconds=30))  # due again (a day later); the first window ends at 08:01
    assert stored(db) == [timedelta(0), DAY] and retention_log(db) == []
    commit_at(T0 + DAY + minute, T0 + DAY + 2 * minute)  # the first window is now older than a day, but not due
    assert stored(db) == [timedelta(0), DAY, DAY + minute]
    commit_at(T0 + DAY + 2 * minute, T0 + DAY + timedelta(minutes=61))  # an hour after the last: due
    assert stored(db) == [DAY, DAY + minute, DAY + 2 * minute]  # newer ones kept
    assert retention_log(db) == [(timedelta(minutes=61), 1)]  # cutoff: now less a day
    assert log == ["door: retention deleted 1 windows older than 1 days (logged)"]
    assert (totals.windows_committed, totals.windows_lost, run.lost) == (4, 0, 0)


def test_a_wall_clock_set_back_applies_retention_only_an_hour_after_the_last_time(tmp_path: Path) -> None:
    with Store(tmp_path / "unit.duckdb") as store:
        schedule = RetentionSchedule(CAMERA)
        assert schedule.apply_if_due(store, T0) == 0 and schedule.last == T0
        schedule.apply_if_due(store, T0 - DAY)  # the clock came back at an earlier time: not due
        assert schedule.last == T0
        schedule.apply_if_due(store, T0 + timedelta(minutes=60))
        assert schedule.last == T0 + timedelta(minutes=60)


def test_beginning_a_camera_records_its_site_and_a_live_one_needs_a_sign_up_now(tmp_path: Path) -> None:
    with Store(tmp_path / "a.duckdb") as store:
        begin_camera(store, CAMERA)  # a batch: its files are checked one by one
        sites = store.con.execute("SELECT site_id, site_kind, timezone, privacy_profile, k_min FROM sites").fetchall()
        assert sites == [("bus-12", "market", "UTC", "market", 5)]
        with pytest.raises(SanitaryError, match="no opt-out sign is up for camera door now"):
            begin_camera(store, CAMERA, now=T0)
        begin_camera(store, CAMERA, now=T0, override="consented research footage")
        store.signage.add(Sign("s1", "bus-12", "door", "No camera? Shake your head.", "en", "door", T0 - DAY))
        begin_camera(store, CAMERA, now=T0)


def test_finishing_a_camera_applies_its_retention(tmp_path: Path) -> None:
    db = tmp_path / "a.duckdb"
    with Store(db) as store:
        run_id = store.begin_run(RunStart("f", "f.mp4", "door", "bus-12", "unit", "h", {}))
        store.finish_run(run_id, [window(T0), window(T0 + DAY)], status="done", error=None, frames_analysed=2,
                         footage=(T0, T0 + DAY + timedelta(minutes=1)))  # fmt: skip
        assert finish_camera(store, dataclasses.replace(CAMERA, privacy=PrivacyConfig()), T0 + 2 * DAY) == 0
        assert finish_camera(store, CAMERA, T0 + DAY + timedelta(minutes=1)) == 1
    assert stored(db) == [DAY]


def test_windows_wait_in_order_while_the_file_is_held_and_only_past_the_bound_are_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A query holding the file used to cost the live unit its window; now the window waits (stderr says commits are
    delayed) and is committed, in order, at the next commit the file takes. Past MAX_DELAYED the oldest is lost."""
    monkeypatch.setattr(live, "MAX_DELAYED", 3)
    db = tmp_path / "unit.duckdb"
    run = live_run(db)
    options, totals, log = LiveOptions(signage_override="test"), LiveTotals(), []
    minute = timedelta(minutes=1)

    def commit_at(i: int) -> None:
        closed = ClosedWindow(run, window(T0 + i * minute), health(), [], False, None)
        commit(closed, db, options, totals, log.append, T0 + (i + 1) * minute, wait_s=0.0)

    commit_at(0)
    holder = hold_lock(db, 30.0)
    try:
        for i in range(1, 6):
            commit_at(i)
    finally:
        holder.kill()
        holder.wait()
    assert [line.split(" (")[0] for line in log] == [
        "door: commits delayed, windows kept until " + str(db) + " takes them",
        "door: window 2021-03-01T08:01:00+00:00 lost",
        "door: window 2021-03-01T08:02:00+00:00 lost",
    ]
    commit_at(6)
    assert log[-1] == "door: 4 delayed window(s) committed"  # the three kept and the new one
    assert stored(db) == [i * minute for i in (0, 3, 4, 5, 6)]
    assert (totals.windows_committed, totals.windows_lost) == (5, 2)


def test_a_window_the_open_file_refuses_is_lost_alone_and_holds_up_none_behind_it(tmp_path: Path) -> None:
    db = tmp_path / "unit.duckdb"
    run = live_run(db)
    options, totals, log = LiveOptions(signage_override="test"), LiveTotals(), []
    minute = timedelta(minutes=1)
    twice = ZoneWindow("till", None, 1, 1)
    broken = dataclasses.replace(window(T0), zones=(twice, twice))  # a fault: the same zone twice in one window
    commit(ClosedWindow(run, broken, health(), [], False, None), db, options, totals, log.append, T0 + minute)
    commit(ClosedWindow(run, window(T0 + minute), health(), [], False, None), db, options, totals, log.append, T0)
    assert stored(db) == [minute]
    assert (totals.windows_committed, totals.windows_lost) == (1, 1)
    assert log[0].startswith("door: window 2021-03-01T08:00:00+00:00 lost (Constraint Error") and len(log) == 1
