"""Plugins: the example plugin installed for real with pip; refused, broken and raising plugins with real entry points."""

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


def _salbench(args, pythonpath: list[Path], extra_env: dict | None = None):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in pythonpath), **(extra_env or {}))
    env.pop("SALBENCH_DATA", None)
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


# -- refused and broken plugins, with real importlib.metadata entry points ------------------------------
def _dist(tmp: Path, dist: str, module: str, source: str, eps: dict[str, str]) -> Path:
    """A site folder holding ``module`` and a dist-info for ``dist`` declaring ``eps`` (name -> value)."""
    site = tmp / f"{dist}-site"
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[salbench.models]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()))
    return site


_MODELS = """
    import numpy as np

    class _Model:
        name = "plugin"
        card = {"name": "plugin", "trained_on": "nothing", "output_size": [48, 48]}

        def __init__(self, fail=None, **kw):
            self.fail = fail

        def predict(self, records):
            if self.fail == "predict":
                raise ValueError("cannot predict image 0: shape mismatch")
            return np.ones((len(records), 48, 48), np.float32)

    def evil(**kw):
        raise AssertionError("the impostor must never be called")

    def boom(**kw):
        raise RuntimeError("no GPU found")

    def predboom(**kw):
        return _Model(fail="predict")

    NOT_A_FACTORY = 42
"""


@pytest.fixture()
def plugin_sites(tmp_path):
    evil = _dist(tmp_path, "evil-plugin", "evil_mod", _MODELS,
                 {"uniform": "evil_mod:evil", "boom": "evil_mod:boom", "predboom": "evil_mod:predboom",
                  "notcallable": "evil_mod:NOT_A_FACTORY"})
    return [evil, _broken_plugin(tmp_path)]


def _eps(site: Path):
    from importlib.metadata import PathDistribution

    (info,) = site.glob("*.dist-info")
    return list(PathDistribution(info).entry_points)


def _builtin_eps():
    from importlib.metadata import distribution

    return [e for e in distribution("salbench").entry_points if e.group == "salbench.models"]


@pytest.mark.parametrize("order", ["plugin first", "builtin first", "plugin in a later call", "builtin in a later call"])
def test_a_plugin_cannot_take_a_builtin_name(plugin_sites, monkeypatch, order):
    from salbench.models import ModelRegistry

    monkeypatch.syspath_prepend(str(plugin_sites[0]))
    plugin, builtin = _eps(plugin_sites[0]), _builtin_eps()
    if order == "plugin first":
        reg = ModelRegistry(plugin + builtin)
    elif order == "builtin first":
        reg = ModelRegistry(builtin + plugin)
    elif order == "plugin in a later call":
        reg = ModelRegistry(builtin)
        reg.add_entry_points(plugin)
    else:
        reg = ModelRegistry(plugin)
        reg.add_entry_points(builtin)
    assert reg.origin("uniform") == "salbench.models.baselines:uniform [salbench]"
    assert reg.create("uniform").name == "uniform"  # the built-in, not the impostor
    msg = reg.failures["uniform (evil_mod:evil [evil-plugin])"]
    assert msg == ("plugin evil-plugin entry point 'uniform = evil_mod:evil': 'uniform' is a built-in model name; "
                   "refused (the built-in stays)")
    assert "uniform" in reg.builtin_names and "boom" not in reg.builtin_names


def test_broken_plugins_are_one_line_naming_distribution_and_entry_point(plugin_sites, monkeypatch):
    from salbench.models import ModelRegistry
    from salbench.models._registry import PluginError, PluginLoadError

    for site in plugin_sites:
        monkeypatch.syspath_prepend(str(site))
    reg = ModelRegistry(_eps(plugin_sites[0]) + _eps(plugin_sites[1]) + _builtin_eps())
    failures = reg.load_all()
    assert failures["notcallable"] == ("plugin evil-plugin entry point 'notcallable = evil_mod:NOT_A_FACTORY': "
                                       "TypeError: evil_mod:NOT_A_FACTORY is not callable (a int)")
    assert failures["broken"].startswith("plugin broken-salbench-plugin entry point "
                                         "'broken = broken_salbench_plugin:factory': RuntimeError: plugin exploded "
                                         "on import (at ")
    assert all("\n" not in m for m in failures.values())
    with pytest.raises(PluginLoadError, match="could not be loaded: plugin broken-salbench-plugin") as info:
        reg.get("broken")
    assert isinstance(info.value, ImportError)
    with pytest.raises(PluginError) as info:
        reg.create("boom")
    assert str(info.value) == ("model 'boom' (plugin evil-plugin entry point 'boom = evil_mod:boom') failed to create: "
                               "RuntimeError: no GPU found")
    model = reg.create("predboom")
    with pytest.raises(PluginError) as info:
        model.predict([None])
    assert str(info.value) == ("model 'predboom' (plugin evil-plugin entry point 'predboom = evil_mod:predboom') "
                               "raised in predict: ValueError: cannot predict image 0: shape mismatch")
    assert reg.create("uniform").predict  # the rest works
    assert set(reg.names()) >= {"uniform", "center_bias", "predboom", "boom"}


def test_cli_lists_refused_and_broken_plugins_and_the_rest_works(plugin_sites, tmp_path):
    proc = _salbench(["models"], plugin_sites)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "plugin(s) failed to load or were refused" in out
    assert ("plugin evil-plugin entry point 'uniform = evil_mod:evil': 'uniform' is a built-in model name; "
            "refused (the built-in stays)") in out
    assert "plugin evil-plugin entry point 'notcallable = evil_mod:NOT_A_FACTORY': TypeError" in out
    assert "plugin broken-salbench-plugin entry point 'broken = broken_salbench_plugin:factory'" in out
    proc = _salbench(["models", "--json"], plugin_sites)
    rows = {r["name"]: r["origin"] for r in json.loads(proc.stdout)["models"]}
    assert rows["uniform"] == "salbench.models.baselines:uniform [salbench]"
    proc = _salbench(["models", "--card", "uniform"], plugin_sites)
    assert proc.returncode == 0 and json.loads(proc.stdout)["name"] == "uniform"
    proc = _salbench(["models", "--card", "broken"], plugin_sites)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("salbench: error: model 'broken' could not be loaded: plugin "
                                          "broken-salbench-plugin entry point")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_cli_plugin_raising_in_predict_is_one_line(plugin_sites, tmp_path):
    args = ["eval", "--model", "predboom", "--option", "preset=small", "--option", "n_images=2",
            "--protocol", "coursework", "--results-dir", str(tmp_path / "res")]
    proc = _salbench(args, plugin_sites)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last == ("salbench: error: model 'predboom' (plugin evil-plugin entry point 'predboom = "
                    "evil_mod:predboom') raised in predict: ValueError: cannot predict image 0: shape mismatch")
    assert not (tmp_path / "res" / "synthetic__val__predboom__coursework.json").exists()
    env = {"SALBENCH_DEBUG": "1"}
    proc = _salbench(args, plugin_sites, env)
    assert proc.returncode == 2 and "Traceback" in proc.stderr and "cannot predict image 0" in proc.stderr
