"""`sanitary` and `python -m sanitary`: the command line, or one line naming the package its imports miss."""

import os
import sys

from sanitary.cli.missing import missing_package

M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)
# An operator's own malloc settings, which sanitary leaves alone.
MALLOC_SETTINGS = ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")


def one_malloc_arena() -> bool:
    """Every thread of the process allocates from glibc's one main arena; whether it was set.

    glibc gives threads arenas of their own, up to 8 a core, each keeping what was freed in it for its thread:
    onnxruntime's worker pools, FFmpeg's decoding threads, the progress bar's. Measured on `sanitary run` over PETS
    at 480x360, every frame, 2-3 runs each on a loaded machine: peak resident memory 326-331 MB instead of 335-338,
    the same CPU time (the threads take turns on the models and allocate little while they run). Blocks mapped on
    their own from 128 KB up (MALLOC_MMAP_THRESHOLD_) took 6-7 MB more off, but cost 6-7 s more system time over
    795 frames in page faults: not set. Set before any thread starts, as the variable MALLOC_ARENA_MAX=1 would;
    glibc only (other C libraries have no such arenas).
    """
    if any(name in os.environ for name in MALLOC_SETTINGS):
        return False
    if "CS_GNU_LIBC_VERSION" not in getattr(os, "confstr_names", {}) or not os.confstr("CS_GNU_LIBC_VERSION"):
        return False
    import ctypes

    return ctypes.CDLL(None).mallopt(M_ARENA_MAX, 1) == 1


def main() -> None:
    one_malloc_arena()
    try:
        # Imported here, so that a run-time dependency missing from the install is one line, not a traceback.
        from sanitary.cli.app import app
    except ModuleNotFoundError as exc:
        message = missing_package(exc)
        if message is None:
            raise
        sys.stderr.write(f"error: {message}\n")
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        # Ctrl-C while the command was still loading: nothing had started, so nothing is left half done.
        sys.stderr.write("error: stopped (Ctrl-C) before the command started; nothing was done\n")
        raise SystemExit(130) from None
    app(prog_name="sanitary")


if __name__ == "__main__":
    main()
