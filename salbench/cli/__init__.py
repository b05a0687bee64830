"""The ``salbench`` command line.

Each subcommand lives in its own module exposing ``register(subparsers)``,
which adds an ``argparse`` parser whose ``func`` default is ``run(args) -> int``.
Heavy imports (torch, numba) happen inside ``run`` so that ``salbench --help``
stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import pickle
import sys

# Subcommand modules, in the order ``--help`` lists them.
_COMMAND_MODULES = (
    "salbench.cli.eval",
    "salbench.cli.train",
    "salbench.cli.models",
    "salbench.cli.data",
    "salbench.cli.leaderboard",
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
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # subcommand not written yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``salbench`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (CLIError, FileNotFoundError, ValueError, NotADirectoryError, PermissionError,
            pickle.UnpicklingError) as exc:
        print(f"salbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("salbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
