"""Plugins: the example plugin installed for real with pip; refused, broken and raising plugins with real entry points."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
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
            if self.fail == "none":
                return None
            return np.ones((len(records), 48, 48), np.float32)

    def evil(**kw):
        raise AssertionError("the impostor must never be called")

    def boom(**kw):
        raise RuntimeError("no GPU found")

    def predboom(**kw):
        return _Model(fail="predict")

    def prednone(**kw):
        return _Model(fail="none")

    NOT_A_FACTORY = 42
"""


@pytest.fixture()
def plugin_sites(tmp_path):
    evil = _dist(tmp_path, "evil-plugin", "evil_mod", _MODELS,
                 {"uniform": "evil_mod:evil", "boom": "evil_mod:boom", "predboom": "evil_mod:predboom",
                  "prednone": "evil_mod:prednone",
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


def test_cli_plugin_predicting_none_is_one_line_naming_plugin_and_shapes(plugin_sites, tmp_path):
    args = ["eval", "--model", "prednone", "--option", "preset=small", "--option", "n_images=2",
            "--protocol", "coursework", "--results-dir", str(tmp_path / "res")]
    proc = _salbench(args, plugin_sites)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "salbench: error: model 'prednone' (plugin evil-plugin entry point 'prednone = evil_mod:prednone'): "
        "predict returned None for a batch of 2 images; expected 2 2-D maps (an array of shape (2, 48, 48) "
        "or a list of 2 2-D arrays)")


# -- metric plugins: docs/examples/salbench-example-metric installed for real ---------------------------------
METRIC_PLUGIN = REPO / "docs" / "examples" / "salbench-example-metric"


@pytest.fixture(scope="module")
def metric_plugin_path(tmp_path_factory) -> Path:
    """``pip install --target`` of a copy of the example metric plugin."""
    tmp = tmp_path_factory.mktemp("metric-plugin")
    src = tmp / "src"
    shutil.copytree(METRIC_PLUGIN, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "-q", "--target", str(target), str(src)],
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        pytest.fail(f"pip could not install the example metric plugin:\n{proc.stderr[-2000:]}")
    return target


def _metric_dist(tmp: Path) -> Path:
    """A dist-info declaring two salbench.metrics entry points: one whose module fails, one taking 'cc'."""
    site = tmp / "broken-metric-site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "broken_metric_mod.py").write_text("raise ImportError('needs a library that is absent')\n")
    info = site / "broken_metric-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-metric\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[salbench.metrics]\nbroken = broken_metric_mod:BROKEN\n"
                                           "cc = salbench_example_metric:FIX_PERCENTILE\n")
    return site


def _naive_percentile(s, f):
    """For each fixated pixel, the share of pixels below it (ties half), averaged: a loop, no ranking."""
    flat = s.ravel()
    return float(np.mean([(np.sum(flat < v) + 0.5 * np.sum(flat == v)) / flat.size for v in s[f]]))


def test_metric_plugin_function_against_a_naive_twin(metric_plugin_path):
    import importlib.util

    # loaded from its file, not through sys.path: this process's metric registry must not gain it
    spec = importlib.util.spec_from_file_location("_example_metric", metric_plugin_path / "salbench_example_metric"
                                                  / "__init__.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fix_percentile = mod.fix_percentile

    rng = np.random.default_rng(0)
    for _ in range(5):
        s = np.round(rng.random((9, 11)) * 4) / 4  # many ties
        f = rng.random((9, 11)) < 0.2
        f[0, 0] = True
        assert fix_percentile(s, f) == pytest.approx(_naive_percentile(s, f), abs=1e-12)
    assert fix_percentile(np.full((4, 5), 0.3), f[:4, :5] | True) == 0.5  # a constant map: chance
    assert np.isnan(fix_percentile(s, np.zeros_like(f)))


_METRIC_RUN = r"""
import json, sys, warnings
import numpy as np
from salbench.cli import main
from salbench.metrics import METRICS, BUILTIN_METRICS, plugin_failures
from salbench.protocols import get_protocol, list_protocols

out = {"metrics": list(METRICS), "builtins": list(BUILTIN_METRICS), "failures": plugin_failures(),
       "protocols": {p: list(get_protocol(p).metrics) for p in list_protocols()}}
res = sys.argv[1]
for proto in ("mit", "exact"):
    out[f"eval_{proto}"] = main(["eval", "--model", "center_bias", "--option", "preset=small", "--protocol", proto,
                                 "--results-dir", res])
out["check"] = main(["check", res])
print("JSON" + json.dumps(out))
"""


@pytest.mark.slow
def test_metric_plugin_scored_by_mit_and_exact_and_rechecked(metric_plugin_path, tmp_path):
    """The installed example metric is a column of every protocol that supplies fixations, is written into the
    entries of ``salbench eval`` (values checked against a naive twin) and recomputed by ``salbench check``; a
    broken metric plugin beside it is one warning line and changes nothing else."""
    from salbench.data import get_dataset
    from salbench.results import load_predictions_npz
    from salbench.protocols._resize import bilinear

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(metric_plugin_path), str(_metric_dist(tmp_path))]))
    env.pop("SALBENCH_DATA", None)
    res = tmp_path / "res"
    proc = subprocess.run([sys.executable, "-c", _METRIC_RUN, str(res)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.split("JSON", 1)[1])
    assert out["metrics"] == out["builtins"] + ["fix_percentile"]  # after the built-ins
    for proto, metrics in out["protocols"].items():  # every protocol supplies fixations
        assert metrics[-1] == "fix_percentile", proto
    assert out["eval_mit"] == 0 and out["eval_exact"] == 0 and out["check"] == 0
    assert "synthetic__val__center_bias__mit.json: ok" in proc.stdout
    assert "synthetic__val__center_bias__exact.json: ok" in proc.stdout
    # the broken plugin and the impostor: one line each, naming distribution and entry point
    fails = out["failures"]
    assert fails["broken"].startswith("plugin broken-metric entry point 'broken = broken_metric_mod:BROKEN': "
                                      "ImportError: needs a library that is absent")
    assert fails["cc (salbench_example_metric:FIX_PERCENTILE [broken-metric])"] == (
        "plugin broken-metric entry point 'cc = salbench_example_metric:FIX_PERCENTILE': 'cc' is a built-in "
        "metric name; refused (the built-in stays)")
    warned = [ln for ln in proc.stderr.splitlines() if "MetricPluginWarning" in ln]
    assert len(warned) == 2 and all("plugin broken-metric entry point" in ln for ln in warned)
    # the recorded values are the metric on the protocol's own inputs (exact: bilinear resize, fixation map)
    entry = json.loads((res / "synthetic__val__center_bias__exact.json").read_text())
    values = entry["metrics"]["fix_percentile"]["per_image"]
    assert entry["metrics"]["fix_percentile"]["higher_is_better"] is True
    maps, names = load_predictions_npz(res / entry["predictions"]["file"])
    ds = get_dataset("synthetic", "val", preset="small")
    for k in range(0, len(names), 7):
        rec = ds[ds.names.index(names[k])]
        s = bilinear(np.asarray(maps[k], dtype=np.float64), rec.shape)
        assert values[k] == pytest.approx(_naive_percentile(s, rec.fixation_map), abs=1e-12)
    mit = json.loads((res / "synthetic__val__center_bias__mit.json").read_text())
    assert np.isfinite(mit["metrics"]["fix_percentile"]["mean"])


def test_metric_plugin_module_imported_first(metric_plugin_path):
    """A plugin module importing salbench.metrics itself (before anything else did) still registers."""
    code = ("import salbench_example_metric\n"
            "from salbench.metrics import METRICS, plugin_failures\n"
            "from salbench.protocols import get_protocol\n"
            "assert METRICS['fix_percentile'] is salbench_example_metric.FIX_PERCENTILE\n"
            "print(get_protocol('exact').metrics[-1], plugin_failures())\n")
    env = dict(os.environ, PYTHONPATH=str(metric_plugin_path))
    proc = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", code], capture_output=True, text=True,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["fix_percentile", "{}"]
