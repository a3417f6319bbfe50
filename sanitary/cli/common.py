"""What every command shares: the console, the one-line error wrapper, and the options several commands take.

Every line a command prints may hold stored or user text (an id, a path, a sign's words): `echo` and the error
wrapper show it as `visible` has it, so that no control sequence reaches the terminal.

Only typer and rich are loaded here: each command imports its stages when it runs, so that a command which analyses
no footage starts without the models, the tracker or onnxruntime (benchmarks/startup_benchmark.py measures it).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from sanitary.cli.missing import missing_package
from sanitary.errors import SanitaryError
from sanitary.reporting.visible import visible

P = ParamSpec("P")
R = TypeVar("R")

CameraOption = Annotated[Path, typer.Option("--camera", help="Camera config (TOML), see examples/.")]
SampleFps = Annotated[float | None, typer.Option("--sample-fps", help="Frames analysed per second of footage.")]
FpsOption = Annotated[float | None, typer.Option("--fps", help="True frame rate, when the container is wrong.")]
DbOption = Annotated[Path, typer.Option("--db", help="The DuckDB file.")]


def plain_console(*, stderr: bool = False, width: int | None = None) -> Console:
    """A console that prints every string as given. What it prints holds user text (a query's values and column
    names, a sign's words, a camera id, a file name) in which Rich would read `[...]` as markup (dropping it, or
    failing on `[/]`) and `:name:` as an emoji; tables keep their own styles."""
    return Console(stderr=stderr, width=width, markup=False, emoji=False, highlight=False)


# Piped or logged output has no terminal width to go by; tables of 80 columns would be cut.
console = plain_console(stderr=True, width=None if sys.stderr.isatty() else 140)


def echo(line: str, *, err: bool = False) -> None:
    """One line on stdout (stderr with `err`), its control and bidi characters shown by their codes."""
    typer.echo(visible(line), err=err)


def friendly(command: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except SanitaryError as exc:
            echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except ModuleNotFoundError as exc:  # an optional extra not installed, or a broken install
            message = missing_package(exc)
            if message is None:
                raise
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted: files already stored stay stored; run again to finish the rest", err=True)
            raise typer.Exit(130) from None

    return wrapper
