"""Merge the DuckDB files of sites that ran separately into one central database, any number of times.

Sites analyse footage offline and hand over their database files; officials want one database. Merging must be
safe to repeat and to do in any order, or a file sent twice, or two files merged in the other order, would count
windows twice or let an older analysis overwrite a newer one. So the unit of merging is the store's own unit of
replacement: all rows of one (site, camera, source) in the per-source tables. A source the target lacks is added;
one it holds is replaced only by a later-finished analysis of that source. The outcome is the same whatever the
order, and merging a file again changes nothing.

What arrives is not trusted to follow the central store's rules: a file can be edited by anyone, and its hashes
with it. So every value is checked against the store's rules before anything is written (`check_values`, shared
with `sanitary import`), a site's k and profile here never weaken (`_copy_sites`), and the windows that arrive get
the central store's own profile and k, suppressed exactly as at the source (`apply_central_privacy`).

An input with an older schema is merged through a migrated temporary copy rather than refused: the files come from
elsewhere, are often archives or on read-only media, and merging must never write to them.
"""

from __future__ import annotations

import shutil
import tempfile
import typing
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb

from sanitary.analytics.privacy import STORED_PEOPLE, suppress_stored, transport_stored
from sanitary.config import FR_TRANSPORT, MAX_INT, YEARS, PrivacyConfig, Profile, SiteKind
from sanitary.errors import SanitaryError
from sanitary.storage.connection import attach
from sanitary.storage.schema import COLUMNS, PER_SOURCE_TABLES, ROW_KEYS, SCHEMA_VERSION, refuse_newer, stored_version
from sanitary.storage.store import Store

_KEY = "site_id, camera_id, source"


@dataclass(frozen=True)
class InputMerge:
    path: Path
    schema_version: int  # as found; an older one was merged through a migrated temporary copy
    sources_added: int  # (site, camera, source) the target did not hold
    sources_replaced: int  # held from an analysis that finished earlier
    sources_unchanged: int  # held from the same analysis or a later one
    windows: int  # window rows written to the target
    alerts: int  # alert rows written to the target
    runs: int  # run records new to the target, or further along than its copy
    signs: int  # sign records new to the target, or more recent than its copy


@dataclass(frozen=True)
class MergeSummary:
    into: Path
    inputs: tuple[InputMerge, ...]


def merge_into(sources: Sequence[Path], into: Path) -> MergeSummary:
    """Merge each of `sources` into the database `into` (created or migrated), one transaction per input."""
    if not sources:
        raise SanitaryError("nothing to merge; pass one or more DuckDB files that sanitary wrote")
    for path in sources:
        if _same_file(path, into):
            raise SanitaryError(f"{path}: is also the --into database; merge into a different file")
    with tempfile.TemporaryDirectory(prefix="sanitary-merge-") as scratch:
        # Every input is checked (and migrated if old) before the target is touched: a bad file named last
        # must not leave the target half merged.
        readable = [_readable(path, Path(scratch) / f"{i}.duckdb") for i, path in enumerate(sources)]
        with Store(into) as store:
            merged = tuple(
                _merge_one(store.con, path, version, copy)
                for path, (version, copy) in zip(sources, readable, strict=True)
            )
    return MergeSummary(into, merged)


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    return a.exists() and b.exists() and a.samefile(b)


@contextmanager
def _attached(con: duckdb.DuckDBPyConnection, path: Path, shown: Path) -> Iterator[None]:
    """`path` attached read-only as `src`; errors name `shown`, the file the user passed."""
    if not path.exists():
        raise SanitaryError(f"{shown}: no such file; pass DuckDB files that sanitary wrote")
    if path.is_dir():
        raise SanitaryError(f"{shown}: is a folder; pass DuckDB files that sanitary wrote")
    attach(con, path, "src", shown=shown)
    try:
        yield
    finally:
        con.execute("DETACH src")


def _readable(path: Path, copy: Path) -> tuple[int, Path]:
    """The input's schema version, and a file at the current schema holding its rows: itself or a migrated copy."""
    with duckdb.connect() as con, _attached(con, path, path):
        version = stored_version(con, path, "src.")
        if version is None:
            raise SanitaryError(f"{path}: not a sanitary database (no schema version); pass files that sanitary wrote")
        refuse_newer(path, version)
        if version == SCHEMA_VERSION:
            check_values(con, "src.", path, "nothing merged")
            return version, path
        # Copied while attached, so no writer can be midway; the write-ahead log holds committed rows too.
        shutil.copyfile(path, copy)
        wal = path.with_name(path.name + ".wal")
        if wal.exists():
            shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
    with Store(copy) as migrated:
        check_values(migrated.con, "", path, "nothing merged")
    return version, copy


def _merge_one(con: duckdb.DuckDBPyConnection, path: Path, version: int, readable: Path) -> InputMerge:
    with _attached(con, readable, path):
        con.execute("BEGIN TRANSACTION")
        try:
            merged = _merge_attached(con, path, version)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
    return merged


def _merge_attached(con: duckdb.DuckDBPyConnection, path: Path, version: int) -> InputMerge:
    _decide(con)
    outcomes = dict(con.execute("SELECT outcome, count(*) FROM merge_decision GROUP BY outcome").fetchall())
    taken = f"({_KEY}) IN (SELECT {_KEY} FROM merge_decision WHERE outcome IN ('added', 'replaced'))"
    extended = f"({_KEY}) IN (SELECT {_KEY} FROM merge_decision WHERE outcome = 'extended')"
    # Sites first: the central privacy applied below reads the sites as merged.
    runs, signs = copy_registers(con)
    written: dict[str, int] = {}
    for table in PER_SOURCE_TABLES:
        columns = ", ".join(COLUMNS[table])
        con.execute(f"DELETE FROM {table} WHERE {taken}")
        written[table] = _count(con, f"INSERT INTO {table} ({columns}) SELECT {columns} FROM src.{table} WHERE {taken}")
        row_key = ", ".join((*_KEY.split(", "), *ROW_KEYS[table]))
        written[table] += _count(
            con,
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM src.{table} WHERE {extended}"
            f" AND ({row_key}) NOT IN (SELECT {row_key} FROM {table})",
        )
    _mark_replaced(con)
    apply_central_privacy(
        con,
        "SELECT site_id, camera_id, source, window_start FROM window_aggregates"
        f" WHERE ({_KEY}) IN (SELECT {_KEY} FROM merge_decision WHERE outcome <> 'unchanged')",
        "src.",
    )
    retention = ", ".join(COLUMNS["retention_log"])
    con.execute(
        f"INSERT INTO retention_log ({retention}) SELECT {retention} FROM src.retention_log"
        f" EXCEPT SELECT {retention} FROM retention_log"
    )
    con.execute("DROP TABLE merge_decision")
    return InputMerge(
        path=path,
        schema_version=version,
        sources_added=outcomes.get("added", 0),
        sources_replaced=outcomes.get("replaced", 0),
        sources_unchanged=outcomes.get("unchanged", 0) + outcomes.get("extended", 0),
        windows=written["window_aggregates"],
        alerts=written["alerts"],
        runs=runs,
        signs=signs,
    )


def _owners(db: str) -> str:
    """Each (site, camera, source) in `db` with the run its rows came from, and when that run finished."""
    keys = " UNION ".join(f"SELECT {_KEY} FROM {db}{table}" for table in PER_SOURCE_TABLES)
    # Rows of one source come from one run (a rerun replaces them all); max() only makes a choice certain.
    owned = " UNION ALL ".join(f"SELECT {_KEY}, run_id FROM {db}{table}" for table in ("window_aggregates", "alerts"))
    return f"""
        SELECT k.site_id, k.camera_id, k.source, o.run_id, r.finished_at
        FROM ({keys}) k
        LEFT JOIN (SELECT {_KEY}, max(run_id) AS run_id FROM ({owned}) GROUP BY ALL) o USING ({_KEY})
        LEFT JOIN {db}runs r ON r.run_id = o.run_id"""


def _decide(con: duckdb.DuckDBPyConnection) -> None:
    """Per (site, camera, source) of the input: added, replaced or unchanged in the target.

    The later-finished run wins; rows whose run is unknown (written before runs were kept) count as oldest. Two
    different runs that finished at the same instant are told apart by run id, so the choice never depends on
    which file was merged first. The same run on both sides is 'extended': a live unit's run goes on adding
    windows (a committed window never changes), so the windows the target lacks are added to those it has.
    """
    never = "'-infinity'::TIMESTAMPTZ"
    con.execute(f"""
        CREATE TEMP TABLE merge_decision AS
        SELECT i.site_id, i.camera_id, i.source, i.run_id,
               CASE
                   WHEN t.site_id IS NULL THEN 'added'
                   WHEN i.run_id = t.run_id THEN 'extended'
                   WHEN coalesce(i.finished_at, {never}) > coalesce(t.finished_at, {never})
                        OR (coalesce(i.finished_at, {never}) = coalesce(t.finished_at, {never})
                            AND coalesce(i.run_id, '') > coalesce(t.run_id, ''))
                       THEN 'replaced'
                   ELSE 'unchanged'
               END AS outcome
        FROM ({_owners("src.")}) i LEFT JOIN ({_owners("")}) t USING ({_KEY})""")


def _copy_runs(con: duckdb.DuckDBPyConnection, src: str) -> int:
    """Runs the target lacks, or holds at an earlier stage (a run merged while it ran, then merged finished)."""
    columns = ", ".join(COLUMNS["runs"])
    return _count(
        con,
        f"""
        INSERT OR REPLACE INTO runs ({columns}) SELECT {columns} FROM {src}runs s
        WHERE NOT EXISTS (SELECT 1 FROM runs t WHERE t.run_id = s.run_id
                          AND {_progress("t")} >= {_progress("s")})""",
    )


def _progress(run: str) -> str:
    """A run only moves forward: running, then finished one way or another, then replaced by a later analysis."""
    return f"CASE {run}.status WHEN 'running' THEN 0 WHEN 'replaced' THEN 2 ELSE 1 END"


def _mark_replaced(con: duckdb.DuckDBPyConnection) -> None:
    """As a rerun in one database would: finished runs of a source whose rows a later run now holds read 'replaced'.

    Without it the central database could say two analyses of one source are both current, and a run there would
    skip footage as done with parameters whose rows are no longer stored.
    """
    con.execute(f"""
        UPDATE runs SET status = 'replaced'
        FROM ({_owners("")}) w
        WHERE runs.site_id = w.site_id AND runs.camera_id = w.camera_id AND runs.source = w.source
          AND (w.site_id, w.camera_id, w.source) IN (SELECT {_KEY} FROM merge_decision)
          AND runs.run_id <> w.run_id AND runs.finished_at <= w.finished_at
          AND runs.status IN ('done', 'failed', 'truncated')""")


def _copy_signs(con: duckdb.DuckDBPyConnection, src: str) -> int:
    """The more recent record of each sign wins.

    Taking a sign down does not change when it was recorded, so between two records of one time the one that says
    it came down wins, and of two removals the earlier: footage counts as covered only while the sign surely stood.
    """
    columns = ", ".join(COLUMNS["signage"])
    return _count(
        con,
        f"""
        INSERT OR REPLACE INTO signage ({columns}) SELECT {columns} FROM {src}signage s
        WHERE NOT EXISTS (SELECT 1 FROM signage t WHERE t.sign_id = s.sign_id
                          AND (t.recorded_at > s.recorded_at
                               OR (t.recorded_at = s.recorded_at
                                   AND (s.removed_at IS NULL OR t.removed_at <= s.removed_at))))""",
    )


def copy_registers(con: duckdb.DuckDBPyConnection, src: str = "src.") -> tuple[int, int]:
    """The runs, signs and sites of the attached `src` (a catalog prefix), by the merge's rules; the runs and signs
    written."""
    runs = _copy_runs(con, src)
    signs = _copy_signs(con, src)
    _copy_sites(con, src)
    return runs, signs


def _copy_sites(con: duckdb.DuckDBPyConnection, src: str) -> None:
    """A site's clock: the later recorded wins, as the latest run's config does in one store. Its privacy never
    weakens here: k is the larger of the two (of a site new here, of its k and the default's), and the stricter
    profile stays, so a file saying k 1 lowers nothing."""
    columns = ", ".join(COLUMNS["sites"])
    later = "(t.site_id IS NULL OR s.updated_at > t.updated_at)"
    con.execute(f"""
        INSERT OR REPLACE INTO sites ({columns})
        SELECT s.site_id,
               CASE WHEN {later} THEN s.site_kind ELSE t.site_kind END,
               CASE WHEN {later} THEN s.timezone ELSE t.timezone END,
               CASE WHEN '{FR_TRANSPORT}' IN (s.privacy_profile, t.privacy_profile) THEN '{FR_TRANSPORT}'
                    ELSE s.privacy_profile END,
               greatest(s.k_min, coalesce(t.k_min, {PrivacyConfig().k_min})),
               greatest(s.updated_at, coalesce(t.updated_at, s.updated_at))
        FROM {src}sites s LEFT JOIN sites t USING (site_id)""")


def apply_central_privacy(con: duckdb.DuckDBPyConnection, arrived: str, src: str) -> None:
    """The central store's privacy on the windows that arrived (the query `arrived` yields their keys), whatever
    the file said of itself: its site's profile here (a window of a transport site stores what the decree allows),
    and its k: each window keeps the larger of the k it was stored under and its site's here (the default's where
    no site is recorded), and a window of fewer people is suppressed as the source should have done. The windows
    held already of each site the file `src` (a catalog prefix) records are judged again: its k may have raised the
    site's, and the outcome must not depend on which file came first."""
    con.execute(f"""
        CREATE TEMP TABLE central_k AS
        SELECT site_id, camera_id, source, window_start, {STORED_PEOPLE} AS people, s.privacy_profile AS profile,
               greatest(coalesce(w.k_min, 0), coalesce(s.k_min, {PrivacyConfig().k_min})) AS k
        FROM window_aggregates w LEFT JOIN sites s USING (site_id)
        WHERE (site_id, camera_id, source, window_start) IN ({arrived})
           OR site_id IN (SELECT site_id FROM {src}sites)""")
    con.execute("""
        UPDATE window_aggregates w SET k_min = c.k FROM central_k c
        WHERE (w.site_id, w.camera_id, w.source, w.window_start) = (c.site_id, c.camera_id, c.source, c.window_start)
          AND w.k_min IS DISTINCT FROM c.k""")
    keys = "SELECT site_id, camera_id, source, window_start FROM central_k"
    for statement in (
        *transport_stored(f"{keys} WHERE profile = '{FR_TRANSPORT}'"),
        *suppress_stored(f"{keys} WHERE people < k"),
    ):
        con.execute(statement)
    con.execute("DROP TABLE central_k")


# The store's rules for what a row may hold, applied to every row that arrives from elsewhere. Counts are whole
# numbers from 0 (people seen at once, at most _PEOPLE_MAX: beyond, no view could be drawn), other numbers finite and
# from 0 (rates up to 1), and times within the years footage may have.
_PEOPLE_MAX = 1_000_000
_AT_ONCE = {"people_max", "people_distinct", "k_min"}
_SIGNED = {("alerts", "threshold"), ("alerts", "value"), ("health", "clock_jump_s")}
# A retention cut-off lies up to 100 years back.
_ANY_TIME = {("retention_log", "cutoff")}
_CHECKED_TABLES = (*PER_SOURCE_TABLES, "runs", "sites", "signage", "retention_log")


def _rules(table: str, column: str, kind: str) -> tuple[str, str] | None:
    """The condition a value of `column` must meet, and the rule in words; None: any value of its type."""
    first, last = YEARS
    if kind in ("BIGINT", "INTEGER"):
        low, high = (1 if column == "k_min" else 0), (_PEOPLE_MAX if column in _AT_ONCE else MAX_INT)
        return f"{column} BETWEEN {low} AND {high}", f"a whole number from {low} to {high}"
    if kind == "DOUBLE":
        if (table, column) in _SIGNED:
            return f"isfinite({column})", "a finite number"
        if "rate" in column:
            return f"{column} BETWEEN 0 AND 1", "a rate from 0 to 1"
        return f"isfinite({column}) AND {column} >= 0", "a finite number from 0"
    if kind == "TIMESTAMP WITH TIME ZONE" and (table, column) not in _ANY_TIME:
        bounds = f"TIMESTAMPTZ '{first}-01-01 00:00:00+00' AND TIMESTAMPTZ '{last}-12-31 23:59:59+00'"
        return f"{column} BETWEEN {bounds}", f"a time in the years {first} to {last}"
    return None


_PROFILES = typing.get_args(Profile)
_PROFILE_RULE = (f"privacy_profile IN {_PROFILES}", "privacy_profile", f"one of {_PROFILES}")
_EXTRA_RULES = {
    "window_aggregates": [("window_end > window_start", "window_end", "after the window's start"), _PROFILE_RULE],
    "sites": [
        _PROFILE_RULE,
        (f"site_kind IN {typing.get_args(SiteKind)}", "site_kind", f"one of {typing.get_args(SiteKind)}"),
    ],
}


def check_values(con: duckdb.DuckDBPyConnection, db: str, shown: Path, refused: str) -> None:
    """Refuse, in one line naming `shown` and saying `refused`, a database `db` (a catalog prefix such as 'src.')
    holding a value the store's rules do not allow: a negative count, NaN, a window in the year 9009, an unknown
    time zone."""
    catalog = db.rstrip(".") or None
    for table in _CHECKED_TABLES:
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? AND schema_name = 'main'"
                " AND database_name = coalesce(?, current_database())",
                [table, catalog],
            ).fetchall()
        )
        rules = [(cond, column, words) for column in COLUMNS[table] if (r := _rules(table, column, types[column]))
                 for cond, words in [r]] + _EXTRA_RULES.get(table, [])  # fmt: skip
        if not rules:
            continue
        failing = " ".join(f"WHEN NOT coalesce({cond}, true) THEN {i}" for i, (cond, _, _) in enumerate(rules))
        row = con.execute(
            f"SELECT broken, value FROM (SELECT CASE {failing} END AS broken, t AS value FROM {db}{table} t)"
            " WHERE broken IS NOT NULL LIMIT 1"
        ).fetchone()
        if row:
            _, column, words = rules[row[0]]
            found = row[1][column] if isinstance(row[1], dict) else row[1]
            raise SanitaryError(f"{shown}: {table}.{column} holds {found!r}, not {words}; {refused}")
    for (zone,) in con.execute(f"SELECT DISTINCT timezone FROM {db}sites").fetchall():
        if not _known_zone(con, zone):
            raise SanitaryError(
                f"{shown}: sites.timezone holds {zone!r}, not a time zone sanitary knows (an IANA name such as "
                f"'Europe/Paris'); {refused}"
            )


def _known_zone(con: duckdb.DuckDBPyConnection, zone: str) -> bool:
    """Known both to Python (the report) and to DuckDB (the views)."""
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return con.execute("SELECT count(*) FROM pg_timezone_names() WHERE name = ?", [zone]).fetchone() == (1,)


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0
