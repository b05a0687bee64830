"""The metric registry: fields, lookups, kernels agree with functions, plugin discovery.

Expectations here come from the metrics' behaviour and from the references the protocols
reproduce, not from the registry's own tables: adding a built-in metric needs no edit here.
"""

from __future__ import annotations

import inspect
import math
from importlib.metadata import EntryPoint

import numpy as np
import pytest

import salbench.metrics as M
from salbench.metrics import batch
from salbench.metrics.registry import (BUILTIN_METRICS, GROUP, INPUTS, METRICS, UNIFORM, Metric, discover, get_metric,
                                       metrics_for)

# What each protocol's reference reports (registry names): MIT's code_forMetrics, the coursework
# script, the SALICON server; exact: exact AUCs (uniform, shuffled) and MIT's deterministic map metrics.
REFERENCE_METRICS = {
    "mit": {"auc_judd", "auc_borji", "auc_shuffled", "nss", "cc", "sim", "kld", "info_gain", "emd"},
    "coursework": {"cc", "auc_borji", "auc_shuffled"},
    "salicon": {"auc_salicon", "sauc_salicon", "cc", "nss_points"},
    "exact": {"auc_exact", "auc_shuffled_exact", "cc", "nss", "kld", "sim"},
}


def test_every_entry_is_complete_and_exported():
    from salbench.protocols import PROTOCOLS

    protocol_params = {k for cls in PROTOCOLS.values() for k in cls.defaults}
    for name in BUILTIN_METRICS:
        m = METRICS[name]
        assert isinstance(m, Metric) and m.name == name
        assert getattr(M, name) is m.func, name  # importable from salbench.metrics under its name
        assert set(m.needs) <= set(INPUTS)
        assert m.label and m.description
        assert m.constant_map is None or m.constant_map == UNIFORM or isinstance(m.constant_map, float)
        sig = inspect.signature(m.func)
        for kw, param in m.params.items():
            assert kw in sig.parameters, (name, kw)  # a keyword of the function ...
            assert param in protocol_params, (name, param)  # ... fed by a parameter some protocol has
        assert m.seeded == ("seed" in sig.parameters), name
        if m.kernel is not None:
            assert hasattr(m.kernel, "py_func"), name  # a Numba dispatcher
            n_args = len(inspect.signature(m.kernel.py_func).parameters)
            assert n_args == 1 + len(m.needs) + len(m.kernel_args), name


def _scene(shape=(40, 50)):
    """A density blob, fixations drawn from it, other images' fixations elsewhere: a clear good/bad pair."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:shape[0], :shape[1]]
    g = np.exp(-((y - 12.0) ** 2 + (x - 15.0) ** 2) / 40.0)
    flat = rng.choice(g.size, size=30, p=(g / g.sum()).ravel())
    pts = np.stack(np.unravel_index(flat, shape), 1)
    f = np.zeros(shape, bool)
    f[pts[:, 0], pts[:, 1]] = True
    other = rng.random(shape) < 0.05
    inputs = {"density": g, "fixations": f, "points": pts, "other": other,
              "other_weights": other.astype(np.int64) * 2, "baseline": np.full(shape, 0.5) + 0.1 * rng.random(shape)}
    return inputs, g, 1.0 - g


@pytest.mark.parametrize("name", BUILTIN_METRICS)
def test_direction_and_sampling_follow_from_behaviour(name):
    """The true density beats its inverse in the declared direction; a sampled metric moves with its seed."""
    m = METRICS[name]
    inputs, good, bad = _scene()
    args = [inputs[k] for k in m.needs]
    kw = {"n_random": 2000} if name == "auc_salicon" else {}
    if m.seeded:
        kw["seed"] = 1
    a, b = m.func(good, *args, **kw), m.func(bad, *args, **kw)
    assert (a > b) == m.higher_is_better, (name, a, b)
    if m.seeded:
        again = m.func(good, *args, **{**kw, "seed": 2})
        assert (again != a) == m.sampled, name


def test_protocols_report_their_references_metrics_in_registry_order():
    from salbench.protocols import get_protocol

    order = list(METRICS)
    for proto, expected in REFERENCE_METRICS.items():
        cols = get_protocol(proto).metrics
        assert expected <= set(cols), proto
        assert [order.index(c) for c in cols] == sorted(order.index(c) for c in cols)
        assert set(metrics_for(proto)) <= set(cols)  # every metric that names it, it can supply


def test_lookups_fail_clearly():
    assert get_metric("cc") is METRICS["cc"]
    with pytest.raises(ValueError, match="Did you mean 'auc_judd'"):
        get_metric("auc_jud")
    with pytest.raises(ValueError, match="unknown metric"):
        get_metric(None)
    with pytest.raises(ValueError, match="Did you mean 'salicon'"):
        metrics_for("salicom")


def test_entries_are_checked():
    def f(s, fixations):
        return 0.0

    ok = dict(name="x", label="X", higher_is_better=True, needs=("fixations",), func=f, description="d")
    assert Metric(**ok).params == {} and Metric(**ok, params=("step",)).params == {"step": "step"}
    for bad, match in ((dict(needs=("fixation",)), "unknown inputs"), (dict(name="a-b"), "identifier"),
                       (dict(constant_map=1), "constant_map"), (dict(params={"seed": "seed"}), "seed"),
                       (dict(sampled=True, seeded=False), "takes seed"), (dict(description=""), "description")):
        with pytest.raises(ValueError, match=match):
            Metric(**{**ok, **bad})


def test_batch_table_is_derived_from_the_registry():
    expected = [n for n in BUILTIN_METRICS
                if (m := METRICS[n]).kernel is not None and not m.sampled and not m.kernel_args
                and set(m.needs) <= {"density", "fixations", "other", "baseline"}]
    assert list(batch.BATCH_METRICS) == expected
    src = batch._dispatch_source()
    for code, name in enumerate(expected):  # one branch per metric, calling that metric's kernel
        fn = METRICS[name].kernel.py_func
        assert f"from {fn.__module__} import {fn.__name__} as _k{code}" in src
        assert f"if code == {code}:  # {name}" in src
    inputs, good, _ = _scene()
    stack = np.stack([good, good ** 2])
    out = batch.evaluate_batch(stack, **{k: np.stack([inputs[k]] * 2) for k in ("fixations", "density", "other",
                                                                               "baseline")}, metrics=expected)
    for name in expected:  # the batch equals the public function, image by image
        m = METRICS[name]
        for i in range(2):
            assert out[name][i] == m.func(stack[i], *(inputs[k] for k in m.needs)), name


# ----------------------------------------------------------------------------- plugin discovery
def _ep(name, value):
    return EntryPoint(name=name, value=value, group=GROUP)


PLUGIN_SOURCE = """
import numpy as np
from salbench.metrics import Metric

def mean_fix(saliency, fixations):
    return float(np.asarray(saliency)[np.asarray(fixations, bool)].mean())

MEAN_FIX = Metric(name="mean_fix", label="MF", higher_is_better=True, needs=("fixations",), func=mean_fix,
                  description="mean saliency at fixations")
CC = Metric(name="cc", label="fake", higher_is_better=True, needs=("fixations",), func=mean_fix, description="x")
WRONG_NAME = MEAN_FIX
NOT_A_METRIC = 3
"""


def test_discovery_reserves_builtins_and_reports_broken_plugins(tmp_path, monkeypatch):
    from salbench._plugins import EntryPointTable

    (tmp_path / "metric_plugin_mod.py").write_text(PLUGIN_SOURCE)
    (tmp_path / "metric_plugin_boom.py").write_text("raise RuntimeError('exploded on import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    table = EntryPointTable(GROUP, "metric", reserved=BUILTIN_METRICS)
    found = discover([_ep("cc", "metric_plugin_mod:CC"), _ep("mean_fix", "metric_plugin_mod:MEAN_FIX"),
                      _ep("other", "metric_plugin_mod:WRONG_NAME"), _ep("three", "metric_plugin_mod:NOT_A_METRIC"),
                      _ep("boom", "metric_plugin_boom:X"), _ep("mean_fix", "metric_plugin_mod:CC"),
                      EntryPoint(name="x", value="metric_plugin_mod:MEAN_FIX", group="salbench.models")], table)
    assert list(found) == ["mean_fix"] and found["mean_fix"].label == "MF"
    f = table.failures
    assert f["cc (metric_plugin_mod:CC)"] == ("entry point 'cc = metric_plugin_mod:CC': 'cc' is a built-in metric "
                                              "name; refused (the built-in stays)")
    assert "duplicate metric name 'mean_fix'" in f["mean_fix (metric_plugin_mod:CC)"]
    assert f["other"].endswith("ValueError: the entry point is named 'other' but its Metric is named 'mean_fix'")
    assert "is not a salbench.metrics.Metric (a int)" in f["three"]
    assert "RuntimeError: exploded on import (at " in f["boom"] and "metric_plugin_boom.py:1)" in f["boom"]
    assert all("\n" not in line for line in f.values())
    assert "x" not in found  # another group's entry points are ignored


def _inputs(rng, shape=(7, 9)):
    s = rng.random(shape)
    f = rng.random(shape) < 0.2
    f[0, 0] = f[1, 1] = True
    o = rng.random(shape) < 0.3
    g = rng.random(shape) ** 3
    pts = np.argwhere(f)
    return {"density": g, "fixations": f, "points": np.concatenate([pts, pts[:2]]), "other": o,
            "other_weights": rng.integers(0, 3, shape), "baseline": g[::-1].copy()}, s


def _flat(name, value, shape):
    if name == "points":
        return np.ascontiguousarray(value[:, 0] * shape[1] + value[:, 1], dtype=np.int64)
    if name in ("fixations", "other"):
        return np.ascontiguousarray(value, dtype=np.bool_).ravel()
    return np.ascontiguousarray(value, dtype=np.float64).ravel()


@pytest.mark.parametrize("name", [n for n in BUILTIN_METRICS if METRICS[n].kernel is not None and not METRICS[n].kernel_args])
def test_kernel_equals_function(name):
    m = METRICS[name]
    rng = np.random.default_rng(1)
    inputs, s = _inputs(rng)
    want = m.func(s, *(inputs[n] for n in m.needs))
    got = m.kernel(s.ravel(), *(_flat(n, inputs[n], s.shape) for n in m.needs))
    assert got == want or (math.isnan(got) and math.isnan(want))


def test_sampled_kernels_equal_functions():
    from salbench.metrics.auc_sampled import NO_TABLE, _kernel_seed, thresholds_for

    rng = np.random.default_rng(2)
    inputs, s = _inputs(rng)
    f, o = inputs["fixations"].ravel(), inputs["other"].ravel()
    t = thresholds_for(0.1)
    assert METRICS["auc_borji"].kernel(s.ravel(), f, t, 10, _kernel_seed(3), True, NO_TABLE) == \
        M.auc_borji(s, inputs["fixations"], splits=10, seed=3)
    assert METRICS["auc_shuffled"].kernel(s.ravel(), f, o, t, 10, _kernel_seed(3), False, NO_TABLE) == \
        M.auc_shuffled(s, inputs["fixations"], inputs["other"], splits=10, seed=3, include_endpoint=False)
    assert METRICS["auc_borji_expected"].kernel(s.ravel(), f, t, True) == M.auc_borji_expected(s, inputs["fixations"])
    idx = _flat("points", inputs["points"], s.shape)
    draw = np.random.RandomState(5).randint(s.size, size=1000).astype(np.int64)
    assert METRICS["auc_salicon"].kernel(s.ravel(), idx, draw, 0.01) == \
        M.auc_salicon(s, inputs["points"], n_random=1000, seed=5)
    assert METRICS["sauc_salicon"].kernel(s.ravel(), idx, _flat("other_weights", inputs["other_weights"], s.shape),
                                          0.01) == M.sauc_salicon(s, inputs["points"], inputs["other_weights"])


def test_docs_table_matches_the_registry():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "metrics.md").read_text()
    rows = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0].startswith("`") and cells[0].strip("`") in METRICS:
            rows[cells[0].strip("`")] = cells
    assert list(rows) == list(BUILTIN_METRICS)  # every built-in metric, in registry order
    for name, (_, label, better, needs, sampled, protocols, constant) in rows.items():
        m = METRICS[name]
        assert label == m.label
        assert better == ("higher" if m.higher_is_better else "lower")
        assert needs == ", ".join(m.needs)
        assert (sampled == "yes") == m.sampled
        assert protocols == (", ".join(m.protocols) if m.protocols is not None else "any that supplies its inputs")
        assert constant == ("uniform" if m.constant_map == UNIFORM else f"{m.constant_map:g}"), name
