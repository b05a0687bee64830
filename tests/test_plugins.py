"""The example plugin, installed for real with pip into a temporary target, seen by ``salbench models``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "docs" / "examples" / "salbench-example-plugin"


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> Path:
    """``pip install --target`` of a copy of the example plugin (the source tree stays clean)."""
    tmp = tmp_path_factory.mktemp("plugin")
    src = tmp / "src"
    shutil.copytree(PLUGIN, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "-q", "--target", str(target), str(src)],
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        pytest.fail(f"pip could not install the example plugin:\n{proc.stderr[-2000:]}")
    return target


def _salbench(args, pythonpath: list[Path]):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in pythonpath))
    return subprocess.run([sys.executable, "-m", "salbench", *args], capture_output=True, text=True, env=env)


def _broken_plugin(tmp: Path) -> Path:
    """A dist-info that registers an entry point whose module raises on import."""
    site = tmp / "broken-site"
    (site / "broken_salbench_plugin.py").parent.mkdir(parents=True, exist_ok=True)
    (site / "broken_salbench_plugin.py").write_text("raise RuntimeError('plugin exploded on import')\n")
    info = site / "broken_salbench_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-salbench-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[salbench.models]\nbroken = broken_salbench_plugin:factory\n")
    return site


def test_installed_plugin_listed_with_its_distribution(plugin_path, tmp_path):
    proc = _salbench(["models", "--json"], [plugin_path, _broken_plugin(tmp_path)])
    assert proc.returncode == 0, proc.stderr
    listing = json.loads(proc.stdout)
    names = {r["name"]: r["origin"] for r in listing["models"]}
    assert names["luminance"] == "salbench_example_plugin:luminance [salbench-example-plugin]"
    assert {"uniform", "center_bias", "gold", "shallow_mse", "shallow_kl"} <= set(names)
    assert "broken" not in names
    assert "RuntimeError: plugin exploded on import" in listing["failed"]["broken"]


def test_table_output_reports_the_failure(plugin_path, tmp_path):
    proc = _salbench(["models"], [plugin_path, _broken_plugin(tmp_path)])
    assert proc.returncode == 0, proc.stderr
    assert "luminance" in proc.stdout
    assert "1 plugin(s) failed to load" in proc.stdout and "plugin exploded on import" in proc.stdout


def test_plugin_model_predicts_through_create_model(plugin_path):
    code = textwrap.dedent("""
        import numpy as np
        from salbench.data.record import Record
        from salbench.models import create_model
        rng = np.random.default_rng(0)
        img = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
        rec = Record(name="a", image=img, fixations=np.zeros((0, 2), np.int64), observers=None,
                     fixation_map=np.zeros((60, 80), bool), density=np.zeros((60, 80)),
                     x96=np.zeros((3, 96, 96), np.float32), y48=np.zeros((48, 48), np.float32))
        out = create_model("luminance").predict([rec, rec])
        print(out.shape, out.dtype, bool(np.isfinite(out).all()))
    """)
    env = dict(os.environ, PYTHONPATH=str(plugin_path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["(2,", "48,", "48)", "float32", "True"]


def test_plugin_model_through_salbench_eval(plugin_path, tmp_path):
    env_cache = {"SALBENCH_CACHE": str(tmp_path / "cache")}
    env = dict(os.environ, PYTHONPATH=str(plugin_path), **env_cache)
    env.pop("SALBENCH_DATA", None)
    proc = subprocess.run(
        [sys.executable, "-m", "salbench", "eval", "--model", "luminance", "--option", "preset=small",
         "--protocol", "coursework", "--results-dir", str(tmp_path / "res")],
        capture_output=True, text=True, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("salbench: dataset synthetic")
    result = json.loads((tmp_path / "res" / "synthetic__val__luminance__coursework.json").read_text())
    assert result["model"]["name"] == "luminance" and result["n_images"] > 0
    assert result["metrics"]["cc"]["mean"] is not None
