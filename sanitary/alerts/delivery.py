"""Alert delivery off the analysis path: a bounded queue and one sender thread per session.

The analysis only enqueues an alert (it never waits on a sink); the sender hands the alerts, in order, to every
sink. Each alert's outcome is known when its last sink answered: "delivered", or what each failing sink said. A
full queue (a sink far slower than the alerts come) refuses the new alert, recorded undelivered. When the session
stops, the sender has a bounded grace to finish, then cancels what is in flight; an alert still unsettled is
recorded undelivered, with the sink that had not answered. Every undelivered alert writes one line to stderr.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from sanitary.alerts.rules import Alert
from sanitary.alerts.sinks import AlertSink, SentAlert
from sanitary.errors import SanitaryError

DELIVERED = "delivered"
PENDING = "pending"
# Alerts are rare (one per episode and rule): this many waiting means a sink has stopped answering.
QUEUE_CAPACITY = 64
# How long a session's sender may go on delivering once the footage or the live unit stopped.
STOP_GRACE_S = 2.0


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Delivery:
    """One alert on its way; `outcome` is set once, by the sender or at its stop (None until then)."""

    def __init__(self, alert: Alert) -> None:
        self.alert = alert
        self.outcome: str | None = None

    def sent(self) -> SentAlert:
        """What is known now: the outcome, or pending."""
        return SentAlert(self.alert, self.outcome or PENDING)


class AlertSender:
    """The sinks of one session, fed from a bounded queue by one daemon thread (started at the first alert)."""

    def __init__(
        self,
        sinks: Sequence[AlertSink],
        *,
        capacity: int = QUEUE_CAPACITY,
        warn: Callable[[str], None] = _stderr,
    ) -> None:
        self.sinks = tuple(sinks)
        self.capacity = capacity
        self.warn = warn
        self._cond = threading.Condition()
        self._waiting: deque[Delivery] = deque()
        self._current: Delivery | None = None
        self._current_errors: list[str] = []  # what the sinks the current alert went through said
        self._current_done = 0  # how many sinks the current alert went through
        self._stopped = False
        self._thread: threading.Thread | None = None

    def submit(self, alert: Alert) -> Delivery:
        """Queue the alert and return at once; refused (recorded undelivered) when the queue is full or stopped."""
        delivery = Delivery(alert)
        with self._cond:
            if self._stopped:
                line = _settle(delivery, [s.unanswered() for s in self.sinks])
            elif len(self._waiting) >= self.capacity:
                line = _settle(delivery, [
                    f"undelivered: queue full ({self.capacity} alerts waiting for a slow sink); check the receiver "
                    "of alert_sinks.webhook, or lower alert_sinks.webhook_timeout_s / webhook_retries"
                ])  # fmt: skip
            else:
                line = None
                self._waiting.append(delivery)
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="alert-sender", daemon=True)
                    self._thread.start()
                self._cond.notify_all()
        self._warn(line)
        return delivery

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                delivery = self._current = self._waiting.popleft()
                self._current_errors, self._current_done = [], 0
            errors: list[str] = []
            for i, sink in enumerate(self.sinks):
                error = _send(sink, delivery.alert)
                with self._cond:
                    if self._stopped:
                        return  # `stop` settled this alert with what the sinks had said
                    errors += [error] if error else []
                    self._current_errors, self._current_done = list(errors), i + 1
            with self._cond:
                if self._stopped:
                    return
                line = _settle(delivery, errors)
                self._current = None
                self._cond.notify_all()
            self._warn(line)

    def stop(self, deadline: float) -> None:
        """Deliver what is queued until `deadline` (time.monotonic), then cancel: what is left is undelivered."""
        with self._cond:
            while (self._waiting or self._current) and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            self._stopped = True
            self._cond.notify_all()
            left_over: list[tuple[Delivery, list[str], int]] = [(d, [], 0) for d in self._waiting]
            if self._current is not None:
                left_over.insert(0, (self._current, self._current_errors, self._current_done))
            lines = [_settle(d, [*said, *(s.unanswered() for s in self.sinks[done:])]) for d, said, done in left_over]
            self._waiting.clear()
            self._current = None
        for sink in self.sinks:
            sink.cancel()
        for line in lines:
            self._warn(line)

    def _warn(self, line: str | None) -> None:
        if line is not None:
            self.warn(line)


def _settle(delivery: Delivery, errors: list[str]) -> str | None:
    """Record the outcome; the stderr line an undelivered alert gives (None: delivered)."""
    delivery.outcome = "; ".join(errors) or DELIVERED
    if not errors:
        return None
    a = delivery.alert
    line = f"alert {a.rule!r} {a.state} at {a.at.isoformat()} ({a.camera_id}) not delivered: {delivery.outcome}"
    return " ".join(line.split())  # one line, whatever an OS error message held


def _send(sink: AlertSink, alert: Alert) -> str | None:
    """What the sink said if it failed (None: delivered)."""
    try:
        sink.send(alert)
    except SanitaryError as exc:
        return str(exc)
    return None
