"""DuckDB store: the runs table, and idempotent, all-or-nothing writes of window aggregates.

Every aggregate row has one key, (site_id, camera_id, source, window_start). A source analysed again for the
same camera replaces its earlier rows in the same transaction that writes the new ones, so a rerun never counts
twice and a run killed midway leaves the previous rows (or none), never a half-written set.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sanitary.alerts.sinks import SentAlert
from sanitary.analytics.mask_rate import MaskShares
from sanitary.analytics.windows import WindowAggregate, ZoneWindow
from sanitary.config import PrivacyConfig
from sanitary.errors import SanitaryError
from sanitary.storage.connection import connect, transaction
from sanitary.storage.owner import Owner, current, gone
from sanitary.storage.registers import AlertRegister, SignRegister, SiteRegister
from sanitary.storage.schema import (
    AGGREGATE_COLUMNS,
    ALERT_COLUMNS,
    DWELL_COLUMNS,
    HEALTH_COLUMNS,
    LINE_COLUMNS,
    PER_SOURCE_TABLES,
    RETENTION_COLUMNS,
    ZONE_COLUMNS,
    migrate,
)
from sanitary.storage.signage import Sign

DEFAULT_PRIVACY = PrivacyConfig()
# DuckDB's threads for the store of a unit (`run`, `live`): it writes a few rows a window, so a worker thread adds no
# speed, only its own malloc arena beside the pipeline (about 6 MB resident on a new file) and one more thread
# competing with the models for the unit's cores. Central commands (import, merge) keep one a core.
UNIT_THREADS = 1


@dataclass(frozen=True)
class WindowHealth:
    """How a live unit fared over one window (HEALTH_COLUMNS after the key, in order)."""

    unit_id: str
    source_up_s: float  # seconds the source delivered frames: a window of a camera that was down reads as missing
    frames_read: int
    frames_analysed: int
    frames_dropped: int  # due for analysis but pushed out of the source's backlog by newer ones: analysis was behind
    analysed_fps: float
    reconnects: int
    cpu_percent: float | None
    rss_mb: float | None
    clock_jump_s: float  # wall clock minus the monotonic clock's account of time; windows follow the latter
    windows_lost: int  # windows this session could not write (a full disk), counted until one is written again


@dataclass(frozen=True)
class RunStart:
    source: str
    source_path: str
    camera_id: str
    site_id: str
    unit_id: str
    params_hash: str
    params: dict[str, Any]
    signage_override: str | None = None  # why footage no sign covered was analysed anyway


class Store:
    """A sanitary database open for writing, migrated to the current schema: runs and window writes here, the
    registers (signs, sites, alerts) beside them on the same connection."""

    def __init__(self, path: Path, *, wait_s: float = 0.0, threads: int | None = None) -> None:
        """`wait_s`: how long to wait out another process's lock before DatabaseLocked (0: fail at once); `threads`:
        DuckDB's (default: one a core)."""
        self.path = path
        self.con = connect(path, wait_s=wait_s, threads=threads)
        try:
            self.con.execute("SET TimeZone = 'UTC'")
            migrate(self.con, path)
            self.interrupted = self._close_dead_runs()
        except BaseException:
            self.con.close()
            raise
        self.signage = SignRegister(self.con, path)
        self.sites = SiteRegister(self.con)
        self.alerts = AlertRegister(self.con)

    @classmethod
    def for_unit(cls, path: Path, *, wait_s: float = 0.0) -> Store:
        """The store of a unit's own file (`run`, `live`): DuckDB on UNIT_THREADS."""
        return cls(path, wait_s=wait_s, threads=UNIT_THREADS)

    def _close_dead_runs(self) -> int:
        """Runs left `running` by a process that has ended (kill -9, a power cut) closed as `interrupted`, saying
        so; how many. What such a run stored stays: a batch file's windows are written with its end, so none.

        A run from before owners were recorded is closed once a later run of its source began: a batch holds the
        file until it ends, so its process had ended by then (a live session's source is its own: never closed)."""
        found = self.con.execute("""
            SELECT r.run_id, r.owner, EXISTS (SELECT 1 FROM runs l WHERE l.source = r.source
                                              AND l.camera_id = r.camera_id AND l.started_at > r.started_at)
            FROM runs r WHERE r.status = 'running'""").fetchall()
        closed = 0
        for run_id, text, rerun in found:
            owner = Owner.parse(text) if text else None
            if owner is not None and gone(owner):
                why = f"process {owner.pid} on {owner.host} ended without closing it (killed, or the machine stopped)"
            elif text is None and rerun:
                why = "a later run of the same footage began, so the process that left it running had ended"
            else:
                continue
            self.fail_run(run_id, f"interrupted: {why}; closed when found", status="interrupted")
            closed += 1
        return closed

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self) -> AbstractContextManager[None]:
        return transaction(self.con)

    def record_site(self, site_id: str, site_kind: str, timezone: str, privacy: PrivacyConfig) -> None:
        """What a camera session records as it starts (the sites register's)."""
        self.sites.record(site_id, site_kind, timezone, privacy)

    def signs(self, site_id: str | None = None, camera_id: str | None = None) -> list[Sign]:
        """What a camera session checks its footage against (the signage register's)."""
        return self.signage.signs(site_id, camera_id)

    def is_done(self, source: str, camera_id: str, params_hash: str) -> bool:
        row = self.con.execute(
            "SELECT count(*) FROM runs WHERE source = ? AND camera_id = ? AND params_hash = ? AND status = 'done'",
            [source, camera_id, params_hash],
        ).fetchone()
        return bool(row and row[0])

    def longer_recording(self, camera_id: str, site_id: str, source: str, start: datetime, end: datetime) -> str | None:
        """Where another recording of the camera from `start` to `end` or later is stored from (its path), if one is:
        a file cut short is then a shorter copy of it."""
        row = self.con.execute(
            "SELECT source_path FROM runs WHERE camera_id = ? AND site_id = ? AND source <> ?"
            " AND status IN ('done', 'truncated') AND footage_start = ? AND footage_end >= ? LIMIT 1",
            [camera_id, site_id, source, start, end],
        ).fetchone()
        return row[0] if row else None

    def begin_run(self, run: RunStart) -> str:
        """Record that a run started; it reads 'running' until finished, so a crash leaves a visible trace."""
        run_id = uuid.uuid4().hex
        self.con.execute(
            "INSERT INTO runs (run_id, source, source_path, camera_id, site_id, unit_id, params_hash, params,"
            " started_at, signage_override, owner, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running')",
            [
                run_id,
                run.source,
                run.source_path,
                run.camera_id,
                run.site_id,
                run.unit_id,
                run.params_hash,
                json.dumps(run.params, sort_keys=True),
                _now(),
                run.signage_override,
                str(current()),
            ],
        )
        return run_id

    def finish_run(
        self,
        run_id: str,
        windows: list[WindowAggregate],
        *,
        status: str,
        error: str | None,
        frames_analysed: int,
        footage: tuple[datetime, datetime] | None,
        notes: str | None = None,
        dwell_bins_s: tuple[float, ...] = (),
        privacy: PrivacyConfig = DEFAULT_PRIVACY,
        alerts: Sequence[SentAlert] = (),
        frames_unreadable: int = 0,
    ) -> None:
        """Replace this source's rows for the camera with `windows` and close the run, all in one transaction.

        Footage cut short (a `truncated` run) of the same camera starting at the same time and ending within
        `footage` is the same recording exported again whole or longer, as its error told the operator to do: its
        rows are replaced too, so that the recording is never counted twice."""
        run = self.con.execute(
            "SELECT source, camera_id, site_id, unit_id FROM runs WHERE run_id = ?", [run_id]
        ).fetchone()
        if run is None:
            raise SanitaryError(f"{self.path}: run {run_id} is not in the runs table")
        source, camera_id, site_id, unit_id = run
        with self.transaction():
            cut = (
                [
                    r[0]
                    for r in self.con.execute(
                        "SELECT DISTINCT source FROM runs WHERE camera_id = ? AND site_id = ? AND source <> ?"
                        " AND status = 'truncated' AND footage_start = ? AND footage_end <= ?",
                        [camera_id, site_id, source, *footage],
                    ).fetchall()
                ]
                if footage
                else []
            )
            replaced = [source, *cut]
            for table in PER_SOURCE_TABLES:
                self.con.execute(
                    f"DELETE FROM {table} WHERE source IN (SELECT unnest(?)) AND camera_id = ? AND site_id = ?",
                    [replaced, camera_id, site_id],
                )
            self.con.execute(
                "UPDATE runs SET status = 'replaced' WHERE source IN (SELECT unnest(?)) AND camera_id = ?"
                " AND run_id <> ? AND status IN ('done', 'failed', 'truncated')",
                [replaced, camera_id, run_id],
            )
            self._insert_windows(windows, unit_id, run_id, privacy, dwell_bins_s)
            self._insert(
                "alerts", ALERT_COLUMNS, [[site_id, camera_id, source, *_alert_row(a), run_id] for a in alerts]
            )
            self.con.execute(
                "UPDATE runs SET status = ?, error = ?, finished_at = ?, frames_analysed = ?,"
                " footage_start = ?, footage_end = ?, notes = ?, frames_unreadable = ? WHERE run_id = ?",
                [
                    status,
                    error,
                    _now(),
                    frames_analysed,
                    footage[0] if footage else None,
                    footage[1] if footage else None,
                    notes,
                    frames_unreadable,
                    run_id,
                ],
            )

    def commit_window(
        self,
        run_id: str,
        window: WindowAggregate,
        health: WindowHealth,
        *,
        privacy: PrivacyConfig,
        dwell_bins_s: tuple[float, ...],
        alerts: Sequence[SentAlert],
        partial: bool,
        tags: str | None,
        settled: Sequence[SentAlert] = (),
    ) -> None:
        """One window of a live unit, with its alerts and health, in one transaction; a window committed again
        (a retry) replaces its earlier copy, so it is never counted twice. `settled`: alerts of earlier windows,
        stored pending, whose delivery is now known."""
        k = window.key
        unit_id = health.unit_id
        # A partial window ends where its footage stopped, not where the window would have.
        footage_end = k.window_start + timedelta(seconds=window.covered_s) if partial else window.window_end
        with self.transaction():
            for table in PER_SOURCE_TABLES:
                when = (
                    "event_at >= ? AND event_at < ?" if table == "alerts" else "window_start >= ? AND window_start < ?"
                )
                self.con.execute(
                    f"DELETE FROM {table} WHERE site_id = ? AND camera_id = ? AND source = ? AND {when}",
                    [k.site_id, k.camera_id, k.source, k.window_start, window.window_end],
                )
            self._insert_windows([window], unit_id, run_id, privacy, dwell_bins_s, partial, tags)
            self._insert(
                "alerts", ALERT_COLUMNS, [[k.site_id, k.camera_id, k.source, *_alert_row(a), run_id] for a in alerts]
            )
            self.alerts.record_delivery(k.source, settled)
            self._insert("health", HEALTH_COLUMNS, [[*_key(window), *dataclasses.astuple(health)]])
            self.con.execute(
                "UPDATE runs SET frames_analysed = coalesce(frames_analysed, 0) + ?, footage_start ="
                " coalesce(footage_start, ?), footage_end = ? WHERE run_id = ?",
                [window.frames_analysed, k.window_start, footage_end, run_id],
            )

    def _insert_windows(
        self,
        windows: list[WindowAggregate],
        unit_id: str,
        run_id: str,
        privacy: PrivacyConfig,
        dwell_bins_s: tuple[float, ...],
        partial: bool = False,
        tags: str | None = None,
    ) -> None:
        rows = [_row(w, unit_id, run_id, privacy, partial, tags) for w in windows]
        self._insert("window_aggregates", AGGREGATE_COLUMNS, rows)
        self._insert("zone_windows", ZONE_COLUMNS, [_zone_row(w, z) for w in windows for z in w.zones])
        self._insert("dwell_windows", DWELL_COLUMNS, [r for w in windows for r in _dwell_rows(w, dwell_bins_s)])
        self._insert("line_windows", LINE_COLUMNS, [[*_key(w), x.name, x.people_in, x.people_out] for w in windows
                                                    for x in w.lines])  # fmt: skip

    def last_window_end(self, site_id: str, camera_id: str) -> datetime | None:
        """The latest moment the camera's committed windows cover: a partial window (flushed at a stop) ends
        where its footage did, so that a restart goes on inside it."""
        row = self.con.execute(
            "SELECT max(CASE WHEN partial THEN window_start + to_microseconds((covered_s * 1e6)::BIGINT)"
            " ELSE window_end END) FROM window_aggregates WHERE site_id = ? AND camera_id = ?",
            [site_id, camera_id],
        ).fetchone()
        return row[0] if row else None

    def _insert(self, table: str, columns: tuple[str, ...], rows: list[list[object]]) -> None:
        if rows:
            placeholders = ", ".join("?" * len(columns))
            self.con.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", rows)

    def fail_run(self, run_id: str, error: str, status: str = "failed") -> None:
        """A run that stored nothing: earlier rows of the same source stay as they were."""
        self.con.execute(
            "UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE run_id = ?", [status, error, _now(), run_id]
        )

    def end_run(self, run_id: str, status: str, error: str | None = None) -> None:
        """A live run that stored its windows as they closed: only its status, end and error are left to record."""
        self.con.execute(
            "UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE run_id = ?", [status, error, _now(), run_id]
        )

    def apply_retention(self, site_id: str, camera_id: str, days: float, now: datetime | None = None) -> int:
        """Delete the camera's aggregates and alerts older than `days` (0: keep), and log what went; windows deleted."""
        if days <= 0:
            return 0
        cutoff = (now or _now()) - timedelta(days=days)
        key = "site_id = ? AND camera_id = ?"
        args = [site_id, camera_id, cutoff]
        old = f"SELECT source, window_start FROM window_aggregates WHERE {key} AND window_end <= ?"
        with self.transaction():
            windows = self._count(f"SELECT count(*) FROM ({old})", args)
            rows = 0
            # Per-window rows of other tables go with their window; the aggregates row goes last, as it names them.
            for table in ("zone_windows", "dwell_windows", "line_windows", "health", "alerts", "window_aggregates"):
                where = (
                    f"{key} AND event_at < ?" if table == "alerts"
                    else f"{key} AND (source, window_start) IN ({old})"
                )  # fmt: skip
                params = args if table == "alerts" else [site_id, camera_id, *args]
                rows += self._count(f"SELECT count(*) FROM {table} WHERE {where}", params)
                self.con.execute(f"DELETE FROM {table} WHERE {where}", params)
            if rows:
                self._insert("retention_log", RETENTION_COLUMNS, [[_now(), site_id, camera_id, cutoff, windows, rows]])
        return windows

    def _count(self, sql: str, params: list[object]) -> int:
        row = self.con.execute(sql, params).fetchone()
        return int(row[0]) if row else 0


def _row(
    w: WindowAggregate,
    unit_id: str,
    run_id: str,
    privacy: PrivacyConfig,
    partial: bool = False,
    tags: str | None = None,
) -> list[object]:
    k = w.key
    # A suppressed window stores no per-class count: with the people count they would give the rate back.
    shown = not w.mask_suppressed
    m = w.masks
    p = w.persons
    return [
        k.site_id, k.camera_id, k.source, k.window_start, w.window_end, unit_id, run_id, w.frames_analysed,
        w.covered_s, w.people_sum, w.people_max, w.faces_sum,
        *((m.with_mask, m.without_mask, m.incorrect, m.unknown) if shown else (None,) * 4),
        *_shares(w.mask_shares),
        *(
            (g.close_pair_frames, g.close_pairs_sum, g.people_close_sum, g.nearest_min_m, g.nearest_median_m)
            if (g := w.distancing) else (None,) * 5
        ),
        p.people_distinct if p else None,
        *((p.masks.with_mask, p.masks.without_mask, p.masks.incorrect, p.masks.unknown) if p and shown
          else (None,) * 4),
        *_shares(p.mask_shares if p else None),
        p.close_contacts if p else None,
        privacy.profile, privacy.k_min, w.mask_suppressed, w.opt_outs, partial, tags,
    ]  # fmt: skip


def _shares(shares: MaskShares | None) -> tuple[float | None, float | None, float | None]:
    return (shares.mask_rate, shares.low[0], shares.high[0]) if shares else (None, None, None)


def _alert_row(sent: SentAlert) -> list[object]:
    a = sent.alert
    return [a.at, a.rule, a.state, a.measure, a.zone, a.direction, a.threshold, a.value, sent.delivery]


def _key(w: WindowAggregate) -> list[object]:
    return [w.key.site_id, w.key.camera_id, w.key.source, w.key.window_start]


def _dwell_rows(w: WindowAggregate, bins: tuple[float, ...]) -> list[list[object]]:
    if w.persons is None or not w.persons.dwell_counts:
        return []
    edges = (0.0, *bins)
    highs = (*bins, None)
    return [[*_key(w), lo, hi, n] for lo, hi, n in zip(edges, highs, w.persons.dwell_counts, strict=True)]


def _zone_row(w: WindowAggregate, z: ZoneWindow) -> list[object]:
    return [*_key(w), z.name, z.area_m2, w.frames_analysed, z.people_sum, z.people_max]


def _now() -> datetime:
    return datetime.now(UTC)
