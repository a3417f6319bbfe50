"""HTTP receivers on 127.0.0.1, each a real socket served by a thread: one that never answers, one that says 200 OK
and then trickles its headers, one that resets the connection, one that fails once then recovers, and a port nobody
listens on."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

Behaviour = Literal["hang", "trickle", "reset", "500 then 200"]
TRICKLE_EVERY_S = 0.1  # faster than any read timeout a test sets: only a deadline on the whole answer ends it


@dataclass
class Receiver:
    url: str
    connections: int = 0


@contextmanager
def receiver(behaviour: Behaviour) -> Iterator[Receiver]:
    """A receiver that behaves so with every connection (but "500 then 200"), until the block ends."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)
    done = threading.Event()
    got = Receiver(f"http://127.0.0.1:{server.getsockname()[1]}/alerts")

    def answer(conn: socket.socket, nth: int) -> None:
        with conn:
            if behaviour == "reset":
                # Linger 0: close() sends a RST, as a crashing receiver or a firewall does.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            _read_request(conn)
            if behaviour == "500 then 200":
                status = b"500 Internal Server Error" if nth == 1 else b"200 OK"
                conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            if behaviour == "trickle":
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not done.wait(TRICKLE_EVERY_S):
                    try:
                        conn.sendall(b"a")
                    except OSError:
                        return  # the client gave up
            done.wait()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            got.connections += 1
            threading.Thread(target=answer, args=(conn, got.connections), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield got
    finally:
        done.set()
        thread.join()
        server.close()


def _read_request(conn: socket.socket) -> None:
    """The whole request, so that closing after the answer does not reset it (unread bytes would)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += conn.recv(65536)


def closed_port_url() -> str:
    """A port nobody listens on: every connection is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/alerts"
