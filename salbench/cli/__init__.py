"""The ``salbench`` command line.

Each subcommand lives in its own module exposing ``register(subparsers)``,
which adds an ``argparse`` parser whose ``func`` default is ``run(args) -> int``.
Heavy imports (torch, numba) happen inside ``run`` so that ``salbench --help``
stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pickle
import sys
import traceback
import warnings

# Subcommand modules, in the order ``--help`` lists them.
_COMMAND_MODULES = (
    "salbench.cli.eval",
    "salbench.cli.train",
    "salbench.cli.models",
    "salbench.cli.data",
    "salbench.cli.leaderboard",
    "salbench.cli.compare",
    "salbench.cli.check",
    "salbench.cli.plot",
)


class CLIError(Exception):
    """An error reported to the user as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available subcommand."""
    from salbench import __version__

    parser = argparse.ArgumentParser(
        prog="salbench",
        description="Saliency metrics, protocols, models and leaderboards.",
        epilog="Example: salbench eval --model shallow_kl --split val",
    )
    parser.add_argument("--version", action="version", version=f"salbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``salbench`` console script.

    Every failure ends as one line on stderr and exit status 2:
    ``salbench: error: <what, naming the file or option>`` for errors the user can
    act on (bad options or files, a full disk, a broken plugin), and
    ``salbench: internal error: <type>: <message> (set SALBENCH_DEBUG=1 for the traceback)``
    for anything unexpected. ``SALBENCH_DEBUG=1`` prints the traceback before the
    line. Ctrl-C exits 130.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer(warnings.showwarning)
            return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:
        detail = str(exc)  # e.g. "interrupted after scoring 120 of 500 images under mit; nothing was written"
        print(f"salbench: {detail}" if detail else "salbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `salbench ... | head`: the reader went away; nothing to report
        _silence_stdout()
        return 1
    except BaseException as exc:  # noqa: BLE001 - the one place every failure becomes one line
        if isinstance(exc, SystemExit):
            raise
        return report_error(exc)


def _warning_printer(show_other):
    """A ``warnings.showwarning``: salbench's own warnings as one ``salbench: warning: ...`` line on
    stderr (no file, line or category: the message says what and where); others through ``show_other``."""

    def show(message, category, filename, lineno, file=None, line=None):
        if category.__module__.split(".")[0] != "salbench":
            return show_other(message, category, filename, lineno, file, line)
        print(f"salbench: warning: {_one_line(str(message))}", file=sys.stderr, flush=True)

    return show


def _debug() -> bool:
    return os.environ.get("SALBENCH_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def error_line(exc: BaseException) -> str:
    """The one line ``salbench`` prints for ``exc`` (without the ``salbench:`` prefix)."""
    from salbench.io.errors import describe_os_error

    if isinstance(exc, _USER_ERRORS) or _is_plugin_error(exc):
        text = str(exc)
        if isinstance(exc, KeyError) and not isinstance(exc, ValueError) and len(exc.args) == 1:
            text = str(exc.args[0])
        return f"error: {_one_line(text) or type(exc).__name__}"
    if isinstance(exc, OSError):
        return f"error: {_one_line(describe_os_error(exc))}"
    if isinstance(exc, MemoryError):
        return "error: out of memory (MemoryError); try a smaller split or batch"
    return (f"internal error: {type(exc).__name__}: {_one_line(str(exc))} "
            "(set SALBENCH_DEBUG=1 for the traceback)")


def report_error(exc: BaseException) -> int:
    """Print ``exc`` as one line (and the traceback under ``SALBENCH_DEBUG=1``); return 2."""
    if _debug():
        traceback.print_exception(exc, file=sys.stderr)
    print(f"salbench: {error_line(exc)}", file=sys.stderr)
    return 2


def _one_line(text: str) -> str:
    """Messages are one line: the first line of a multi-line one, with how many lines follow."""
    lines = [ln for ln in str(text).strip().splitlines() if ln.strip()]
    if len(lines) <= 1:
        return lines[0].strip() if lines else ""
    return f"{lines[0].strip()} (+{len(lines) - 1} more lines; SALBENCH_DEBUG=1 shows the traceback)"


def _is_plugin_error(exc: BaseException) -> bool:
    from salbench.models._registry import PluginError

    return isinstance(exc, PluginError)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


# Errors whose message is written for the user: printed as they are.
_USER_ERRORS = (CLIError, ValueError, pickle.UnpicklingError, ImportError)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
