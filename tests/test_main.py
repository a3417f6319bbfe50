"""The process `sanitary` starts: its threads share glibc's one malloc arena, unless the operator set malloc up."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(
    "CS_GNU_LIBC_VERSION" not in getattr(os, "confstr_names", {}), reason="malloc arenas are glibc's"
)

# The command line runs (`--help`), then threads allocate as onnxruntime's and FFmpeg's do, each for the first
# time; glibc's malloc_info then lists one <heap> an arena.
ARENAS = """
import ctypes, sys, tempfile, threading
sys.argv = ["sanitary", "--help"]
from sanitary.__main__ import main
try:
    main()
except SystemExit:
    pass
barrier = threading.Barrier(4)
def work():
    barrier.wait()
    kept = [bytearray(4096) for _ in range(64)]
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
with tempfile.NamedTemporaryFile(suffix=".xml") as out:
    stream = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    print("ARENAS", open(out.name).read().count("<heap nr="))
"""


def arenas(**env: str) -> int:
    clean = {k: v for k, v in os.environ.items() if k not in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")}
    result = subprocess.run(
        [sys.executable, "-c", ARENAS], capture_output=True, text=True, cwd=ROOT, env={**clean, **env}, check=True
    )
    return int(result.stdout.rsplit("ARENAS", 1)[1])


def test_threads_share_one_malloc_arena() -> None:
    assert arenas() == 1


def test_an_operators_own_malloc_setting_is_left_alone() -> None:
    # glibc's own default (8 arenas a core) would give each of the 4 threads its own beside the main one.
    assert arenas(MALLOC_ARENA_MAX="3") == 3
    assert arenas(GLIBC_TUNABLES="glibc.malloc.arena_max=2") == 2
