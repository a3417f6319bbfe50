"""Ray batch benchmark: the speed-up of 2 workers over 1 on the same footage, and footage hours per hour per core.

    .venv/bin/python benchmarks/cluster_benchmark.py [--camera TOML] [--data DIR] [--sample-fps F]
        [--window-s N] [--segment-s S] [--out JSON]

Both arms run in this process on a local Ray cluster of 1, then 2 CPUs, with one inference thread per worker, so
the ideal speed-up is 2.0x; what falls short of it is segment imbalance (a file cut into few segments) and Ray's
own start-up. The overlap analysed around every cut (lead-in and tail, not counted) is reported as the share of
extra frames analysed over a local run. Prints one table and writes benchmarks/results/cluster.json; exits 0 with
"skipped: ..." when the data set or Ray is absent.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "pets2009-s2l1"
VIDEO = "pets09_s2l1_view001_480x360.avi"
REASON = "public research data set, recorded with consent"


def arm(workers: int, specs: list[str], camera_path: Path, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import ray

    from sanitary.config import load_camera
    from sanitary.runtime.cluster import WORKER_ENV, run_on_ray
    from sanitary.runtime.runs import RunOptions, plan_batch

    camera = load_camera(camera_path)
    camera = dataclasses.replace(camera, time=dataclasses.replace(camera.time, window_seconds=args.window_s))
    options = RunOptions(sample_fps=args.sample_fps, signage_override=REASON)
    plan = plan_batch(specs, camera, options)
    frames: list[int] = []
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": WORKER_ENV})
    try:
        # Workers are started once before the clock, as a long batch amortises them.
        ray.get([ray.remote(lambda: None).options(num_cpus=1).remote() for _ in range(workers)])
        t0 = time.perf_counter()
        db = tmp / f"w{workers}.duckdb"
        outcomes = run_on_ray(plan, db, options, None, frames.append, tmp / "parts", args.segment_s).outcomes
        wall = time.perf_counter() - t0
        load = os.getloadavg()[0]
    finally:
        ray.shutdown()
    assert all(o.status == "done" for o in outcomes), outcomes
    footage = sum(f.duration_s for f in plan.files)
    return {
        "workers": workers,
        "wall_s": round(wall, 2),
        "footage_s": round(footage, 1),
        "frames_counted": sum(frames),
        "footage_hours_per_hour_per_core": round(footage / wall / workers, 2),
        # Other processes on the machine take cores from the arms: a load above the cores given means contention.
        "load_avg_1m_after": round(load, 2),
    }


def segment_cpu(specs: list[str], camera_path: Path, args: argparse.Namespace, tmp: Path) -> list[float]:
    """CPU seconds of each segment task, run one after the other in this process: what the arms share out,
    free of other processes on the machine."""
    from sanitary.config import load_camera
    from sanitary.runtime.cluster import analyse_segment, segment_file
    from sanitary.runtime.runs import RunOptions, plan_batch

    camera = load_camera(camera_path)
    camera = dataclasses.replace(
        camera,
        time=dataclasses.replace(camera.time, window_seconds=args.window_s),
        detection=dataclasses.replace(camera.detection, threads=1),
    )
    seconds = []
    for planned in plan_batch(specs, camera, RunOptions(sample_fps=args.sample_fps)).files:
        job = dataclasses.replace(planned.job, camera=camera)
        for segment in segment_file(job, planned.duration_s, args.segment_s):
            t0 = time.process_time()
            analyse_segment(job, segment, tmp / f"cpu-{segment.index}.parquet")
            seconds.append(time.process_time() - t0)
    return seconds


def schedule_speedup(seconds: list[float], workers: int) -> float:
    """Speed-up of `workers` over one when tasks go, longest first, to the worker free first (Ray's order may
    differ): the bound the segmentation itself puts on the speed-up."""
    loads = [0.0] * workers
    for s in sorted(seconds, reverse=True):
        loads[loads.index(min(loads))] += s
    return sum(seconds) / max(loads)


def overlap_share(specs: list[str], camera_path: Path, args: argparse.Namespace) -> float:
    """Frames analysed by the segments (lead-in and tail included) over the frames a local run analyses."""
    from sanitary.config import load_camera
    from sanitary.runtime.cluster import segment_file
    from sanitary.runtime.runs import RunOptions, plan_batch

    camera = load_camera(camera_path)
    camera = dataclasses.replace(camera, time=dataclasses.replace(camera.time, window_seconds=args.window_s))
    analysed = owned = 0.0
    for planned in plan_batch(specs, camera, RunOptions(sample_fps=args.sample_fps)).files:
        for segment in segment_file(planned.job, planned.duration_s, args.segment_s):
            end = planned.job.start.timestamp() + planned.duration_s
            lo = max(planned.job.start.timestamp(), (segment.lead_in or planned.job.start).timestamp())
            hi = min(end, segment.tail.timestamp() if segment.tail else end)
            analysed += hi - lo
        owned += planned.duration_s
    return round(analysed / owned - 1.0, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camera", type=Path, default=ROOT / "examples" / "pets2009-view001.toml")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--sample-fps", type=float, default=2.0)
    parser.add_argument("--window-s", type=int, default=10)
    parser.add_argument("--segment-s", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cluster.json")
    args = parser.parse_args()
    video = args.data / VIDEO
    if not video.is_file():
        print(f"skipped: {video} not found (see ../shared/datasets/README.md)")
        return
    if importlib.util.find_spec("ray") is None:
        print("skipped: Ray is not installed (pip install 'sanitary[cluster]')")
        return
    specs = [str(video)]
    with tempfile.TemporaryDirectory() as tmp:
        arms = [arm(n, specs, args.camera, args, Path(tmp)) for n in (1, 2)]
        cpu = segment_cpu(specs, args.camera, args, Path(tmp))
    speedup = round(arms[0]["wall_s"] / arms[1]["wall_s"], 2)
    footage = arms[0]["footage_s"]
    result = {
        "input": VIDEO,
        "sample_fps": args.sample_fps,
        "window_s": args.window_s,
        "segment_s": args.segment_s,
        "inference_threads_per_worker": 1,
        "arms": arms,
        "speedup_2_over_1": speedup,
        "ideal_speedup": 2.0,
        "overlap_extra_frames_share": overlap_share(specs, args.camera, args),
        "cpu_count": os.cpu_count(),
        "segment_cpu_s": [round(c, 2) for c in cpu],
        "schedule_speedup_2_over_1": round(schedule_speedup(cpu, 2), 2),
        "footage_hours_per_cpu_hour": round(footage / sum(cpu), 2),
    }
    print(f"{'workers':>8} {'wall s':>8} {'footage s':>10} {'footage h / h / core':>21} {'load 1m':>8}")
    for a in arms:
        cells = (
            a["workers"],
            a["wall_s"],
            a["footage_s"],
            a["footage_hours_per_hour_per_core"],
            a["load_avg_1m_after"],
        )
        print("{:>8} {:>8} {:>10} {:>21} {:>8}".format(*cells))
    overlap = result["overlap_extra_frames_share"]
    print(f"speed-up 2 over 1: {speedup}x (ideal 2.0x); overlap re-analysed: {overlap:.0%}")
    print(
        f"segment CPU s: {result['segment_cpu_s']}; speed-up their schedule allows: "
        f"{result['schedule_speedup_2_over_1']}x; footage hours per CPU hour: {result['footage_hours_per_cpu_hour']}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
