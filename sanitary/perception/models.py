"""Where shipped model files live and how an ONNX session is opened for CPU inference, bounded in memory."""

from __future__ import annotations

import functools
import importlib.resources
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sanitary.errors import OutOfMemoryError, SanitaryError

if TYPE_CHECKING:
    import numpy as np
    import onnxruntime as ort

# The package data `sanitary.weights` (the checkout's weights/ folder, see pyproject.toml), unless overridden.
WEIGHTS_DIR = Path(os.environ.get("SANITARY_WEIGHTS") or str(importlib.resources.files("sanitary.weights")))
# Items (face crops, head regions) a run takes at most: a model's activations grow with its batch (the mask
# classifier's by about 5 MB a face), and past a few items a larger batch is no faster on a CPU.
MAX_BATCH = 8
# onnxruntime's ArenaExtendStrategy kSameAsRequested: the arena grows by what a run needs, not to the next power of 2.
SAME_AS_REQUESTED = 1
# What each model's memory grows with, for the one line that says what to change when it runs out.
LOWERS_MEMORY = {
    "head_points.onnx": "lower heads.max_pixels, or set heads.enabled = false",
}
LOWERS_MEMORY_OTHERWISE = (
    "free memory on the unit, or lower heads.max_pixels (or heads.enabled = false): the head model uses most"
)
# onnxruntime reports a failed allocation as an exception of its own whose text says so, never as MemoryError.
ALLOCATION_FAILED = re.compile(r"Failed to allocate|bad_alloc|bad allocation|out of memory", re.IGNORECASE)


class ModelSession:
    """An onnxruntime session whose running out of memory is one line naming the model and the setting that
    lowers it (`OutOfMemoryError`), never onnxruntime's own report."""

    def __init__(self, session: ort.InferenceSession, name: str, run_options: ort.RunOptions) -> None:
        self.session = session
        self.name = name
        self.run_options = run_options

    def get_inputs(self) -> list[Any]:
        return self.session.get_inputs()

    def run(self, outputs: Sequence[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with out_of_memory_as_error(self.name, "running"):
            return self.session.run(outputs, feeds, self.run_options)

    def run_batches(self, input_name: str, items: np.ndarray) -> list[np.ndarray]:
        """The outputs for a batch of items, run at most MAX_BATCH at a time: memory stays that of MAX_BATCH
        items however many people are in view."""
        import numpy as np  # here, not at the top: commands that analyse no footage import this module (WEIGHTS_DIR)

        parts = [self.run(None, {input_name: items[i : i + MAX_BATCH]}) for i in range(0, len(items), MAX_BATCH)]
        return [np.concatenate(outputs) for outputs in zip(*parts, strict=True)]


@contextmanager
def out_of_memory_as_error(name: str, doing: str) -> Iterator[None]:
    """An allocation that failed inside onnxruntime, or a MemoryError, as `OutOfMemoryError`."""
    try:
        yield
    except Exception as exc:  # onnxruntime's exceptions derive from Exception alone; MemoryError too
        if not (isinstance(exc, MemoryError) or ALLOCATION_FAILED.search(str(exc))):
            raise
        fix = LOWERS_MEMORY.get(name, LOWERS_MEMORY_OTHERWISE)
        raise OutOfMemoryError(f"out of memory {doing} the model {name}; {fix}") from None


def open_session(file_name: str, threads: int = 0) -> ModelSession:
    """A CPU session for a model in weights/; `threads` 0 lets onnxruntime use one per core."""
    path = WEIGHTS_DIR / file_name
    if not path.is_file():
        raise SanitaryError(
            f"{path}: model file missing; reinstall sanitary or set SANITARY_WEIGHTS to a folder holding {file_name}"
        )
    return cpu_session(path, threads)


def cpu_session(path: Path, threads: int = 0) -> ModelSession:
    """A CPU session for the ONNX model at `path`, with no BLAS thread pool spinning beside it."""
    # ONNX Runtime writes a device id and a telemetry database under ~/.cache/Microsoft as soon as it is imported
    # (seen with strace in tests/governance/test_anonymity_run.py; setting this any later, even before the first
    # session, is too late): a persistent identifier of the unit, which a privacy-by-design tool must not leave
    # behind. This is the package's only import of onnxruntime (tests/perception/test_models.py checks), and it is
    # made here, not at the top, so that commands which analyse no footage never load it.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime as ort

    _quiet_blas()
    # Errors are ours to report, in one line: onnxruntime's own logger would print its multi-line report first.
    ort.set_default_logger_severity(4)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 4
    # A memory pattern is planned and kept for every input shape met, and shapes change with the frame's people
    # (faces, masks) and sizes (a folder's photos): measured, it held about 100 MB more on a crowd at 1280x720.
    options.enable_mem_pattern = False
    # Every session takes its buffers from one arena, grown by what is asked rather than doubled: the models run
    # one after another, so the process holds the largest model's working memory, not each model's high-water mark
    # side by side (measured: 30 MB less on a crowd at 1280x720 without the head model).
    _shared_arena(ort)
    options.add_session_config_entry("session.use_env_allocators", "1")
    # Threads that wait for work sleep rather than spin: the models run back to back, each with its own pool, and a
    # pool spinning after its run takes the cores from the next model, the decoder and the tracker. Measured on 2
    # shared cores (load average 7-9), 213 frames of a crowd at 1280x720 without the head model: 100-120 s -> 40-43 s
    # of wall time, 72 -> 31 s of CPU time.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    run_options = ort.RunOptions()
    run_options.log_severity_level = 4
    # Explicit provider: some onnxruntime builds would otherwise pick a remote or GPU provider first.
    with out_of_memory_as_error(path.name, "loading"):
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return ModelSession(session, path.name, run_options)


@functools.cache
def _shared_arena(ort: Any) -> None:
    """Registers, once a process, the CPU arena every session shares (`session.use_env_allocators`)."""
    where = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    ort.create_and_register_allocator(where, ort.OrtArenaCfg({"arena_extend_strategy": SAME_AS_REQUESTED}))


def _quiet_blas() -> None:
    # BLAS beside inference only ever sees tiny matrices (the tracker's Kalman filter, 3x3 homographies), while
    # onnxruntime keeps the cores busy; OpenBLAS's own thread pool then spins against it and halves the frame rate
    # (measured: 9.1 -> 16.4 frames/s on 2 cores). OpenBLAS reads OPENBLAS_NUM_THREADS once, when it is loaded:
    # the variable reaches the copies loaded from now on (scipy's, when the tracker comes later), threadpoolctl
    # the ones already loaded (numpy's). An operator's own setting is left alone.
    from threadpoolctl import threadpool_limits

    if "OPENBLAS_NUM_THREADS" not in os.environ:
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        threadpool_limits(1, user_api="blas")
