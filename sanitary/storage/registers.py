"""The registers beside the counts: the opt-out signs, each site's clock and privacy settings, the alerts stored.

They change by hand or once per session, never per window, and are read by the session, the report and the CLI,
each over the connection it has (a report's is read-only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from sanitary.alerts.sinks import SentAlert
from sanitary.config import PrivacyConfig
from sanitary.errors import SanitaryError
from sanitary.storage.schema import ALERT_COLUMNS, SIGN_COLUMNS, SIGNAGE_COLUMNS, SITE_COLUMNS
from sanitary.storage.signage import Sign


class SignRegister:
    """The opt-out signs recorded for each camera, with when each stood."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        self.con = con
        self.path = path

    def add(self, sign: Sign) -> None:
        self.con.execute(
            f"INSERT INTO signage ({', '.join(SIGNAGE_COLUMNS)}) VALUES ({', '.join('?' * len(SIGNAGE_COLUMNS))})",
            [*(getattr(sign, c) for c in SIGN_COLUMNS), datetime.now(UTC)],
        )

    def signs(self, site_id: str | None = None, camera_id: str | None = None) -> list[Sign]:
        """The signs of a site or camera (None: all), by site, camera and when they were posted."""
        rows = self.con.execute(
            f"SELECT {', '.join(SIGN_COLUMNS)} FROM signage WHERE coalesce(site_id = ?, true)"
            " AND coalesce(camera_id = ?, true) ORDER BY site_id, camera_id, posted_at",
            [site_id, camera_id],
        ).fetchall()
        return [Sign(*row) for row in rows]

    def standing(self, site_id: str, start: datetime, end: datetime) -> list[Sign]:
        """The site's signs that stood at some time in [start, end), by camera and when they were posted."""
        rows = self.con.execute(
            f"SELECT {', '.join(SIGN_COLUMNS)} FROM signage WHERE site_id = ? AND posted_at < ?"
            " AND (removed_at IS NULL OR removed_at > ?) ORDER BY camera_id, posted_at",
            [site_id, end, start],
        ).fetchall()
        return [Sign(*row) for row in rows]

    def remove(self, sign_id: str, at: datetime) -> Sign:
        """Record that a sign was taken down; the record stays, so footage from while it stood stays covered."""
        found = [s for s in self.signs() if s.sign_id == sign_id]
        if not found:
            raise SanitaryError(f"{self.path}: no sign {sign_id!r}; `sanitary signage list` shows the sign ids")
        if at < found[0].posted_at:
            raise SanitaryError(f"{self.path}: sign {sign_id} was posted at {found[0].posted_at}, after {at}")
        self.con.execute("UPDATE signage SET removed_at = ? WHERE sign_id = ?", [at, sign_id])
        return dataclasses.replace(found[0], removed_at=at)


class SiteRegister:
    """Each site's clock and privacy settings, which the views read."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def record(self, site_id: str, site_kind: str, timezone: str, privacy: PrivacyConfig) -> None:
        """The latest session's config wins."""
        self.con.execute(
            f"INSERT OR REPLACE INTO sites ({', '.join(SITE_COLUMNS)}) VALUES ({', '.join('?' * len(SITE_COLUMNS))})",
            [site_id, site_kind, timezone, privacy.profile, privacy.k_min, datetime.now(UTC)],
        )


@dataclass(frozen=True)
class StoredAlert:
    """A row of the alerts table (ALERT_COLUMNS, in order)."""

    site_id: str
    camera_id: str
    source: str
    event_at: datetime
    rule: str
    state: str  # raised or cleared
    measure: str
    zone: str | None
    direction: str
    threshold: float
    value: float
    delivery: str  # 'delivered', 'pending' (not known when its window was stored), or why a sink did not take it
    run_id: str


class AlertRegister:
    """The alerts raised and cleared, as stored with their windows."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def stored(self, site_id: str | None = None, camera_id: str | None = None) -> list[StoredAlert]:
        """Stored alerts of a site or camera (None: all), oldest first."""
        cursor = self.con.execute(
            f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts WHERE coalesce(site_id = ?, true)"
            " AND coalesce(camera_id = ?, true) ORDER BY event_at, rule",
            [site_id, camera_id],
        )
        return [StoredAlert(*row) for row in cursor.fetchall()]

    def record_delivery(self, source: str, sent: Sequence[SentAlert]) -> None:
        """The outcome of alerts stored before it was known (a row not stored, its window refused, is left alone)."""
        if sent:
            self.con.executemany(
                "UPDATE alerts SET delivery = ? WHERE site_id = ? AND camera_id = ? AND source = ? AND event_at = ?"
                " AND rule = ? AND state = ?",
                [[s.delivery, s.alert.site_id, s.alert.camera_id, source, s.alert.at, s.alert.rule, s.alert.state]
                 for s in sent],
            )  # fmt: skip
