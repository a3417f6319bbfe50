"""Tampered exports for `sanitary import` (issue 30): manifests and Parquet files changed in their names, types,
values and hashes. Each is refused in one line with the central store unchanged, or accepted with the store's rules
applied (every value within its range, no window under the central k showing more than its people counts). Never a
traceback.

Seeded (no hypothesis): a failure names its case, and reruns the same. Manifest cases are refused before any
database is opened, so they are many; Parquet cases load a scratch database each, so they are few.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sanitary.errors import SanitaryError
from sanitary.storage.merge import check_values
from sanitary.storage.shipping import export_parquet, import_parquet
from tests.storage.test_merge import analyse, record_site

SEED = 30
MANIFEST_CASES = 80
PARQUET_CASES = 14
# What a tampered field may become: wrong types, paths, huge and odd numbers, control characters.
ODD: list[Any] = [
    None, True, 0, -1, 1e23, 2**63, 2**63 - 1, 1.5, float("nan"), "", "..", ".", "/etc/passwd", "../../x",
    "x/../../../victim/config", "a\x00b", "\x1b]0;PWNED\x07", "x" * 300, "C:\\x", [], {}, ["a"], {"path": "x"},
    "‮evil", "%2e%2e",
]  # fmt: skip
# Values written into a Parquet column, as SQL literals; those the column's type cannot take are skipped.
VALUES = [
    "NULL", "-1", "0", "1", "9223372036854775807", "'nan'::DOUBLE", "'inf'::DOUBLE", "-1e300", "1e300", "1.5",
    "TIMESTAMPTZ '9009-01-01 00:00:00+00'", "TIMESTAMPTZ '1900-01-01 00:00:00+00'", "''", "'../../x'",
    "'Mars/Olympus'", "'x' || repeat('y', 2000)", "true", "false",
]  # fmt: skip
Snapshot = dict[str, list[tuple]]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Snapshot]:
    """A unit's export (two sources, one of 6 people, one of 2, suppressed at the source), and a central store that
    knows the site (k 5) and holds another unit's windows."""
    folder = tmp_path_factory.mktemp("fuzz")
    unit, central, other = folder / "unit.duckdb", folder / "central.duckdb", folder / "other.duckdb"
    analyse(unit, "s1", "crowded", 6)
    analyse(unit, "s1", "quiet", 2, camera="c2")
    record_site(unit, "s1", "Europe/Paris")
    analyse(other, "s2", "elsewhere", 7)
    record_site(other, "s2", "Africa/Dakar")
    export_parquet(unit, folder / "export", None)
    export_parquet(other, folder / "other-export", None)
    import_parquet([folder / "other-export"], central)
    record_site(central, "s1", "Europe/Paris")
    return folder / "export", central, snapshot(central)


def snapshot(db: Path) -> Snapshot:
    with duckdb.connect(str(db), read_only=True) as con:
        tables = [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables}


def manifest_of(export: Path) -> Path:
    return next(export.glob("manifest-*.json"))


def rehash(export: Path, relative: str) -> None:
    """The manifest's rows and sha256 of a file made to match it again, as anyone holding the export can."""
    manifest = manifest_of(export)
    document = json.loads(manifest.read_text())
    path = export / relative
    with duckdb.connect() as con:
        rows = con.execute("SELECT count(*) FROM read_parquet(?)", [str(path)]).fetchone()
    for listed in document["files"]:
        if listed["path"] == relative:
            listed.update(sha256=hashlib.sha256(path.read_bytes()).hexdigest(), rows=rows[0] if rows else 0)
    manifest.write_text(json.dumps(document))


def tamper_manifest(rng: random.Random, export: Path) -> str:
    manifest = manifest_of(export)
    document = json.loads(manifest.read_text())
    odd = rng.choice(ODD)
    kind = rng.choice(["top", "file", "file", "drop", "duplicate", "text"])
    if kind == "top":
        key = rng.choice(["format", "export_id", "seq", "schema_version", "files"])
        document[key] = odd
        case = f"manifest {key} = {odd!r}"
    elif kind == "file":
        listed = rng.choice(document["files"])
        key = rng.choice(["path", "table", "rows", "sha256"])
        listed[key] = odd
        case = f"manifest file {key} = {odd!r}"
    elif kind == "drop":
        listed = rng.choice(document["files"])
        del listed[rng.choice(list(listed))]
        case = f"manifest file entry missing a key: {listed}"
    elif kind == "duplicate":
        document["files"].append(dict(rng.choice(document["files"])))
        case = "manifest lists a file twice"
    else:
        text = json.dumps(document)
        cut = rng.randrange(len(text))
        manifest.write_text(text[:cut] + rng.choice(["", "}", "\x00", "[", '"']) + text[cut + 1 :])
        return f"manifest text damaged at {cut}"
    manifest.write_text(json.dumps(document))
    return case


def tamper_parquet(rng: random.Random, export: Path) -> str:
    document = json.loads(manifest_of(export).read_text())
    listed = rng.choice(document["files"])
    path = export / listed["path"]
    kind = rng.choice(["value", "value", "value", "type", "column", "bytes", "unsuppress"])
    with duckdb.connect() as con:
        con.execute("CREATE TABLE t AS SELECT * FROM read_parquet(?, hive_partitioning = false)", [str(path)])
        columns = [
            c for (c,) in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = 't'").fetchall()
        ]
        column = rng.choice(columns)
        if kind in ("value", "column"):
            drop_or_add = [f'DROP COLUMN "{column}"', "ADD COLUMN face_crop BLOB", "ADD COLUMN extra INTEGER"]
            change = (
                f'UPDATE t SET "{column}" = {rng.choice(VALUES)}'
                if kind == "value"
                else f"ALTER TABLE t {rng.choice(drop_or_add)}"
            )
            try:
                con.execute(change)
            except duckdb.Error:  # the column's type cannot take it: nothing to import
                return f"{listed['path']}: {change} (not possible, unchanged)"
            case = f"{listed['path']}: {change}"
        elif kind == "type":
            con.execute(f'ALTER TABLE t ALTER "{column}" TYPE VARCHAR')
            con.execute(f'UPDATE t SET "{column}" = {rng.choice(["NULL", repr("abc"), repr("1e400")])}')
            case = f"{listed['path']}: {column} made text"
        elif kind == "unsuppress":
            if listed["table"] != "window_aggregates":
                return f"{listed['path']}: not the aggregates (unchanged)"
            con.execute(
                "UPDATE t SET people_distinct = 1, mask_suppressed = false, k_min = 1, persons_with_mask = 1,"
                " persons_without_mask = 0, persons_mask_incorrect = 0, person_mask_rate = 1.0, faces_with_mask = 9,"
                " faces_without_mask = 0, faces_mask_incorrect = 0, mask_rate = 1.0, opt_outs = 0"
            )
            case = f"{listed['path']}: one person's mask shown"
        if kind != "bytes":
            con.execute(f"COPY t TO '{path}' (FORMAT parquet)")
    if kind == "bytes":
        data = bytearray(path.read_bytes())
        at = rng.randrange(len(data))
        data[at] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data[: rng.choice([len(data), at + 1])]))
        case = f"{listed['path']}: byte {at} flipped"
    if rng.random() < 0.8:  # most tampering recomputes the hash; the rest must fail the hash check
        rehash(export, listed["path"])
        case += ", hash recomputed"
    return case


def held_to_the_rules(central: Path, case: str) -> None:
    with duckdb.connect(str(central), read_only=True) as con:
        check_values(con, "", central, case)  # every value within the store's ranges
        under_k = con.execute(
            "SELECT count(*) FROM window_aggregates WHERE coalesce(people_distinct, people_max) < k_min"
            " AND (NOT mask_suppressed OR persons_with_mask IS NOT NULL OR faces_with_mask IS NOT NULL"
            " OR opt_outs IS NOT NULL)"
        ).fetchone()
        lowest_k = con.execute("SELECT min(k_min) FROM window_aggregates").fetchone()
    assert under_k == (0,), case
    assert lowest_k is not None and lowest_k[0] >= 5, case


def one_case(base: tuple[Path, Path, Snapshot], work: Path, case_no: int, tamper: Callable[[Path], str]) -> str:
    export, central, before = base
    folder, db = work / f"case-{case_no}", work / f"case-{case_no}.duckdb"
    shutil.copytree(export, folder)
    shutil.copyfile(central, db)
    case = f"case {case_no}: {tamper(folder)}"
    try:
        import_parquet([folder], db)
    except SanitaryError as exc:
        assert "\n" not in str(exc) and str(exc), case
        # Most are refused before the file is opened: the same bytes; else the same rows.
        assert db.read_bytes() == central.read_bytes() or snapshot(db) == before, case
        return "refused"
    held_to_the_rules(db, case)
    return "accepted"


@pytest.mark.slow
def test_tampered_manifests_are_refused_in_one_line(base: tuple[Path, Path, Snapshot], tmp_path: Path) -> None:
    rng = random.Random(SEED)
    outcomes = [one_case(base, tmp_path, i, lambda f: tamper_manifest(rng, f)) for i in range(MANIFEST_CASES)]
    # A few tamperings change nothing that matters (a duplicate entry of a file already listed is refused too).
    assert outcomes.count("refused") >= MANIFEST_CASES * 0.8, outcomes


@pytest.mark.slow
def test_tampered_parquet_files_are_refused_or_held_to_the_central_rules(
    base: tuple[Path, Path, Snapshot], tmp_path: Path
) -> None:
    rng = random.Random(SEED + 1)
    outcomes = [one_case(base, tmp_path, i, lambda f: tamper_parquet(rng, f)) for i in range(PARQUET_CASES)]
    assert "refused" in outcomes and "accepted" in outcomes, outcomes
