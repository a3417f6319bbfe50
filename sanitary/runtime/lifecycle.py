"""A camera's session with the store, begun and finished the same way by batch, Ray and live: the site recorded,
the opt-out signs checked, windows older than `privacy.retention_days` deleted (and logged)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sanitary.config import CameraConfig
from sanitary.errors import SanitaryError
from sanitary.storage.signage import uncovered
from sanitary.storage.store import Store

# A live unit applies retention at its first commit, then at most this often. Retention is counted in days, so
# an hour late deletes nothing that matters; checking at every commit would hold the file (which queries and
# exports wait for) for a scan of the camera's windows every window. The first commit of each session applies
# it too, so that a unit restarted more often than hourly (power cuts) still does.
RETENTION_EVERY = timedelta(hours=1)


def begin_camera(
    store: Store, camera: CameraConfig, *, now: datetime | None = None, override: str | None = None
) -> None:
    """Record the site (its clock and privacy settings, which the views read). A live session starting `now`
    needs an opt-out sign up now, unless `override` says why not (footage is checked per file or window)."""
    store.record_site(camera.site_id, camera.site_kind, camera.timezone, camera.privacy)
    if now is not None and override is None and unsigned(store, camera, now, now + timedelta(seconds=1)):
        raise SanitaryError(
            f"{camera.path}: no opt-out sign is up for camera {camera.camera_id} now; record it with `sanitary "
            "signage add`, or pass --without-signage REASON (recorded in runs)"
        )


def unsigned(store: Store, camera: CameraConfig, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The stretches of [start, end) during which no opt-out sign of the camera was up."""
    return uncovered(store.signs(camera.site_id, camera.camera_id), start, end)


def finish_camera(store: Store, camera: CameraConfig, now: datetime | None = None) -> int:
    """Apply the camera's retention: its windows older than `privacy.retention_days` (before `now`) deleted and
    logged in `retention_log`; how many."""
    return store.apply_retention(camera.site_id, camera.camera_id, camera.privacy.retention_days, now)


class RetentionSchedule:
    """Retention on a live unit: applied at the first commit, then once `every` has passed (RETENTION_EVERY)."""

    def __init__(self, camera: CameraConfig, every: timedelta = RETENTION_EVERY) -> None:
        self.camera = camera
        self.every = every
        self.last: datetime | None = None

    def apply_if_due(self, store: Store, now: datetime) -> int:
        """Windows deleted now (0 when not due). After a wall clock set back it is due an hour after the last
        application again; a failure raises, and the next commit tries again."""
        if self.last is not None and now - self.last < self.every:
            return 0
        deleted = finish_camera(store, self.camera, now)
        self.last = now
        return deleted
