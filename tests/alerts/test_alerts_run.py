"""Alerts end to end on real footage: rules in the camera config, sent to stdout, a file and a real webhook on
127.0.0.1 that fails before it recovers, stored in the alerts table, listed by `sanitary alerts list`."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest

from tests.conftest import NO_SIGN, PETS_CAMERA, run_cli


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


def camera(tmp_path: Path, rule: str, webhook: str) -> Path:
    path = tmp_path / "cam.toml"
    path.write_text(
        PETS_CAMERA.read_text()
        + f"\n[[alerts]]\n{rule}\n"
        + f'\n[alert_sinks]\nfile = "{tmp_path / "alerts.jsonl"}"\nwebhook = "{webhook}"\n'
        + "webhook_timeout_s = 2\nwebhook_retries = 3\nwebhook_backoff_s = 0.05\n"
    )
    return path


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
