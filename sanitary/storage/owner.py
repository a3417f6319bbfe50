"""Which process writes a run, and whether that process is still alive.

A run reads `running` while its process works on it. A batch holds the database's lock for its whole run, but a
live unit holds it only while it commits a window, so another writer opening the file between two commits finds
the unit's run `running` and must not take it for dead. A run therefore records its owner: the host, the boot
(a reboot or a power cut ends every process, and process ids start again), the process id and the process's
start time (so a later process given the same id is not mistaken for it). Where the start time cannot be read
(not Linux), a process with that id is taken as alive.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Owner:
    host: str
    boot: str
    pid: int
    started: str

    def __str__(self) -> str:
        return f"{self.host} {self.boot} {self.pid} {self.started}"

    @staticmethod
    def parse(text: str) -> Owner | None:
        parts = text.split(" ")
        if len(parts) != 4 or not parts[2].isdigit():
            return None
        return Owner(parts[0], parts[1], int(parts[2]), parts[3])


def current(proc: Path = PROC) -> Owner:
    """This process."""
    return _owner(os.getpid(), proc)


def _owner(pid: int, proc: Path) -> Owner:
    return Owner(socket.gethostname(), _boot(proc), pid, _started(pid, proc))


def _boot(proc: Path) -> str:
    try:
        return (proc / "sys/kernel/random/boot_id").read_text().strip() or "-"
    except OSError:
        return "-"


def _started(pid: int, proc: Path) -> str:
    """The process's start time in clock ticks since boot ('-' where unknown, 'ended' for a zombie)."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return "-"
    # The command name (field 2) is in parentheses and may hold spaces: fields are counted after it.
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields and fields[0] in ("Z", "X"):
        return "ended"  # killed, not yet reaped by its parent
    return fields[19] if len(fields) > 19 else "-"


def gone(owner: Owner, proc: Path = PROC) -> bool:
    """Whether the process that wrote a run has ended, as far as this host can tell: a run of another host is
    never taken for dead (its process cannot be seen from here)."""
    if owner.host != socket.gethostname():
        return False
    if owner.boot != _boot(proc):
        return True
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, under another user
    started = _started(owner.pid, proc)
    return started == "ended" or (owner.started != "-" and started != owner.started)
