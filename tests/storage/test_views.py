"""The officials' views, with exact numbers: local days and hours across a daylight-saving change, periods with
no footage shown as missing (NULL) rather than zero, rates pooled by their denominators, small cells suppressed,
and in every view a rate only beside its own count."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest

from sanitary.analytics.mask_rate import mask_shares
from sanitary.analytics.observations import MaskCounts
from sanitary.analytics.privacy import apply_profile
from sanitary.analytics.windows import DistancingWindow, PersonWindow, WindowAggregate, WindowKey, ZoneWindow
from sanitary.config import PrivacyConfig
from sanitary.storage.store import RunStart, Store

# Summer time in Paris ended at 01:00 UTC on 2021-10-31: 02:30 local happened twice, at 00:30 and 01:30 UTC.
T = datetime(2021, 10, 31, 0, 30, tzinfo=UTC)


def window(
    con: duckdb.DuckDBPyConnection, start: datetime, people: int, masked: int, bare: int, **more: object
) -> None:
    row = {
        "site_id": "market", "camera_id": "c1", "source": "h", "window_start": start,
        "window_end": start + timedelta(minutes=20), "unit_id": "u", "run_id": "r", "frames_analysed": 10,
        "covered_s": 1200.0, "people_sum": 10 * people, "people_max": people, "faces_sum": masked + bare,
        "people_distinct": people, "persons_with_mask": masked, "persons_without_mask": bare,
        "persons_mask_incorrect": 0, "persons_mask_unknown": 0, "opt_outs": 0,
        "person_mask_rate": masked / (masked + bare), "person_mask_rate_low": masked / (masked + bare) - 0.098,
        "person_mask_rate_high": masked / (masked + bare) + 0.098, **more,
    }  # fmt: skip
    con.execute(
        f"INSERT INTO window_aggregates ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values())
    )


@pytest.fixture
def db(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    store = Store(tmp_path / "a.duckdb")
    store.record_site("market", "market", "Europe/Paris", PrivacyConfig(k_min=5))
    con = store.con
    window(con, T, 6, 3, 1)  # 02:30 CEST
    window(con, T + timedelta(hours=1), 8, 1, 1)  # 02:30 CET, an hour later
    window(
        con,
        T + timedelta(days=2),
        3,
        1,
        0,
        mask_suppressed=True,
        person_mask_rate=None,
        persons_with_mask=None,
        persons_without_mask=None,
        person_mask_rate_low=None,
        person_mask_rate_high=None,
    )
    return con


def test_mask_rate_daily_pools_rates_by_their_denominators(db: duckdb.DuckDBPyConnection) -> None:
    rows = db.execute(
        "SELECT day, windows, people_or_faces, round(mask_rate, 6), round(mask_rate_high - mask_rate, 6), suppressed,"
        " windows_suppressed FROM mask_rate_daily"
    ).fetchall()
    # (4 x 0.75 + 2 x 0.5) / 6; each window's sd is 0.196 / 3.92 = 0.05: 1.96 x sqrt((4 x 0.05)^2 + (2 x 0.05)^2) / 6.
    assert rows[0] == (date(2021, 10, 31), 2, 6, round(4 / 6, 6), round(1.96 * (0.2**2 + 0.1**2) ** 0.5 / 6, 6),
                       False, 0)  # fmt: skip
    assert rows[1] == (date(2021, 11, 1), 0, None, None, None, False, 0)  # no footage: missing, not zero
    assert rows[2] == (date(2021, 11, 2), 1, None, None, None, True, 1)  # 3 people < k: suppressed


def test_occupancy_hourly_keeps_the_repeated_local_hour_apart(db: duckdb.DuckDBPyConnection) -> None:
    rows = db.execute(
        "SELECT hour_start, local_hour, covered_s, occupancy_mean FROM occupancy_hourly LIMIT 3"
    ).fetchall()
    assert rows == [
        (T.replace(minute=0), datetime(2021, 10, 31, 2, 0), 1200.0, 6.0),
        (T.replace(minute=0) + timedelta(hours=1), datetime(2021, 10, 31, 2, 0), 1200.0, 8.0),
        (T.replace(minute=0) + timedelta(hours=2), datetime(2021, 10, 31, 3, 0), 0.0, None),  # missing, not zero
    ]
    assert db.execute("SELECT count(*) FROM occupancy_hourly").fetchone() == (2 * 24 + 1,)


def test_distancing_and_alerts_by_local_day(db: duckdb.DuckDBPyConnection) -> None:
    db.execute("UPDATE window_aggregates SET close_pair_frames = 2, close_pairs_sum = 3, close_contacts = 1,"
               " nearest_min_m = 0.6 WHERE people_max = 6")  # fmt: skip
    assert db.execute("SELECT * FROM distancing_daily").fetchall() == [
        ("market", date(2021, 10, 31), 10, 2, 0.2, 3, 1, 0.6)
    ]
    db.execute(
        "INSERT INTO alerts VALUES ('market', 'c1', 'h', ?, 'crowded', 'raised', 'occupancy', NULL, 'above', 5, 6,"
        " 'delivered', 'r'), ('market', 'c1', 'h', ?, 'crowded', 'cleared', 'occupancy', NULL, 'above', 5, 3,"
        " 'webhook down', 'r')",
        [datetime(2021, 10, 30, 22, 30, tzinfo=UTC), datetime(2021, 10, 30, 21, 30, tzinfo=UTC)],
    )
    # CEST (+2) until 01:00 UTC on the 31st: 22:30 UTC is 00:30 on the 31st, 21:30 UTC is 23:30 on the 30th.
    assert db.execute("SELECT day, rule, raised, cleared, undelivered FROM alerts_daily").fetchall() == [
        (date(2021, 10, 30), "crowded", 0, 1, 1),
        (date(2021, 10, 31), "crowded", 1, 0, 0),
    ]


# --- a rate only with its own count -------------------------------------------------------------------------------

NOON = datetime(2009, 3, 1, 12, 0, tzinfo=UTC)
CONFUSION = np.diag([50, 50, 50])


def counted_window(source: str, minute: int, faces: MaskCounts, votes: MaskCounts | None) -> WindowAggregate:
    """A one-minute window with its face-frames, and its tracked people's mask votes where `votes` is given."""
    start = NOON + timedelta(minutes=minute)
    people = max(votes.total if votes else faces.total, 1)
    persons = (
        PersonWindow(votes.total, votes, mask_shares(votes.classified, CONFUSION), (votes.total, 0), 0)
        if votes else None
    )  # fmt: skip
    return WindowAggregate(
        key=WindowKey("s", "c", source, start), window_end=start + timedelta(minutes=1), frames_analysed=6,
        covered_s=60.0, people_sum=6 * people, people_max=people, masks=faces,
        mask_shares=mask_shares(faces.classified, CONFUSION), distancing=DistancingWindow(1, 1, 2, 0.8, 1.6),
        zones=(ZoneWindow("door", 4.0, 3, 1),), persons=persons, opt_outs=0,
    )  # fmt: skip


def two_bases(path: Path) -> Path:
    """A store written as runs write it, where a window's two mask bases disagree on whether anyone was classified:
    a tracked source whose people's votes are all unknown beside one face-frame read bare (the PETS 12:01 window),
    then the reverse; an untracked source with face-frames classified, then none."""
    privacy = PrivacyConfig(k_min=1)
    tracked = [
        counted_window("tracked", 0, MaskCounts(without_mask=1, unknown=2), MaskCounts(unknown=2)),
        counted_window("tracked", 1, MaskCounts(unknown=3), MaskCounts(with_mask=1)),
    ]
    untracked = [
        counted_window("faces", 2, MaskCounts(with_mask=2, without_mask=1), None),
        counted_window("faces", 3, MaskCounts(unknown=2), None),
    ]
    with Store(path) as store:
        store.record_site("s", "market", "UTC", privacy)
        for source, windows in (("tracked", tracked), ("faces", untracked)):
            run = store.begin_run(RunStart(source, f"/{source}.mp4", "c", "s", "u", "p", {}))
            store.finish_run(run, apply_profile(windows, privacy), status="done", error=None, frames_analysed=12,
                             footage=None, dwell_bins_s=(30.0,), privacy=privacy)  # fmt: skip
    return path


# Every view, with each rate (or mean) it gives: (rate, low, high, its count); a view added without an entry fails.
RATES: dict[str, list[tuple[str, str | None, str | None, str]]] = {
    "camera_windows": [("mask_rate", "mask_rate_low", "mask_rate_high", "mask_rate_n"),
                       ("occupancy_mean", None, None, "frames_analysed")],
    "mask_rate_windows": [("rate", "rate_low", "rate_high", "n")],
    "mask_rate_daily": [("mask_rate", "mask_rate_low", "mask_rate_high", "people_or_faces")],
    "occupancy_hourly": [("occupancy_mean", None, None, "frames_analysed")],
    "zone_occupancy": [("occupancy_mean", None, None, "frames_analysed"),
                       ("density_per_m2", None, None, "frames_analysed")],
    "distancing_windows": [("people_close_mean", None, None, "frames_analysed")],
    "distancing_daily": [("share_frames_close", None, None, "frames_measured")],
    "alerts_daily": [],
}  # fmt: skip


def test_every_view_gives_a_rate_only_with_its_own_count(tmp_path: Path) -> None:
    con = duckdb.connect(str(two_bases(tmp_path / "a.duckdb")), read_only=True)
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    assert views == set(RATES)
    for view, rates in RATES.items():
        for rate, low, high, n in rates:
            rows = con.execute(f"SELECT {rate}, {n}, {low or 'NULL'}, {high or 'NULL'} FROM {view}").fetchall()
            for r, count, lo, hi in rows:
                assert r is None or (count is not None and count >= 1), (view, rate, r, count)
                assert lo is None or (r is not None and lo <= r <= hi), (view, rate, r, lo, hi)
    # Each window's rate, interval and n are those of its basis's own counts, and none where that basis has none.
    windows = con.execute("""
        SELECT v.source, basis, n, rate, rate_low, rate_high,
               CASE basis WHEN 'people' THEN person_mask_rate ELSE mask_rate END,
               CASE basis WHEN 'people' THEN person_mask_rate_low ELSE mask_rate_low END,
               CASE basis WHEN 'people' THEN person_mask_rate_high ELSE mask_rate_high END
        FROM mask_rate_windows v JOIN window_aggregates USING (site_id, camera_id, source, window_start)
        ORDER BY v.window_start""").fetchall()
    assert [(*w[:3], w[3] is not None) for w in windows] == [
        ("tracked", "people", 0, False),  # one face-frame read bare, but no person's vote: no rate
        ("tracked", "people", 1, True),  # no face-frame classified, one person's vote
        ("faces", "faces", 3, True),
        ("faces", "faces", 0, False),
    ]
    assert all(w[3:6] == w[6:9] for w in windows if w[3] is not None)
    # The face-frame basis of the first window keeps its own rate beside its own count, where it is read.
    assert con.execute("SELECT mask_rate_n, mask_rate IS NOT NULL FROM camera_windows ORDER BY window_start").fetchall(
    ) == [(1, True), (0, False), (3, True), (0, False)]  # fmt: skip
    # The day pools the two windows with a rate: 1 person and 3 face-frames.
    day = con.execute("SELECT basis, people_or_faces, mask_rate IS NOT NULL FROM mask_rate_daily").fetchall()
    ((basis, n, rated),) = day
    assert (sorted(basis.split("+")), n, rated) == (["faces", "people"], 4, True)
