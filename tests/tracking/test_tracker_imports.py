"""The tracker imports deep-sort-realtime without the whole of scipy.optimize, and matches with scipy's own solver.

Each check runs in a fresh process: what an import loads is decided once a process.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def loaded(code: str) -> dict:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(result.stdout.splitlines()[-1])


def test_importing_the_tracker_leaves_scipy_optimize_unloaded() -> None:
    seen = loaded(
        "import json, sys\n"
        "import sanitary.tracking.tracker\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('scipy.optimize', 'scipy.sparse')))))"
    )
    assert seen == ["scipy.optimize._lsap"]


def test_the_matching_solves_with_scipys_linear_sum_assignment_and_scipy_optimize_stays_whole() -> None:
    # Imported after the tracker, scipy.optimize is the whole package again, and its solver is the one the
    # tracker's matching calls: the same assignments on rectangular costs with ties and deep-sort's gate value.
    seen = loaded(
        "import json\n"
        "import numpy as np\n"
        "import sanitary.tracking.tracker\n"
        "from deep_sort_realtime.deep_sort import linear_assignment\n"
        "import scipy.optimize\n"
        "rng = np.random.default_rng(3)\n"
        "costs = [np.round(rng.uniform(0, 1, (n, m)), 1) for n, m in [(3, 5), (6, 2), (7, 7)]]\n"
        "for c in costs:\n"
        "    c[c > 0.7] = 0.7 + 1e-5\n"
        "print(json.dumps({\n"
        "    'same': linear_assignment.linear_sum_assignment is scipy.optimize.linear_sum_assignment,\n"
        "    'whole': callable(getattr(scipy.optimize, 'minimize', None)),\n"
        "    'solved': [[r.tolist() for r in linear_assignment.linear_sum_assignment(c)] for c in costs],\n"
        "    'expected': [[r.tolist() for r in scipy.optimize.linear_sum_assignment(c)] for c in costs],\n"
        "}))"
    )
    assert seen["same"] and seen["whole"]
    assert seen["solved"] == seen["expected"]
    assert [len(rows) for rows, _ in seen["solved"]] == [3, 2, 7]


def test_a_process_that_loaded_scipy_optimize_first_tracks_with_it() -> None:
    seen = loaded(
        "import json\n"
        "import scipy.optimize\n"
        "import sanitary.tracking.tracker\n"
        "from deep_sort_realtime.deep_sort import linear_assignment\n"
        "print(json.dumps(linear_assignment.linear_sum_assignment is scipy.optimize.linear_sum_assignment))"
    )
    assert seen is True
