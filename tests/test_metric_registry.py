"""The metric registry (contract A): fields, derived tables, lookups, kernels agree with functions."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

import salbench.metrics as M
from salbench.metrics import batch
from salbench.metrics.registry import INPUTS, METRICS, UNIFORM, Metric, get_metric, metrics_for

MIT = ("cc", "nss", "auc_judd", "auc_borji", "auc_shuffled", "kld", "sim", "info_gain", "emd")


def test_every_entry_is_complete_and_exported():
    for name, m in METRICS.items():
        assert isinstance(m, Metric) and m.name == name
        assert getattr(M, name) is m.func, name  # importable from salbench.metrics under its name
        assert set(m.needs) <= set(INPUTS)
        assert m.label and m.description
        assert m.constant_map is None or m.constant_map == UNIFORM or isinstance(m.constant_map, float)
        assert m.stochastic is m.sampled
        sig = inspect.signature(m.func)
        for p in m.params:
            assert p in sig.parameters, (name, p)
        if m.sampled:
            assert "seed" in sig.parameters, name
        if m.kernel is not None:
            assert hasattr(m.kernel, "py_func"), name  # a Numba dispatcher
            n_args = len(inspect.signature(m.kernel.py_func).parameters)
            assert n_args == 1 + len(m.needs) + len(m.kernel_args), name


def test_directions_and_sampling():
    lower = {n for n, m in METRICS.items() if not m.higher_is_better}
    assert lower == {"kld", "emd"}
    assert {n for n, m in METRICS.items() if m.sampled} == {"auc_borji", "auc_shuffled", "auc_salicon"}


def test_protocol_columns_follow_registry_order():
    assert metrics_for("mit") == MIT
    assert metrics_for("coursework") == ("cc", "auc_borji", "auc_shuffled")
    assert metrics_for("salicon") == ("cc", "nss_points", "auc_salicon", "sauc_salicon")
    assert metrics_for("exact") == ("cc", "nss", "auc_exact", "auc_shuffled_exact", "kld", "sim")
    order = list(METRICS)
    for proto in ("mit", "coursework", "salicon", "exact"):
        cols = metrics_for(proto)
        assert [order.index(c) for c in cols] == sorted(order.index(c) for c in cols)


def test_lookups_fail_clearly():
    assert get_metric("cc") is METRICS["cc"]
    with pytest.raises(ValueError, match="Did you mean 'auc_judd'"):
        get_metric("auc_jud")
    with pytest.raises(ValueError, match="unknown metric"):
        get_metric(None)
    with pytest.raises(ValueError, match="Did you mean 'salicon'"):
        metrics_for("salicom")


def test_batch_table_is_derived_from_the_registry():
    expected = [n for n, m in METRICS.items()
                if m.kernel is not None and not m.sampled and not m.kernel_args
                and set(m.needs) <= {"density", "fixations", "other", "baseline"}]
    assert list(batch.BATCH_METRICS) == expected
    assert set(expected) == {"cc", "nss", "auc_judd", "auc_exact", "auc_shuffled_exact", "kld", "sim", "info_gain"}
    src = batch._dispatch_source()
    for code, name in enumerate(expected):  # one branch per metric, calling that metric's kernel
        fn = METRICS[name].kernel.py_func
        assert f"from {fn.__module__} import {fn.__name__} as _k{code}" in src
        assert f"if code == {code}:  # {name}" in src


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


@pytest.mark.parametrize("name", [n for n, m in METRICS.items() if m.kernel is not None and not m.kernel_args])
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
    assert list(rows) == list(METRICS)  # every metric, in registry order
    for name, (_, label, better, needs, sampled, protocols, constant) in rows.items():
        m = METRICS[name]
        assert label == m.label
        assert better == ("higher" if m.higher_is_better else "lower")
        assert needs == ", ".join(m.needs)
        assert (sampled == "yes") == m.sampled
        assert protocols == ", ".join(m.protocols)
        assert constant == ("uniform" if m.constant_map == UNIFORM else f"{m.constant_map:g}"), name
