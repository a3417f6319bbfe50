"""DuckDB store: versioned schema, the runs table, and idempotent, all-or-nothing writes of window aggregates.

Every aggregate row has one key, (site_id, camera_id, source, window_start). A source analysed again for the
same camera replaces its earlier rows in the same transaction that writes the new ones, so a rerun never counts
twice and a run killed midway leaves the previous rows (or none), never a half-written set.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from sanitary.alerts.sinks import SentAlert
from sanitary.analytics.mask_rate import MaskShares
from sanitary.analytics.windows import WindowAggregate, ZoneWindow
from sanitary.config import PrivacyConfig
from sanitary.errors import SanitaryError
from sanitary.governance.signage import Sign

SCHEMA_VERSION = 7
DEFAULT_PRIVACY = PrivacyConfig()


def _v1(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""
        CREATE TABLE runs (
            run_id        VARCHAR PRIMARY KEY,
            source        VARCHAR NOT NULL,
            source_path   VARCHAR NOT NULL,
            camera_id     VARCHAR NOT NULL,
            site_id       VARCHAR NOT NULL,
            unit_id       VARCHAR NOT NULL,
            params_hash   VARCHAR NOT NULL,
            params        JSON NOT NULL,
            started_at    TIMESTAMPTZ NOT NULL,
            finished_at   TIMESTAMPTZ,
            status        VARCHAR NOT NULL,
            error         VARCHAR,
            frames_analysed BIGINT,
            footage_start TIMESTAMPTZ,
            footage_end   TIMESTAMPTZ,
            notes         VARCHAR
        )""")
    con.execute("""
        CREATE TABLE window_aggregates (
            site_id         VARCHAR NOT NULL,
            camera_id       VARCHAR NOT NULL,
            source          VARCHAR NOT NULL,
            window_start    TIMESTAMPTZ NOT NULL,
            window_end      TIMESTAMPTZ NOT NULL,
            unit_id         VARCHAR NOT NULL,
            run_id          VARCHAR NOT NULL,
            frames_analysed BIGINT NOT NULL,
            covered_s       DOUBLE NOT NULL,
            people_sum      BIGINT NOT NULL,
            people_max      BIGINT NOT NULL,
            faces_sum       BIGINT NOT NULL,
            PRIMARY KEY (site_id, camera_id, source, window_start)
        )""")
    # One row per camera and window, all sources of it combined: what an official reads.
    con.execute("""
        CREATE VIEW camera_windows AS
        SELECT site_id, camera_id, window_start, max(window_end) AS window_end,
               sum(frames_analysed) AS frames_analysed,
               sum(covered_s) AS covered_s,
               sum(people_sum) / nullif(sum(frames_analysed), 0) AS occupancy_mean,
               max(people_max) AS occupancy_max,
               sum(faces_sum) AS faces_seen,
               count(*) AS sources
        FROM window_aggregates
        GROUP BY site_id, camera_id, window_start""")


def _v2(con: duckdb.DuckDBPyConnection) -> None:
    """Mask wearing. Rows written before it hold NULL, not 0: their faces were never classified."""
    for column in ("faces_with_mask", "faces_without_mask", "faces_mask_incorrect", "faces_mask_unknown"):
        con.execute(f"ALTER TABLE window_aggregates ADD COLUMN {column} BIGINT")
    for column in ("mask_rate", "mask_rate_low", "mask_rate_high"):
        con.execute(f"ALTER TABLE window_aggregates ADD COLUMN {column} DOUBLE")
    con.execute("DROP VIEW camera_windows")
    con.execute(_camera_windows_view(""))


def _camera_windows_view(extra_columns: str) -> str:
    """The camera_windows view with mask columns (v2), and the columns later versions add to it."""
    return f"""
        CREATE VIEW camera_windows AS
        SELECT site_id, camera_id, window_start, max(window_end) AS window_end,
               sum(frames_analysed) AS frames_analysed,
               sum(covered_s) AS covered_s,
               sum(people_sum) / nullif(sum(frames_analysed), 0) AS occupancy_mean,
               max(people_max) AS occupancy_max,
               sum(faces_sum) AS faces_seen,
               sum(faces_with_mask) AS faces_with_mask,
               sum(faces_without_mask) AS faces_without_mask,
               sum(faces_mask_incorrect) AS faces_mask_incorrect,
               sum(faces_mask_unknown) AS faces_mask_unknown,
               sum(faces_with_mask) + sum(faces_without_mask) + sum(faces_mask_incorrect) AS mask_rate_n,
               -- The corrected rate and its interval need the classifier's confusion matrix: stored per source
               -- row, so shown here only where one source covers the window.
               CASE WHEN count(*) = 1 THEN any_value(mask_rate) END AS mask_rate,
               CASE WHEN count(*) = 1 THEN any_value(mask_rate_low) END AS mask_rate_low,
               CASE WHEN count(*) = 1 THEN any_value(mask_rate_high) END AS mask_rate_high,
               {extra_columns}
               count(*) AS sources
        FROM window_aggregates
        GROUP BY site_id, camera_id, window_start"""


def _v3(con: duckdb.DuckDBPyConnection) -> None:
    """Ground-plane distancing and zones. NULL distancing: the camera was not calibrated, or the row predates it."""
    for column in ("close_pair_frames", "close_pairs_sum", "people_close_sum"):
        con.execute(f"ALTER TABLE window_aggregates ADD COLUMN {column} BIGINT")
    for column in ("nearest_min_m", "nearest_median_m"):
        con.execute(f"ALTER TABLE window_aggregates ADD COLUMN {column} DOUBLE")
    con.execute("""
        CREATE TABLE zone_windows (
            site_id         VARCHAR NOT NULL,
            camera_id       VARCHAR NOT NULL,
            source          VARCHAR NOT NULL,
            window_start    TIMESTAMPTZ NOT NULL,
            zone            VARCHAR NOT NULL,
            area_m2         DOUBLE,
            frames_analysed BIGINT NOT NULL,
            people_sum      BIGINT NOT NULL,
            people_max      BIGINT NOT NULL,
            PRIMARY KEY (site_id, camera_id, source, window_start, zone)
        )""")
    con.execute("""
        CREATE VIEW zone_occupancy AS
        SELECT site_id, camera_id, zone, window_start, any_value(area_m2) AS area_m2,
               sum(people_sum) / nullif(sum(frames_analysed), 0) AS occupancy_mean,
               max(people_max) AS occupancy_max,
               sum(people_sum) / nullif(sum(frames_analysed), 0) / any_value(area_m2) AS density_per_m2
        FROM zone_windows
        GROUP BY site_id, camera_id, zone, window_start""")
    con.execute("""
        CREATE VIEW distancing_windows AS
        SELECT site_id, camera_id, window_start,
               sum(frames_analysed) AS frames_analysed,
               sum(close_pair_frames) AS close_pair_frames,
               sum(close_pairs_sum) AS close_pairs_sum,
               sum(people_close_sum) / nullif(sum(frames_analysed), 0) AS people_close_mean,
               min(nearest_min_m) AS nearest_min_m,
               -- A median does not combine across sources; shown where one source covers the window.
               CASE WHEN count(*) = 1 THEN any_value(nearest_median_m) END AS nearest_median_m
        FROM window_aggregates
        WHERE close_pairs_sum IS NOT NULL
        GROUP BY site_id, camera_id, window_start""")


def _v4(con: duckdb.DuckDBPyConnection) -> None:
    """Tracking: distinct people, their mask votes, dwell times, line crossings, close contacts."""
    for column in ("people_distinct", "persons_with_mask", "persons_without_mask", "persons_mask_incorrect",
                   "persons_mask_unknown", "close_contacts"):  # fmt: skip
        con.execute(f"ALTER TABLE window_aggregates ADD COLUMN {column} BIGINT")
    for column in ("person_mask_rate", "person_mask_rate_low", "person_mask_rate_high"):
        con.execute(f"ALTER TABLE window_aggregates ADD COLUMN {column} DOUBLE")
    key = (
        "site_id VARCHAR NOT NULL, camera_id VARCHAR NOT NULL, source VARCHAR NOT NULL, "
        "window_start TIMESTAMPTZ NOT NULL"
    )
    con.execute(f"""
        CREATE TABLE dwell_windows ({key},
            bin_low_s DOUBLE NOT NULL, bin_high_s DOUBLE, people BIGINT NOT NULL,
            PRIMARY KEY (site_id, camera_id, source, window_start, bin_low_s))""")
    con.execute(f"""
        CREATE TABLE line_windows ({key},
            line VARCHAR NOT NULL, people_in BIGINT NOT NULL, people_out BIGINT NOT NULL,
            PRIMARY KEY (site_id, camera_id, source, window_start, line))""")


def _v5(con: duckdb.DuckDBPyConnection) -> None:
    """Privacy by design: the profile and cell size behind each row, opt-outs, the signage register, alerts,
    and a log of what retention deleted. Rows written before it hold NULL: no profile was applied to them."""
    con.execute("ALTER TABLE window_aggregates ADD COLUMN privacy_profile VARCHAR")
    con.execute("ALTER TABLE window_aggregates ADD COLUMN k_min BIGINT")
    con.execute("ALTER TABLE window_aggregates ADD COLUMN mask_suppressed BOOLEAN")
    con.execute("ALTER TABLE window_aggregates ADD COLUMN opt_outs BIGINT")
    con.execute("ALTER TABLE runs ADD COLUMN signage_override VARCHAR")
    con.execute("""
        CREATE TABLE signage (
            sign_id     VARCHAR PRIMARY KEY,
            site_id     VARCHAR NOT NULL,
            camera_id   VARCHAR NOT NULL,
            text        VARCHAR NOT NULL,
            language    VARCHAR NOT NULL,
            location    VARCHAR NOT NULL,
            posted_at   TIMESTAMPTZ NOT NULL,
            removed_at  TIMESTAMPTZ,
            recorded_at TIMESTAMPTZ NOT NULL
        )""")
    con.execute("""
        CREATE TABLE alerts (
            site_id    VARCHAR NOT NULL,
            camera_id  VARCHAR NOT NULL,
            source     VARCHAR NOT NULL,
            event_at   TIMESTAMPTZ NOT NULL,
            rule       VARCHAR NOT NULL,
            state      VARCHAR NOT NULL,
            measure    VARCHAR NOT NULL,
            zone       VARCHAR,
            direction  VARCHAR NOT NULL,
            threshold  DOUBLE NOT NULL,
            value      DOUBLE NOT NULL,
            delivery   VARCHAR NOT NULL,
            run_id     VARCHAR NOT NULL,
            PRIMARY KEY (site_id, camera_id, source, event_at, rule, state)
        )""")
    con.execute("""
        CREATE TABLE retention_log (
            deleted_at   TIMESTAMPTZ NOT NULL,
            site_id      VARCHAR NOT NULL,
            camera_id    VARCHAR NOT NULL,
            cutoff       TIMESTAMPTZ NOT NULL,
            windows_deleted BIGINT NOT NULL,
            rows_deleted BIGINT NOT NULL
        )""")
    con.execute("DROP VIEW camera_windows")
    con.execute(_camera_windows_view(
        "coalesce(bool_or(mask_suppressed), false) AS mask_suppressed, sum(opt_outs) AS opt_outs,"
    ))  # fmt: skip


# A window's local time: its day and hour are those of the site's clock, and a local hour that happens twice (when
# daylight saving ends) stays two hours, told apart by their UTC start.
_LOCAL = """
    WITH w AS (
        SELECT a.*, coalesce(s.timezone, 'UTC') AS tz, s.k_min AS site_k_min,
               timezone(coalesce(s.timezone, 'UTC'), a.window_start) AS local_start
        FROM window_aggregates a LEFT JOIN sites s USING (site_id)
    )"""


def _v6(con: duckdb.DuckDBPyConnection) -> None:
    """Views for officials, by site and day or hour in the site's own time zone, missing periods shown as missing."""
    con.execute("""
        CREATE TABLE sites (
            site_id         VARCHAR PRIMARY KEY,
            site_kind       VARCHAR NOT NULL,
            timezone        VARCHAR NOT NULL,
            privacy_profile VARCHAR NOT NULL,
            k_min           BIGINT NOT NULL,
            updated_at      TIMESTAMPTZ NOT NULL
        )""")
    # Per window: the rate's basis is people (tracked, each once) where tracking ran, else face-frames.
    con.execute(f"""
        CREATE VIEW mask_rate_windows AS {_LOCAL}
        SELECT site_id, camera_id, source, window_start, window_end, local_start, tz, covered_s, opt_outs,
               coalesce(k_min, site_k_min) AS k_min, coalesce(people_distinct, people_max) AS people,
               coalesce(mask_suppressed, false) AS mask_suppressed,
               CASE WHEN people_distinct IS NOT NULL THEN 'people' ELSE 'faces' END AS basis,
               coalesce(persons_with_mask + persons_without_mask + persons_mask_incorrect,
                        faces_with_mask + faces_without_mask + faces_mask_incorrect) AS n,
               coalesce(person_mask_rate, mask_rate) AS rate,
               coalesce(person_mask_rate_low, mask_rate_low) AS rate_low,
               coalesce(person_mask_rate_high, mask_rate_high) AS rate_high,
               (coalesce(person_mask_rate_high, mask_rate_high) - coalesce(person_mask_rate_low, mask_rate_low))
                   / 3.92 AS rate_sd
        FROM w""")
    con.execute("""
        CREATE VIEW mask_rate_daily AS
        WITH per_day AS (
            SELECT site_id, local_start::DATE AS day, max(k_min) AS k_min,
                   count(*) AS windows, count(*) FILTER (WHERE mask_suppressed) AS windows_suppressed,
                   sum(covered_s) AS covered_s, sum(opt_outs) AS opt_outs, sum(people) AS people,
                   string_agg(DISTINCT basis, '+') FILTER (WHERE rate IS NOT NULL) AS basis,
                   sum(n) FILTER (WHERE rate IS NOT NULL) AS n,
                   sum(n * rate) / nullif(sum(n) FILTER (WHERE rate IS NOT NULL), 0) AS rate,
                   -- An interval needs every pooled window's; one missing would make it look narrower than it is.
                   CASE WHEN bool_and(rate_sd IS NOT NULL) FILTER (WHERE rate IS NOT NULL)
                        THEN sqrt(sum((n * rate_sd) ^ 2)) / nullif(sum(n) FILTER (WHERE rate IS NOT NULL), 0)
                   END AS sd
            FROM mask_rate_windows GROUP BY site_id, local_start::DATE
        ), days AS (
            SELECT site_id, unnest(generate_series(min(day), max(day), INTERVAL 1 DAY))::DATE AS day
            FROM per_day GROUP BY site_id
        )
        SELECT site_id, day, coalesce(windows, 0) AS windows, coalesce(covered_s, 0) AS covered_s,
               people AS people_in_windows, basis, n AS people_or_faces,
               coalesce(people < k_min, false) OR (coalesce(windows_suppressed, 0) > 0 AND n IS NULL) AS suppressed,
               CASE WHEN people >= coalesce(k_min, 1) THEN rate END AS mask_rate,
               CASE WHEN people >= coalesce(k_min, 1) AND sd IS NOT NULL THEN greatest(0, rate - 1.96 * sd) END
                   AS mask_rate_low,
               CASE WHEN people >= coalesce(k_min, 1) AND sd IS NOT NULL THEN least(1, rate + 1.96 * sd) END
                   AS mask_rate_high,
               coalesce(windows_suppressed, 0) AS windows_suppressed, opt_outs
        FROM days LEFT JOIN per_day USING (site_id, day)
        ORDER BY site_id, day""")
    con.execute(f"""
        CREATE VIEW occupancy_hourly AS {_LOCAL},
        hourly AS (
            SELECT site_id, camera_id, any_value(tz) AS tz,
                   timezone('UTC', date_trunc('hour', local_start) - (local_start - timezone('UTC', window_start)))
                       AS hour_start,
                   sum(frames_analysed) AS frames_analysed, sum(covered_s) AS covered_s,
                   sum(people_sum) / nullif(sum(frames_analysed), 0) AS occupancy_mean,
                   max(people_max) AS occupancy_max
            FROM w GROUP BY ALL
        ), hours AS (
            SELECT site_id, camera_id, any_value(tz) AS tz,
                   unnest(generate_series(min(hour_start), max(hour_start), INTERVAL 1 HOUR)) AS hour_start
            FROM hourly GROUP BY site_id, camera_id
        )
        SELECT site_id, camera_id, hour_start, timezone(hours.tz, hour_start) AS local_hour,
               coalesce(frames_analysed, 0) AS frames_analysed, coalesce(covered_s, 0) AS covered_s,
               occupancy_mean, occupancy_max
        FROM hours LEFT JOIN hourly USING (site_id, camera_id, hour_start)
        ORDER BY site_id, camera_id, hour_start""")
    con.execute(f"""
        CREATE VIEW distancing_daily AS {_LOCAL},
        per_day AS (
            SELECT site_id, local_start::DATE AS day, sum(frames_analysed) AS frames_analysed,
                   sum(close_pair_frames) AS close_pair_frames, sum(close_pairs_sum) AS close_pairs_sum,
                   sum(close_contacts) AS close_contacts, min(nearest_min_m) AS nearest_min_m
            FROM w WHERE close_pairs_sum IS NOT NULL GROUP BY ALL
        ), days AS (
            SELECT site_id, unnest(generate_series(min(day), max(day), INTERVAL 1 DAY))::DATE AS day
            FROM per_day GROUP BY site_id
        )
        SELECT site_id, day, coalesce(frames_analysed, 0) AS frames_measured, close_pair_frames,
               close_pair_frames / nullif(frames_analysed, 0) AS share_frames_close,
               close_pairs_sum, close_contacts, nearest_min_m
        FROM days LEFT JOIN per_day USING (site_id, day)
        ORDER BY site_id, day""")
    con.execute("""
        CREATE VIEW alerts_daily AS
        SELECT a.site_id, a.camera_id, timezone(coalesce(s.timezone, 'UTC'), a.event_at)::DATE AS day, a.rule,
               any_value(a.measure) AS measure,
               count(*) FILTER (WHERE a.state = 'raised') AS raised,
               count(*) FILTER (WHERE a.state = 'cleared') AS cleared,
               count(*) FILTER (WHERE a.delivery <> 'delivered') AS undelivered
        FROM alerts a LEFT JOIN sites s USING (site_id)
        GROUP BY ALL ORDER BY 1, 2, 3, 4""")


def _v7(con: duckdb.DuckDBPyConnection) -> None:
    """Live units: windows flushed early (partial), route/stop tags, and the unit's health per window."""
    con.execute("ALTER TABLE window_aggregates ADD COLUMN partial BOOLEAN")
    con.execute("ALTER TABLE window_aggregates ADD COLUMN tags JSON")
    con.execute("""
        CREATE TABLE health (
            site_id         VARCHAR NOT NULL,
            camera_id       VARCHAR NOT NULL,
            source          VARCHAR NOT NULL,
            window_start    TIMESTAMPTZ NOT NULL,
            unit_id         VARCHAR NOT NULL,
            source_up_s     DOUBLE NOT NULL,
            frames_read     BIGINT NOT NULL,
            frames_analysed BIGINT NOT NULL,
            frames_dropped  BIGINT NOT NULL,
            analysed_fps    DOUBLE NOT NULL,
            reconnects      BIGINT NOT NULL,
            cpu_percent     DOUBLE,
            rss_mb          DOUBLE,
            clock_jump_s    DOUBLE NOT NULL,
            windows_lost    BIGINT NOT NULL,
            PRIMARY KEY (site_id, camera_id, source, window_start)
        )""")


# MIGRATIONS[i] takes a database from schema version i to i + 1.
MIGRATIONS: list[Callable[[duckdb.DuckDBPyConnection], None]] = [_v1, _v2, _v3, _v4, _v5, _v6, _v7]
# Rows that belong to one source of one camera: replaced together when the source is analysed again.
PER_SOURCE_TABLES = ("window_aggregates", "zone_windows", "dwell_windows", "line_windows", "alerts", "health")
AGGREGATE_COLUMNS = (
    "site_id",
    "camera_id",
    "source",
    "window_start",
    "window_end",
    "unit_id",
    "run_id",
    "frames_analysed",
    "covered_s",
    "people_sum",
    "people_max",
    "faces_sum",
    "faces_with_mask",
    "faces_without_mask",
    "faces_mask_incorrect",
    "faces_mask_unknown",
    "mask_rate",
    "mask_rate_low",
    "mask_rate_high",
    "close_pair_frames",
    "close_pairs_sum",
    "people_close_sum",
    "nearest_min_m",
    "nearest_median_m",
    "people_distinct",
    "persons_with_mask",
    "persons_without_mask",
    "persons_mask_incorrect",
    "persons_mask_unknown",
    "person_mask_rate",
    "person_mask_rate_low",
    "person_mask_rate_high",
    "close_contacts",
    "privacy_profile",
    "k_min",
    "mask_suppressed",
    "opt_outs",
    "partial",
    "tags",
)
HEALTH_COLUMNS = (
    "site_id", "camera_id", "source", "window_start", "unit_id", "source_up_s", "frames_read", "frames_analysed",
    "frames_dropped", "analysed_fps", "reconnects", "cpu_percent", "rss_mb", "clock_jump_s", "windows_lost",
)  # fmt: skip
DWELL_COLUMNS = ("site_id", "camera_id", "source", "window_start", "bin_low_s", "bin_high_s", "people")
LINE_COLUMNS = ("site_id", "camera_id", "source", "window_start", "line", "people_in", "people_out")
ALERT_COLUMNS = (
    "site_id", "camera_id", "source", "event_at", "rule", "state", "measure", "zone", "direction", "threshold", "value",
    "delivery", "run_id",
)  # fmt: skip
SIGN_COLUMNS = ("sign_id", "site_id", "camera_id", "text", "language", "location", "posted_at", "removed_at")
ZONE_COLUMNS = (
    "site_id", "camera_id", "source", "window_start", "zone", "area_m2", "frames_analysed", "people_sum", "people_max",
)  # fmt: skip


@dataclass(frozen=True)
class WindowHealth:
    """How a live unit fared over one window (HEALTH_COLUMNS after the key, in order)."""

    unit_id: str
    source_up_s: float  # seconds the source delivered frames: a window of a camera that was down reads as missing
    frames_read: int
    frames_analysed: int
    frames_dropped: int  # due for analysis but overwritten by a newer frame: analysis was behind
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
    def __init__(self, path: Path) -> None:
        self.path = path
        self.con = _connect(path)
        self._migrate()

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        self.con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
        row = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise SanitaryError(
                f"{self.path}: database schema v{version} is newer than this sanitary (v{SCHEMA_VERSION}); "
                "upgrade sanitary to use it"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self.transaction():
                MIGRATIONS[target - 1](self.con)
                self.con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(target)])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def is_done(self, source: str, camera_id: str, params_hash: str) -> bool:
        row = self.con.execute(
            "SELECT count(*) FROM runs WHERE source = ? AND camera_id = ? AND params_hash = ? AND status = 'done'",
            [source, camera_id, params_hash],
        ).fetchone()
        return bool(row and row[0])

    def begin_run(self, run: RunStart) -> str:
        """Record that a run started; it reads 'running' until finished, so a crash leaves a visible trace."""
        run_id = uuid.uuid4().hex
        self.con.execute(
            "INSERT INTO runs (run_id, source, source_path, camera_id, site_id, unit_id, params_hash, params,"
            " started_at, signage_override, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running')",
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
    ) -> None:
        """Replace this source's rows for the camera with `windows` and close the run, all in one transaction."""
        run = self.con.execute(
            "SELECT source, camera_id, site_id, unit_id FROM runs WHERE run_id = ?", [run_id]
        ).fetchone()
        if run is None:
            raise SanitaryError(f"{self.path}: run {run_id} is not in the runs table")
        source, camera_id, site_id, unit_id = run
        with self.transaction():
            for table in PER_SOURCE_TABLES:
                self.con.execute(
                    f"DELETE FROM {table} WHERE source = ? AND camera_id = ? AND site_id = ?",
                    [source, camera_id, site_id],
                )
            self.con.execute(
                "UPDATE runs SET status = 'replaced' WHERE source = ? AND camera_id = ? AND run_id <> ?"
                " AND status IN ('done', 'failed', 'truncated')",
                [source, camera_id, run_id],
            )
            self._insert_windows(windows, unit_id, run_id, privacy, dwell_bins_s)
            self._insert(
                "alerts", ALERT_COLUMNS, [[site_id, camera_id, source, *_alert_row(a), run_id] for a in alerts]
            )
            self.con.execute(
                "UPDATE runs SET status = ?, error = ?, finished_at = ?, frames_analysed = ?,"
                " footage_start = ?, footage_end = ?, notes = ? WHERE run_id = ?",
                [
                    status,
                    error,
                    _now(),
                    frames_analysed,
                    footage[0] if footage else None,
                    footage[1] if footage else None,
                    notes,
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
    ) -> None:
        """One window of a live unit, with its alerts and health, in one transaction; a window committed again
        (a retry) replaces its earlier copy, so it is never counted twice."""
        k = window.key
        unit_id = health.unit_id
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
            self._insert("health", HEALTH_COLUMNS, [[*_key(window), *dataclasses.astuple(health)]])
            self.con.execute(
                "UPDATE runs SET frames_analysed = coalesce(frames_analysed, 0) + ?, footage_start ="
                " coalesce(footage_start, ?), footage_end = ? WHERE run_id = ?",
                [window.frames_analysed, k.window_start, window.window_end, run_id],
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
                self.con.execute(
                    "INSERT INTO retention_log VALUES (?, ?, ?, ?, ?, ?)",
                    [_now(), site_id, camera_id, cutoff, windows, rows],
                )
        return windows

    def _count(self, sql: str, params: list[object]) -> int:
        row = self.con.execute(sql, params).fetchone()
        return int(row[0]) if row else 0

    def alerts(self, site_id: str | None = None, camera_id: str | None = None) -> list[dict[str, object]]:
        """Stored alerts, oldest first, as rows for display (a report or the CLI)."""
        cursor = self.con.execute(
            f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts WHERE coalesce(site_id = ?, true)"
            " AND coalesce(camera_id = ?, true) ORDER BY event_at, rule",
            [site_id, camera_id],
        )
        return [dict(zip(ALERT_COLUMNS, row, strict=True)) for row in cursor.fetchall()]

    def record_site(self, site_id: str, site_kind: str, timezone: str, privacy: PrivacyConfig) -> None:
        """The site's clock and privacy settings, which the views read; the latest run's config wins."""
        self.con.execute(
            "INSERT OR REPLACE INTO sites VALUES (?, ?, ?, ?, ?, ?)",
            [site_id, site_kind, timezone, privacy.profile, privacy.k_min, _now()],
        )

    def add_sign(self, sign: Sign) -> None:
        self.con.execute(
            f"INSERT INTO signage ({', '.join(SIGN_COLUMNS)}, recorded_at) VALUES ({', '.join('?' * 9)})",
            [*(getattr(sign, c) for c in SIGN_COLUMNS), _now()],
        )

    def signs(self, site_id: str | None = None, camera_id: str | None = None) -> list[Sign]:
        rows = self.con.execute(
            f"SELECT {', '.join(SIGN_COLUMNS)} FROM signage WHERE coalesce(site_id = ?, true)"
            " AND coalesce(camera_id = ?, true) ORDER BY site_id, camera_id, posted_at",
            [site_id, camera_id],
        ).fetchall()
        return [Sign(*row) for row in rows]

    def remove_sign(self, sign_id: str, at: datetime) -> Sign:
        """Record that a sign was taken down; the record stays, so footage from while it stood stays covered."""
        found = [s for s in self.signs() if s.sign_id == sign_id]
        if not found:
            raise SanitaryError(f"{self.path}: no sign {sign_id!r}; `sanitary signage list` shows the sign ids")
        if at < found[0].posted_at:
            raise SanitaryError(f"{self.path}: sign {sign_id} was posted at {found[0].posted_at}, after {at}")
        self.con.execute("UPDATE signage SET removed_at = ? WHERE sign_id = ?", [at, sign_id])
        return dataclasses.replace(found[0], removed_at=at)


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


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    if path.exists() and path.is_dir():
        raise SanitaryError(f"{path}: is a folder; pass --db a file path such as sanitary.duckdb")
    if not path.parent.exists():
        raise SanitaryError(f"{path}: folder {path.parent} does not exist; create it or choose another --db")
    try:
        con = duckdb.connect(str(path))
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            raise SanitaryError(
                f"{path}: database is in use by another process; wait for it to finish or query a copy"
            ) from None
        raise SanitaryError(f"{path}: cannot open as a DuckDB database ({text.splitlines()[0]})") from None
    except duckdb.Error as exc:
        raise SanitaryError(
            f"{path}: not a DuckDB database this version can open ({str(exc).splitlines()[0]}); choose another --db"
        ) from None
    con.execute("SET TimeZone = 'UTC'")
    return con
