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


# -- paired comparisons --------------------------------------------------------------------------
from hypothesis import given, strategies as st  # noqa: E402

from salbench.stats import (  # noqa: E402
    finite_pairs, holm, paired_bootstrap_ci, paired_comparison, wilcoxon_signed_rank,
)


def test_holm_on_the_textbook_example():
    """Holm (1979) on four hypotheses, the example of the Holm-Bonferroni method's Wikipedia article:
    p = (0.01, 0.04, 0.03, 0.005) at alpha 0.05 rejects H1 and H4 only. By hand, sorted:
    0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> running max 0.06."""
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert list(adjusted <= 0.05) == [True, False, False, True]


def test_holm_caps_at_one_skips_nan_and_refuses_non_p_values():
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    out = holm([0.01, np.nan, 0.02])
    assert out[0] == pytest.approx(0.02) and np.isnan(out[1]) and out[2] == pytest.approx(0.02)
    assert holm([]).size == 0
    with pytest.raises(ValueError):
        holm([1.5])


@given(st.lists(st.floats(0, 1), min_size=1, max_size=30))
def test_holm_matches_statsmodels(pvalues):
    multitest = pytest.importorskip("statsmodels.stats.multitest", reason="statsmodels not installed")
    reject, adjusted, _, _ = multitest.multipletests(pvalues, alpha=0.05, method="holm")
    ours = holm(pvalues)
    assert ours == pytest.approx(adjusted, abs=1e-12)
    assert list(ours <= 0.05) == list(reject)


def test_wilcoxon_matches_scipy_and_all_zero_differences_give_p_one():
    d = np.random.default_rng(3).normal(0.1, 1, 60)
    d[:4] = 0.0
    stat, p, n_zero = wilcoxon_signed_rank(d)
    ref = stats.wilcoxon(d)
    assert (stat, p, n_zero) == (ref.statistic, ref.pvalue, 4)
    stat, p, n_zero = wilcoxon_signed_rank(np.zeros(12))
    assert p == 1.0 and np.isnan(stat) and n_zero == 12
    with pytest.raises(ValueError):
        wilcoxon_signed_rank([0.1, np.nan])


def _bca_twin(a, b, n_resamples, seed, level=0.95):
    """Efron & Tibshirani (1993, ch. 14.3) BCa interval of mean(a - b), written out with NumPy."""
    d = np.asarray(a, float) - np.asarray(b, float)
    n = d.size
    theta = d.mean()
    idx = np.random.default_rng(seed).integers(0, n, (n_resamples, n))
    boot = d[idx].mean(axis=1)
    z0 = stats.norm.ppf(np.mean(boot < theta))
    jack = (d.sum() - d) / (n - 1)
    u = jack.mean() - jack
    acc = (u ** 3).sum() / (6 * ((u ** 2).sum()) ** 1.5)
    out = []
    for alpha in ((1 - level) / 2, (1 + level) / 2):
        z = stats.norm.ppf(alpha)
        out.append(np.quantile(boot, stats.norm.cdf(z0 + (z0 + z) / (1 - acc * (z0 + z)))))
    return out


def test_paired_bootstrap_ci_agrees_with_a_written_out_bca():
    rng = np.random.default_rng(0)
    a = rng.gamma(2.0, 1.0, 150)  # skewed: BCa differs from the percentile interval
    b = a - rng.gamma(1.5, 0.3, 150)
    low, high = paired_bootstrap_ci(a, b, n_resamples=9999, seed=1)
    twin = _bca_twin(a, b, 40000, seed=2)
    width = twin[1] - twin[0]
    assert abs(low - twin[0]) < 0.05 * width and abs(high - twin[1]) < 0.05 * width  # Monte Carlo error only
    assert low < np.mean(a - b) < high


def test_paired_bootstrap_ci_is_seeded_and_handles_degenerate_input():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=40), rng.normal(size=40)
    assert paired_bootstrap_ci(a, b, seed=3, n_resamples=999) == paired_bootstrap_ci(a, b, seed=3, n_resamples=999)
    assert paired_bootstrap_ci(a, b, seed=3, n_resamples=999) != paired_bootstrap_ci(a, b, seed=4, n_resamples=999)
    low, high = paired_bootstrap_ci(a, a + 0.5)  # one value up to rounding: the interval is that point
    assert low == high == pytest.approx(-0.5)
    assert all(np.isnan(paired_bootstrap_ci([1.0], [0.0])))


def test_paired_comparison_excludes_and_counts_nan_pairs():
    a = np.array([0.5, np.nan, 0.7, 0.9, 0.2, 0.4])
    b = np.array([0.4, 0.3, np.nan, 0.5, 0.1, 0.45])
    x, y, dropped = finite_pairs(a, b)
    assert dropped == 2 and list(x) == [0.5, 0.9, 0.2, 0.4]
    res = paired_comparison(a, b, n_resamples=999)
    assert (res.n, res.n_excluded) == (4, 2)
    assert res.mean_difference == pytest.approx(np.mean(x - y))
    assert res.p_value == pytest.approx(stats.wilcoxon(x - y).pvalue)
    empty = paired_comparison([np.nan], [1.0])
    assert empty.n == 0 and empty.n_excluded == 1 and np.isnan(empty.p_value)
    with pytest.raises(ValueError):
        finite_pairs([1.0, 2.0], [1.0])
