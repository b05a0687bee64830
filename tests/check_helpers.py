"""Helpers of the ``salbench check`` tests: edit a results file in place, run the command."""

from __future__ import annotations

import json

from salbench.cli import main


def edit_json(path, fn):
    """Apply ``fn`` to the parsed JSON of ``path`` and write it back."""
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def run_check(root, capsys, *args):
    """``salbench check ROOT ARGS``: ``(exit code, stdout, stderr)``."""
    code = main(["check", str(root), *args])
    out = capsys.readouterr()
    return code, out.out, out.err
