"""`sanitary` and `python -m sanitary`: the command line, or one line naming the package its imports miss."""

import sys

from sanitary.cli.missing import missing_package


def main() -> None:
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
