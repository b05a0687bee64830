"""Results folders for the leaderboard-site tests, made from committed entries (no data needed).

``hostile_results(dst)`` copies two small committed synthetic entries (uniform, center_bias, with
their predictions files, so their audit passes) and adds copies whose model name, options and
training record are HTML/JS, one scored "with metric-specific maps", and a broken file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LEADERBOARDS = REPO / "leaderboards"
HOSTILE = "<script>alert(1)</script>"
HOSTILE_OPTION = '"><img src=x onerror=alert(2)>'


def copy_entry(src: Path, dst_dir: Path, name: str | None = None, **changes) -> Path:
    """Copy a results file (and the predictions / fit files it names) into ``dst_dir``, with changes."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    rec = json.loads(src.read_text())
    for extra in (rec["predictions"]["file"], (rec["model"].get("checkpoint") or {}).get("path")):
        if extra and (src.parent / extra).is_file() and not (dst_dir / extra).exists():
            shutil.copyfile(src.parent / extra, dst_dir / extra)
    for key, value in changes.items():
        target = rec
        *path, last = key.split(".")
        for part in path:
            target = target.setdefault(part, {})
        target[last] = value
    out = dst_dir / (name or src.name)
    out.write_text(json.dumps(rec, indent=2, sort_keys=True))
    return out


def hostile_results(dst: Path) -> Path:
    syn = LEADERBOARDS / "synthetic"
    d = dst / "synthetic"
    copy_entry(syn / "synthetic__val__uniform__mit.json", d)
    copy_entry(syn / "synthetic__val__center_bias__mit.json", d)
    copy_entry(syn / "synthetic__val__uniform__mit.json", d, "synthetic__val__evil__mit.json",
               **{"model.name": HOSTILE, "model.options": {HOSTILE_OPTION: HOSTILE},
                  "model.training": {"label": HOSTILE, "target": HOSTILE_OPTION}})
    copy_entry(syn / "synthetic__val__center_bias__mit.json", d, "synthetic__val__center_bias-ms__mit.json",
               maps="metric-specific", map_derivation={"parameters": {}})  # the defaults: audited like any entry
    (d / "synthetic__val__broken__mit.json").write_text('{"schema": "salbench.result/2", ')
    return dst
