import numpy as np
import pytest
from scipy import stats

from salbench.stats import mean_ci95


def test_matches_scipy_t_interval():
    v = np.random.default_rng(1).normal(0.5, 0.1, 40)
    mean, (lo, hi) = mean_ci95(v)
    ref = stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
    assert mean == pytest.approx(v.mean())
    assert (lo, hi) == pytest.approx(ref)


def test_skips_nan_and_handles_tiny_samples():
    assert mean_ci95([np.nan, 0.3])[0] == pytest.approx(0.3)
    assert mean_ci95([0.3])[1] == [0.3, 0.3]
    mean, ci = mean_ci95([])
    assert np.isnan(mean) and all(np.isnan(ci))
