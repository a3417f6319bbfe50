"""Sinks against the real thing: a file on disk and an HTTP server on 127.0.0.1 that fails, hangs or refuses; the
receivers that reset, trickle or never answer are in test_alert_delivery.py."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sanitary.alerts.rules import Alert
from sanitary.alerts.sinks import FileSink, StdoutSink, WebhookSink, sinks_from_config
from sanitary.config import AlertSinks
from sanitary.errors import SanitaryError

ALERT = Alert("crowd", "occupancy", None, 12.5, 10.0, "above", "raised", datetime(2021, 3, 1, 8, tzinfo=UTC), "s", "c")
HANG = -1


@dataclass
class Received:
    body: bytes
    content_type: str | None


@dataclass
class Script:
    """What the server answers to each request in turn (an HTTP status, or HANG); the last answer repeats."""

    answers: list[int]
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


class _Server(ThreadingHTTPServer):
    script: Script


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        script = self.server.script
        body = self.rfile.read(int(self.headers["Content-Length"]))
        answer = script.answers[min(len(script.received), len(script.answers) - 1)]
        script.received.append(Received(body, self.headers["Content-Type"]))
        if answer == HANG:
            # Longer than the client's timeout; released at teardown so the test does not wait for it.
            script.release.wait(10.0)
            return
        self.send_response(answer)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, Script]]:
    """A server whose answers the test sets in `script.answers` before sending."""
    script = Script([200])
    server = _Server(("127.0.0.1", 0), _Handler)
    server.script = script
    # A short poll keeps shutdown() from waiting half a second per test.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts", script
    script.release.set()
    server.shutdown()
    server.server_close()


def webhook(url: str, delays: list[float], retries: int = 3, timeout_s: float = 2.0) -> WebhookSink:
    def wait(seconds: float) -> bool:
        delays.append(seconds)
        return False  # not stopped meanwhile

    return WebhookSink(url, timeout_s=timeout_s, retries=retries, backoff_s=0.01, wait=wait)


def test_webhook_posts_the_alert_json(receiver: tuple[str, Script]) -> None:
    url, script = receiver
    delays: list[float] = []
    webhook(url, delays).send(ALERT)
    (got,) = script.received
    assert got.content_type == "application/json"
    assert json.loads(got.body) == json.loads(ALERT.to_json())
    assert json.loads(got.body)["rule"] == "crowd"
    assert delays == []


def test_webhook_retries_a_503_until_it_recovers(receiver: tuple[str, Script]) -> None:
    url, script = receiver
    script.answers = [503, 503, 200]
    delays: list[float] = []
    webhook(url, delays).send(ALERT)
    assert len(script.received) == 3
    assert delays == [0.01, 0.02]  # exponential backoff between attempts


def test_webhook_always_failing_gives_an_error_after_retries(receiver: tuple[str, Script]) -> None:
    url, script = receiver
    script.answers = [500]
    delays: list[float] = []
    with pytest.raises(SanitaryError) as failed:
        webhook(url, delays, retries=2).send(ALERT)
    error = str(failed.value)
    assert len(script.received) == 3
    assert delays == [0.01, 0.02]
    assert url in error and "3 attempts" in error and "HTTP 500" in error and "\n" not in error


def test_webhook_retries_a_429(receiver: tuple[str, Script]) -> None:
    url, script = receiver
    script.answers = [429, 200]
    webhook(url, []).send(ALERT)
    assert len(script.received) == 2


def test_webhook_times_out_and_retries(receiver: tuple[str, Script]) -> None:
    url, script = receiver
    script.answers = [HANG, 200]
    delays: list[float] = []
    start = time.monotonic()
    webhook(url, delays, timeout_s=0.2).send(ALERT)
    assert time.monotonic() - start < 2.0  # gave up on the hung attempt after its timeout, not the server's 10 s
    assert len(script.received) == 2
    assert delays == [0.01]


def test_webhook_does_not_retry_a_400(receiver: tuple[str, Script]) -> None:
    url, script = receiver
    script.answers = [400]
    delays: list[float] = []
    with pytest.raises(SanitaryError, match="HTTP 400") as refused:
        webhook(url, delays).send(ALERT)
    assert url in str(refused.value)
    assert len(script.received) == 1
    assert delays == []


def test_file_sink_appends_lines(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_text('{"earlier": true}\n', encoding="utf-8")
    sink = FileSink(path)
    cleared = Alert("crowd", "occupancy", None, 8.0, 10.0, "above", "cleared", ALERT.at, "s", "c")
    sink.send(ALERT)
    sink.send(cleared)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines == ['{"earlier": true}', ALERT.to_json(), cleared.to_json()]


def test_file_sink_failure_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SanitaryError) as failed:
        FileSink(tmp_path / "missing" / "alerts.jsonl").send(ALERT)
    error = str(failed.value)
    assert "missing" in error and "alert_sinks.file" in error and "\n" not in error


def test_stdout_sink_writes_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    StdoutSink().send(ALERT)
    assert capsys.readouterr().out == ALERT.to_json() + "\n"


def test_sinks_from_config(tmp_path: Path) -> None:
    assert [type(s) for s in sinks_from_config(AlertSinks())] == [StdoutSink]
    sinks = sinks_from_config(
        AlertSinks(stdout=False, file=str(tmp_path / "a.jsonl"), webhook="http://127.0.0.1:9/x", webhook_retries=5)
    )
    file, hook = sinks
    assert isinstance(file, FileSink) and file.path == tmp_path / "a.jsonl"
    assert isinstance(hook, WebhookSink)
    assert (hook.url, hook.retries, hook.timeout_s) == ("http://127.0.0.1:9/x", 5, 5.0)
