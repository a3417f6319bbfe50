"""Merging site databases: every source counted once, the newest analysis kept, whatever the order or repetition."""

import dataclasses
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest

from sanitary.alerts.rules import Alert
from sanitary.alerts.sinks import SentAlert
from sanitary.analytics.observations import MaskCounts, Observation
from sanitary.analytics.privacy import apply_profile
from sanitary.analytics.windows import LineWindow, PersonWindow, WindowAggregate, aggregate
from sanitary.config import FR_TRANSPORT, PrivacyConfig
from sanitary.errors import SanitaryError
from sanitary.geometry.distancing import FrameDistancing
from sanitary.governance.evidence import db_evidence
from sanitary.storage.connection import DatabaseLocked
from sanitary.storage.merge import merge_into
from sanitary.storage.schema import COLUMNS, PER_SOURCE_TABLES, SCHEMA_VERSION
from sanitary.storage.signage import Sign
from sanitary.storage.store import RunStart, Store
from tests.conftest import NO_HEADS, NO_SIGN, hold_lock, old_schema_db, pets_camera, run_cli

T0 = datetime(2021, 3, 1, 8, 0, tzinfo=UTC)
TABLES = (*PER_SOURCE_TABLES, "runs", "signage", "sites", "retention_log", "meta")
SIGN = Sign("sign-1", "s1", "c", "Counting in progress", "fr", "market entrance", T0 - timedelta(days=1))


def windows(site: str, camera: str, source: str, people: int, start: datetime = T0) -> list[WindowAggregate]:
    """150 one-second frames: windows of 60, 60 and 30 frames, people_sum = 150 * people, with every kind of row,
    as a session stores them (k 5: under 5 people, suppressed)."""
    ground = FrameDistancing(close_pairs=0, people_close=0, nearest_m=(), zone_people=(people,), measured=False)
    obs = [
        Observation(frame=i, t=float(i), people=people, masks=MaskCounts(with_mask=1), ground=ground)
        for i in range(150)
    ]
    found = aggregate(obs, site_id=site, camera_id=camera, source=source, start=start, duration_s=150.0, window_s=60,
                      confusion=np.diag([50, 50, 50]), zones=(("stall", None),))  # fmt: skip
    persons = PersonWindow(people, MaskCounts(with_mask=people), None, (people, 1), None)
    found = [dataclasses.replace(w, persons=persons, lines=(LineWindow("door", people, 1),)) for w in found]
    return apply_profile(found, PrivacyConfig())


def analyse(db: Path, site: str, source: str, people: int, camera: str = "c", start: datetime = T0) -> str:
    with Store(db) as store:
        run = store.begin_run(RunStart(source, f"/footage/{source}.mp4", camera, site, f"unit-{site}", "p", {}))
        alert = Alert("crowd", "occupancy", None, float(people), 1.0, "above", "raised", start, site, camera)
        store.finish_run(run, windows(site, camera, source, people, start), status="done", error=None,
                         frames_analysed=150, footage=None, dwell_bins_s=(10.0,),
                         alerts=[SentAlert(alert, "delivered")])  # fmt: skip
    return run


def record_site(db: Path, site: str, timezone: str) -> None:
    with Store(db) as store:
        store.record_site(site, "market", timezone, PrivacyConfig())


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A: site s1 (and a source retention deleted); B, analysed later: site s2, and s1's "shared" source again."""
    folder = tmp_path_factory.mktemp("inputs")
    a, b = folder / "a.duckdb", folder / "b.duckdb"
    analyse(a, "s1", "a1", 2)
    analyse(a, "s1", "shared", 3)
    analyse(a, "s1", "old", 9, camera="c2", start=T0 - timedelta(days=30))
    record_site(a, "s1", "Europe/Paris")
    with Store(a) as store:
        store.signage.add(SIGN)
        assert store.apply_retention("s1", "c2", 7, now=T0) == 3
    analyse(b, "s2", "b1", 1)
    analyse(b, "s1", "shared", 5)
    record_site(b, "s2", "Africa/Dakar")
    record_site(b, "s1", "Africa/Abidjan")
    return a, b


def snapshot(db: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {table: con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall() for table in TABLES}


def snapshot_query(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def scalar(db: Path, sql: str) -> object:
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(sql).fetchone()
    assert row is not None
    return row[0]


def test_merge_adds_each_source_once_and_the_newer_analysis_wins(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = inputs
    central = tmp_path / "central.duckdb"
    summary = merge_into([a, b], central)
    first, second = summary.inputs
    assert (first.sources_added, first.sources_replaced, first.sources_unchanged) == (2, 0, 0)
    assert (first.windows, first.alerts, first.runs, first.signs) == (6, 2, 3, 1)
    assert (second.sources_added, second.sources_replaced, second.sources_unchanged) == (1, 1, 0)
    assert (second.windows, second.alerts, second.runs, second.signs) == (6, 2, 2, 0)
    people = dict(snapshot_query(central, "SELECT source, sum(people_sum) FROM window_aggregates GROUP BY source"))
    assert people == {"a1": 300, "shared": 750, "b1": 150}
    assert scalar(central, "SELECT sum(people_sum) FROM window_aggregates") == 1200
    counts = {t: scalar(central, f"SELECT count(*) FROM {t}") for t in (*PER_SOURCE_TABLES, "runs", "retention_log")}
    assert counts == {"window_aggregates": 9, "zone_windows": 9, "dwell_windows": 18, "line_windows": 9, "alerts": 3,
                      "health": 0, "runs": 5, "retention_log": 1}  # fmt: skip
    # Every source's rows came from one run: the shared source's zones, dwell, lines and alert are B's too.
    assert scalar(central, "SELECT sum(people_sum) FROM zone_windows WHERE source = 'shared'") == 750
    assert scalar(central, "SELECT sum(people_in) FROM line_windows WHERE source = 'shared'") == 15
    assert scalar(central, "SELECT value FROM alerts WHERE source = 'shared'") == 5.0
    assert scalar(central, "SELECT max(sources) FROM camera_windows WHERE site_id = 's1'") == 2
    statuses = snapshot_query(central, "SELECT site_id, camera_id, source, status FROM runs ORDER BY ALL")
    assert statuses == [("s1", "c", "a1", "done"), ("s1", "c", "shared", "done"), ("s1", "c", "shared", "replaced"),
                        ("s1", "c2", "old", "done"), ("s2", "c", "b1", "done")]  # fmt: skip


def test_merging_again_changes_nothing(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    central = tmp_path / "central.duckdb"
    merge_into(list(inputs), central)
    before = snapshot(central)
    summary = merge_into([*inputs, *inputs], central)
    assert snapshot(central) == before
    for merged in summary.inputs:
        assert (merged.sources_added, merged.sources_replaced, merged.windows, merged.runs, merged.signs) == (0,) * 5


@pytest.mark.slow
def test_merge_order_does_not_matter(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = inputs
    orders = ([a, b], [b, a], [a, a, b, a], [b, b, a])
    results = []
    for i, order in enumerate(orders):
        merge_into(order, tmp_path / f"{i}.duckdb")
        results.append(snapshot(tmp_path / f"{i}.duckdb"))
    assert all(result == results[0] for result in results[1:])
    # Merged one by one into a target that already held the other: the same again.
    merge_into([b], tmp_path / "step.duckdb")
    merge_into([a], tmp_path / "step.duckdb")
    assert snapshot(tmp_path / "step.duckdb") == results[0]


@pytest.mark.slow
def test_a_later_reanalysis_wins_whatever_the_order(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = inputs
    late = tmp_path / "a-late.duckdb"
    shutil.copyfile(a, late)
    rerun = analyse(late, "s1", "shared", 7)  # after B's analysis of it
    for i, order in enumerate(([late, b, a], [a, b, late], [b, late, a])):
        central = tmp_path / f"{i}.duckdb"
        merge_into(order, central)
        shared = "FROM window_aggregates WHERE source = 'shared'"
        assert scalar(central, f"SELECT sum(people_sum) {shared}") == 1050
        assert scalar(central, f"SELECT list(DISTINCT run_id) {shared}") == [rerun]
        current = snapshot_query(central, "SELECT run_id FROM runs WHERE source = 'shared' AND status = 'done'")
        assert current == [(rerun,)]
        assert scalar(central, "SELECT count(*) FROM runs WHERE source = 'shared'") == 3


def test_signs_and_sites_merge(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = inputs
    taken_down = tmp_path / "a-sign-removed.duckdb"
    shutil.copyfile(a, taken_down)
    with Store(taken_down) as store:
        store.signage.remove("sign-1", T0 + timedelta(days=2))
    for i, order in enumerate(([a, b, taken_down], [taken_down, a, b])):
        central = tmp_path / f"{i}.duckdb"
        merge_into(order, central)
        with Store(central) as store:
            assert store.signage.signs() == [dataclasses.replace(SIGN, removed_at=T0 + timedelta(days=2))]
        sites = snapshot_query(central, "SELECT site_id, timezone FROM sites ORDER BY site_id")
        assert sites == [("s1", "Africa/Abidjan"), ("s2", "Africa/Dakar")]  # B recorded s1 after A did


def test_an_older_input_is_merged_through_a_migrated_copy_and_left_untouched(tmp_path: Path) -> None:
    old = tmp_path / "v5.duckdb"
    with old_schema_db(old, 5) as con:
        con.execute(
            "INSERT INTO window_aggregates (site_id, camera_id, source, window_start, window_end, unit_id, run_id,"
            " frames_analysed, covered_s, people_sum, people_max, faces_sum) VALUES ('s9', 'c', 'h0',"
            " '2021-03-01 08:00:00+00', '2021-03-01 08:01:00+00', 'u', 'r', 10, 60.0, 30, 5, 2)"
        )
    before = old.read_bytes()
    central = tmp_path / "central.duckdb"
    summary = merge_into([old], central)
    assert old.read_bytes() == before
    assert (summary.inputs[0].schema_version, summary.inputs[0].sources_added, summary.inputs[0].windows) == (5, 1, 1)
    row = snapshot_query(central, "SELECT people_sum, faces_with_mask, opt_outs FROM window_aggregates")
    assert row == [(30, None, None)]  # never measured: NULL, as a migration leaves it
    assert scalar(central, "SELECT value FROM meta WHERE key = 'schema_version'") == str(SCHEMA_VERSION)
    merge_into([old], central)
    assert scalar(central, "SELECT count(*) FROM window_aggregates") == 1


def test_bad_inputs_are_refused_in_one_line_before_the_target_is_touched(tmp_path: Path) -> None:
    good = tmp_path / "good.duckdb"
    analyse(good, "s1", "a1", 2)
    text = tmp_path / "notes.duckdb"
    text.write_text("hello\n" * 100)
    foreign = tmp_path / "foreign.duckdb"
    with duckdb.connect(str(foreign)) as con:
        con.execute("CREATE TABLE t (x INT)")
    newer = tmp_path / "newer.duckdb"
    shutil.copyfile(good, newer)
    with duckdb.connect(str(newer)) as con:
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    central = tmp_path / "central.duckdb"
    cases = {
        text: "cannot open as a DuckDB database",
        tmp_path / "missing.duckdb": "no such file",
        tmp_path: "is a folder",
        foreign: "not a sanitary database",
        newer: rf"schema v{SCHEMA_VERSION + 1} is newer than this sanitary",
    }
    for bad, message in cases.items():
        with pytest.raises(SanitaryError, match=message) as caught:
            merge_into([good, bad], central)
        assert str(caught.value).startswith(f"{bad}: ") and "\n" not in str(caught.value)
        assert not central.exists()
    with pytest.raises(SanitaryError, match="is also the --into database"):
        merge_into([good], tmp_path / "." / "good.duckdb")
    with pytest.raises(SanitaryError, match="nothing to merge"):
        merge_into([], central)


def test_a_column_added_to_the_schema_flows_through_merge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Merge copies the columns the schema lists for a table, no list of its own: a new column travels once listed."""
    site, unlisted, listed = tmp_path / "site.duckdb", tmp_path / "unlisted.duckdb", tmp_path / "listed.duckdb"
    analyse(site, "s1", "a1", 2)
    for db in (unlisted, listed):
        Store(db).close()
    for db in (site, unlisted, listed):  # as a later migration would add it everywhere
        with duckdb.connect(str(db)) as con:
            con.execute("ALTER TABLE window_aggregates ADD COLUMN weather VARCHAR")
    with duckdb.connect(str(site)) as con:
        con.execute("UPDATE window_aggregates SET weather = 'rain ' || minute(window_start)")
    weather = "SELECT minute(window_start), weather FROM window_aggregates ORDER BY 1"
    merge_into([site], unlisted)
    monkeypatch.setitem(COLUMNS, "window_aggregates", (*COLUMNS["window_aggregates"], "weather"))
    merge_into([site], listed)
    assert snapshot_query(unlisted, weather) == [(0, None), (1, None), (2, None)]
    assert snapshot_query(listed, weather) == [(0, "rain 0"), (1, "rain 1"), (2, "rain 2")]


def test_a_locked_input_is_refused_by_type(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    a, _ = inputs
    locked = tmp_path / "locked.duckdb"
    shutil.copyfile(a, locked)
    holder = hold_lock(locked, 30.0)
    try:
        with pytest.raises(DatabaseLocked) as caught:
            merge_into([locked], tmp_path / "central.duckdb")
    finally:
        holder.kill()
        holder.wait()
    assert str(caught.value) == (
        f"{locked}: in use by another process (a batch run holds it until it ends); wait for it to finish, or work "
        f"on a copy: cp {locked} copy.duckdb"
    )
    assert not (tmp_path / "central.duckdb").exists()


@pytest.mark.slow
def test_two_pets_runs_merge_end_to_end(pets: Path, tmp_path: Path) -> None:
    """Two stretches into two databases; the first stretch analysed again, later and differently, into the second."""
    db_a, db_b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    stretches = {"frame_000*.jpg": "2009-03-01T12:00:00", "frame_001*.jpg": "2009-03-01T12:00:02"}
    jobs = [(db_a, "frame_000*.jpg", "5"), (db_b, "frame_001*.jpg", "5"), (db_b, "frame_000*.jpg", "2")]
    camera = pets_camera(tmp_path, NO_HEADS)
    for db, frames, fps in jobs:
        done = run_cli("run", *NO_SIGN, str(pets / "frames" / frames), "--camera", str(camera), "--db", str(db),
                       "--start", stretches[frames], "--sample-fps", fps)  # fmt: skip
        assert done.returncode == 0, done.stderr
    central_ab, central_ba = tmp_path / "ab.duckdb", tmp_path / "ba.duckdb"
    summary = merge_into([db_a, db_b], central_ab)
    assert [(m.sources_added, m.sources_replaced, m.sources_unchanged) for m in summary.inputs] == [
        (1, 0, 0),
        (1, 1, 0),
    ]
    merge_into([db_b, db_a], central_ba)
    assert snapshot(central_ab) == snapshot(central_ba)
    # B holds the latest analysis of both stretches, so the merge holds exactly B's windows.
    totals = "SELECT count(*), sum(frames_analysed), sum(people_sum) FROM window_aggregates"
    assert snapshot_query(central_ab, totals) == snapshot_query(db_b, totals)
    first = scalar(db_a, "SELECT any_value(source) FROM window_aggregates")
    frames = f"SELECT sum(frames_analysed) FROM window_aggregates WHERE source = '{first}'"
    assert scalar(central_ab, frames) == scalar(db_b, frames) != scalar(db_a, frames)


def test_a_run_merged_while_running_is_updated_when_merged_finished(tmp_path: Path) -> None:
    site = tmp_path / "site.duckdb"
    with Store(site) as store:
        run = store.begin_run(RunStart("h1", "/footage/h1.mp4", "c", "s1", "unit-1", "p", {}))
    midway = tmp_path / "midway.duckdb"
    shutil.copyfile(site, midway)
    with Store(site) as store:
        store.finish_run(run, windows("s1", "c", "h1", 2), status="done", error=None, frames_analysed=150,
                         footage=None, dwell_bins_s=(10.0,))  # fmt: skip
    central = tmp_path / "central.duckdb"
    for order in ([midway, site], [site, midway]):
        merge_into(order, central)
        assert snapshot_query(central, "SELECT run_id, status FROM runs") == [(run, "done")]
        assert scalar(central, "SELECT sum(people_sum) FROM window_aggregates") == 300


def test_the_command_merges_and_a_second_merge_adds_nothing(tmp_path: Path) -> None:
    site = tmp_path / "site.duckdb"
    with Store(site) as store:
        run = store.begin_run(RunStart("h1", "/footage/h1.mp4", "c", "s1", "unit-1", "p", {}))
        store.finish_run(run, windows("s1", "c", "h1", 2), status="done", error=None, frames_analysed=150,
                         footage=None, dwell_bins_s=(10.0,))  # fmt: skip
    central = tmp_path / "central.duckdb"
    first = run_cli("merge", str(site), "--into", str(central))
    again = run_cli("merge", str(site), "--into", str(central))
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    assert "1 sources added, 0 replaced by a newer analysis, 0 unchanged" in first.stdout
    assert "0 sources added, 0 replaced by a newer analysis, 1 unchanged" in again.stdout
    assert scalar(central, "SELECT sum(people_sum) FROM window_aggregates") == 300


def test_a_live_run_merged_twice_gains_the_windows_added_in_between(tmp_path: Path) -> None:
    site = tmp_path / "unit.duckdb"
    with Store(site) as store:
        run = store.begin_run(RunStart("live:u:1", "rtsp://cam", "c", "s1", "unit-1", "p", {}))
        store.finish_run(run, windows("s1", "c", "live:u:1", 2), status="done", error=None, frames_analysed=150,
                         footage=None, dwell_bins_s=(10.0,))  # fmt: skip
        store.con.execute("UPDATE runs SET status = 'running', finished_at = NULL")
    early = tmp_path / "early.duckdb"
    shutil.copyfile(site, early)
    with Store(site) as store:  # the run goes on: one more window, same run
        store.con.execute(
            "INSERT INTO window_aggregates SELECT * REPLACE (window_start + INTERVAL 3 MINUTE AS window_start,"
            " window_end + INTERVAL 3 MINUTE AS window_end) FROM window_aggregates WHERE minute(window_start) = 0"
        )
    central = tmp_path / "central.duckdb"
    for order in ([early, site], [site, early]):
        merge_into(order, central)
        assert scalar(central, "SELECT count(*) FROM window_aggregates") == 4
        assert snapshot_query(central, "SELECT * FROM window_aggregates") == snapshot_query(
            site, "SELECT * FROM window_aggregates"
        )


# A site's file edited to hold one person's mask: not suppressed, k 1 for the window and the site.
UNSUPPRESS = (
    "UPDATE window_aggregates SET people_distinct = 1, mask_suppressed = false, k_min = 1, persons_with_mask = 1,"
    " persons_without_mask = 0, persons_mask_incorrect = 0, persons_mask_unknown = 0, person_mask_rate = 1.0,"
    " person_mask_rate_low = 0.2, person_mask_rate_high = 1.0, faces_with_mask = 60, faces_without_mask = 0,"
    " faces_mask_incorrect = 0, faces_mask_unknown = 0, mask_rate = 1.0, mask_rate_low = 0.9, mask_rate_high = 1.0,"
    " opt_outs = 0, close_contacts = 0",
    "UPDATE line_windows SET people_in = 1, people_out = 0",
    "UPDATE dwell_windows SET people = 1",
    "UPDATE zone_windows SET people_sum = 60, people_max = 1",
    "UPDATE sites SET k_min = 1, privacy_profile = 'market', updated_at = now()",
)


def tampered(tmp_path: Path, name: str, *statements: str) -> Path:
    """Site s1's file (one person, 3 windows, suppressed as stored), edited by `statements`."""
    path = tmp_path / name
    analyse(path, "s1", "a1", 1)
    record_site(path, "s1", "Europe/Paris")
    with duckdb.connect(str(path)) as con:
        for statement in statements:
            con.execute(statement)
    return path


SHOWN = (
    "SELECT count(*) FILTER (WHERE NOT mask_suppressed), count(rate), max(k_min) FROM mask_rate_windows",
    "SELECT count(people_in) FROM line_windows",
    "SELECT count(people) FROM dwell_windows",
    "SELECT count(people_sum) FROM zone_windows",
    "SELECT count(opt_outs) + count(close_contacts) + count(faces_with_mask) FROM window_aggregates",
)


@pytest.mark.parametrize("central_k", [None, 5, 8])
def test_a_merged_file_cannot_lower_k_or_unsuppress_a_window(tmp_path: Path, central_k: int | None) -> None:
    """Whatever k the file says, the central store applies its own (its site's, or the default's for a site it does
    not know) and suppresses what falls under it as the source does: no one person's mask comes out."""
    edited = tampered(tmp_path, "edited.duckdb", *UNSUPPRESS)
    assert snapshot_query(edited, SHOWN[0]) == [(3, 3, 1)]  # what merging it used to show
    central = tmp_path / "central.duckdb"
    if central_k is not None:
        with Store(central) as store:
            store.record_site("s1", "bus", "Europe/Paris", PrivacyConfig(profile=FR_TRANSPORT, k_min=central_k))
    merge_into([edited], central)
    k = central_k or PrivacyConfig().k_min
    assert [snapshot_query(central, sql)[0] for sql in SHOWN] == [(0, 0, k), (0,), (0,), (0,), (0,)]
    profile = "market" if central_k is None else FR_TRANSPORT
    assert snapshot_query(central, "SELECT k_min, privacy_profile FROM sites") == [(k, profile)]
    # What `audit --db` says the windows were made under: all three under k.
    made_under = next(e for e in db_evidence(central) if e.heading == "what the aggregates were made under")
    assert made_under.lines == (f"{profile}, k_min {k}: 3 windows, 3 under k people (only their people counts kept),"
                                " 0 head-shake opt-outs",)  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        ("UPDATE window_aggregates SET people_sum = -5", "window_aggregates.people_sum holds -5"),
        ("UPDATE window_aggregates SET covered_s = 'nan'", "window_aggregates.covered_s holds nan"),
        ("UPDATE window_aggregates SET nearest_min_m = 'inf'", "window_aggregates.nearest_min_m holds inf"),
        ("UPDATE window_aggregates SET people_max = 9223372036854775807", "people_max holds 9223372036854775807"),
        ("UPDATE window_aggregates SET window_start = window_start + INTERVAL 6988 YEAR,"
         " window_end = window_end + INTERVAL 6988 YEAR", "window_start holds datetime.datetime(9009"),
        ("UPDATE window_aggregates SET window_end = window_start", "window_end holds"),
        ("UPDATE window_aggregates SET mask_rate = 1.5", "mask_rate holds 1.5"),
        ("UPDATE sites SET timezone = 'Mars/Olympus'", "sites.timezone holds 'Mars/Olympus'"),
        ("UPDATE sites SET privacy_profile = 'none'", "sites.privacy_profile holds 'none'"),
        ("UPDATE window_aggregates SET privacy_profile = 'none'", "window_aggregates.privacy_profile holds 'none'"),
        ("UPDATE sites SET k_min = 0", "sites.k_min holds 0"),
        ("UPDATE alerts SET value = 'nan'", "alerts.value holds nan"),
        ("UPDATE runs SET started_at = '0001-01-01'", "runs.started_at holds"),
    ],
)  # fmt: skip
def test_impossible_values_are_refused_in_one_line_and_nothing_is_merged(tmp_path: Path, edit: str, named: str) -> None:
    good, bad = tampered(tmp_path, "good.duckdb"), tampered(tmp_path, "bad.duckdb", edit)
    central = tmp_path / "central.duckdb"
    with pytest.raises(SanitaryError, match=re.escape(named)) as caught:
        merge_into([good, bad], central)
    assert str(caught.value).startswith(f"{bad}: ") and "\n" not in str(caught.value)
    assert "nothing merged" in str(caught.value) and not central.exists()


def test_a_transport_site_stores_only_what_the_decree_allows_whatever_arrives(tmp_path: Path) -> None:
    """The central store records the site under the transport profile; a file of the same site says "market" and
    holds zones, dwell times and distancing: what arrives is stored as the decree allows, and the profile stays."""
    central, unit = tmp_path / "central.duckdb", tmp_path / "unit.duckdb"
    with Store(central) as store:
        store.record_site("s1", "bus", "Europe/Paris", PrivacyConfig(profile=FR_TRANSPORT))
    analyse(unit, "s1", "a1", 6)
    record_site(unit, "s1", "Europe/Paris")
    with duckdb.connect(str(unit)) as con:
        con.execute("UPDATE window_aggregates SET close_pairs_sum = 3, nearest_min_m = 0.4, close_contacts = 2")
    merge_into([unit], central)
    assert snapshot_query(central, "SELECT count(*) FROM zone_windows") == [(0,)]
    assert snapshot_query(central, "SELECT count(*) FROM dwell_windows") == [(0,)]
    assert snapshot_query(
        central,
        "SELECT DISTINCT privacy_profile, close_pairs_sum, nearest_min_m, close_contacts, persons_with_mask"
        " FROM window_aggregates",
    ) == [(FR_TRANSPORT, None, None, None, 6)]
    assert snapshot_query(central, "SELECT privacy_profile, site_kind FROM sites") == [(FR_TRANSPORT, "market")]


def test_a_higher_k_that_arrives_later_applies_to_the_windows_held_already(tmp_path: Path) -> None:
    """Site s1's first file says k 5 and holds 6 people a window; its second says k 8: in either order the central
    store ends the same, the 6-people windows suppressed under k 8."""
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    analyse(a, "s1", "a1", 6)
    record_site(a, "s1", "Europe/Paris")
    analyse(b, "s1", "b1", 9)
    with Store(b) as store:
        store.record_site("s1", "market", "Europe/Paris", PrivacyConfig(k_min=8))
    merged = []
    for i, order in enumerate(([a, b], [b, a])):
        central = tmp_path / f"central-{i}.duckdb"
        merge_into(order, central)
        merged.append({t: rows for t, rows in snapshot(central).items() if t not in ("runs", "sites", "meta")})
        assert snapshot_query(
            central, "SELECT source, k_min, bool_and(mask_suppressed) FROM window_aggregates GROUP BY ALL ORDER BY 1"
        ) == [("a1", 8, True), ("b1", 8, False)]
    assert merged[0] == merged[1]
