"""Out of memory, as a unit short of it meets it: the real command under an address-space limit fails its file with
one line naming what ran out and the setting that lowers it, never onnxruntime's report or "a fault of sanitary's"."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import NO_SIGN, PETS_CAMERA

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and sets RLIMIT_AS")

HEAD_MODEL_OUT_OF_MEMORY = (
    "error: out of memory running the model head_points.onnx; lower heads.max_pixels, or set heads.enabled = false"
)
# The head model's activations on a whole frame in one pass (a million pixels and more) take far more than this
# beyond what a tiny input takes.
MARGIN_MB = 64
# The command run in-process, then the process's peak address space written to a file: the reference run's needs.
MEASURED = """
import sys
from pathlib import Path
out, sys.argv = Path(sys.argv[1]), ["sanitary", *sys.argv[2:]]
from sanitary.__main__ import main
try:
    main()
except SystemExit:
    pass
status = Path("/proc/self/status").read_text().splitlines()
out.write_text(next(line for line in status if line.startswith("VmPeak:")).split()[1])
"""


# The command with the head model run on the whole input in one pass, not on tiles: tiles bound its memory to a
# tile's, which a limit set this close cannot tell from the tiny run's; one pass needs what the limit denies.
UNTILED = """
import sys
from sanitary.perception.heads import HeadModel
HeadModel.__init__.__defaults__ = (10**9,)
sys.argv = ["sanitary", *sys.argv[1:]]
from sanitary.__main__ import main
main()
"""


def run_args(frames: Path, camera: Path, db: Path) -> list[str]:
    """Three PETS frames at the true 7 fps, every one analysed, the head model on each (they are photos)."""
    return ["run", *NO_SIGN, str(frames / "frame_000[0-2].jpg"), "--fps", "7", "--sample-fps", "7",
            "--camera", str(camera), "--db", str(db)]  # fmt: skip


def test_out_of_memory_is_one_line_and_a_failed_run(pets: Path, tmp_path: Path) -> None:
    tiny, full = tmp_path / "tiny-heads.toml", tmp_path / "pets.toml"
    tiny.write_text(PETS_CAMERA.read_text() + "\n[heads]\nmax_pixels = 65536\n")
    full.write_text(PETS_CAMERA.read_text())
    peak = tmp_path / "vmpeak"
    reference = [sys.executable, "-c", MEASURED, str(peak), *run_args(pets / "frames", tiny, tmp_path / "ref.duckdb")]
    # One malloc arena: glibc otherwise reserves 64 MB of address space a thread that it gives up under a limit, and
    # the reference's peak would hold room the limited run does without.
    env = {**os.environ, "MALLOC_ARENA_MAX": "1"}
    subprocess.run(reference, capture_output=True, text=True, check=True, timeout=600, env=env)
    limit = (int(peak.read_text()) + MARGIN_MB * 1024) * 1024

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    db = tmp_path / "short.duckdb"
    result = subprocess.run(
        [sys.executable, "-c", UNTILED, *run_args(pets / "frames", full, db)],
        capture_output=True,
        text=True,
        preexec_fn=limited,
        timeout=600,
        env=env,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert errors == [HEAD_MODEL_OUT_OF_MEMORY]
    for noise in ("onnxruntime", "Traceback", "fault of sanitary", "[E:"):
        assert noise not in result.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT status, error FROM runs").fetchall()
    assert rows == [("failed", HEAD_MODEL_OUT_OF_MEMORY.removeprefix("error: "))]
