"""Start-up benchmark: how long the commands that analyse no footage take, and which heavy modules they import.

    .venv/bin/python benchmarks/startup_benchmark.py [--runs N] [--data DIR] [--out JSON]

A small database is made first with `sanitary run` on 20 PETS 2009 frames. Then each command (`query`, `report`,
`merge`, `import`, `export`, `audit`, `signage list`, `alerts list`, and `--help`) runs as an operator runs it, in
a fresh process: the median wall time of --runs runs, and the heavy modules present when the process ends
(onnxruntime, OpenCV, the tracker, torch, Ray, the perception and tracking stages). Prints one table and writes
benchmarks/results/startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb

ROOT = Path(__file__).resolve().parents[1]
CAMERA = ROOT / "examples" / "pets2009-view001.toml"
FRAMES = 20
# Modules a command that analyses no footage should never need: inference, decoding, the tracker (and the scipy
# it alone needs), training, Ray. The detectors and the tracker import them, so their absence proves theirs.
HEAVY = ("onnxruntime", "cv2", "deep_sort_realtime", "scipy", "torch", "ray")
# The project's own stages that analyse footage, listed to show which of them a command loads.
STAGES = ("sanitary.perception.", "sanitary.tracking.")
TARGET_S = 1.0
# Records the modules loaded when the command's process ends, into the file named by the environment.
TRACED = """
import atexit, json, os, sys
atexit.register(lambda: open(os.environ["STARTUP_MODULES"], "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["sanitary", *sys.argv[1:]]
from sanitary.__main__ import main
main()
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "pets2009-s2l1")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each command (the median is reported)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "startup.json")
    return parser.parse_args(argv)


@dataclass(frozen=True)
class Timing:
    command: str
    argv: list[str]
    median_s: float
    min_s: float
    max_s: float
    cpu_median_s: float  # user + system time of the process: what a shared machine's load does not inflate
    heavy: list[str]
    stages: list[str]


def sanitary(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "sanitary", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=900
    )
    if result.returncode != 0:
        raise SystemExit(f"sanitary {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def small_database(data: Path, work: Path) -> Path:
    frames = work / "frames"
    frames.mkdir()
    for frame in sorted((data / "frames").iterdir())[:FRAMES]:
        (frames / frame.name).symlink_to(frame)
    db = work / "small.duckdb"
    sanitary("run", str(frames), "--camera", str(CAMERA), "--db", str(db), "--without-signage", "benchmark", cwd=work)
    return db


def commands(db: Path, work: Path) -> dict[str, list[str]]:
    with duckdb.connect(str(db), read_only=True) as con:
        first, last = con.execute(
            "SELECT min(window_start)::DATE, max(window_end)::DATE FROM window_aggregates"
        ).fetchone()
    exported = work / "exported"
    sanitary("export", "--db", str(db), "--out", str(exported), cwd=work)
    return {
        "--help": ["--help"],
        "query": ["query", "SELECT count(*), sum(people_sum) FROM window_aggregates", "--db", str(db)],
        "report": ["report", "--db", str(db), "--from", str(first), "--to", str(last), "--out", str(work / "r.html")],
        "merge": ["merge", str(db), "--into", str(work / "merged.duckdb")],
        "export": ["export", "--db", str(db), "--out", str(work / "export"), "--since", "2000-01-01T00:00:00Z"],
        "import": ["import", str(exported), "--db", str(work / "central.duckdb")],
        "audit": ["audit", "--db", str(db)],
        "signage": ["signage", "list", "--db", str(db)],
        "alerts": ["alerts", "list", "--db", str(db)],
    }


def loaded_modules(args: list[str], work: Path) -> list[str]:
    record = work / "modules.json"
    env = {**os.environ, "STARTUP_MODULES": str(record)}
    result = subprocess.run([sys.executable, "-c", TRACED, *args], capture_output=True, text=True, cwd=work, env=env)
    if result.returncode != 0:
        raise SystemExit(f"sanitary {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return json.loads(record.read_text())


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(name: str, args: list[str], runs: int, work: Path) -> Timing:
    times, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), children_cpu_s()
        sanitary(*args, cwd=work)
        times.append(time.perf_counter() - start)
        cpu.append(children_cpu_s() - start_cpu)
    shown = [a if not a.startswith(str(work)) else Path(a).name for a in args]
    loaded = loaded_modules(args, work)
    heavy = [m for m in HEAVY if m in loaded]
    stages = [m for m in loaded if m.startswith(STAGES)]
    return Timing(name, shown, statistics.median(times), min(times), max(times), statistics.median(cpu), heavy, stages)


def interpreter_floor(runs: int) -> float:
    """The same Python starting and stopping with nothing imported: the part of a start-up no code can save."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def slowest_imports(work: Path, top: int = 12) -> list[dict[str, Any]]:
    """`python -X importtime` of `sanitary --help`: what the command line module imports directly, costliest first
    (cumulative: with everything each one imports in turn)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sanitary", "--help"], capture_output=True, text=True, cwd=work
    )
    rows = []  # (depth, module, cumulative ms), children listed before their parent
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "cumulative" not in line:
            name = line.split("|")[2]
            depth = (len(name) - len(name.lstrip())) // 2
            rows.append((depth, name.strip(), int(line.split("|")[1]) / 1000))
    (at,) = [i for i, row in enumerate(rows) if row[1] == "sanitary.cli.app"]
    children = []
    for depth, name, cumulative in reversed(rows[:at]):
        if depth <= rows[at][0]:
            break
        if depth == rows[at][0] + 1:
            children.append({"module": name, "cumulative_ms": cumulative})
    total = {"module": "sanitary.cli.app (all)", "cumulative_ms": rows[at][2]}
    return [total, *sorted(children, key=lambda row: -row["cumulative_ms"])[:top]]


def render(report: dict[str, Any]) -> str:
    lines = [
        f"{report['machine']['cpu_count']} cores, {report['machine']['platform']}, load "
        f"{report['machine']['load_average'][0]:.1f}; median of {report['runs']} runs; Python alone "
        f"{report['python_floor_s']:.3f} s",
        "",
        f"{'command':<10} {'median s':>9} {'min s':>7} {'max s':>7} {'CPU s':>6}  heavy modules; stages loaded",
    ]
    for row in report["commands"]:
        heavy = ", ".join(row["heavy"]) or "none"
        stages = len(row["stages"])
        lines.append(
            f"{row['command']:<10} {row['median_s']:9.3f} {row['min_s']:7.3f} {row['max_s']:7.3f} "
            f"{row['cpu_median_s']:6.2f}  {heavy}; "
            f"{stages} perception/tracking modules"
        )
    lines += ["", "costliest imports of the command line module (`python -X importtime -m sanitary --help`, ms)"]
    lines += [f"  {row['module']:<40} {row['cumulative_ms']:9.1f}" for row in report["slowest_imports"]]
    lines += ["", "Targets"]
    lines += [f"  {name:<52} {'met' if met else 'NOT MET'}" for name, met in report["targets"].items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.data / "frames").is_dir():
        print(f"skipped: {args.data / 'frames'} not found")
        return 0
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        db = small_database(args.data, work)
        rows = [timed(name, argv_, args.runs, work) for name, argv_ in commands(db, work).items()]
        floor = interpreter_floor(args.runs)
        slowest = slowest_imports(work)
    report: dict[str, Any] = {
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "load_average": os.getloadavg()},
        "python": sys.version.split()[0],
        "runs": args.runs,
        "database": f"sanitary run on the first {FRAMES} PETS 2009 S2L1 frames",
        "python_floor_s": floor,
        "commands": [asdict(row) for row in rows],
        "slowest_imports": slowest,
    }
    report["targets"] = {
        f"every command starts in under {TARGET_S:g} s (median)": all(row.median_s < TARGET_S for row in rows),
        "no command imports inference, decoding or tracking": not any(row.heavy for row in rows),
    }
    print(render(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
