"""Shipping a unit's windows home: every window counted once however often, late or overlapping it arrives."""

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from sanitary.errors import SanitaryError
from sanitary.storage.schema import COLUMNS, HEALTH_COLUMNS, PER_SOURCE_TABLES
from sanitary.storage.shipping import ExportSummary, acknowledge, export_parquet, import_parquet, purge_shipped
from tests.conftest import NO_SIGN, PETS_CAMERA, run_cli
from tests.storage.test_merge import SHOWN, T0, UNSUPPRESS, analyse, record_site, scalar, snapshot_query

TABLES = (*PER_SOURCE_TABLES, "runs", "sites")


def add_health_and_alert(db: Path, source: str, start: datetime) -> None:
    """What a live unit adds beside the aggregates: health per window, and an alert mid-window."""
    with duckdb.connect(str(db)) as con:
        windows = con.execute(
            "SELECT site_id, camera_id, source, window_start, unit_id FROM window_aggregates WHERE source = ?", [source]
        ).fetchall()
        con.executemany(
            f"INSERT INTO health ({', '.join(HEALTH_COLUMNS)}) VALUES ({', '.join('?' * len(HEALTH_COLUMNS))})",
            [[*w, 60.0, 600, 60, 2, 1.0, 0, 35.0, 180.0, 0.0, 0] for w in windows],
        )
        con.execute(
            "INSERT INTO alerts SELECT site_id, camera_id, source, window_start + INTERVAL 30 SECOND, 'dense',"
            " 'raised', 'occupancy', NULL, 'above', 1.0, 4.0, 'delivered', run_id FROM window_aggregates"
            " WHERE source = ? AND window_start = ?",
            [source, start + timedelta(minutes=1)],
        )


@pytest.fixture
def unit(tmp_path: Path) -> Path:
    """A bus unit: two sources, 3 windows each (08:00, 08:01, 08:02), health on one, two alerts per source."""
    db = tmp_path / "bus-7.duckdb"
    analyse(db, "line-12", "cam-front", 2)
    analyse(db, "line-12", "cam-rear", 3, camera="rear")
    add_health_and_alert(db, "cam-front", T0)
    record_site(db, "line-12", "Europe/Paris")
    return db


def table(db: Path, name: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall()


def sums(db: Path) -> dict[str, tuple]:
    """Per table: rows, and the sum of its main count."""
    measures = {
        "window_aggregates": "sum(people_sum)",
        "zone_windows": "sum(people_sum)",
        "dwell_windows": "sum(people)",
        "line_windows": "sum(people_in)",
        "alerts": "sum(value)",
        "health": "sum(frames_read)",
    }
    with duckdb.connect(str(db), read_only=True) as con:
        return {t: con.execute(f"SELECT count(*), {m} FROM {t}").fetchone() for t, m in measures.items()}


def add_windows(db: Path, later: timedelta) -> None:
    """Three more windows of cam-front, `later` than its first three, committed under the same run as a live unit
    does: the case a merge of whole sources would get wrong."""
    with duckdb.connect(str(db)) as con:
        for name in ("window_aggregates", "zone_windows", "dwell_windows", "line_windows"):
            end = ", window_end + $later AS window_end" if name == "window_aggregates" else ""
            con.execute(
                f"INSERT INTO {name} SELECT * REPLACE (window_start + $later AS window_start{end}) FROM {name}"
                " WHERE source = 'cam-front' AND window_start < $first_end",
                {"later": later, "first_end": T0 + timedelta(minutes=3)},
            )


def test_export_import_carries_every_row_once(unit: Path, tmp_path: Path) -> None:
    out, central = tmp_path / "out", tmp_path / "central.duckdb"
    exported = export_parquet(unit, out, None)
    assert (exported.windows, exported.units, exported.seq) == (6, ("unit-line-12",), 1)
    assert exported.first_window_start == T0 and exported.last_window_end == T0 + timedelta(minutes=3)
    imported = import_parquet([out], central)
    assert [(e.windows, e.windows_written, e.windows_unchanged, e.alerts_written) for e in imported.exports] == [
        (6, 6, 0, 3)
    ]
    assert sums(central) == sums(unit)
    assert sums(unit)["window_aggregates"] == (6, 2 * 150 + 3 * 150)
    for name in TABLES:
        assert table(central, name) == table(unit, name), name
    manifest = json.loads(exported.manifest.read_text())
    assert manifest["windows"] == {"count": 6, "first_start": T0.isoformat(),
                                   "last_end": (T0 + timedelta(minutes=3)).isoformat()}  # fmt: skip
    for listed in manifest["files"]:
        assert (out / listed["path"]).is_file() and len(listed["sha256"]) == 64


def test_partition_folders_are_by_date_and_unit(unit: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    exported = export_parquet(unit, out, None)
    relative = sorted(f.path.relative_to(out).as_posix() for f in exported.files)
    part = f"part-{exported.export_id}.parquet"
    assert relative == sorted(
        [f"{t}/date=2021-03-01/unit=unit-line-12/{part}" for t in PER_SOURCE_TABLES]
        + [f"runs/unit=unit-line-12/{part}", f"sites/{part}"]
    )
    assert (out / f"manifest-{exported.export_id}.json").is_file()
    with duckdb.connect() as con:  # any Parquet reader sees the partitions as columns
        rows = con.execute(
            "SELECT date, unit, count(*) FROM read_parquet(?, hive_partitioning = true) GROUP BY ALL",
            [str(out / "window_aggregates" / "*" / "*" / "*.parquet")],
        ).fetchall()
    assert [(str(d), u, n) for d, u, n in rows] == [("2021-03-01", "unit-line-12", 6)]


def test_importing_twice_changes_nothing(unit: Path, tmp_path: Path) -> None:
    out, central = tmp_path / "out", tmp_path / "central.duckdb"
    export_parquet(unit, out, None)
    import_parquet([out], central)
    before = {name: table(central, name) for name in (*TABLES, "signage", "shipped_windows")}
    again = import_parquet([out, out], central)
    assert {name: table(central, name) for name in before} == before
    assert [(e.windows_written, e.windows_unchanged, e.alerts_written) for e in again.exports] == [(0, 6, 0)]


def test_overlapping_exports_do_not_double_count(unit: Path, tmp_path: Path) -> None:
    central = tmp_path / "central.duckdb"
    first = export_parquet(unit, tmp_path / "e1", None)
    add_windows(unit, timedelta(minutes=3))
    # Since before the first export's end: it carries the last two windows of each source again, and the new ones.
    second = export_parquet(unit, tmp_path / "e2", T0 + timedelta(seconds=90))
    assert first.last_window_end is not None and second.since is not None and second.since < first.last_window_end
    assert second.windows == 2 * 2 + 3
    for i, order in enumerate(([tmp_path / "e1", tmp_path / "e2"], [tmp_path / "e2", tmp_path / "e1"])):
        import_parquet(order, tmp_path / f"together-{i}.duckdb")
        assert sums(tmp_path / f"together-{i}.duckdb") == sums(unit)
    import_parquet([tmp_path / "e1"], central)
    import_parquet([tmp_path / "e2"], central)
    for name in TABLES:
        assert table(central, name) == table(unit, name), name


def test_a_window_rewritten_after_export_ships_again_and_the_later_export_wins(unit: Path, tmp_path: Path) -> None:
    central = tmp_path / "central.duckdb"
    older = export_parquet(unit, tmp_path / "e1", None)
    acknowledge(unit, import_parquet([tmp_path / "e1"], central).exports[0].ack)
    analyse(unit, "line-12", "cam-rear", 5, camera="rear")  # the source analysed again: same windows, new rows
    newer = export_parquet(unit, tmp_path / "e2", None)
    assert newer.windows == 3 and newer.seq == older.seq + 1
    for order in ([tmp_path / "e2", tmp_path / "e1"], [tmp_path / "e1", tmp_path / "e2"]):
        target = tmp_path / f"central-{order[0].name}.duckdb"
        import_parquet(order, target)
        assert table(target, "window_aggregates") == table(unit, "window_aggregates")


def test_after_an_acknowledgement_the_next_export_carries_only_new_windows(unit: Path, tmp_path: Path) -> None:
    central = tmp_path / "central.duckdb"
    first = export_parquet(unit, tmp_path / "e1", None)
    unacked = export_parquet(unit, tmp_path / "e1b", None)
    assert unacked.windows == first.windows == 6  # nothing acknowledged yet: shipped again
    ack = import_parquet([tmp_path / "e1"], central).exports[0].ack
    assert ack == tmp_path / "e1" / f"ack-{first.export_id}.json"
    assert acknowledge(unit, ack) == 6
    assert acknowledge(unit, ack) == 0
    add_windows(unit, timedelta(minutes=3))
    second = export_parquet(unit, tmp_path / "e2", None)
    assert (second.windows, second.first_window_start) == (3, T0 + timedelta(minutes=3))
    tables = {f.table for f in second.files}
    assert "health" not in tables and {"window_aggregates", "runs", "sites"} <= tables
    import_parquet([tmp_path / "e2"], central)
    assert sums(central) == sums(unit)
    assert export_parquet(unit, tmp_path / "e3", None).windows == 3  # e2 not acknowledged yet


def test_purge_deletes_only_acknowledged_old_windows(unit: Path, tmp_path: Path) -> None:
    exported = export_parquet(unit, tmp_path / "e1", None)
    add_windows(unit, timedelta(days=2))  # never shipped
    now = T0 + timedelta(days=3)
    assert purge_shipped(unit, 1, now) == 0  # shipped, not acknowledged
    imported = import_parquet([tmp_path / "e1"], tmp_path / "central.duckdb", ack_dir=tmp_path / "acks")
    assert imported.exports[0].ack.parent == tmp_path / "acks"
    acknowledge(unit, imported.exports[0].ack)
    assert purge_shipped(unit, 4, now) == 0  # acknowledged, but not old enough
    assert purge_shipped(unit, 1, now) == exported.windows
    left = sums(unit)
    assert left["window_aggregates"] == (3, 2 * 150)
    assert left["alerts"] == left["health"] == (0, None)  # the alerts and health were of the shipped windows
    for name in ("window_aggregates", "zone_windows", "dwell_windows", "line_windows"):
        assert {row[3] for row in table(unit, name)} == {T0 + timedelta(days=2, minutes=m) for m in range(3)}, name
    assert table(unit, "outbox") == []
    assert purge_shipped(unit, 0, T0 + timedelta(days=10)) == 0  # the new windows were never acknowledged


def test_a_corrupted_file_is_one_line_and_nothing_is_imported(unit: Path, tmp_path: Path) -> None:
    good = export_parquet(unit, tmp_path / "good", None)
    add_windows(unit, timedelta(minutes=3))
    bad = export_parquet(unit, tmp_path / "bad", None)
    victim = next(f.path for f in bad.files if f.table == "window_aggregates")
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    central = tmp_path / "central.duckdb"
    with pytest.raises(SanitaryError, match="sha256 differs") as caught:
        import_parquet([tmp_path / "good", tmp_path / "bad"], central)
    message = str(caught.value)
    assert message.startswith(f"{victim}: ") and "\n" not in message and bad.export_id in message
    assert not central.exists()
    assert not list((tmp_path / "good").glob("ack-*.json"))
    victim.write_bytes(bytes(data[: len(data) // 3]))  # truncated
    with pytest.raises(SanitaryError, match="truncated"):
        import_parquet([tmp_path / "bad"], central)
    assert not central.exists()
    assert import_parquet([tmp_path / "good"], central).exports[0].windows == good.windows


def test_bad_inputs_are_one_line(unit: Path, tmp_path: Path) -> None:
    exported = export_parquet(unit, tmp_path / "out", None)
    stranger = tmp_path / "stranger.duckdb"
    analyse(stranger, "s9", "h1", 1)
    ack = import_parquet([tmp_path / "out"], tmp_path / "central.duckdb").exports[0].ack
    (tmp_path / "empty").mkdir()
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: acknowledge(stranger, ack), f"acknowledges export {exported.export_id}, which"),
        (lambda: acknowledge(unit, exported.manifest), "not a sanitary acknowledgement"),
        (lambda: export_parquet(tmp_path / "missing.duckdb", tmp_path / "x", None), "no such DuckDB file"),
        (lambda: import_parquet([tmp_path / "missing"], tmp_path / "c.duckdb"), "no such folder"),
        (lambda: import_parquet([tmp_path / "empty"], tmp_path / "c.duckdb"), "holds no manifest"),
        (lambda: purge_shipped(unit, -1, T0), "pass 0 or more days"),
    ]
    for call, message in cases:
        with pytest.raises(SanitaryError, match=message) as caught:
            call()
        assert "\n" not in str(caught.value)


def shipped_columns(exported: ExportSummary, name: str) -> tuple[tuple[str, ...], list[tuple]]:
    """The columns of the export's Parquet files of table `name`, and their rows."""
    paths = [str(f.path) for f in exported.files if f.table == name]
    with duckdb.connect() as con:
        cursor = con.execute("SELECT * FROM read_parquet(?, hive_partitioning = false) ORDER BY ALL", [paths])
        return tuple(d[0] for d in cursor.description or ()), cursor.fetchall()


def test_a_column_added_to_the_schema_is_shipped(unit: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An export writes the columns the schema lists for a table, no list of its own: a new column ships once listed."""
    with duckdb.connect(str(unit)) as con:  # as a later migration would add it
        con.execute("ALTER TABLE window_aggregates ADD COLUMN weather VARCHAR")
        con.execute("UPDATE window_aggregates SET weather = 'rain'")
    listed = COLUMNS["window_aggregates"]
    unlisted, _ = shipped_columns(export_parquet(unit, tmp_path / "e1", None), "window_aggregates")
    monkeypatch.setitem(COLUMNS, "window_aggregates", (*listed, "weather"))
    columns, rows = shipped_columns(export_parquet(unit, tmp_path / "e2", None), "window_aggregates")
    assert unlisted == listed and columns == (*listed, "weather")
    assert [row[-1] for row in rows] == ["rain"] * 6


@pytest.mark.slow
def test_the_commands_ship_a_live_unit_home(pets: Path, tmp_path: Path) -> None:
    unit, central, out = tmp_path / "unit.duckdb", tmp_path / "central.duckdb", tmp_path / "outbox"
    cam = tmp_path / "cam.toml"
    cam.write_text(PETS_CAMERA.read_text().replace("window_seconds = 60", "window_seconds = 5"))
    avi = str(pets / "pets09_s2l1_view001_480x360.avi")
    done = run_cli("live", avi, "--camera", str(cam), "--db", str(unit), *NO_SIGN, "--fps", "7", "--analysis-fps",
                   "2", "--seconds", "12")  # fmt: skip
    assert done.returncode == 0, done.stderr
    first = run_cli("export", "--db", str(unit), "--out", str(out))
    assert first.returncode == 0, first.stderr
    for _ in range(2):
        imported = run_cli("import", str(out), "--db", str(central))
        assert imported.returncode == 0, imported.stderr
    totals = "SELECT count(*), sum(people_sum), sum(frames_analysed) FROM window_aggregates"
    with duckdb.connect(str(unit), read_only=True) as a, duckdb.connect(str(central), read_only=True) as b:
        assert a.execute(totals).fetchall() == b.execute(totals).fetchall()
    ack = next(out.glob("ack-*.json"))
    again = run_cli(
        "export", "--db", str(unit), "--out", str(tmp_path / "next"), "--ack", str(ack), "--purge-days", "0"
    )
    assert again.returncode == 0, again.stderr
    held = int(first.stdout.split(" windows in ")[0].rsplit(" ", 1)[1])
    assert f"{held} windows acknowledged" in again.stdout and ": 0 windows in" in again.stdout
    purged = int(again.stdout.split("purged ")[1].split()[0])
    with duckdb.connect(str(unit), read_only=True) as a:
        assert a.execute("SELECT count(*) FROM window_aggregates").fetchone() == (held - purged,) and purged >= 1


def rewrite(manifest: Path, change: Callable[[dict], object]) -> None:
    document = json.loads(manifest.read_text())
    change(document)
    manifest.write_text(json.dumps(document))


def edit_table(exported: ExportSummary, name: str, *statements: str) -> None:
    """Rewrite the export's Parquet files of table `name` through `statements` on a table `t`, and recompute the
    manifest's rows and hashes, as anyone holding the export can."""
    for shipped in (f for f in exported.files if f.table == name):
        with duckdb.connect() as con:
            shipped_rows = "SELECT * FROM read_parquet(?, hive_partitioning = false)"
            con.execute(f"CREATE TABLE t AS {shipped_rows}", [str(shipped.path)])
            for statement in statements:
                con.execute(statement)
            con.execute(f"COPY t TO '{shipped.path}' (FORMAT parquet)")
            rows = con.execute("SELECT count(*) FROM t").fetchone()
        relative = shipped.path.relative_to(exported.manifest.parent).as_posix()
        digest = hashlib.sha256(shipped.path.read_bytes()).hexdigest()

        def fix(document: dict, relative: str = relative, digest: str = digest, rows: tuple | None = rows) -> None:
            for listed in document["files"]:
                if listed["path"] == relative:
                    listed.update(sha256=digest, rows=rows[0] if rows else 0)

        rewrite(exported.manifest, fix)


def refused(dirs: list[Path], central: Path, message: str) -> str:
    """The import refused in one line holding `message`, the central file as it was."""
    before = central.read_bytes() if central.exists() else None
    with pytest.raises(SanitaryError, match=message) as caught:
        import_parquet(dirs, central)
    assert "\n" not in str(caught.value)
    assert (central.read_bytes() if central.exists() else None) == before
    return str(caught.value)


@pytest.mark.parametrize(
    "export_id", ["x/../../../victim/config", "..", "/tmp/victim", "a\x00b", "x" * 300, "a\\..\\b", "", 7]
)
def test_an_export_id_is_a_name_never_a_path(unit: Path, tmp_path: Path, export_id: object) -> None:
    exported = export_parquet(unit, tmp_path / "a" / "b" / "c" / "out", None)
    (tmp_path / "victim").mkdir()
    config = tmp_path / "victim" / "config.json"
    config.write_text("{}")
    rewrite(exported.manifest, lambda d: d.update(export_id=export_id))
    assert "export_id" in refused([tmp_path / "a"], tmp_path / "central.duckdb", "not a name")
    assert config.read_text() == "{}" and not list(tmp_path.rglob("ack-*"))


def test_a_listed_file_must_lie_inside_the_export_folder(unit: Path, tmp_path: Path) -> None:
    out, central = tmp_path / "out", tmp_path / "central.duckdb"
    exported = export_parquet(unit, out, None)
    listed = next(f for f in exported.files if f.table == "window_aggregates")
    other = tmp_path / "other" / "aggregates.parquet"
    other.parent.mkdir()
    other.write_bytes(listed.path.read_bytes())
    inside = listed.path.relative_to(out).as_posix()
    for outside in ("../other/aggregates.parquet", str(other), f"{inside}/../../../../../other/aggregates.parquet",
                    "window_aggregates//x.parquet", "./" + inside):  # fmt: skip
        rewrite(exported.manifest, lambda d, p=outside: [f.update(path=p) for f in d["files"] if f["path"] == inside])
        refused([out], central, "not a path inside the export's folder")
        rewrite(exported.manifest, lambda d, p=outside: [f.update(path=inside) for f in d["files"] if f["path"] == p])
    # A link inside the folder to a file outside it, and a manifest linking out, are outside too.
    listed.path.unlink()
    listed.path.symlink_to(other)
    refused([out], central, "outside the export's folder")
    listed.path.unlink()
    listed.path.write_bytes(other.read_bytes())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / exported.manifest.name).symlink_to(exported.manifest)
    refused([elsewhere], central, f"outside {elsewhere}")
    assert import_parquet([out], central).exports[0].windows == exported.windows


def test_an_edited_export_cannot_show_one_persons_mask(unit: Path, tmp_path: Path) -> None:
    """k 1 for the window and the site, the mask counts put back, the hashes recomputed: the central store still
    applies its own k, so no window under k shows a rate, a count or a zone's figure."""
    central = tmp_path / "central.duckdb"
    record_site(central, "line-12", "Europe/Paris")  # the central k: 5
    exported = export_parquet(unit, tmp_path / "out", None)
    edit_table(exported, "window_aggregates", *(u.replace("UPDATE window_aggregates", "UPDATE t") for u in UNSUPPRESS
                                                 if u.startswith("UPDATE window_aggregates")))  # fmt: skip
    edit_table(exported, "sites", "UPDATE t SET k_min = 1, updated_at = now()")
    edit_table(exported, "zone_windows", "UPDATE t SET people_sum = 60, people_max = 1")
    edit_table(exported, "line_windows", "UPDATE t SET people_in = 1, people_out = 0")
    edit_table(exported, "dwell_windows", "UPDATE t SET people = 1")
    assert import_parquet([tmp_path / "out"], central).exports[0].windows == 6
    shown = [scalar(central, sql) for sql in SHOWN]
    assert shown == [0, 0, 0, 0, 0]
    assert snapshot_query(central, "SELECT DISTINCT k_min FROM mask_rate_windows") == [(5,)]
    assert snapshot_query(central, "SELECT k_min FROM sites") == [(5,)]


@pytest.mark.parametrize(
    ("table_name", "edit", "message"),
    [
        ("window_aggregates", "UPDATE t SET people_sum = -1", "people_sum holds -1"),
        ("window_aggregates", "UPDATE t SET covered_s = 'nan'", "covered_s holds nan"),
        ("window_aggregates", "UPDATE t SET covered_s = 'inf'", "covered_s holds inf"),
        ("window_aggregates", "UPDATE t SET window_start = window_start + INTERVAL 6988 YEAR,"
         " window_end = window_end + INTERVAL 6988 YEAR", "window_start holds datetime.datetime(9009"),
        ("window_aggregates", "UPDATE t SET people_max = 9223372036854775807", "people_max holds 9223372036854775807"),
        ("sites", "UPDATE t SET timezone = 'Europe/Atlantis'", "timezone holds 'Europe/Atlantis'"),
        ("health", "UPDATE t SET frames_read = -3", "health.frames_read holds -3"),
        ("zone_windows", "UPDATE t SET area_m2 = -2", "zone_windows.area_m2 holds -2"),
    ],
)  # fmt: skip
def test_impossible_values_are_refused_before_anything_is_written(
    unit: Path, tmp_path: Path, table_name: str, edit: str, message: str
) -> None:
    good = export_parquet(unit, tmp_path / "good", None)
    add_windows(unit, timedelta(minutes=3))
    bad = export_parquet(unit, tmp_path / "bad", None)
    edit_table(bad, table_name, edit)
    central = tmp_path / "central.duckdb"
    import_parquet([tmp_path / "good"], central)
    before = central.read_bytes()
    assert bad.export_id in refused([tmp_path / "bad"], central, re.escape(message))
    assert central.read_bytes() == before
    assert good.export_id


def test_one_bad_manifest_and_nothing_of_the_call_is_imported(unit: Path, tmp_path: Path) -> None:
    """The first export is good; the second says seq 1e23: neither goes in, and no acknowledgement is written."""
    export_parquet(unit, tmp_path / "a" / "1", None)
    add_windows(unit, timedelta(minutes=3))
    second = export_parquet(unit, tmp_path / "a" / "2", None)
    central = tmp_path / "central.duckdb"
    for seq in (1e23, "2", True, 2**63, -1):
        rewrite(second.manifest, lambda d, s=seq: d.update(seq=s))
        refused([tmp_path / "a"], central, "seq .* is not a whole number")
        assert not central.exists() and not list(tmp_path.rglob("ack-*"))
    rewrite(second.manifest, lambda d: d.update(seq=2, files="x"))
    refused([tmp_path / "a"], central, "files is not a list")
    rewrite(second.manifest, lambda d: d.update(files=[{"path": 1}]))
    refused([tmp_path / "a"], central, "not a path inside")
    assert not central.exists()


def test_a_full_disk_during_export_is_one_line_and_leaves_no_export(unit: Path, tmp_path: Path) -> None:
    """On a real file system with 8 KB free: the disk is named full, nothing half written is left behind."""
    small = tmp_path / "small"
    small.mkdir()
    script = (
        f"mount -t tmpfs -o size=8k tmpfs {small} && {sys.executable} -m sanitary export --db {unit} --out {small}/out;"
        f" echo rc=$?; ls -R {small}"
    )
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=300)
    if "rc=" not in done.stdout:
        pytest.skip(f"cannot mount a small file system here: {done.stderr.strip()}")
    assert "rc=0" not in done.stdout, done.stdout
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"error: {small}/out: the disk is full"), done.stderr
    assert ".parquet" not in done.stdout and "manifest-" not in done.stdout, done.stdout
    # Nothing was recorded as shipped: the next export carries every window.
    assert export_parquet(unit, tmp_path / "roomy", None).windows == 6


def test_the_import_command_refuses_a_hostile_export_in_one_line(unit: Path, tmp_path: Path) -> None:
    exported = export_parquet(unit, tmp_path / "out", None)
    rewrite(exported.manifest, lambda d: d.update(export_id="x/../../../victim/config"))
    done = run_cli("import", str(tmp_path / "out"), "--db", str(tmp_path / "central.duckdb"))
    assert done.returncode != 0 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert "export_id 'x/../../../victim/config' is not a name" in done.stderr
    assert not (tmp_path / "central.duckdb").exists() and not list(tmp_path.rglob("*.json.partial"))
