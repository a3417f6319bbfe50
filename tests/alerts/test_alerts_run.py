"""Alerts end to end on real footage: rules in the camera config, sent to stdout, a file and a real webhook on
127.0.0.1 that fails before it recovers, stored in the alerts table, listed by `sanitary alerts list`; a receiver
that trickles or hangs holds neither a run nor a live unit's stop."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest

from sanitary.errors import SanitaryError
from sanitary.storage.query import run_query
from tests.alerts import receivers
from tests.conftest import NO_SIGN, PETS_CAMERA, ROOT, SPARSE_HEADS, run_cli


class Receiver(ThreadingHTTPServer):
    def __init__(self, failures: int) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.failures = failures  # requests answered 503 before the receiver recovers
        self.attempts = 0
        self.bodies: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/alerts"


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.attempts += 1
        if self.server.attempts <= self.server.failures:
            self.send_response(503)
        else:
            self.server.bodies.append(json.loads(body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(failures=2)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def camera(tmp_path: Path, rule: str, webhook: str, timeout_s: float = 2, window_s: int = 60) -> Path:
    path = tmp_path / "cam.toml"
    path.write_text(
        PETS_CAMERA.read_text().replace("window_seconds = 60", f"window_seconds = {window_s}")
        + f"\n[[alerts]]\n{rule}\n"
        + f'\n[alert_sinks]\nfile = "{tmp_path / "alerts.jsonl"}"\nwebhook = "{webhook}"\n'
        + f"webhook_timeout_s = {timeout_s}\nwebhook_retries = 3\nwebhook_backoff_s = 0.05\n"
        + SPARSE_HEADS
    )
    return path


@pytest.mark.slow
def test_crowding_alerts_reach_every_sink_once_and_are_stored(pets: Path, tmp_path: Path, receiver: Receiver) -> None:
    # PETS has 4 to 8 people over 10 s until ~50 s in, under 3 around 55-65 s, then 6 to 8 again.
    rule = 'name = "crowded"\nmeasure = "occupancy"\nabove = 5.5\nspan_s = 10\nhysteresis = 0.3\ncooldown_s = 20'
    cam = camera(tmp_path, rule, receiver.url)
    db = tmp_path / "a.duckdb"
    avi = pets / "pets09_s2l1_view001_480x360.avi"
    result = run_cli("run", *NO_SIGN, str(avi), "--camera", str(cam), "--db", str(db), "--sample-fps", "2")
    assert result.returncode == 0, result.stderr
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    filed = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    with duckdb.connect(str(db), read_only=True) as con:
        stored = con.execute(
            "SELECT state, epoch(event_at) - epoch(TIMESTAMPTZ '2009-03-01 12:00:00+00'), value, delivery"
            " FROM alerts ORDER BY event_at"
        ).fetchall()
    states = [s[0] for s in stored]
    # One raise per crowded episode, a clear when the plaza empties: not an alert per analysed frame.
    assert states[:3] == ["raised", "cleared", "raised"] and len(states) <= 4, stored
    assert 5 <= stored[0][1] <= 30 and stored[0][2] > 5.5
    assert 50 <= stored[1][1] <= 75 and stored[1][2] <= 5.5 * 0.7
    assert all(s[3] == "delivered" for s in stored)
    assert printed == filed == receiver.bodies
    assert [b["state"] for b in receiver.bodies] == states
    assert receiver.attempts == len(states) + 2  # the two 503s were retried, nothing was sent twice
    listed = run_cli("alerts", "list", "--db", str(db), "--json")
    assert [json.loads(line)["state"] for line in listed.stdout.splitlines()] == states


@pytest.mark.slow
def test_unreachable_webhook_loses_no_aggregate(pets: Path, tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rule = 'name = "anyone"\nmeasure = "occupancy"\nabove = 1\nspan_s = 1'
    cam = camera(tmp_path, rule, f"http://127.0.0.1:{port}/alerts")
    db = tmp_path / "a.duckdb"
    frames = str(pets / "frames" / "frame_000*.jpg")
    result = run_cli("run", *NO_SIGN, frames, "--camera", str(cam), "--db", str(db), "--start", "2009-03-01T12:00")
    assert result.returncode == 0, result.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        (delivery,) = con.execute("SELECT delivery FROM alerts").fetchone() or ("",)
        assert con.execute("SELECT count(*) FROM window_aggregates").fetchone() == (1,)
    assert f"alert webhook http://127.0.0.1:{port}/alerts failed after 4 attempts" in delivery


ANYONE = 'name = "anyone"\nmeasure = "occupancy"\nabove = 1\nspan_s = 1'
HELD = "stopped before the receiver answered"


@pytest.mark.slow
def test_a_trickling_receiver_holds_a_run_no_longer_than_the_grace(pets: Path, tmp_path: Path) -> None:
    # 200 OK then a byte every 0.1 s, a timeout of 30 s: only the end of the file's grace ends its delivery.
    db = tmp_path / "a.duckdb"
    frames = str(pets / "frames" / "frame_000*.jpg")
    with receivers.receiver("trickle") as r:
        cam = camera(tmp_path, ANYONE, r.url, timeout_s=30)
        args = ["run", *NO_SIGN, frames, "--camera", str(cam), "--db", str(db), "--start", "2009-03-01T12:00"]
        result = subprocess.run([sys.executable, "-m", "sanitary", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        (delivery,) = con.execute("SELECT delivery FROM alerts").fetchone() or ("",)
        windows = con.execute("SELECT count(*), sum(frames_analysed) FROM window_aggregates").fetchone()
    assert windows == (1, 7)  # 10 frames at 7 fps, 5 analysed a second
    assert delivery.startswith(f"alert webhook {r.url}: undelivered: {HELD}; check that it answers within "
                               "alert_sinks.webhook_timeout_s (30 s)"), delivery  # fmt: skip
    (line,) = [x for x in result.stderr.splitlines() if "not delivered" in x]
    assert line.startswith("alert 'anyone' raised at 2009-03-01T12:00") and HELD in line


@pytest.mark.slow
def test_sigterm_ends_live_within_seconds_whatever_the_receiver_does(pets: Path, tmp_path: Path) -> None:
    db = tmp_path / "unit.duckdb"
    avi = str(pets / "pets09_s2l1_view001_480x360.avi")
    with receivers.receiver("hang") as r:
        cam = camera(tmp_path, ANYONE, r.url, timeout_s=30, window_s=2)
        unit = subprocess.Popen(
            [sys.executable, "-m", "sanitary", "live", avi, "--camera", str(cam), "--db", str(db), *NO_SIGN,
             "--realtime", "--loop", "--fps", "7", "--analysis-fps", "2"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60  # loading the models on a busy machine
            while not windows(db) and time.monotonic() < deadline and unit.poll() is None:
                time.sleep(0.2)
            assert r.connections >= 1  # the alert is with the receiver, which holds it
            unit.send_signal(signal.SIGTERM)
            start = time.monotonic()
            _out, err = unit.communicate(timeout=30)
            took = time.monotonic() - start
        finally:
            if unit.poll() is None:  # left running by a failure: not left behind
                unit.kill()
                unit.communicate()
    assert unit.returncode == 0, err
    assert took < 5.0, err
    with duckdb.connect(str(db), read_only=True) as con:
        partial = con.execute("SELECT partial FROM window_aggregates ORDER BY window_start DESC LIMIT 1").fetchone()
        stored = [row[0] for row in con.execute("SELECT delivery FROM alerts").fetchall()]
    assert partial == (True,)  # the open window was committed
    assert stored and all(HELD in d for d in stored), stored
    assert len([x for x in err.splitlines() if "not delivered" in x and HELD in x]) == len(stored), err


def windows(db: Path) -> list[tuple]:
    """The windows committed so far, read between the unit's commits."""
    try:
        return run_query(db, "SELECT window_start FROM window_aggregates").rows
    except SanitaryError:
        return []  # not created yet, or the schema is still being made


@pytest.mark.slow
def test_alert_rule_errors_name_the_rule(tmp_path: Path) -> None:
    for rule, message in [
        ('name = "r"\nmeasure = "occupancy"', "alert 'r' needs exactly one of 'above' or 'below'"),
        ('name = "r"\nmeasure = "mask_rate"\nbelow = 0.5\nmin_people = 2', "min_people must be at least privacy.k_min"),
        ('name = "r"\nmeasure = "zone_occupancy"\nabove = 3\nzone = "hall"', "zone 'hall' is not one of the"),
        ('name = "r"\nmeasure = "crowd"\nabove = 3', "'alerts[0].measure' is 'crowd'; it must be one of"),
    ]:
        path = camera(tmp_path, rule, "http://127.0.0.1:9/x")
        result = run_cli("run", *NO_SIGN, str(tmp_path), "--camera", str(path), "--db", str(tmp_path / "a.duckdb"))
        assert result.returncode == 2 and message in result.stderr, result.stderr
