"""Alert delivery off the analysis path, against real receivers on 127.0.0.1 that hang, trickle, refuse, reset, or
fail once: the analysis only enqueues, every webhook attempt ends within its total deadline, a stop ends delivery
within its grace, and each alert's stored delivery and stderr line say what happened."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from sanitary.alerts.delivery import AlertSender
from sanitary.alerts.rules import Alert
from sanitary.alerts.sinks import AlertSink, FileSink, WebhookSink
from sanitary.analytics.observations import MaskCounts, Observation
from sanitary.analytics.windows import aggregate
from sanitary.config import AlertRule, default_camera
from sanitary.errors import SanitaryError
from sanitary.runtime.lifecycle import RetentionSchedule
from sanitary.runtime.live import CameraRun, ClosedWindow, LiveOptions, LiveTotals, commit
from sanitary.runtime.session import AlertWatch
from sanitary.storage.store import RunStart, Store, WindowHealth
from tests.alerts.receivers import closed_port_url, receiver

T0 = datetime(2021, 3, 1, 8, 0, tzinfo=UTC)
ALERT = Alert("crowd", "occupancy", None, 12.5, 10.0, "above", "raised", T0, "bus-12", "door")


def alert(n: int) -> Alert:
    return dataclasses.replace(ALERT, value=float(n))


def hook(url: str, timeout_s: float = 0.5, retries: int = 0, backoff_s: float = 0.05) -> WebhookSink:
    return WebhookSink(url, timeout_s=timeout_s, retries=retries, backoff_s=backoff_s)


def timed_send(sink: WebhookSink) -> tuple[float, str]:
    """How long one send took, and why it failed."""
    start = time.monotonic()
    with pytest.raises(SanitaryError) as failed:
        sink.send(ALERT)
    return time.monotonic() - start, str(failed.value)


def test_an_attempt_ends_within_its_total_deadline_against_a_trickling_receiver() -> None:
    # 200 OK, then a byte every 0.1 s: no single read ever waits 0.5 s, only the whole answer's deadline ends it.
    with receiver("trickle") as r:
        took, error = timed_send(hook(r.url, timeout_s=0.5, retries=1))
    assert 1.0 <= took < 1.8  # two attempts of 0.5 s and a backoff of 0.05 s
    assert "failed after 2 attempts (no whole answer within 0.5 s)" in error and r.url in error


def test_an_attempt_ends_within_its_total_deadline_against_a_hanging_receiver() -> None:
    with receiver("hang") as r:
        took, error = timed_send(hook(r.url, timeout_s=0.4))
    assert 0.4 <= took < 1.0
    assert "failed after 1 attempts (no whole answer within 0.4 s)" in error and "webhook_timeout_s" in error


def test_a_refusing_port_and_a_reset_fail_at_once_after_their_retries() -> None:
    took, error = timed_send(hook(closed_port_url(), retries=2, backoff_s=0.01))
    assert took < 0.5 and "failed after 3 attempts" in error and "refused" in error.lower()
    with receiver("reset") as r:
        took, error = timed_send(hook(r.url, retries=1, backoff_s=0.01))
    assert took < 0.5 and "failed after 2 attempts" in error and r.connections == 2
    assert "reset" in error.lower() or "closed" in error.lower() or "disconnected" in error.lower(), error


def test_a_stop_cancels_an_attempt_and_its_backoff_at_once() -> None:
    with receiver("hang") as r:
        sink = hook(r.url, timeout_s=30.0)
        sender = AlertSender([sink], warn=lambda line: None)
        delivery = sender.submit(ALERT)
        time.sleep(0.2)  # the attempt is waiting on the receiver
        start = time.monotonic()
        sender.stop(time.monotonic() + 0.3)
        assert time.monotonic() - start < 0.6
    assert delivery.outcome is not None and "stopped before the receiver answered" in delivery.outcome
    # The wait between attempts wakes at once too.
    sink = hook(closed_port_url(), retries=3, backoff_s=30.0)
    sink.cancel()
    took, _ = timed_send(sink)
    assert took < 0.2


def test_the_analysis_only_enqueues_and_a_stop_records_what_the_receiver_held(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with receiver("trickle") as r:
        sender = AlertSender([hook(r.url, timeout_s=5.0)])
        start = time.monotonic()
        deliveries = [sender.submit(alert(n)) for n in range(3)]
        assert time.monotonic() - start < 0.1  # three alerts, the receiver holding the first: no wait
        assert [d.sent().delivery for d in deliveries] == ["pending"] * 3
        start = time.monotonic()
        sender.stop(time.monotonic() + 0.5)
        assert 0.4 <= time.monotonic() - start < 1.0  # the grace, not the attempt's 5 s
    for d in deliveries:
        assert d.outcome == (
            f"alert webhook {r.url}: undelivered: stopped before the receiver answered; check that it answers "
            "within alert_sinks.webhook_timeout_s (5 s), or lower alert_sinks.webhook_retries"
        )
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and all(line.startswith("alert 'crowd' raised at 2021-03-01T08:00:00+00:00 (door) not "
                                                   "delivered: alert webhook ") for line in lines)  # fmt: skip


@pytest.mark.parametrize(
    ("behaviour", "outcome"),
    [
        ("hang", "failed after 2 attempts (no whole answer within 0.4 s)"),
        ("trickle", "failed after 2 attempts (no whole answer within 0.4 s)"),
        ("refuse", "failed after 2 attempts ([Errno 111] Connection refused)"),
        ("reset", "failed after 2 attempts"),
        ("500 then 200", None),
    ],
)
def test_each_receiver_gives_the_stored_delivery_and_stderr_line_it_deserves(
    behaviour: str, outcome: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    with contextlib.ExitStack() as stack:
        url = closed_port_url() if behaviour == "refuse" else stack.enter_context(receiver(behaviour)).url  # type: ignore[arg-type]
        sender = AlertSender([hook(url, timeout_s=0.4, retries=1, backoff_s=0.05)])
        start = time.monotonic()
        delivery = sender.submit(ALERT)
        assert time.monotonic() - start < 0.1  # the analysis only enqueued it (an attempt takes up to 0.4 s)
        sender.stop(time.monotonic() + 3.0)
        assert time.monotonic() - start < 1.2  # two attempts of at most 0.4 s, one backoff: well inside the grace
    err = capsys.readouterr().err
    if outcome is None:
        assert delivery.outcome == "delivered" and err == ""
        return
    assert delivery.outcome is not None and delivery.outcome.startswith(f"alert webhook {url} {outcome}")
    assert delivery.outcome.endswith("raise alert_sinks.webhook_timeout_s / webhook_retries")
    assert err == f"alert 'crowd' raised at 2021-03-01T08:00:00+00:00 (door) not delivered: {delivery.outcome}\n"


class Recording:
    """A sink that keeps what it got, optionally failing every alert."""

    def __init__(self, fail: bool = False) -> None:
        self.got: list[float] = []
        self.fail = fail

    def send(self, alert: Alert) -> None:
        if self.fail:
            raise SanitaryError("recorder refused it; set alert_sinks.recorder")
        self.got.append(alert.value)

    def unanswered(self) -> str:
        return "recorder: stopped"

    def cancel(self) -> None:
        return None


def test_order_is_kept_a_failing_sink_stops_no_other_and_a_full_queue_refuses_the_new_alert(tmp_path: Path) -> None:
    lines: list[str] = []
    good, bad = Recording(), Recording(fail=True)
    sinks: list[AlertSink] = [bad, FileSink(tmp_path / "missing" / "a.jsonl"), good]
    sender = AlertSender(sinks, warn=lines.append)
    deliveries = [sender.submit(alert(n)) for n in range(5)]
    sender.stop(time.monotonic() + 2.0)
    assert good.got == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert all(
        d.outcome and d.outcome.startswith("recorder refused it; set alert_sinks.recorder; ") for d in deliveries
    )
    assert all("alert_sinks.file" in (d.outcome or "") for d in deliveries) and len(lines) == 5
    # A receiver that holds the first alert: the queue fills, and the alert that finds it full is refused at once.
    with receiver("hang") as r:
        lines.clear()
        sender = AlertSender([hook(r.url, timeout_s=5.0)], capacity=2, warn=lines.append)
        deliveries = [sender.submit(alert(0))]
        time.sleep(0.1)  # in flight, held by the receiver
        deliveries += [sender.submit(alert(n)) for n in range(1, 4)]  # two waiting, one refused
        assert [d.outcome is None for d in deliveries] == [True, True, True, False]
        assert deliveries[3].outcome is not None and deliveries[3].outcome.startswith("undelivered: queue full")
        assert len(lines) == 1 and "alert_sinks.webhook" in lines[0]
        sender.stop(time.monotonic())
    assert all("stopped before the receiver answered" in (d.outcome or "") for d in deliveries[:3])
    assert len(lines) == 4


CAMERA = dataclasses.replace(
    default_camera("door", "bus-12"), alerts=[AlertRule("anyone", "occupancy", above=0.5, span_s=1.0)]
)


def test_an_alert_fired_by_a_frame_is_only_queued_and_its_outcome_reaches_the_store(tmp_path: Path) -> None:
    """A live unit: the alert's window is stored while the receiver still holds it ("pending"); the next commit
    records what happened."""
    with receiver("hang") as r:
        watch = AlertWatch(CAMERA, T0, [hook(r.url, timeout_s=0.5)])
        start = time.monotonic()
        watch([Observation(0, 0.0, 3, MaskCounts()), Observation(1, 0.5, 3, MaskCounts())], None)
        assert time.monotonic() - start < 0.1
        (first,) = watch.take_before(T0.replace(minute=1))
        assert first.delivery == "pending" and first.alert.rule == "anyone"
        db = tmp_path / "unit.duckdb"
        with Store(db) as store:
            run_id = store.begin_run(RunStart("live:unit:s1", "0", "door", "bus-12", "unit", "h", {}, "test"))
        run = CameraRun(CAMERA, run_id, RetentionSchedule(CAMERA))
        options, totals = LiveOptions(signage_override="test"), LiveTotals()
        commit(ClosedWindow(run, window(T0), health(), [first], False, None), db, options, totals, print, T0)
        assert deliveries(db) == ["pending"]
        time.sleep(0.8)  # the attempt's deadline passes
        run.settled += watch.settled()
        commit(ClosedWindow(run, window(T0.replace(minute=1)), health(), [], False, None), db, options, totals,
               print, T0)  # fmt: skip
        assert run.settled == [] and watch.settled() == []
    (stored,) = deliveries(db)
    assert stored.startswith(f"alert webhook {r.url} failed after 1 attempts (no whole answer within 0.5 s)")


def window(start: datetime):
    (w,) = aggregate(
        [Observation(0, 0.0, 3, MaskCounts())], site_id="bus-12", camera_id="door", source="live:unit:s1",
        start=start, duration_s=60.0, window_s=60, confusion=np.diag([50, 50, 50]),
    )  # fmt: skip
    return w


def health() -> WindowHealth:
    return WindowHealth("unit", 60.0, 60, 1, 0, 1.0, 0, None, None, 0.0, 0)


def deliveries(db: Path) -> list[str]:
    with Store(db) as store:
        return [row[0] for row in store.con.execute("SELECT delivery FROM alerts ORDER BY event_at").fetchall()]
