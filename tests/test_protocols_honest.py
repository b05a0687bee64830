"""Honest protocols: every parameter changes the scores, conventions are refused, degenerate
inputs score the same under every protocol, the ``mit`` ground truth matches MIT's code."""

from __future__ import annotations

import json

import numpy as np
import pytest

from salbench.metrics import registry
from salbench.protocols import (ConventionOverrideError, PROTOCOLS, get_protocol, list_protocols,
                                protocol_from_record)
from tests.conftest import REFS, u16
from tests.test_protocols_fixtures import make_predictions, make_records

N = 12


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path / "cache"))


# ----------------------------------------------------------------------------- parameters
# (protocol, parameter, another value, a metric it must change)
CHANGES = [
    ("mit", "ground_truth", "dataset", "cc"),
    ("mit", "splits", 7, "auc_borji"),
    ("mit", "step", 0.05, "auc_borji"),
    ("mit", "include_endpoint", False, "auc_borji"),
    ("mit", "n_other", 2, "auc_shuffled"),
    ("mit", "auc_judd_jitter", True, "auc_judd"),
    ("mit", "ig_baseline_sigma", 0.1, "info_gain"),
    ("mit", "auc_method", "pixels", "auc_borji"),
    ("mit", "emd_variant", "exact", "emd"),
    ("coursework", "blur_sigma", 0.5, "cc"),
    ("coursework", "blur_truncate", 1.5, "cc"),
    ("coursework", "cc_target_sigma", 4.0, "cc"),
    ("coursework", "splits", 7, "auc_borji"),
    ("coursework", "step", 0.05, "auc_borji"),
    ("coursework", "include_endpoint", True, "auc_borji"),
    ("coursework", "n_other", 2, "auc_shuffled"),
    ("salicon", "n_random", 500, "auc_salicon"),
    ("salicon", "step", 0.1, "auc_salicon"),
    ("salicon", "cc_sigma", 4.0, "cc"),
    ("salicon", "filter_anns", False, "nss_points"),
]


def test_every_parameter_has_a_test():
    declared = {(name, k) for name, cls in PROTOCOLS.items() for k in cls.defaults}
    assert declared == {(p, k) for p, k, _, _ in CHANGES}
    assert PROTOCOLS["exact"].defaults == {}  # exact has conventions only


def _param_data(ties=False):
    recs = make_records(N, seed=7)
    preds = []
    for i, p in enumerate(make_predictions(N, seed=7, sizes=((30, 40),))):
        if ties:
            p = np.round(p * 6) / 6  # ties between fixated and other pixels (AUC-Judd's jitter matters)
        r, c = recs[i].fixations[0]
        p[r, c] = 1.01 * p.max()  # the maximum on a fixation: whether the end threshold counts matters
        preds.append(p / (1.02 * p.max()))  # inside [0, 1): no uint8 wrap under coursework
    return recs, preds


@pytest.mark.parametrize("protocol,param,value,metric", CHANGES, ids=[f"{p}-{k}" for p, k, _, _ in CHANGES])
def test_parameter_changes_scores(protocol, param, value, metric):
    recs, preds = _param_data(ties=param == "auc_judd_jitter")
    base = get_protocol(protocol)
    assert base.params[param] != value
    other = get_protocol(protocol, **{param: value})
    assert other.params[param] == value
    a = base.evaluate(preds, recs, seed=0).scores[metric]
    b = other.evaluate(preds, recs, seed=0).scores[metric]
    assert np.isfinite(a).any() and not np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize("protocol", list_protocols())
def test_conventions_are_refused_with_a_clear_error(protocol):
    cls = PROTOCOLS[protocol]
    assert cls.conventions and not set(cls.conventions) & set(cls.defaults)
    for key in cls.conventions:
        with pytest.raises(ConventionOverrideError) as info:
            get_protocol(protocol, **{key: "something else"})
        msg = str(info.value)
        assert repr(protocol) in msg and repr(key) in msg and "fixed convention" in msg
        for k in cls.defaults:
            assert k in msg
    p = get_protocol(protocol)
    assert p.conventions == cls.conventions and "name" in p.params
    assert set(p.params) == {"name", *cls.defaults}


@pytest.mark.parametrize("protocol,key,value", [
    ("mit", "splits", 0), ("mit", "step", 2.0), ("mit", "ground_truth", "gt"), ("coursework", "blur_sigma", -1.0),
    ("salicon", "filter_anns", "yes"), ("mit", "include_endpoint", 1)])
def test_bad_parameter_values_are_refused(protocol, key, value):
    with pytest.raises(ValueError, match=f"protocol '{protocol}': bad value .* for '{key}'"):
        get_protocol(protocol, **{key: value})


def test_records_rebuild_the_protocol_they_name():
    """``protocol_from_record`` builds the protocol from current parameters (and metric set) only;
    a key that is now a convention is refused (old results files are migrated, not special-cased)."""
    new = get_protocol("mit", splits=50).params
    assert protocol_from_record(new).params == new
    assert protocol_from_record(new).metrics == get_protocol("mit").metrics
    assert protocol_from_record(new, metrics=["emd", "cc"]).metrics == ("cc", "emd")  # registry order
    for name in list_protocols():
        p = get_protocol(name)
        assert protocol_from_record(p.params).params == p.params
    with pytest.raises(ConventionOverrideError, match="'resize' is a fixed convention"):
        protocol_from_record({**new, "resize": "matlab_bicubic"})
    with pytest.raises(ValueError, match="lack the protocol 'name'"):
        protocol_from_record({"splits": 3})


def test_metric_subsets_are_checked_against_the_registry_and_the_protocol():
    p = get_protocol("mit", metrics=("nss", "cc"))
    assert p.metrics == ("cc", "nss") and "metrics" not in p.params  # registry order; not a parameter
    assert get_protocol("mit", metrics="emd, auc_judd").metrics == ("auc_judd", "emd")
    assert get_protocol("mit", metrics=("cc",)).params == get_protocol("mit").params
    with pytest.raises(ValueError, match="unknown metric 'ncc'.*Did you mean 'cc'"):
        get_protocol("mit", metrics=("ncc",))
    with pytest.raises(ValueError, match="metric 'emd' is not available under protocol 'coursework' "
                                         r"\(it is declared for mit\)"):
        get_protocol("coursework", metrics=("cc", "emd"))
    with pytest.raises(ValueError, match="choose at least one metric"):
        get_protocol("exact", metrics=())


# ----------------------------------------------------------------------------- degenerate inputs
def _expected_constant(protocol, metric, uniform_scores, i):
    value = registry.get_metric(metric).constant_map
    if value is None:
        return np.nan
    if value == registry.UNIFORM:
        return uniform_scores[metric][i]
    return value


@pytest.mark.parametrize("protocol", list_protocols())
@pytest.mark.parametrize("size", [(12, 16), (30, 40), (48, 48)])
def test_constant_prediction_scores_chance_everywhere(protocol, size):
    recs = make_records(6, seed=2)
    p = get_protocol(protocol)
    const = p.evaluate([np.full(size, 0.7)] * 6, recs, seed=0).scores
    uniform = p.evaluate([np.ones(r.shape) for r in recs], recs, seed=0).scores
    for k in p.metrics:
        for i in range(6):
            exp = _expected_constant(protocol, k, uniform, i)
            if "auc" in k:
                assert const[k][i] == 0.5, (k, i)
            if k.startswith("nss") or k == "cc":
                assert const[k][i] == 0.0, (k, i)
            np.testing.assert_equal(const[k][i], exp, err_msg=f"{protocol} {k} image {i}")


@pytest.mark.parametrize("protocol", list_protocols())
def test_images_without_fixations_are_excluded_everywhere(protocol):
    recs = make_records(7, seed=4, empty=(2, 5))
    preds = make_predictions(7, seed=4)
    r = get_protocol(protocol).evaluate(preds, recs, seed=0)
    assert r.excluded == [recs[2].name, recs[5].name] and r.n_excluded == 2
    for k, v in r.scores.items():
        assert np.isnan(v[[2, 5]]).all(), k
        assert np.isfinite(np.delete(v, [2, 5])).all(), k
        assert r.summary()[k]["n"] == 5


# ----------------------------------------------------------------------------- mit ground truth
@pytest.fixture(scope="module")
def mit_density_refs():
    js, npz = REFS / "osie_mit_density.json", REFS / "osie_mit_density.npz"
    if not js.exists() or not npz.exists():
        pytest.skip(f"MIT density references not found at {REFS}")
    return json.loads(js.read_text())


def test_mit_ground_truth_matches_mit_code(ref_vectors, mit_density_refs):
    """Under ground_truth='mit' CC, SIM and KLD equal MIT's CC.m / similarity.m / KLdiv.m within 1e-9."""
    from salbench.data.record import Record

    arrays, _ = ref_vectors
    recs = [Record(name=f"c{i}", image=None, fixations=np.zeros((0, 2), np.int64), observers=None,
                   fixation_map=arrays[f"fixmap_{i}"] > 0, density=u16(arrays[f"gt_u16_{i}"]), x96=None, y48=None)
            for i in range(10)]
    p = get_protocol("mit", splits=5)
    assert p.params["ground_truth"] == "mit"
    for kind in ("center", "contrast", "mix"):
        preds = [u16(arrays["center_u16"] if kind == "center" else arrays[f"pred_{kind}_u16_{i}"]) for i in range(10)]
        r = p.evaluate(preds, recs, seed=0)
        for i, case in enumerate(mit_density_refs["cases"]):
            ref = case["mit_density"][kind]
            for col, key in (("cc", "CC"), ("sim", "SIM"), ("kld", "KLdiv")):
                assert r.scores[col][i] == pytest.approx(ref[key], rel=1e-9), (kind, i, col)
        old = get_protocol("mit", splits=5, ground_truth="dataset").evaluate(preds, recs, seed=0)
        assert not np.allclose(old.scores["cc"], r.scores["cc"])  # the parameter is what moves them
        for k in ("nss", "auc_judd", "auc_borji", "auc_shuffled", "info_gain"):  # fixation-based: unchanged
            np.testing.assert_array_equal(old.scores[k], r.scores[k])


# ----------------------------------------------------------------------------- through the registry
def _mean_at_fixations(saliency, fixations, *, step=0.1):
    s = np.asarray(saliency, float)
    f = np.asarray(fixations, bool)
    return float(s[f].mean() + step) if f.any() else float("nan")


@pytest.mark.parametrize("protocol", list_protocols())
def test_a_new_registry_metric_reaches_every_protocol_unedited(protocol, monkeypatch):
    """Declaring a metric for a protocol in the registry adds its column; it is computed per image by its
    function, with the protocol parameters its entry maps (and only those)."""
    import dataclasses

    first = next(iter(registry.METRICS.values()))
    new = dataclasses.replace(first, name="mean_fix", label="MF", needs=("fixations",), func=_mean_at_fixations,
                              kernel=None, sampled=False, seeded=False, params={"step": "step"},
                              protocols=(protocol,), constant_map=None, description="test metric")
    monkeypatch.setitem(registry.METRICS, "mean_fix", new)
    recs = make_records(5, seed=8, empty=(1,))
    preds = [np.random.default_rng(i).random(r.shape) for i, r in enumerate(recs)]
    p = get_protocol(protocol)
    assert p.metrics[-1] == "mean_fix"
    r = p.evaluate(preds, recs, seed=0)
    assert np.isnan(r.scores["mean_fix"][1])
    if protocol in ("mit", "exact"):  # same-size predictions, fixation map as the fixations
        step = p.params.get("step", 0.1)  # exact has no step: the function's default
        for i in (0, 2, 3, 4):
            assert r.scores["mean_fix"][i] == _mean_at_fixations(preds[i], recs[i].fixation_map, step=step)
    assert np.isfinite(np.delete(r.scores["mean_fix"], 1)).all()
    for other in set(list_protocols()) - {protocol}:
        assert "mean_fix" not in get_protocol(other).metrics  # declared for one protocol only


def test_a_metric_for_any_protocol_reaches_those_that_supply_its_inputs(monkeypatch):
    """``protocols=None`` (what a plugin usually declares): every protocol supplying its inputs reports it;
    a sampled one only where seeds are drawn, each image with its own seed (a function of seed, n, image)."""
    import dataclasses

    def noisy(saliency, fixations, *, seed=None):
        return float(np.random.default_rng(seed).random())

    first = next(iter(registry.METRICS.values()))
    monkeypatch.setitem(registry.METRICS, "any_fix", dataclasses.replace(
        first, name="any_fix", label="AF", needs=("fixations",), func=_mean_at_fixations, kernel=None,
        sampled=False, seeded=False, params={}, protocols=None, constant_map=None, description="test"))
    monkeypatch.setitem(registry.METRICS, "any_weights", dataclasses.replace(
        first, name="any_weights", label="AW", needs=("other_weights",), func=lambda s, w: 1.0, kernel=None,
        sampled=False, seeded=False, params={}, protocols=None, constant_map=None, description="test"))
    monkeypatch.setitem(registry.METRICS, "any_sampled", dataclasses.replace(
        first, name="any_sampled", label="AS", needs=("fixations",), func=noisy, kernel=None, sampled=True,
        seeded=None, params={}, protocols=None, constant_map=None, description="test"))
    for name in list_protocols():
        metrics = get_protocol(name).metrics
        assert "any_fix" in metrics
        assert ("any_weights" in metrics) == (name == "salicon")  # only salicon supplies other_weights
        assert ("any_sampled" in metrics) == (name != "exact")  # exact draws nothing
    with pytest.raises(ValueError, match="'any_weights' is not available under protocol 'mit' "
                                         r"\(it needs other_weights, which 'mit' does not supply\)"):
        get_protocol("mit", metrics=("any_weights",))
    with pytest.raises(ValueError, match="it is sampled and 'exact' draws no seeds"):
        get_protocol("exact", metrics=("any_sampled",))
    recs = make_records(6, seed=3)
    preds = make_predictions(6, seed=3)
    a = get_protocol("mit", metrics=("any_sampled",)).evaluate(preds, recs, seed=4).scores["any_sampled"]
    b = get_protocol("mit").evaluate(preds, recs, seed=4).scores["any_sampled"]
    np.testing.assert_array_equal(a, b)  # the seed does not depend on the metric set
    assert len(set(a)) == 6  # one seed per image
    assert not np.array_equal(a, get_protocol("mit").evaluate(preds, recs, seed=5).scores["any_sampled"])


@pytest.mark.parametrize("protocol", ["mit", "coursework"])
def test_fused_columns_follow_the_registry_entry(protocol, monkeypatch):
    """If the registry's CC changes its kernel, the fused path steps aside and the registry function scores CC."""
    import dataclasses

    recs = make_records(4, seed=9)
    preds = make_predictions(4, seed=9)
    before = get_protocol(protocol).evaluate(preds, recs, seed=0).scores

    def other_cc(saliency, density):
        return 0.125

    monkeypatch.setitem(registry.METRICS, "cc", dataclasses.replace(registry.METRICS["cc"], func=other_cc,
                                                                     kernel=lambda s, g: 0.0))
    after = get_protocol(protocol).evaluate(preds, recs, seed=0).scores
    assert (after["cc"] == 0.125).all()
    for k in before:
        if k != "cc":
            np.testing.assert_array_equal(before[k], after[k])


@pytest.mark.parametrize("protocol", ["mit", "exact", "salicon"])
def test_scale_invariant_protocols_score_huge_and_tiny_maps_as_the_map(protocol):
    """A map times 1e300 or 1e-300 scores as the map under every scale-invariant protocol (issue 19)."""
    from salbench.data import get_dataset

    records = [get_dataset("synthetic", "val", n_images=6)[i] for i in range(6)]
    rng = np.random.default_rng(3)
    maps = [rng.random((48, 48)) * 0.9 + 0.1 for _ in records]
    proto = get_protocol(protocol)
    base = proto.evaluate(maps, records, seed=1).scores
    for k in (1e300, 1e-300, 3.0, 1.5e308):  # 1.5e308 overflows in any resize unless rescaled first
        scaled = proto.evaluate([m * k for m in maps], records, seed=1).scores
        for metric, values in base.items():
            np.testing.assert_allclose(scaled[metric], values, rtol=1e-10, atol=1e-12, err_msg=f"{metric} x {k}")
