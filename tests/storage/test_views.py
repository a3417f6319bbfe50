"""The officials' views, with exact numbers: local days and hours across a daylight-saving change, periods with
no footage shown as missing (NULL) rather than zero, rates pooled by their denominators, small cells suppressed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from sanitary.config import PrivacyConfig
from sanitary.storage.store import Store

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
