"""Where alerts go: stdout, an append-only file, a webhook. The only I/O of alerting, kept at the edge.

A sink that cannot deliver raises a one-line `SanitaryError` naming the setting to change. Sinks run on the
delivery thread (sanitary/alerts/delivery.py), never on the analysis: a webhook attempt is bounded as a whole, and
`cancel` ends an attempt in flight and any wait between attempts at once when delivery stops.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import sys
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sanitary.alerts.rules import Alert
from sanitary.config import AlertSinks
from sanitary.errors import SanitaryError


class AlertSink(Protocol):
    def send(self, alert: Alert) -> None:
        """Deliver the alert, or raise a `SanitaryError` saying why not."""
        ...

    def unanswered(self) -> str:
        """Why an alert this sink had not taken when delivery stopped is undelivered, and the setting to change."""
        ...

    def cancel(self) -> None:
        """Delivery is stopping: end any attempt in flight and any wait now."""
        ...


class StdoutSink:
    """One JSON line per alert, flushed at once, for a supervisor or `| jq` to read as it comes."""

    def send(self, alert: Alert) -> None:
        try:
            sys.stdout.write(alert.to_json() + "\n")
            sys.stdout.flush()
        except OSError as exc:
            raise SanitaryError(f"alert to stdout failed ({exc}); keep the reader of sanitary's output open") from None

    def unanswered(self) -> str:
        return "stdout: undelivered: stopped before it was written; keep the reader of sanitary's output reading"

    def cancel(self) -> None:
        return None  # a write to stdout is not interrupted


class FileSink:
    """JSON lines appended to a file and synced to disk per alert: a power cut on a bus keeps what was sent."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, alert: Alert) -> None:
        try:
            # Opened per alert, in append mode: alerts are rare, and another process may rotate the file between them.
            with self.path.open("a", encoding="utf-8") as f:
                f.write(alert.to_json() + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise SanitaryError(
                f"{self.path}: cannot append the alert ({exc.strerror or exc}); make alert_sinks.file a writable path"
            ) from None

    def unanswered(self) -> str:
        return (
            f"{self.path}: undelivered: stopped before it was appended; make alert_sinks.file a path on a disk that "
            "answers"
        )

    def cancel(self) -> None:
        return None  # a local append is not interrupted


class WebhookSink:
    """An HTTP POST of the alert's JSON, retried with exponential backoff while the receiver is down or overloaded.

    Each attempt has `timeout_s` in all, connecting, sending and reading the whole answer: a timer shuts the
    socket at the deadline, which wakes any read, so a receiver that never answers or trickles its answer a byte at
    a time cannot hold the attempt longer. (Resolving the host name is not bounded: give an address where the
    DNS may hang.)
    """

    def __init__(
        self,
        url: str,
        timeout_s: float,
        retries: int,
        backoff_s: float,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        """`wait(s)` sleeps between attempts and says whether delivery stopped meanwhile (default: `cancel` wakes
        it at once)."""
        self.url = url
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.cancelled = threading.Event()
        self.wait = wait or self.cancelled.wait
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None

    def send(self, alert: Alert) -> None:
        body = alert.to_json().encode("utf-8")
        attempts = self.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                status, reason = self._post(body)
            except (OSError, http.client.HTTPException) as exc:
                # Connection refused or reset, DNS failure, the deadline: OSErrors or a bad answer.
                failure = str(exc) or type(exc).__name__
            else:
                if 200 <= status < 300:
                    return
                # A 4xx (but 429, "too many requests") is the request itself refused: sending it again won't help.
                if status < 500 and status != 429:
                    raise SanitaryError(
                        f"alert webhook {self.url} refused the alert (HTTP {status} {reason}); check "
                        "alert_sinks.webhook and that the receiver accepts a JSON POST"
                    )
                failure = f"HTTP {status} {reason}"
            if attempt == attempts or self.cancelled.is_set() or self.wait(self.backoff_s * 2 ** (attempt - 1)):
                break
        raise SanitaryError(
            f"alert webhook {self.url} failed after {attempt} attempts ({failure}); check that the receiver is up "
            "and reachable from this unit, or raise alert_sinks.webhook_timeout_s / webhook_retries"
        )

    def _post(self, body: bytes) -> tuple[int, str]:
        """One POST, its whole exchange within `timeout_s`: the answer's status and reason."""
        if self.cancelled.is_set():
            raise TimeoutError("delivery stopped")
        url = urllib.parse.urlsplit(self.url)
        kind = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        # The per-operation timeout bounds the connect; the timer bounds everything after it.
        connection = kind(url.hostname or "", url.port, timeout=self.timeout_s)
        expired = threading.Event()

        def cut() -> None:
            expired.set()
            self._shut()

        timer = threading.Timer(self.timeout_s, cut)
        timer.daemon = True
        timer.start()
        try:
            connection.connect()
            with self._lock:
                self._socket = connection.sock
            # Checked after the socket is known to the timer: a deadline passed during the connect is not missed.
            if expired.is_set() or self.cancelled.is_set():
                raise TimeoutError
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            connection.request("POST", path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            # A socket shut at the deadline reads as the end of the answer: what came may be cut anywhere.
            if expired.is_set() or self.cancelled.is_set():
                raise TimeoutError
            return response.status, response.reason
        except (OSError, http.client.HTTPException) as exc:
            if self.cancelled.is_set():
                raise TimeoutError("delivery stopped") from None
            # The timer, or a single read or the connect that waited the whole deadline (whichever came first).
            if expired.is_set() or isinstance(exc, TimeoutError):
                raise TimeoutError(f"no whole answer within {self.timeout_s:g} s") from None
            raise
        finally:
            timer.cancel()
            with self._lock:
                self._socket = None
            connection.close()

    def _shut(self) -> None:
        with self._lock:
            if self._socket is not None:
                with contextlib.suppress(OSError):  # already closed by the other side
                    self._socket.shutdown(socket.SHUT_RDWR)

    def unanswered(self) -> str:
        return (
            f"alert webhook {self.url}: undelivered: stopped before the receiver answered; check that it answers "
            f"within alert_sinks.webhook_timeout_s ({self.timeout_s:g} s), or lower alert_sinks.webhook_retries"
        )

    def cancel(self) -> None:
        self.cancelled.set()
        self._shut()


def sinks_from_config(sinks: AlertSinks) -> list[AlertSink]:
    out: list[AlertSink] = []
    if sinks.stdout:
        out.append(StdoutSink())
    if sinks.file is not None:
        out.append(FileSink(Path(sinks.file)))
    if sinks.webhook is not None:
        out.append(WebhookSink(sinks.webhook, sinks.webhook_timeout_s, sinks.webhook_retries, sinks.webhook_backoff_s))
    return out


@dataclass(frozen=True)
class SentAlert:
    alert: Alert
    delivery: str  # "delivered", "pending" (its window was stored first), or what each failing sink said
