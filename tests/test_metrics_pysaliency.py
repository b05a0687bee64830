"""pysaliency 0.2.22 as a live reference on random inputs (skipped when not installed)."""

from __future__ import annotations

import numpy as np
import pytest

import salbench.metrics as M

if not hasattr(np, "trapz"):  # pysaliency still calls np.trapz, removed in NumPy 2.4
    np.trapz = np.trapezoid
pysaliency = pytest.importorskip("pysaliency", reason="pysaliency (test-only reference) is not installed")
from pysaliency import metrics as pm  # noqa: E402
from pysaliency.roc import general_roc  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # pysaliency logs 0


def _inputs(seed, levels=None):
    rng = np.random.default_rng(seed)
    s = rng.random((30, 40))
    if levels:  # quantise to create many ties
        s = np.floor(s * levels) / levels
    g = rng.random((30, 40)) ** 3
    g[0, 0] = 0.0  # minimum 0, where pysaliency's SIM (no min-max) equals MIT's
    s[0, 0] = 0.0
    f = rng.random((30, 40)) < 0.05
    o = rng.random((30, 40)) < 0.2
    return s, g, f, o


@pytest.mark.parametrize("levels", [None, 5])
@pytest.mark.parametrize("seed", range(3))
def test_exact_aucs_match_general_roc(seed, levels):
    s, _, f, o = _inputs(seed, levels)
    assert M.auc_exact(s, f) == pytest.approx(general_roc(s[f], s.ravel())[0], abs=1e-12)
    assert M.auc_shuffled_exact(s, f, o) == pytest.approx(general_roc(s[f], s[o])[0], abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_map_metrics_match_pysaliency(seed):
    s, g, f, _ = _inputs(seed)
    rows, cols = np.nonzero(f)
    rows = np.concatenate([rows, rows[:3]])  # duplicated points count twice
    cols = np.concatenate([cols, cols[:3]])
    assert M.cc(s, g) == pytest.approx(pm.CC(s, g), rel=1e-12)
    assert M.sim(s, g) == pytest.approx(pm.SIM(s, g), rel=1e-12)
    assert M.kld(s, g) == pytest.approx(pm.MIT_KLDiv(s, g), rel=1e-9)  # pysaliency's eps is truncated
    assert M.nss_points(s, rows, cols) == pytest.approx(np.mean(pm.NSS(s, cols, rows)), rel=1e-12)
