"""Ship a live unit's aggregates home as Parquet, import them centrally, and let the unit forget what arrived.

A unit on a bus is offline most of the time and its storage is small, so it cannot hand over its whole database
file as a site does for `sanitary merge`: it ships what is new, again and again, over links that drop and corrupt.
So every export is a folder of Parquet files (partitioned by date and unit, readable by any tool) and a manifest
with each file's sha256; the central site refuses an export whose files do not match, in one line, before touching
its database, and answers with an acknowledgement the unit feeds back, after which the unit may delete those rows.

The unit of shipping is the window, (site, camera, source, window_start), with every per-source row of it: its
aggregates, zones, dwell, lines and health, and the alerts raised in it (the latest window of their source starting
at or before the alert). `sanitary merge` replaces whole sources, which would make each incremental export delete
the windows the previous ones brought; here the central site keeps, per window, the version from the unit's latest
export instead (the unit's store has already resolved reruns), so importing twice, out of order, or exports that
overlap never counts a window twice. Runs, sites and signage travel whole with every export and go through
the merge's own rules, and so do the central store's checks: every value is checked before anything is written,
and the central k-min applies to every window that arrives, whatever the unit's file says.

A manifest is read as an attacker may have written it: every name in it is a name, never a path (the
acknowledgement's file is named after the export), and every file it lists must lie inside the export's folder.

The unit's `outbox` records which windows each export carried, with a digest of their rows: a window is pending
until an acknowledgement names it with the content it has now, so a window rewritten after it was shipped (a
partial window completed, a source analysed again) ships again, and is never purged unacknowledged.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeGuard
from urllib.parse import quote

import duckdb

from sanitary.errors import SanitaryError
from sanitary.storage.connection import WAIT_S, disk_is_full
from sanitary.storage.merge import apply_central_privacy, check_values, copy_registers
from sanitary.storage.schema import COLUMNS, PER_SOURCE_TABLES, SCHEMA_VERSION
from sanitary.storage.store import Store

MANIFEST_FORMAT = "sanitary-export/1"
ACK_FORMAT = "sanitary-ack/1"
_KEY = "site_id, camera_id, source, window_start"
# Tables with one row per window: a window exists where either holds a row. The others hang off these.
_WINDOW_ROOTS = ("window_aggregates", "health")
_WINDOW_TABLES = tuple(t for t in PER_SOURCE_TABLES if t != "alerts")
_ALERT_KEY = "site_id, camera_id, source, event_at, rule, state"
# Shipped whole with every export: small, and merged by rules that make repeats harmless.
_WHOLE_TABLES = ("runs", "sites", "signage")


@dataclass(frozen=True)
class ShippedFile:
    path: Path
    table: str
    rows: int
    sha256: str


@dataclass(frozen=True)
class ExportSummary:
    export_id: str
    seq: int  # this unit's exports so far, this one included: the central site keeps the later export's windows
    manifest: Path
    units: tuple[str, ...]
    since: datetime | None  # None: the windows not acknowledged yet
    windows: int
    first_window_start: datetime | None
    last_window_end: datetime | None
    files: tuple[ShippedFile, ...]


@dataclass(frozen=True)
class ExportImport:
    export_id: str
    manifest: Path
    windows: int  # windows the export carried, all acknowledged
    windows_written: int  # new to the central database, or newer than its copy
    windows_unchanged: int  # held already from this export or a later one
    alerts_written: int
    ack: Path


@dataclass(frozen=True)
class ImportSummary:
    into: Path
    exports: tuple[ExportImport, ...]


# ---------------------------------------------------------------------------------------------------- the unit


def export_parquet(db: Path, out: Path, since: datetime | None) -> ExportSummary:
    """Write the windows ending after `since` (None: those not acknowledged yet) and the runs, sites and signage
    to `out` as Parquet with a manifest, and record them in the outbox. A naive `since` is taken as UTC."""
    since = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
    written: list[Path] = []
    with _unit(db) as store:
        con = store.con
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SanitaryError(
                f"{out}: cannot create the export folder ({exc.strerror}); choose another --out"
            ) from None
        try:
            with store.transaction():
                summary = _export(con, db, out, since, written)
        except BaseException as exc:
            # Files without their manifest are never imported, but would litter the outbound folder.
            for path in written:
                path.unlink(missing_ok=True)
            if isinstance(exc, OSError | duckdb.IOException):
                raise _write_failed(exc, db, out) from None
            raise
    return summary


def _write_failed(exc: OSError | duckdb.IOException, db: Path, out: Path) -> SanitaryError:
    """One line for an export the disk refused: which disk (the export's folder or the unit's database)."""
    text = str(exc).splitlines()[0] if isinstance(exc, duckdb.Error) else f"{exc.strerror} ({exc.filename})"
    where = out if (str(out) in text or isinstance(exc, OSError)) else db
    if disk_is_full(exc):
        return SanitaryError(
            f"{where}: the disk is full; nothing was exported (no manifest written), free some space or pass "
            "another --out, and export again"
        )
    return SanitaryError(f"{where}: cannot write the export ({text}); nothing was exported")


def _export(
    con: duckdb.DuckDBPyConnection, db: Path, out: Path, since: datetime | None, written: list[Path]
) -> ExportSummary:
    exported_at = datetime.now(UTC)
    export_id = f"{exported_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:12]}"
    seq = _scalar(con, "SELECT coalesce(max(seq), 0) + 1 FROM exports")
    if since is None:
        wanted = (
            "NOT EXISTS (SELECT 1 FROM outbox o WHERE o.acked_at IS NOT NULL AND o.digest = w.digest"
            " AND (o.site_id, o.camera_id, o.source, o.window_start) = (w.site_id, w.camera_id, w.source,"
            " w.window_start))"
        )
        params: list[object] = []
    else:
        wanted, params = "coalesce(w.window_end, w.window_start) > ?", [since]
    con.execute(f"CREATE TEMP TABLE ship AS SELECT * FROM ({_windows_sql('')}) w WHERE {wanted}", params)
    # Each table's shipped rows with the date and unit of their partition.
    selections = {
        table: f"SELECT t.{', t.'.join(COLUMNS[table])}, s.window_start::DATE AS day, s.unit_id AS unit"
        f" FROM {table} t JOIN ship s USING ({_KEY})"
        for table in _WINDOW_TABLES
    }
    selections["alerts"] = (
        f"SELECT a.{', a.'.join(COLUMNS['alerts'])}, a.event_at::DATE AS day, s.unit_id AS unit"
        f" FROM ({_alerts_sql('')}) a JOIN ship s ON (s.site_id, s.camera_id, s.source, s.window_start)"
        " = (a.site_id, a.camera_id, a.source, a.shipped_window_start)"
    )
    files: list[ShippedFile] = []
    for table, selection in selections.items():
        con.execute(f"CREATE TEMP TABLE ship_rows AS {selection}")
        for day, unit in con.execute("SELECT DISTINCT day, unit FROM ship_rows ORDER BY ALL").fetchall():
            where = f"day = {_literal(day.isoformat())} AND unit = {_literal(unit)}"
            relative = f"{table}/date={day.isoformat()}/unit={quote(unit, safe='')}/part-{export_id}.parquet"
            files.append(_copy(con, table, f"ship_rows WHERE {where}", out, relative, written))
        con.execute("DROP TABLE ship_rows")
    for unit in _column(con, "SELECT DISTINCT unit_id FROM runs ORDER BY 1"):
        relative = f"runs/unit={quote(unit, safe='')}/part-{export_id}.parquet"
        files.append(_copy(con, "runs", f"runs WHERE unit_id = {_literal(unit)}", out, relative, written))
    for table in ("sites", "signage"):
        if _scalar(con, f"SELECT count(*) FROM {table}"):
            relative = f"{table}/part-{export_id}.parquet"
            files.append(_copy(con, table, table, out, relative, written))
    windows, first, last = con.execute(
        "SELECT count(*), min(window_start), max(coalesce(window_end, window_start)) FROM ship"
    ).fetchone() or (0, None, None)
    units = tuple(_column(con, "SELECT DISTINCT unit_id FROM ship UNION SELECT DISTINCT unit_id FROM runs ORDER BY 1"))
    con.execute(
        f"INSERT INTO outbox ({_KEY}, digest, export_id, exported_at) SELECT {_KEY}, digest, ?, ? FROM ship",
        [export_id, exported_at],
    )
    con.execute(
        f"INSERT INTO exports ({', '.join(COLUMNS['exports'])}) VALUES (?, ?, ?, ?, ?)",
        [export_id, seq, exported_at, since, windows],
    )
    con.execute("DROP TABLE ship")
    manifest = out / f"manifest-{export_id}.json"
    document = {
        "format": MANIFEST_FORMAT,
        "export_id": export_id,
        "seq": seq,
        "exported_at": exported_at.isoformat(),
        "db": str(db),
        "schema_version": SCHEMA_VERSION,
        "units": list(units),
        "since": since.isoformat() if since else None,
        "windows": {"count": windows, "first_start": _iso(first), "last_end": _iso(last)},
        "files": [
            {"path": f.path.relative_to(out).as_posix(), "table": f.table, "rows": f.rows, "sha256": f.sha256}
            for f in files
        ],
    }
    # Written last and renamed into place: an importer sees a whole manifest or none, never half an export.
    _write_json(manifest, document)
    written.append(manifest)
    return ExportSummary(export_id, seq, manifest, units, since, windows, first, last, tuple(files))


def _copy(
    con: duckdb.DuckDBPyConnection,
    table: str,
    source: str,
    out: Path,
    relative: str,
    written: list[Path],
) -> ShippedFile:
    path = out / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    written.append(path)
    names = ", ".join(COLUMNS[table])
    # Ordered, so an export of the same rows is the same file whatever order the store holds them in.
    con.execute(f"COPY (SELECT {names} FROM {source} ORDER BY ALL) TO {_literal(str(path))} (FORMAT parquet)")
    rows = _scalar(con, f"SELECT count(*) FROM read_parquet({_literal(str(path))}, hive_partitioning = false)")
    return ShippedFile(path, table, rows, _sha256(path))


def acknowledge(db: Path, ack_file: Path) -> int:
    """Mark the windows the central site acknowledged as received; the windows newly marked."""
    ack = _read_json(ack_file, "acknowledgement")
    try:
        if ack["format"] != ACK_FORMAT:
            raise SanitaryError(f"{ack_file}: not a sanitary acknowledgement (format {ack['format']!r})")
        export_id = str(ack["export_id"])
        keys = [(site, camera, source, datetime.fromisoformat(start)) for site, camera, source, start in ack["windows"]]
    except (KeyError, TypeError, ValueError):
        raise SanitaryError(f"{ack_file}: not a sanitary acknowledgement (fields missing or malformed)") from None
    with _unit(db) as store, store.transaction():
        if not _scalar(store.con, "SELECT count(*) FROM exports WHERE export_id = ?", [export_id]):
            raise SanitaryError(
                f"{ack_file}: acknowledges export {export_id}, which {db} did not make; pass this unit's --db"
            )
        store.con.execute("CREATE TEMP TABLE acked (site_id VARCHAR, camera_id VARCHAR, source VARCHAR,"
                          " window_start TIMESTAMPTZ)")  # fmt: skip
        if keys:
            store.con.executemany("INSERT INTO acked VALUES (?, ?, ?, ?)", keys)
        marked = _scalar(
            store.con,
            f"UPDATE outbox SET acked_at = ? WHERE export_id = ? AND acked_at IS NULL"
            f" AND ({_KEY}) IN (SELECT {_KEY} FROM acked)",
            [datetime.now(UTC), export_id],
        )
        store.con.execute("DROP TABLE acked")
    return marked


def purge_shipped(db: Path, older_than_days: float, now: datetime) -> int:
    """Delete the windows that ended `older_than_days` before `now` and were acknowledged with the rows they hold
    now, with all their per-source rows; the windows deleted. Unacknowledged windows are never deleted."""
    if older_than_days < 0:
        raise SanitaryError(f"older than {older_than_days} days: pass 0 or more days")
    cutoff = now - timedelta(days=older_than_days)
    with _unit(db) as store, store.transaction():
        con = store.con
        con.execute(
            f"""CREATE TEMP TABLE gone AS SELECT {_KEY} FROM ({_windows_sql("")}) w
            WHERE coalesce(w.window_end, w.window_start) <= ? AND EXISTS (
                SELECT 1 FROM outbox o WHERE o.acked_at IS NOT NULL AND o.digest = w.digest
                AND (o.site_id, o.camera_id, o.source, o.window_start)
                    = (w.site_id, w.camera_id, w.source, w.window_start))""",
            [cutoff],
        )
        # Alerts first: which window an alert belongs to is read from the windows still there.
        con.execute(
            f"DELETE FROM alerts WHERE ({_ALERT_KEY}) IN (SELECT {_ALERT_KEY} FROM ({_alerts_sql('')}) a"
            f" WHERE (site_id, camera_id, source, shipped_window_start) IN (SELECT {_KEY} FROM gone))"
        )
        for table in (*_WINDOW_TABLES, "outbox"):
            con.execute(f"DELETE FROM {table} WHERE ({_KEY}) IN (SELECT {_KEY} FROM gone)")
        purged = _scalar(con, "SELECT count(*) FROM gone")
        con.execute("DROP TABLE gone")
    return purged


def _unit(db: Path) -> Store:
    """The unit's store; a live unit holds the file only while it commits, so a lock is waited out."""
    if not db.is_file():
        raise SanitaryError(f"{db}: no such DuckDB file; pass --db the database the unit writes")
    return Store(db, wait_s=WAIT_S)


def _windows_sql(db: str) -> str:
    """Every window of `db` (a schema prefix such as 'src.'), with its unit, end and a digest of all its rows."""
    digests = []
    for table in PER_SOURCE_TABLES:
        rows = f"SELECT {_KEY}, t AS r FROM {db}{table} t"
        if table == "alerts":
            rows = (
                f"SELECT site_id, camera_id, source, shipped_window_start AS window_start, r FROM ({_alerts_sql(db)})"
            )
        digests.append(f"""LEFT JOIN (SELECT {_KEY}, string_agg(r::VARCHAR, '|' ORDER BY r::VARCHAR) AS d_{table}
                           FROM ({rows}) GROUP BY ALL) USING ({_KEY})""")
    return f"""
        SELECT {_KEY}, a.window_end, coalesce(a.unit_id, h.unit_id) AS unit_id,
               md5(concat_ws('#', {", ".join(f"d_{t}" for t in PER_SOURCE_TABLES)})) AS digest
        FROM ({_window_keys(db)}) k
        LEFT JOIN {db}window_aggregates a USING ({_KEY}) LEFT JOIN {db}health h USING ({_KEY})
        {" ".join(digests)}"""


def _window_keys(db: str) -> str:
    return " UNION ".join(f"SELECT {_KEY} FROM {db}{table}" for table in _WINDOW_ROOTS)


def _alerts_sql(db: str) -> str:
    """Alerts with the window they ship in: the latest of their source starting at or before them (as a row `r`)."""
    return f"""
        SELECT t.*, k.window_start AS shipped_window_start, t AS r FROM {db}alerts t
        ASOF JOIN ({_window_keys(db)}) k
            ON t.site_id = k.site_id AND t.camera_id = k.camera_id AND t.source = k.source
           AND t.event_at >= k.window_start"""


# ---------------------------------------------------------------------------------------------------- the centre


@dataclass(frozen=True)
class _Export:
    manifest: Path
    export_id: str
    seq: int
    files: tuple[ShippedFile, ...]


def import_parquet(dirs: Sequence[Path], db: Path, ack_dir: Path | None = None) -> ImportSummary:
    """Import every export whose manifest lies in `dirs` (searched recursively) into `db`, and write an
    acknowledgement `ack-<export_id>.json` per export, next to its manifest or in `ack_dir`.

    Every file of every export is checked against its manifest, loaded into a scratch database and its values
    checked against the store's rules before `db` is touched, and all exports go in in one transaction: one bad file
    and nothing is imported."""
    exports = [_verified(m, root) for m, root in _manifests(dirs)]
    with tempfile.TemporaryDirectory(prefix="sanitary-import-") as scratch:
        copies = [_load(export, Path(scratch) / f"{i}.duckdb") for i, export in enumerate(exports)]
        with Store(db) as store:
            # Attached before the transaction and detached after it: DuckDB detaches nothing a transaction read.
            for i, copy in enumerate(copies):
                store.con.execute(f"ATTACH ? AS src{i} (READ_ONLY)", [str(copy)])
            try:
                with store.transaction():
                    merged = [_import_one(store.con, export, f"src{i}.") for i, export in enumerate(exports)]
            finally:
                for i in range(len(copies)):
                    store.con.execute(f"DETACH src{i}")
    acks = (_acknowledged(export, *m, db, ack_dir) for export, m in zip(exports, merged, strict=True))
    return ImportSummary(db, tuple(acks))


def _manifests(dirs: Sequence[Path]) -> list[tuple[Path, Path]]:
    """Each manifest found, with the folder it was found in: neither it nor its files may lie outside."""
    if not dirs:
        raise SanitaryError("nothing to import; pass one or more folders that sanitary export wrote")
    found: dict[Path, Path] = {}
    for folder in dirs:
        if not folder.is_dir():
            raise SanitaryError(f"{folder}: no such folder; pass folders that sanitary export wrote")
        matches = sorted(folder.rglob("manifest-*.json"))
        if not matches:
            raise SanitaryError(f"{folder}: holds no manifest-*.json; pass the folder sanitary export wrote to")
        root = folder.resolve()
        for manifest in matches:
            real = manifest.resolve()
            if not real.is_relative_to(root):
                raise SanitaryError(
                    f"{manifest}: links to {real}, outside {folder}; nothing imported, import the export's own folder"
                )
            found.setdefault(real, real.parent)
    return list(found.items())


# Names a manifest may hold: the export's id (the acknowledgement is named after it) and each part of a file's path
# (a table, `date=...`, `unit=<quoted id>`, a part file). Never a separator, `..`, a control character or NUL.
_NAME = re.compile(r"[A-Za-z0-9_~=%+-][A-Za-z0-9._~=%+-]*")
_ID_MAX = 100
_PART_MAX = 255  # bytes: what a file system takes as one name
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SEQ_MAX = 2**53


def _verified(manifest: Path, root: Path) -> _Export:
    document = _read_json(manifest, "export manifest")

    def refuse(what: str) -> SanitaryError:
        return SanitaryError(f"{manifest}: {what}; not a manifest sanitary export wrote, nothing imported")

    match document.get("format"):
        case str(found) if found == MANIFEST_FORMAT:
            pass
        case found:
            raise refuse(f"format {found!r}, not {MANIFEST_FORMAT!r}")
    version, export_id, seq, listed = (document.get(k) for k in ("schema_version", "export_id", "seq", "files"))
    if not _whole(version, 1, _SEQ_MAX):
        raise refuse(f"schema_version {version!r} is not a whole number from 1")
    if version > SCHEMA_VERSION:
        raise SanitaryError(
            f"{manifest}: exported at schema v{version}, newer than this sanitary (v{SCHEMA_VERSION}); upgrade "
            "sanitary to import it"
        )
    if not (isinstance(export_id, str) and _NAME.fullmatch(export_id) and len(export_id) <= _ID_MAX):
        raise refuse(f"export_id {str(export_id)[:_ID_MAX]!r} is not a name of letters, digits and ._-")
    if not _whole(seq, 1, _SEQ_MAX):
        raise refuse(f"seq {str(seq)[:40]!r} is not a whole number from 1 to {_SEQ_MAX}")
    if not isinstance(listed, list):
        raise refuse("files is not a list")
    files = []
    for entry in listed:
        if not isinstance(entry, dict):
            raise refuse(f"files holds {str(entry)[:60]!r}, not a file's path, table, rows and sha256")
        relative, table, rows, sha256 = (entry.get(k) for k in ("path", "table", "rows", "sha256"))
        if not (isinstance(relative, str) and relative and all(_part(p) for p in relative.split("/"))):
            raise refuse(f"lists {str(relative)[:120]!r}, not a path inside the export's folder")
        if table not in PER_SOURCE_TABLES and table not in _WHOLE_TABLES:
            raise refuse(f"lists {relative} for unknown table {str(table)[:40]!r}")
        if not _whole(rows, 0, _SEQ_MAX) or not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
            raise refuse(f"lists {relative} without a whole number of rows and a sha256")
        path = (root / relative).resolve()
        if not path.is_relative_to(root):
            raise refuse(f"lists {relative}, which links to {path}, outside the export's folder")
        if not path.is_file():
            raise SanitaryError(f"{path}: missing, listed in {manifest.name}; export {export_id} not imported")
        try:
            found = _sha256(path)
        except OSError as exc:
            raise SanitaryError(
                f"{path}: cannot be read ({exc.strerror}); export {export_id} not imported, fix its permissions"
            ) from None
        if found != sha256:
            raise SanitaryError(
                f"{path}: sha256 differs from {manifest.name} (corrupted or truncated in transit); "
                f"export {export_id} not imported, ship it again"
            )
        files.append(ShippedFile(path, table, rows, sha256))
    return _Export(manifest, export_id, seq, tuple(files))


def _whole(value: object, low: int, high: int) -> TypeGuard[int]:
    """A JSON whole number in [low, high]: not a bool, a float (1e23) or a string."""
    return type(value) is int and low <= value <= high


def _part(name: str) -> bool:
    return bool(_NAME.fullmatch(name)) and len(name.encode()) <= _PART_MAX


def _load(export: _Export, copy: Path) -> Path:
    """The export's rows in a scratch database of the current schema: its keys and types checked by the store's,
    its values by the store's rules."""
    with Store(copy) as store:
        for shipped in export.files:
            try:
                # By name: an export from an older unit lacks later columns, which read as NULL as a migration's do.
                store.con.execute(
                    f"INSERT INTO {shipped.table} BY NAME SELECT * FROM read_parquet(?, hive_partitioning = false)",
                    [str(shipped.path)],
                )
            except duckdb.Error as exc:
                raise SanitaryError(
                    f"{shipped.path}: cannot be loaded ({str(exc).splitlines()[0]}); export {export.export_id} "
                    "not imported, nor any other"
                ) from None
        for table in {f.table for f in export.files}:
            expected = sum(f.rows for f in export.files if f.table == table)
            if _scalar(store.con, f"SELECT count(*) FROM {table}") != expected:
                raise SanitaryError(
                    f"{export.manifest}: {table} holds other rows than the manifest lists; "
                    f"export {export.export_id} not imported, nor any other"
                )
        check_values(store.con, "", export.manifest, f"export {export.export_id} not imported, nor any other")
    return copy


def _import_one(con: duckdb.DuckDBPyConnection, export: _Export, src: str) -> tuple[list[tuple], int, int]:
    """The export's rows, attached as `src` (a catalog prefix), into the central database: the windows it carried,
    and how many windows and alerts were written."""
    # Runs, sites and signs by the merge's own rules; sites first, as the central k applied to the windows reads them.
    copy_registers(con, src)
    written, alerts = _merge_windows(con, export, src)
    return con.execute(f"SELECT {_KEY} FROM ({_window_keys(src)}) ORDER BY ALL").fetchall(), written, alerts


def _acknowledged(
    export: _Export, keys: list[tuple], written: int, alerts: int, db: Path, ack_dir: Path | None
) -> ExportImport:
    ack = (ack_dir or export.manifest.parent) / f"ack-{export.export_id}.json"
    try:
        ack.parent.mkdir(parents=True, exist_ok=True)
        _write_json(ack, {
            "format": ACK_FORMAT,
            "export_id": export.export_id,
            "imported_at": datetime.now(UTC).isoformat(),
            "into": str(db),
            "windows": [[site, camera, source, start.isoformat()] for site, camera, source, start in keys],
        })  # fmt: skip
    except OSError as exc:
        raise SanitaryError(
            f"{ack}: cannot write the acknowledgement ({exc.strerror}); the export is imported, import it again "
            "with a writable ack folder"
        ) from None
    return ExportImport(export.export_id, export.manifest, len(keys), written, len(keys) - written, alerts, ack)


def _merge_windows(con: duckdb.DuckDBPyConnection, export: _Export, src: str) -> tuple[int, int]:
    """Each window the export carries replaces the central rows of that window, unless those came from this export
    or a later one of the unit; the windows and alerts written."""
    con.execute(
        f"""CREATE TEMP TABLE won AS SELECT {_KEY} FROM ({_window_keys(src)}) k
        LEFT JOIN shipped_windows p USING ({_KEY})
        WHERE p.export_id IS NULL OR p.export_seq < ? OR (p.export_seq = ? AND p.export_id < ?)""",
        [export.seq, export.seq, export.export_id],
    )
    taken = f"({_KEY}) IN (SELECT {_KEY} FROM won)"
    for table in _WINDOW_TABLES:
        columns = ", ".join(COLUMNS[table])
        con.execute(f"DELETE FROM {table} WHERE {taken}")
        con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {src}{table} WHERE {taken}")
    columns = ", ".join(COLUMNS["alerts"])
    con.execute(
        f"CREATE TEMP TABLE won_alerts AS SELECT {columns} FROM ({_alerts_sql(src)})"
        f" WHERE (site_id, camera_id, source, shipped_window_start) IN (SELECT {_KEY} FROM won)"
    )
    con.execute(f"DELETE FROM alerts WHERE ({_ALERT_KEY}) IN (SELECT {_ALERT_KEY} FROM won_alerts)")
    con.execute(f"INSERT INTO alerts ({columns}) SELECT {columns} FROM won_alerts")
    con.execute(
        f"INSERT OR REPLACE INTO shipped_windows ({', '.join(COLUMNS['shipped_windows'])}) SELECT {_KEY}, ?, ?, ?"
        " FROM won",
        [export.export_id, export.seq, datetime.now(UTC)],
    )
    apply_central_privacy(con, f"SELECT {_KEY} FROM won", src)
    counts = (_scalar(con, "SELECT count(*) FROM won"), _scalar(con, "SELECT count(*) FROM won_alerts"))
    con.execute("DROP TABLE won")
    con.execute("DROP TABLE won_alerts")
    return counts


# ---------------------------------------------------------------------------------------------------- helpers


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> int:
    row = con.execute(sql, params or []).fetchone()
    return int(row[0]) if row else 0


def _column(con: duckdb.DuckDBPyConnection, sql: str) -> list[str]:
    return [str(value) for (value,) in con.execute(sql).fetchall()]


def _literal(text: str) -> str:
    """A SQL string literal, for COPY, which takes no parameters."""
    return "'" + text.replace("'", "''") + "'"


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _write_json(path: Path, document: dict[str, Any]) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(partial, path)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise SanitaryError(f"{path}: no such file; pass the {what} sanitary wrote") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SanitaryError(f"{path}: not a readable {what} ({str(exc).splitlines()[0]})") from None
    if not isinstance(document, dict):
        raise SanitaryError(f"{path}: not a sanitary {what}")
    return document
