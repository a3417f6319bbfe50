"""Random and boundary values for every camera config key and every number or time option of the commands
(issue 16): each either loads (runs) or is refused with one line, never a traceback, never a `running` run row.

The keys are found by walking the config's dataclasses, so a key added later is fuzzed without editing this file.
Seeded (no hypothesis): a failure names its case, and reruns the same.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import random
import signal
import types
import typing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import duckdb
import numpy as np
import pytest
from click.testing import Result
from typer.testing import CliRunner

from sanitary.analytics.windows import window_start
from sanitary.cli.app import app
from sanitary.config import CameraConfig, load_camera, parse_start
from sanitary.errors import SanitaryError
from sanitary.runtime.frame_fit import fit_to_frame
from sanitary.runtime.runs import config_params, params_hash
from sanitary.runtime.session import zone_areas

SEED = 16
# A config that uses every section, each list of tables with one entry, so that every key has a place to go.
BASE: dict[str, Any] = {
    "camera_id": "c1",
    "site_id": "s1",
    "site_kind": "market",
    "timezone": "Europe/Paris",
    "time": {"window_seconds": 60, "fps": 7.0, "start": "2021-03-01T08:00:00"},
    "detection": {"walkable": [[0, 95], [480, 95], [480, 360], [0, 360]]},
    "calibration": {
        "homography": [
            [0.0005760585816730672, -0.006504966208065933, 0.590408911911745],
            [-0.0015065192403842494, -0.004308649426213933, 0.8070334560520008],
            [9.957419396442306e-06, 0.00021025834216627581, 0.007126903343991559],
        ],
        "image_size": [480, 360],
    },
    "zones": [{"name": "z", "polygon": [[-15, -12], [-5, -12], [-5, -2]], "units": "m"}],
    "lines": [{"name": "l", "a": [220, 95], "b": [220, 360], "units": "px"}],
    "privacy_masks": [{"polygon": [[0, 0], [40, 0], [40, 40]]}],
    "alerts": [{"name": "a", "measure": "occupancy", "above": 10}],
}
HUGE = 2**63 - 1
ANY = ["", " ", "x", "[/]", True, [], {}, -1, 0, 1.5, HUGE, -HUGE, math.nan, math.inf]
FLOATS = [0, -1, 1, 0.5, 1e-9, 1e308, -1e308, math.nan, math.inf, -math.inf, HUGE, 10**30, "1", True, []]
INTS = [0, -1, 1, 2, 100, HUGE, -HUGE, 10**30, 1.5, math.nan, "1", False]
STRINGS = ["", " ", "x", "a" * 500, "9999-12-31T23:59:59", "0001-01-01", "2021-03-01T08:00:00+01:00", 1, []]
POINTS = [[0, 0], [1], [1, 2, 3], [math.nan, 0], [math.inf, 1], [1e308, -1e308], ["a", 0], "x", []]
POLYGONS = [
    [],
    [[0, 0]],
    [[0, 0], [1, 1]],
    [[0, 0], [5, 5], [9, 9]],
    [[0, 0], [100, 0], [100, 100]],
    [[0, 0], [math.nan, 0], [1, 1]],
    [[0, 0], [1e308, 0], [0, 1e308]],
    [[-1e6, -1e6], [1e6, -1e6], [0, 1e6]],
    [[0, 0, 0], [1, 1, 1], [2, 0, 2]],
    "x",
]
MATRICES = [
    [],
    [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
    [[1, 0, 0], [0, 1], [0, 0, 1]],
    [[0, 0, 0]] * 3,
    [[math.nan, 0, 0], [0, 1, 0], [0, 0, 1]],
    [[math.inf, 0, 0], [0, 1, 0], [0, 0, 1]],
    [[1e308] * 3] * 3,
    [[1, 0, 0], [0, 1, 0], [0, -1, 100]],
    [[1, 0], [0, 1]],
    [[1, 0, 0]] * 4,
]
SIZES = [[], [480, 360], [240, 180], [0, 0], [-1, 5], [1], [1, 2, 3], [HUGE, HUGE], [1.5, 2], [1, 1]]
FLOAT_LISTS = [[], [10, 5], [math.nan], [1e308], [0], [1, 2, 3], [-1], [1, 1]]


def leaf_keys(cls: type, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, type hint) of every key of the config, into sections and into the first entry of lists of tables."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name == "path":
            continue
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            yield (*prefix, f.name), "table"
            yield from leaf_keys(hint, (*prefix, f.name))
        elif get_origin(hint) is list and dataclasses.is_dataclass(get_args(hint)[0]):
            yield (*prefix, f.name), "tables"
            yield from leaf_keys(get_args(hint)[0], (*prefix, f.name, 0))
        else:
            yield (*prefix, f.name), hint


def candidates(hint: Any, rng: random.Random) -> list[Any]:
    """Boundary values of the key's type, values of other types, and a few random ones."""
    if hint in ("table", "tables"):
        return ["x", 1, [], [1], {}] if hint == "tables" else ["x", 1, []]
    origin = get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        return candidates(next(a for a in get_args(hint) if a is not type(None)), rng)
    if origin is Literal:
        return [*get_args(hint), "nope", "", 1]
    if hint is float:
        return [*FLOATS, rng.uniform(-1e6, 1e6), 10.0 ** rng.randint(-300, 300), rng.random()]
    if hint is int:
        return [*INTS, rng.randint(-(2**40), 2**40), rng.randint(0, 100)]
    if hint is bool:
        return [True, False, 0, "yes", []]
    if hint is str:
        return STRINGS
    if origin is tuple:
        return POINTS
    if origin is list:
        (item,) = get_args(hint)
        if get_origin(item) is tuple:
            return POLYGONS
        if get_origin(item) is list:
            return MATRICES
        return SIZES if item is int else FLOAT_LISTS
    return ANY


def toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{k} = {toml(v)}" for k, v in value.items()) + "}"


def with_value(config: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """A copy of `config` with the key at `path` set to `value` (unchanged where an earlier change broke the path)."""
    out = copy.deepcopy(config)
    node: Any = out
    for step in path[:-1]:
        if isinstance(step, int):
            if not (isinstance(node, list) and len(node) > step and isinstance(node[step], dict)):
                return out
            node = node[step]
        else:
            if not isinstance(node, dict) or not isinstance(node.setdefault(step, {}), dict | list):
                return out
            node = node[step]
    if isinstance(node, dict):
        node[path[-1]] = value
    return out


def write_config(path: Path, config: dict[str, Any]) -> None:
    path.write_text("".join(f"{key} = {toml(v)}\n" for key, v in config.items()))


def used_later(camera: CameraConfig) -> None:
    """What the run does with the values after loading (each of these once crashed on a value that loaded)."""
    now = datetime(2021, 3, 1, tzinfo=UTC)
    window_start(now, camera.time.window_seconds) + timedelta(seconds=camera.time.window_seconds)
    _ = now - timedelta(days=camera.privacy.retention_days)
    max(1, round(camera.tracking.max_lost_s * 1000.0))
    for rule in camera.alerts:
        _ = now + timedelta(seconds=rule.cooldown_s + rule.span_s)
    if camera.time.start:
        parse_start(camera.time.start, camera.tz, "time.start") + timedelta(days=2)
    params_hash(config_params(camera))
    zone_areas(camera)
    width, height = camera.calibration.image_size or (480, 360)
    try:
        zone_areas(fit_to_frame(camera, width // 2, height // 2))
    except SanitaryError as exc:
        assert "\n" not in str(exc)


def check_one(path: Path, config: dict[str, Any], case: str) -> bool:
    write_config(path, config)
    try:
        camera = load_camera(path)
    except SanitaryError as exc:
        message = str(exc)
        assert message.startswith(f"{path}: ") and "\n" not in message, f"{case}: {message!r}"
        return False
    used_later(camera)
    return True


def test_the_base_config_loads(tmp_path: Path) -> None:
    assert check_one(tmp_path / "c.toml", BASE, "base")


def fuzzed_configs(rng: random.Random, mixed: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """(case, config): every key set to each of its candidates, then `mixed` configs with three keys drawn."""
    keys = list(leaf_keys(CameraConfig))
    assert len(keys) > 80  # the walk reached the sections and the lists of tables
    for key, hint in keys:
        for value in candidates(hint, rng):
            yield f"{'.'.join(map(str, key))} = {value!r}", with_value(BASE, key, value)
    for _ in range(mixed):
        config = BASE
        for key, hint in rng.sample(keys, 3):
            config = with_value(config, key, rng.choice(candidates(hint, rng)))
        yield repr(config), config


def test_every_config_key_loads_or_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    loaded = refused = 0
    for case, config in fuzzed_configs(random.Random(SEED), mixed=200):
        ok = check_one(path, config, case)
        loaded, refused = loaded + ok, refused + (not ok)
    assert loaded > 100 and refused > 500


# ---------------------------------------------------------------- the commands' options

# Refused, each of them: the valid values are run a few times only, each run loading the models.
NUMBERS = ["0", "-1", "nan", "inf", "-inf", "1e308", "", "abc", "99999999999999999999"]
TIMES = ["", " ", "9999-01-01T00:00:00", "0001-01-01", "2021-13-01", "2021-03-01T08:00:00", "x"]
DAYS = ["", "9999-01-01", "0001-01-01", "2021-02-30", "2021-03-01"]
CAMERA = (
    'camera_id = "c1"\nsite_id = "s1"\nsite_kind = "market"\n'
    '[time]\nfps = 5\nstart = "2021-03-01T08:00:00"\n[heads]\nenabled = false\n'
)


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 64x48 clip of 3 frames (nobody in it) and a camera for it."""
    import cv2

    folder = tmp_path_factory.mktemp("fuzz")
    clip = folder / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 5, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    camera = folder / "cam.toml"
    camera.write_text(CAMERA)
    return clip, camera


def option_cases(clip: Path, camera: Path, db: Path) -> list[list[str]]:
    run = ["run", str(clip), "--camera", str(camera), "--db", str(db), "--without-signage", "test"]
    cases = [[*run, option, v] for option in ("--fps", "--sample-fps", "--segment-s") for v in NUMBERS]
    cases += [[*run, "--workers", v] for v in ("0", "-1", "1e3", "100000", "x")]
    cases += [[*run, "--start", v] for v in TIMES]
    cases += [[*run, "--sample-fps", "3", "--segment-s", "60"], [*run, "--fps", "3", "--sample-fps", "2.5"]]
    cases += [
        ["count", str(clip), "--camera", str(camera), option, v]
        for option in ("--fps", "--sample-fps")
        for v in NUMBERS
    ]
    live = ["live", str(clip), "--camera", str(camera), "--db", str(db)]
    cases += [[*live, option, v] for option in ("--analysis-fps", "--seconds", "--fps") for v in NUMBERS]
    report = ["report", "--db", str(db), "--out", str(db.with_suffix(".html"))]
    cases += [[*report, "--from", v, "--to", "2021-03-02"] for v in DAYS]
    cases += [[*report, "--from", "2021-03-01", "--to", v] for v in DAYS]
    cases += [["export", "--db", str(db), "--out", str(db.parent / "out"), "--since", v] for v in TIMES]
    cases += [["export", "--db", str(db), "--out", str(db.parent / "out"), "--purge-days", v] for v in [*NUMBERS, "3"]]
    sign = [
        "signage",
        "add",
        "--db",
        str(db),
        "--camera",
        str(camera),
        "--text",
        "t",
        "--language",
        "fr",
        "--where",
        "w",
    ]
    cases += [[*sign, "--posted", v] for v in TIMES]
    cases += [[*sign, "--posted", "2021-03-01T08:00:00", "--removed", v] for v in TIMES]
    cases += [["signage", "remove", "abc", "--db", str(db), "--at", v] for v in TIMES]
    return cases


@pytest.fixture(scope="module")
def models_once() -> Iterator[None]:
    """The models loaded once for the module's runs (each run would load them again), as the analysis does."""
    from sanitary.perception import faces, heads, masks, models, people

    cached = functools.cache(models.open_session)
    modules = (faces, heads, masks, people)
    for module in modules:
        module.open_session = cached  # type: ignore[attr-defined]
    yield
    for module in modules:
        module.open_session = models.open_session  # type: ignore[attr-defined]


def test_a_sample_of_fuzzed_configs_runs_or_fails_in_one_line(
    footage: tuple[Path, Path], tmp_path: Path, models_once: None
) -> None:
    """Configs that load go on to a run of the clip (64x48: the base config's 480x360 rescaled), those refused stop
    there; either way one line at most, and no run left `running`."""
    clip, _ = footage
    rng = random.Random(SEED + 1)
    sample = rng.sample(list(fuzzed_configs(rng, mixed=50)), 16)
    db = tmp_path / "fuzz.duckdb"
    exits = set()
    for i, (case, config) in enumerate(sample):
        camera = tmp_path / f"c{i}.toml"
        write_config(camera, config)
        args = ["run", str(clip), "--camera", str(camera), "--db", str(db), "--without-signage", "test"]
        result = CliRunner().invoke(app, args)
        check_cli(result, case, db)
        exits.add(result.exit_code)
    assert {0, 2} <= exits  # some ran, some were refused


def check_cli(result: Result, case: str, db: Path) -> None:
    """A command's outcome: done, or refused / failed in one line; never a traceback or a run left `running`."""
    assert result.exception is None or isinstance(result.exception, SystemExit), f"{case}: {result.exception!r}"
    assert "Traceback" not in result.stderr, case
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    if result.exit_code == 0:
        assert not errors, case
    elif "Usage:" in result.stderr:  # a value typer cannot parse as the option's type: its own message
        assert result.exit_code == 2, case
    else:
        assert result.exit_code in (1, 2) and len(errors) == 1, f"{case}: {result.exit_code} {result.stderr}"
    if db.exists():
        with duckdb.connect(str(db), read_only=True) as con:
            tables = {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
            if "runs" in tables:
                assert con.execute("SELECT count(*) FROM runs WHERE status = 'running'").fetchone() == (0,), case


@pytest.mark.slow
def test_every_number_and_time_option_runs_or_is_refused_in_one_line(
    footage: tuple[Path, Path], tmp_path: Path, models_once: None
) -> None:
    clip, camera = footage
    db = tmp_path / "fuzz.duckdb"
    runner = CliRunner()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for args in option_cases(clip, camera, db):
            case = " ".join(args[:1] + args[-2:])
            result = runner.invoke(app, args)
            check_cli(result, case, db if args[0] in ("run", "live") else tmp_path / "none.duckdb")
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
