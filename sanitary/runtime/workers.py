"""The life of a batch's worker process: it ends with the batch that started it, however the batch ends (kill -9
included), and reports its progress through the queue it was handed at its start.

Kept apart from the batch and light to import: a worker runs this as soon as it starts, before the imports of the
analysis (seconds of OpenCV and ONNX Runtime), so that it is never orphaned while it loads.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from typing import Any

PR_SET_PDEATHSIG = 1
WATCH_S = 1.0

# This worker's progress queue, set as it starts.
_progress: Any = None


def start_worker(parent: int, progress: Any) -> None:
    """The kernel kills this worker when its parent dies (Linux); a watchdog thread checks for a new parent
    elsewhere, and a parent that died before the first could be set is caught here."""
    global _progress
    _progress = progress
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="parent-watch").start()


def _watch_parent(parent: int, every_s: float = WATCH_S) -> None:
    while os.getppid() == parent:
        time.sleep(every_s)
    os._exit(1)


def report(frames: int) -> None:
    """Frames analysed since the last report, for the batch's progress bar."""
    _progress.put(frames)
