"""Telling a run whose process died from one still going, on a /proc made for the test."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from sanitary.storage.owner import Owner, current, gone

BOOT = "6f1c0a52-0000-4000-8000-000000000001"


def fake_proc(tmp_path: Path, pid: int, state: str = "S", started: str = "4242") -> Path:
    proc = tmp_path / "proc"
    (proc / "sys/kernel/random").mkdir(parents=True)
    (proc / "sys/kernel/random/boot_id").write_text(BOOT + "\n")
    (proc / str(pid)).mkdir()
    # Fields after the command name: state, then 18 more, then the start time (field 22).
    rest = [state, *("0" * 18), started, "0", "0"]
    (proc / str(pid) / "stat").write_text(f"{pid} (python3 -m x) " + " ".join(rest) + "\n")
    return proc


def test_the_current_process_is_recorded_and_read_back(tmp_path: Path) -> None:
    pid = os.getpid()
    proc = fake_proc(tmp_path, pid)
    me = current(proc)
    assert me == Owner(socket.gethostname(), BOOT, pid, "4242")
    assert Owner.parse(str(me)) == me
    assert not gone(me, proc)


@pytest.mark.parametrize(
    ("change", "dead"),
    [
        ({}, False),
        ({"boot": "another-boot"}, True),  # a reboot or a power cut ended it
        ({"started": "1"}, True),  # its pid was given to a later process
        ({"host": "elsewhere"}, False),  # cannot be seen from here: never taken for dead
    ],
)
def test_an_owner_is_gone_after_a_reboot_or_when_its_pid_was_reused(
    tmp_path: Path, change: dict[str, str], dead: bool
) -> None:
    pid = os.getpid()
    proc = fake_proc(tmp_path, pid)
    owner = Owner(**{**current(proc).__dict__, **change})
    assert gone(owner, proc) is dead


def test_a_killed_process_not_yet_reaped_is_gone(tmp_path: Path) -> None:
    pid = os.getpid()
    owner = current(fake_proc(tmp_path / "a", pid))
    assert gone(owner, fake_proc(tmp_path / "b", pid, state="Z"))


def test_an_ended_process_is_gone_and_odd_owners_are_not_parsed() -> None:
    owner = current()
    assert not gone(owner)
    assert gone(Owner(owner.host, owner.boot, 2**22 + 12345, owner.started))  # beyond pid_max: no such process
    assert Owner.parse("host boot nine 1") is None and Owner.parse("") is None
