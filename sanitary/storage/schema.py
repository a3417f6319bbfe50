"""The database's shape in one place: every table, view and column list, and the migrations that build them.

A database records its schema version in `meta`; opening one applies the migrations it lacks, each in its own
transaction, so a file written by any earlier release is read by this one and never half migrated. A column or
table is added by a new migration, never by editing an old one: old files must replay the same history.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb

from sanitary.errors import SanitaryError
from sanitary.storage.connection import transaction

SCHEMA_VERSION = 9


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


# The face-frame and people counts behind a row's two mask rates, and its sum over a camera's sources.
_FACES_N = "any_value(faces_with_mask + faces_without_mask + faces_mask_incorrect)"
_PERSONS_N = "persons_with_mask + persons_without_mask + persons_mask_incorrect"


def _whole(column: str) -> str:
    """The sum of a count over a window's source rows, NULL where one row holds none (suppressed, or written
    before the count existed): a partial sum would read as the window's whole count."""
    return f"CASE WHEN count({column}) = count(*) THEN sum({column}) END"


def _camera_windows_view(extra_columns: str) -> str:
    """The camera_windows view with mask columns (v2), and the columns later versions add to it. Version 9 made
    it the view it is now; the earlier versions it replays through are dropped again on the way."""
    return f"""
        CREATE VIEW camera_windows AS
        SELECT site_id, camera_id, window_start, max(window_end) AS window_end,
               sum(frames_analysed) AS frames_analysed,
               sum(covered_s) AS covered_s,
               sum(people_sum) / nullif(sum(frames_analysed), 0) AS occupancy_mean,
               max(people_max) AS occupancy_max,
               sum(faces_sum) AS faces_seen,
               {_whole("faces_with_mask")} AS faces_with_mask,
               {_whole("faces_without_mask")} AS faces_without_mask,
               {_whole("faces_mask_incorrect")} AS faces_mask_incorrect,
               {_whole("faces_mask_unknown")} AS faces_mask_unknown,
               {_whole("faces_with_mask + faces_without_mask + faces_mask_incorrect")} AS mask_rate_n,
               -- The corrected rate and its interval need the classifier's confusion matrix: stored per source
               -- row, so shown here only where one source covers the window, and only with a count behind it.
               CASE WHEN count(*) = 1 AND {_FACES_N} >= 1 THEN any_value(mask_rate) END AS mask_rate,
               CASE WHEN count(*) = 1 AND {_FACES_N} >= 1 THEN any_value(mask_rate_low) END AS mask_rate_low,
               CASE WHEN count(*) = 1 AND {_FACES_N} >= 1 THEN any_value(mask_rate_high) END AS mask_rate_high,
               {extra_columns}
               count(*) AS sources
        FROM window_aggregates
        GROUP BY site_id, camera_id, window_start"""


# A zone's window suppressed in one source (fewer than k people) is suppressed whole: NULL, never a part of it.
_ZONE_OCCUPANCY = f"""
    CREATE VIEW zone_occupancy AS
    SELECT site_id, camera_id, zone, window_start, any_value(area_m2) AS area_m2,
           {_whole("people_sum")} / nullif(sum(frames_analysed), 0) AS occupancy_mean,
           CASE WHEN count(people_max) = count(*) THEN max(people_max) END AS occupancy_max,
           {_whole("people_sum")} / nullif(sum(frames_analysed), 0) / any_value(area_m2) AS density_per_m2,
           sum(frames_analysed) AS frames_analysed
    FROM zone_windows
    GROUP BY site_id, camera_id, zone, window_start"""


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
    con.execute(_ZONE_OCCUPANCY)
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


_PRIVACY_COLUMNS = f"coalesce(bool_or(mask_suppressed), false) AS mask_suppressed, {_whole('opt_outs')} AS opt_outs,"


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
    con.execute(_camera_windows_view(_PRIVACY_COLUMNS))


# A window's local time: its day and hour are those of the site's clock, and a local hour that happens twice (when
# daylight saving ends) stays two hours, told apart by their UTC start.
_LOCAL = """
    WITH w AS (
        SELECT a.*, coalesce(s.timezone, 'UTC') AS tz, s.k_min AS site_k_min,
               timezone(coalesce(s.timezone, 'UTC'), a.window_start) AS local_start
        FROM window_aggregates a LEFT JOIN sites s USING (site_id)
    )"""


# Per window: the rate's basis is people (tracked, each once) where tracking ran, else face-frames; its n, rate and
# interval all come from that basis's counts, and a basis with no classified count has no rate. (Before v9 the rate
# fell back to face-frames where the people's count was 0, beside a people basis and n 0.)
_MASK_RATE_WINDOWS = f"""
    CREATE VIEW mask_rate_windows AS {_LOCAL},
    b AS (
        SELECT *, people_distinct IS NOT NULL AS by_people,
               CASE WHEN people_distinct IS NOT NULL THEN {_PERSONS_N}
                    ELSE faces_with_mask + faces_without_mask + faces_mask_incorrect END AS basis_n
        FROM w
    ), r AS (
        SELECT *,
               CASE WHEN basis_n >= 1 THEN CASE WHEN by_people THEN person_mask_rate ELSE mask_rate END END AS r,
               CASE WHEN basis_n >= 1 THEN CASE WHEN by_people THEN person_mask_rate_low ELSE mask_rate_low END
               END AS r_low,
               CASE WHEN basis_n >= 1 THEN CASE WHEN by_people THEN person_mask_rate_high ELSE mask_rate_high END
               END AS r_high
        FROM b
    )
    SELECT site_id, camera_id, source, window_start, window_end, local_start, tz, covered_s, opt_outs,
           coalesce(k_min, site_k_min) AS k_min, coalesce(people_distinct, people_max) AS people,
           coalesce(mask_suppressed, false) AS mask_suppressed,
           CASE WHEN by_people THEN 'people' ELSE 'faces' END AS basis,
           basis_n AS n, r AS rate,
           CASE WHEN r IS NOT NULL THEN r_low END AS rate_low,
           CASE WHEN r IS NOT NULL THEN r_high END AS rate_high,
           CASE WHEN r IS NOT NULL THEN (r_high - r_low) / 3.92 END AS rate_sd
    FROM r"""


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
    con.execute(_MASK_RATE_WINDOWS)
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


def _v8(con: duckdb.DuckDBPyConnection) -> None:
    """Shipping: a unit's outbox (which windows each export carried, until acknowledged) and its exports, and the
    central site's record of which export each window it holds came from. Shipping created these on demand
    before v8, so a v7 file that has shipped holds them already, as they are here."""
    con.execute("""
        CREATE TABLE IF NOT EXISTS outbox (
            site_id      VARCHAR NOT NULL,
            camera_id    VARCHAR NOT NULL,
            source       VARCHAR NOT NULL,
            window_start TIMESTAMPTZ NOT NULL,
            digest       VARCHAR NOT NULL,  -- of the window's rows as shipped
            export_id    VARCHAR NOT NULL,
            exported_at  TIMESTAMPTZ NOT NULL,
            acked_at     TIMESTAMPTZ,
            PRIMARY KEY (export_id, site_id, camera_id, source, window_start)
        )""")
    con.execute("""
        CREATE TABLE IF NOT EXISTS exports (
            export_id   VARCHAR PRIMARY KEY,
            seq         BIGINT NOT NULL UNIQUE,
            exported_at TIMESTAMPTZ NOT NULL,
            since       TIMESTAMPTZ,
            windows     BIGINT NOT NULL
        )""")
    con.execute("""
        CREATE TABLE IF NOT EXISTS shipped_windows (
            site_id      VARCHAR NOT NULL,
            camera_id    VARCHAR NOT NULL,
            source       VARCHAR NOT NULL,
            window_start TIMESTAMPTZ NOT NULL,
            export_id    VARCHAR NOT NULL,  -- the export the rows held came from
            export_seq   BIGINT NOT NULL,
            imported_at  TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (site_id, camera_id, source, window_start)
        )""")


def _v9(con: duckdb.DuckDBPyConnection) -> None:
    """Hardening (issue 16). Images of a folder left out of its run (cut short, or not images) are counted: NULL
    for runs before v9. k-min on every measure: a window of fewer than k people stores its dwell bins, crossings
    and zone counts as NULL (never 0), so those columns may now be NULL; the views read a rate only with its own
    count, and a suppressed part of a window as missing. The process that writes each run (`owner`: host, boot,
    pid, start), so that the next writer can tell a run whose process died (kill -9, a power cut) from one still
    going, and close it as `interrupted`; NULL: written before."""
    con.execute("ALTER TABLE runs ADD COLUMN frames_unreadable INTEGER")
    for table, column in (("dwell_windows", "people"), ("line_windows", "people_in"), ("line_windows", "people_out"),
                          ("zone_windows", "people_sum"), ("zone_windows", "people_max")):  # fmt: skip
        con.execute(f"ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL")
    con.execute(_camera_windows_view(_PRIVACY_COLUMNS).replace("CREATE VIEW", "CREATE OR REPLACE VIEW"))
    con.execute(_ZONE_OCCUPANCY.replace("CREATE VIEW", "CREATE OR REPLACE VIEW"))
    con.execute(_MASK_RATE_WINDOWS.replace("CREATE VIEW", "CREATE OR REPLACE VIEW"))
    con.execute("ALTER TABLE runs ADD COLUMN owner VARCHAR")


# MIGRATIONS[i] takes a database from schema version i to i + 1.
MIGRATIONS: list[Callable[[duckdb.DuckDBPyConnection], None]] = [_v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8, _v9]
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


RUN_COLUMNS = (
    "run_id", "source", "source_path", "camera_id", "site_id", "unit_id", "params_hash", "params", "started_at",
    "finished_at", "status", "error", "frames_analysed", "footage_start", "footage_end", "notes", "signage_override",
    "frames_unreadable", "owner",
)  # fmt: skip
SIGNAGE_COLUMNS = (*SIGN_COLUMNS, "recorded_at")
SITE_COLUMNS = ("site_id", "site_kind", "timezone", "privacy_profile", "k_min", "updated_at")
RETENTION_COLUMNS = ("deleted_at", "site_id", "camera_id", "cutoff", "windows_deleted", "rows_deleted")
OUTBOX_COLUMNS = (
    "site_id", "camera_id", "source", "window_start", "digest", "export_id", "exported_at", "acked_at",
)  # fmt: skip
EXPORT_COLUMNS = ("export_id", "seq", "exported_at", "since", "windows")
SHIPPED_WINDOW_COLUMNS = (
    "site_id", "camera_id", "source", "window_start", "export_id", "export_seq", "imported_at",
)  # fmt: skip

# Every table's columns, read when a merge or a shipment copies rows: a column missing here would be dropped.
COLUMNS: dict[str, tuple[str, ...]] = {
    "runs": RUN_COLUMNS,
    "window_aggregates": AGGREGATE_COLUMNS,
    "zone_windows": ZONE_COLUMNS,
    "dwell_windows": DWELL_COLUMNS,
    "line_windows": LINE_COLUMNS,
    "alerts": ALERT_COLUMNS,
    "health": HEALTH_COLUMNS,
    "signage": SIGNAGE_COLUMNS,
    "sites": SITE_COLUMNS,
    "retention_log": RETENTION_COLUMNS,
    "outbox": OUTBOX_COLUMNS,
    "exports": EXPORT_COLUMNS,
    "shipped_windows": SHIPPED_WINDOW_COLUMNS,
}
# What tells two rows of one source apart in each per-source table (after the source's key): their primary keys.
ROW_KEYS = {
    "window_aggregates": ("window_start",),
    "zone_windows": ("window_start", "zone"),
    "dwell_windows": ("window_start", "bin_low_s"),
    "line_windows": ("window_start", "line"),
    "alerts": ("event_at", "rule", "state"),
    "health": ("window_start",),
}


def stored_version(con: duckdb.DuckDBPyConnection, path: Path, db: str = "") -> int | None:
    """The schema version of the sanitary database `db` (a catalog prefix such as 'src.'), None for an empty one.

    Anything else is refused, naming `path`: a file with tables sanitary did not make, or whose `meta` records no
    version this sanitary knows the shape of, would be read wrongly or have sanitary's tables added among its own.
    """
    catalog = db.rstrip(".") or None
    # Every table and view, in any schema: one sanitary did not make is reason enough to refuse the file.
    tables = {
        name if schema == "main" else f"{schema}.{name}"
        for schema, name in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT temporary"
            " AND database_name = coalesce(?, current_database())"
            " UNION ALL SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal AND NOT temporary"
            " AND database_name = coalesce(?, current_database())",
            [catalog, catalog],
        ).fetchall()
    }
    version = _meta_version(con, db) if "meta" in tables else None
    # A file whose first migration failed holds only sanitary's empty meta: as good as empty.
    if not tables or (tables == {"meta"} and version == 0):
        return None
    if not version:
        shown = ", ".join(sorted(tables)[:3]) + (", ..." if len(tables) > 3 else "")
        raise SanitaryError(
            f"{path}: not a sanitary database (it holds {shown}, and no schema version sanitary wrote); sanitary uses"
            " only an empty file or one it made: pass --db another file, e.g. sanitary.duckdb"
        )
    return version


def _meta_version(con: duckdb.DuckDBPyConnection, db: str) -> int | None:
    """The version a sanitary `meta` table records (a whole number from 1; 0 when it holds no row at all), None
    where `meta` is not sanitary's."""
    columns = con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = 'meta' AND schema_name = 'main'"
        " AND database_name = coalesce(?, current_database()) ORDER BY column_index",
        [db.rstrip(".") or None],
    ).fetchall()
    if [c for (c,) in columns] != ["key", "value"]:
        return None
    rows = con.execute(f"SELECT value FROM {db}meta WHERE key = 'schema_version'").fetchall()
    if not rows and con.execute(f"SELECT count(*) FROM {db}meta").fetchone() == (0,):
        return 0
    if len(rows) != 1 or not isinstance(rows[0][0], str) or not rows[0][0].isascii() or not rows[0][0].isdigit():
        return None
    version = int(rows[0][0])
    return version if version >= 1 else None


def refuse_newer(path: Path, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise SanitaryError(
            f"{path}: database schema v{version} is newer than this sanitary (v{SCHEMA_VERSION}); "
            "upgrade sanitary to use it"
        )


def migrate(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Bring the database at `path` to SCHEMA_VERSION (a new one from nothing), one transaction per version; a file
    sanitary did not make is refused before anything is written to it."""
    version = stored_version(con, path) or 0
    refuse_newer(path, version)
    for target in range(version + 1, SCHEMA_VERSION + 1):
        with transaction(con):
            if target == 1:
                con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
            MIGRATIONS[target - 1](con)
            con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(target)])
