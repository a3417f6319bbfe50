"""The schema in one module: every table listed with all its columns, and files of older releases migrating."""

from datetime import UTC, datetime
from pathlib import Path

import duckdb

from sanitary.storage.schema import COLUMNS, MIGRATIONS, PER_SOURCE_TABLES, ROW_KEYS, SCHEMA_VERSION
from sanitary.storage.store import Store
from tests.conftest import old_schema_db

T0 = datetime(2021, 3, 1, 8, 0, tzinfo=UTC)
SHIPPING_TABLES = ("outbox", "exports", "shipped_windows")


def columns_of(con: duckdb.DuckDBPyConnection, table: str) -> tuple[str, ...]:
    rows = con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index", [table]
    ).fetchall()
    return tuple(c for (c,) in rows)


def tables_of(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()}


def test_every_table_is_listed_with_all_its_columns(tmp_path: Path) -> None:
    """A column a list missed would be dropped by a merge or a shipment. (Every statement names the columns it
    writes, so a list's order is its own.)"""
    with Store(tmp_path / "fresh.duckdb") as store:
        assert tables_of(store.con) == {*COLUMNS, "meta"}
        for table, columns in COLUMNS.items():
            assert sorted(columns_of(store.con, table)) == sorted(columns) and len(set(columns)) == len(columns), table
    assert SCHEMA_VERSION == len(MIGRATIONS) == 9


def test_row_keys_are_the_primary_keys_of_the_per_source_tables(tmp_path: Path) -> None:
    assert tuple(ROW_KEYS) == PER_SOURCE_TABLES
    with Store(tmp_path / "fresh.duckdb") as store:
        for table in PER_SOURCE_TABLES:
            key = store.con.execute(
                "SELECT constraint_column_names FROM duckdb_constraints()"
                " WHERE table_name = ? AND constraint_type = 'PRIMARY KEY'",
                [table],
            ).fetchone()
            assert key is not None and tuple(key[0]) == ("site_id", "camera_id", "source", *ROW_KEYS[table]), table


def add_window(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "INSERT INTO window_aggregates (site_id, camera_id, source, window_start, window_end, unit_id, run_id,"
        " frames_analysed, covered_s, people_sum, people_max, faces_sum, partial) VALUES ('s', 'c', 'h0', ?, ?, 'u',"
        " 'r', 10, 60.0, 30, 5, 2, false)",
        [T0, T0.replace(minute=1)],
    )


def test_a_v7_file_gains_the_shipping_tables_and_keeps_its_rows(tmp_path: Path) -> None:
    db = tmp_path / "v7.duckdb"
    with old_schema_db(db, 7) as con:
        add_window(con)
        assert not tables_of(con) & set(SHIPPING_TABLES)
    with Store(db) as store:
        assert store.con.execute("SELECT value FROM meta").fetchall() == [(str(SCHEMA_VERSION),)]
        for table in SHIPPING_TABLES:
            assert columns_of(store.con, table) == COLUMNS[table], table
            assert store.con.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
        kept = store.con.execute("SELECT source, people_sum, partial, tags FROM window_aggregates").fetchall()
    assert kept == [("h0", 30, False, None)]


def test_a_v7_file_that_shipped_keeps_its_outbox(tmp_path: Path) -> None:
    """Before v8 shipping created its tables on first use, as v8 defines them; migrating such a file keeps them."""
    db = tmp_path / "unit.duckdb"
    exported = datetime(2021, 3, 2, 9, 0, tzinfo=UTC)
    with old_schema_db(db, 7) as con:
        MIGRATIONS[7](con)  # what `sanitary export` and `sanitary import` added to a v7 file
        add_window(con)
        con.execute("INSERT INTO outbox VALUES ('s', 'c', 'h0', ?, 'd1', 'e1', ?, NULL)", [T0, exported])
        con.execute("INSERT INTO exports VALUES ('e1', 1, ?, NULL, 1)", [exported])
        con.execute("INSERT INTO shipped_windows VALUES ('s', 'c', 'h0', ?, 'e0', 3, ?)", [T0, exported])
    with Store(db) as store:
        assert store.con.execute("SELECT value FROM meta").fetchall() == [(str(SCHEMA_VERSION),)]
        outbox = store.con.execute("SELECT export_id, digest, acked_at FROM outbox").fetchall()
        exports = store.con.execute("SELECT export_id, seq, windows FROM exports").fetchall()
        shipped = store.con.execute("SELECT export_id, export_seq FROM shipped_windows").fetchall()
    assert (outbox, exports, shipped) == ([("e1", "d1", None)], [("e1", 1, 1)], [("e0", 3)])
