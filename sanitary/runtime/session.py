"""One camera's analysis from a start time, the same for a file (batch), a segment of one (Ray) and a live unit.

The session keeps the observations of the span it has not closed, puts frames counted again after an opt-out in
place of their first count, checks the alert rules after every frame, knows which window a time falls in, and
folds its observations into window aggregates: all at once when a file ends (`close`, then `windows`), or one
window at a time on a live unit (`close_window`), forgetting then what the closed window alone needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from sanitary.alerts.delivery import STOP_GRACE_S, AlertSender, Delivery
from sanitary.alerts.rules import AlertEngine, trailing_sample
from sanitary.alerts.sinks import AlertSink, SentAlert, sinks_from_config
from sanitary.analytics.observations import Observation
from sanitary.analytics.privacy import apply_profile
from sanitary.analytics.windows import WindowAggregate, aggregate, window_start
from sanitary.capture.sources import Frame, Source
from sanitary.config import CameraConfig
from sanitary.geometry.homography import zone_area_m2
from sanitary.perception.mask_card import load_card
from sanitary.runtime.analyser import FrameAnalyser, StageTimes, decoded
from sanitary.tracking.ledger import PersonLedger


@dataclass(frozen=True)
class WindowClock:
    """Session seconds (0 at `start`) and the windows they fall in; windows are aligned on the epoch, so that
    every camera, file and segment shares them."""

    start: datetime
    window_s: int

    def at(self, t: float) -> datetime:
        return self.start + timedelta(seconds=t)

    def window_of(self, t: float) -> datetime:
        return window_start(self.at(t), self.window_s)

    def seconds(self, at: datetime) -> float:
        return (at - self.start).total_seconds()


class AlertWatch:
    """The camera's alert rules, checked after every analysed frame; what fires is queued for the sinks at once
    (staff act now, not when the file is done; the analysis never waits on a sink) and kept for the store."""

    def __init__(self, camera: CameraConfig, start: datetime, sinks: Sequence[AlertSink]) -> None:
        self.engine = AlertEngine(camera.alerts, camera.site_id, camera.camera_id, camera.privacy.k_min)
        self.start = start
        self.sender = AlertSender(sinks)
        self.zone_names = tuple(z.name for z in camera.zones)
        # The longest trailing span a rule looks back over: older frames are no longer needed.
        self.horizon_s = max((r.span_s for r in camera.alerts), default=0.0)
        self.fired: list[Delivery] = []  # not taken yet
        self.unsettled: list[Delivery] = []  # taken while still on their way

    def __call__(self, observations: Sequence[Observation], ledger: PersonLedger | None) -> None:
        if not self.engine.rules or not observations:
            return
        now_t = observations[-1].t
        contacts, starts = (ledger.contacts, ledger.pair_starts) if ledger else (None, None)
        samples = [
            trailing_sample(observations, contacts, starts, now_t, s, self.zone_names) for s in self.engine.spans
        ]
        for alert in self.engine.update(self.start + timedelta(seconds=now_t), samples):
            self.fired.append(self.sender.submit(alert))

    @property
    def sent(self) -> list[SentAlert]:
        """The alerts fired and not taken, with their delivery as known now."""
        return [d.sent() for d in self.fired]

    def take_before(self, at: datetime) -> list[SentAlert]:
        """The alerts fired before `at` not taken yet, handed over once (to be stored with their window); those
        still on their way read "pending", and `settled` gives them again once their outcome is known."""
        taken = [d for d in self.fired if d.alert.at < at]
        self.fired = self.fired[len(taken) :]
        self.unsettled += [d for d in taken if d.outcome is None]
        return [d.sent() for d in taken]

    def settled(self) -> list[SentAlert]:
        """The alerts taken as pending whose outcome is now known, handed over once (to update the store)."""
        done = [d for d in self.unsettled if d.outcome is not None]
        self.unsettled = [d for d in self.unsettled if d.outcome is None]
        return [d.sent() for d in done]

    def stop(self, deadline: float) -> None:
        """No more alerts: the sender has until `deadline` (time.monotonic) to deliver, then every alert is settled."""
        self.sender.stop(deadline)


def zone_areas(camera: CameraConfig) -> tuple[tuple[str, float | None], ...]:
    """Each zone's name and ground area (None: a pixel zone of a camera not calibrated)."""
    h = camera.ground_homography()
    return tuple(
        (z.name, zone_area_m2(z, h) if z.units == "m" or h is not None else None) for z in camera.zone_geometry()
    )


class AnalysisSession:
    """The frames of one source, analysed and kept until their windows are folded.

    `alerts_in` says in which windows the alert rules are checked (all by default); a frame in a window at or
    after `until` is analysed (its people's tracks go on to it) but not kept, and says that the span has ended.
    """

    def __init__(
        self,
        camera: CameraConfig,
        analyser: FrameAnalyser,
        start: datetime,
        *,
        source: str,
        confusion: np.ndarray,
        sinks: Sequence[AlertSink] = (),
        alerts_in: Callable[[datetime], bool] | None = None,
        until: datetime | None = None,
    ) -> None:
        self.camera = camera
        self.analyser = analyser
        self.clock = WindowClock(start, camera.time.window_seconds)
        self.source = source
        self.confusion = confusion
        self.zones = zone_areas(camera)
        self.watch = AlertWatch(camera, start, sinks)
        self.alerts_in = alerts_in
        self.until = until
        # What the frames showed: those of closed windows an alert rule still looks back on, then (`open_from` on)
        # those of the span not closed yet.
        self.observations: list[Observation] = []
        self.open_from = 0
        self.open = self.clock.window_of(0.0)  # the window `close_window` closes next
        self.frame_window: datetime | None = None  # the window of the last frame analysed

    @classmethod
    def from_camera(
        cls,
        camera: CameraConfig,
        analysed_fps: float,
        start: datetime,
        source: str,
        *,
        alerts_in: Callable[[datetime], bool] | None = None,
        until: datetime | None = None,
        heads_in_background: bool = False,
    ) -> AnalysisSession:
        """A session on the real models, alerts sent to the camera's sinks."""
        return cls(
            camera,
            FrameAnalyser.from_camera(camera, analysed_fps, heads_in_background),
            start,
            source=source,
            confusion=load_card().confusion,
            sinks=sinks_from_config(camera.alert_sinks),
            alerts_in=alerts_in,
            until=until,
        )

    @property
    def times(self) -> StageTimes:
        return self.analyser.times

    @property
    def sent(self) -> list[SentAlert]:
        """The alerts fired and not taken by `close_window`; after `close`, each with its outcome."""
        return self.watch.sent

    @property
    def pending(self) -> bool:
        """Frames are kept that no closed window took."""
        return len(self.observations) > self.open_from

    @property
    def open_start_t(self) -> float:
        return self.clock.seconds(self.open)

    @property
    def open_end_t(self) -> float:
        return self.clock.seconds(self._open_end)

    @property
    def _open_end(self) -> datetime:
        return self.open + timedelta(seconds=self.clock.window_s)

    def frames(self, source: Source, sample_fps: float | None, from_s: float = 0.0) -> Iterator[Frame]:
        """The source's frames to analyse, their decoding timed with the stages."""
        return decoded(source, self.analyser.times, sample_fps, from_s)

    def analyse(self, frame: Frame) -> Observation | None:
        """Analyse a frame and keep what it showed; None when it lies at or after `until` (kept: nothing)."""
        window = self.clock.window_of(frame.t)
        if window != self.frame_window:
            self.analyser.start_window()
            self.frame_window = window
        observation = self.analyser(frame)
        if self.until is not None and window >= self.until:
            return None
        self.observations.append(observation)
        self._revise(self.analyser.take_revised())
        if self.alerts_in is None or self.alerts_in(window):
            self.watch(self.observations, self.analyser.ledger if self.analyser.tracking else None)
        return observation

    def _revise(self, revised: list[Observation]) -> None:
        """Put frames counted again (after an opt-out, a rare event) in place of their first count."""
        if revised:
            at = {self.observations[i].frame: i for i in range(self.open_from, len(self.observations))}
            for obs in revised:
                self.observations[at[obs.frame]] = obs

    def windows(self, duration_s: float) -> list[WindowAggregate]:
        """The kept frames of the open span folded into windows over the footage [start, start + duration_s),
        with what the analyser knows of people so far, as the privacy profile lets them be stored. Reading them
        changes nothing: after `close` every track has ended; before it, people still in view are counted so far.
        """
        people = self.analyser.people_so_far()
        windows = aggregate(
            self.observations[self.open_from :],
            site_id=self.camera.site_id,
            camera_id=self.camera.camera_id,
            source=self.source,
            start=self.clock.start,
            duration_s=duration_s,
            window_s=self.clock.window_s,
            confusion=self.confusion,
            zones=self.zones,
            people=people.people,
            events=people.events,
            dwell_bins_s=tuple(self.camera.tracking.dwell_bins_s),
            opt_out_times=people.opt_out_times,
        )
        return apply_profile(windows, self.camera.privacy)

    def close(self) -> None:
        """The footage ended: every track still alive ends here, and counts in the windows read after; the alerts
        still on their way have STOP_GRACE_S to be delivered, then are recorded undelivered."""
        self.analyser.close()
        self.stop_alerts(time.monotonic() + STOP_GRACE_S)

    def stop_alerts(self, deadline: float) -> None:
        """No more alerts: those on their way have until `deadline` (time.monotonic), then all are settled."""
        self.watch.stop(deadline)

    def close_window(self, end_t: float) -> tuple[WindowAggregate, list[SentAlert]]:
        """The open window (its footage up to `end_t`) and the alerts sent in it; the session moves on to the next
        window and forgets what only this one needed (the trailing span of the alert rules is kept)."""
        w_end = self._open_end
        window = next(x for x in self.windows(end_t) if x.key.window_start == self.open)
        sent = self.watch.take_before(w_end)
        self.analyser.forget_before(self.clock.seconds(w_end))
        self.observations = [o for o in self.observations if o.t > end_t - self.watch.horizon_s]
        self.open_from = len(self.observations)
        self.open = w_end
        return window, sent
