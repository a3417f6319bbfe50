"""Where alerts go: stdout, an append-only file, a webhook. The only I/O of alerting, kept at the edge.

A sink that cannot deliver raises a one-line `SanitaryError`; `deliver` turns that into a message and goes on with
the other sinks, so an unreachable receiver never stops the analysis or loses its aggregates: the caller stores the
alert with what failed.
"""

from __future__ import annotations

import http.client
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
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


class StdoutSink:
    """One JSON line per alert, flushed at once, for a supervisor or `| jq` to read as it comes."""

    def send(self, alert: Alert) -> None:
        try:
            sys.stdout.write(alert.to_json() + "\n")
            sys.stdout.flush()
        except OSError as exc:
            raise SanitaryError(f"alert to stdout failed ({exc}); keep the reader of sanitary's output open") from None


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


class WebhookSink:
    """An HTTP POST of the alert's JSON, retried with exponential backoff while the receiver is down or overloaded."""

    def __init__(
        self,
        url: str,
        timeout_s: float,
        retries: int,
        backoff_s: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.sleep = sleep

    def send(self, alert: Alert) -> None:
        body = alert.to_json().encode("utf-8")
        attempts = self.retries + 1
        for attempt in range(attempts):
            request = urllib.request.Request(
                self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    response.read()
                return
            except urllib.error.HTTPError as exc:
                # A 4xx (but 429, "too many requests") is the request itself refused: sending it again won't help.
                if exc.code < 500 and exc.code != 429:
                    raise SanitaryError(
                        f"alert webhook {self.url} refused the alert (HTTP {exc.code} {exc.reason}); check "
                        "alert_sinks.webhook and that the receiver accepts a JSON POST"
                    ) from None
                failure = f"HTTP {exc.code} {exc.reason}"
            except (OSError, http.client.HTTPException) as exc:
                # Connection refused or reset, DNS failure, timeout (URLError and TimeoutError are OSErrors).
                failure = str(getattr(exc, "reason", None) or exc) or type(exc).__name__
            if attempt + 1 < attempts:
                self.sleep(self.backoff_s * 2**attempt)
        raise SanitaryError(
            f"alert webhook {self.url} failed after {attempts} attempts ({failure}); check that the receiver is up "
            "and reachable from this unit, or raise alert_sinks.webhook_timeout_s / webhook_retries"
        )


def sinks_from_config(sinks: AlertSinks) -> list[AlertSink]:
    out: list[AlertSink] = []
    if sinks.stdout:
        out.append(StdoutSink())
    if sinks.file is not None:
        out.append(FileSink(Path(sinks.file)))
    if sinks.webhook is not None:
        out.append(WebhookSink(sinks.webhook, sinks.webhook_timeout_s, sinks.webhook_retries, sinks.webhook_backoff_s))
    return out


def deliver(alert: Alert, sinks: Sequence[AlertSink]) -> list[str]:
    """Send the alert to every sink; the messages of those that failed (empty: delivered everywhere). Never raises
    for a delivery failure, so the caller can store the alert with its delivery status and carry on."""
    errors = []
    for sink in sinks:
        try:
            sink.send(alert)
        except SanitaryError as exc:
            errors.append(str(exc))
    return errors


@dataclass(frozen=True)
class SentAlert:
    alert: Alert
    delivery: str  # "delivered", or what each failing sink said


def send(alert: Alert, sinks: Sequence[AlertSink]) -> SentAlert:
    return SentAlert(alert, "; ".join(deliver(alert, sinks)) or "delivered")
