"""The registers beside the counts: signs with when they stood, each site's settings, the alerts stored."""

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sanitary.config import PrivacyConfig
from sanitary.errors import SanitaryError
from sanitary.storage.query import read_only
from sanitary.storage.registers import SignRegister, StoredAlert
from sanitary.storage.schema import ALERT_COLUMNS
from sanitary.storage.signage import Sign
from sanitary.storage.store import Store
from tests.storage.test_merge import analyse

T0 = datetime(2021, 3, 1, 8, 0, tzinfo=UTC)
DOOR = Sign("door", "s1", "c2", "Counting in progress", "fr", "front door", T0, T0 + timedelta(days=2))
HALL = Sign("hall", "s1", "c1", "Comptage en cours", "fr", "hall", T0 + timedelta(days=1))
OTHER = Sign("other", "s2", "c1", "Counting", "en", "gate", T0)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "a.duckdb"
    with Store(path) as store:
        for sign in (DOOR, HALL, OTHER):
            store.signage.add(sign)
    return path


def test_signs_by_site_and_camera(db: Path) -> None:
    with Store(db) as store:
        assert store.signage.signs() == [HALL, DOOR, OTHER]
        assert store.signage.signs("s1") == [HALL, DOOR]
        assert store.signage.signs("s1", "c2") == [DOOR]
        assert store.signs("s1", "c2") == [DOOR]  # what a camera session checks, as before


@pytest.mark.parametrize(
    "start, end, ids",
    [
        (T0 - timedelta(days=1), T0, []),  # before any sign: [start, end) ends as the door's goes up
        (T0, T0 + timedelta(days=1), ["door"]),  # the hall's goes up as the period ends
        (T0 + timedelta(days=1), T0 + timedelta(days=2), ["hall", "door"]),
        (T0 + timedelta(days=2), T0 + timedelta(days=9), ["hall"]),  # the door's came down as it began
    ],
)
def test_signs_standing_in_a_period(db: Path, start: datetime, end: datetime, ids: list[str]) -> None:
    with read_only(db) as con:  # the report's connection
        assert [s.sign_id for s in SignRegister(con, db).standing("s1", start, end)] == ids


def test_removing_a_sign_keeps_its_record(db: Path) -> None:
    with Store(db) as store:
        removed = store.signage.remove("hall", T0 + timedelta(days=3))
        assert removed == dataclasses.replace(HALL, removed_at=T0 + timedelta(days=3))
        assert store.signage.signs("s1", "c1") == [removed]
        with pytest.raises(SanitaryError) as unknown:
            store.signage.remove("nosuch", T0)
        with pytest.raises(SanitaryError) as early:
            store.signage.remove("door", T0 - timedelta(hours=1))
    assert str(unknown.value) == f"{db}: no sign 'nosuch'; `sanitary signage list` shows the sign ids"
    assert str(early.value) == f"{db}: sign door was posted at {T0}, after {T0 - timedelta(hours=1)}"


def test_the_latest_site_record_wins(tmp_path: Path) -> None:
    with Store(tmp_path / "a.duckdb") as store:
        store.sites.record("s1", "market", "Europe/Paris", PrivacyConfig())
        store.record_site("s1", "bus", "Africa/Dakar", PrivacyConfig(profile="fr-transport-2021-269", k_min=5))
        rows = store.con.execute("SELECT site_id, site_kind, timezone, privacy_profile, k_min FROM sites").fetchall()
    assert rows == [("s1", "bus", "Africa/Dakar", "fr-transport-2021-269", 5)]


def test_stored_alerts_are_typed_rows_of_the_alerts_table(tmp_path: Path) -> None:
    assert tuple(f.name for f in dataclasses.fields(StoredAlert)) == ALERT_COLUMNS
    db = tmp_path / "a.duckdb"
    run = analyse(db, "s1", "h1", 4)
    with Store(db) as store:
        assert store.alerts.stored("s2") == []
        stored = store.alerts.stored("s1", "c")
    assert stored == [
        StoredAlert("s1", "c", "h1", T0, "crowd", "raised", "occupancy", None, "above", 1.0, 4.0, "delivered", run)
    ]
