"""Density models: the output flag, log-densities that sum to 1, and their agreement with predict()."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp
from test_models import make_record
from test_plugins import _dist, _eps

from salbench.models import SaliencyModel, create_model
from salbench.models.base import is_density_model, log_densities_from_maps, model_output

DENSITY_MODELS = ("uniform", "center_bias", "gold", "shallow_kl")


@pytest.fixture(scope="module")
def records():
    return [make_record(i) for i in range(3)]


def test_builtin_flags_and_cards():
    for name in ("uniform", "center_bias", "gold", "shallow_kl", "shallow_mse"):
        m = create_model(name)
        want = "density" if name in DENSITY_MODELS else "saliency"
        assert model_output(m) == want == m.card["output"]
        assert is_density_model(m) is (want == "density")


@pytest.mark.parametrize("name", DENSITY_MODELS)
def test_log_density_is_normalised_and_is_predicts_map(name, records):
    m = create_model(name)
    ld = m.predict_log_density(records)
    h, w = m.output_size or records[0].shape
    assert ld.shape == (3, h, w) and ld.dtype == np.float64 and np.isfinite(ld).all()
    np.testing.assert_allclose(logsumexp(ld, axis=(1, 2)), 0.0, atol=1e-12)  # sums to 1 within 1e-12
    # predict() is the same density scaled to maximum 1 (float32)
    p = np.exp(ld)
    np.testing.assert_allclose(m.predict(records), p / p.max(axis=(1, 2), keepdims=True), rtol=2e-6, atol=1e-7)


def test_closed_forms_of_the_baselines(records):
    np.testing.assert_array_equal(create_model("uniform", output_size=(6, 8)).predict_log_density(records[:1]),
                                  np.full((1, 6, 8), -np.log(48)))
    cb = create_model("center_bias", output_size=(30, 40))
    r = (np.arange(30) + 0.5) / 30
    c = (np.arange(40) + 0.5) / 40
    g = np.exp(-0.5 * ((r[:, None] - cb.mean[0]) / cb.std[0]) ** 2 - 0.5 * ((c[None] - cb.mean[1]) / cb.std[1]) ** 2)
    np.testing.assert_allclose(np.exp(cb.predict_log_density(records[:1])[0]), g / g.sum(), rtol=1e-12)
    td = records[0].true_density
    np.testing.assert_allclose(np.exp(create_model("gold").predict_log_density(records[:1])[0]), td / td.sum(),
                               rtol=1e-12)


def test_shallow_kl_log_density_is_the_log_softmax_of_its_scores(records):
    import torch

    m = create_model("shallow_kl")
    with torch.no_grad():
        scores = m.net.eval()(torch.from_numpy(np.stack([r.x96 for r in records]))).double().numpy()
    want = scores - logsumexp(scores, axis=1, keepdims=True)
    np.testing.assert_allclose(m.predict_log_density(records).reshape(3, -1), want, atol=1e-12)
    with pytest.raises(TypeError, match="saliency maps, not fixation densities"):
        create_model("shallow_mse").predict_log_density(records)


def test_a_model_that_declares_nothing_is_a_saliency_model():
    class Plain:
        name = "plain"

        def predict(self, records):
            return np.ones((len(records), 4, 4))

    class Sub(SaliencyModel):
        name = "sub"

    assert model_output(Plain()) == "saliency" and model_output(Sub()) == "saliency"
    with pytest.raises(TypeError, match="'sub' predicts saliency maps"):
        Sub().predict_log_density([make_record()])


def test_declared_density_defaults_to_predicts_maps_and_refuses_zeros():
    class D(SaliencyModel):
        name = "d"
        output = "density"

        def __init__(self, maps):
            self.maps = maps

        def predict(self, records):
            return self.maps

    maps = np.array([[[1.0, 3.0], [2.0, 2.0]]])
    np.testing.assert_allclose(np.exp(D(maps).predict_log_density([None])), maps / 8.0, rtol=1e-15)
    with pytest.raises(ValueError, match="density map 1 has a zero"):
        D(np.stack([maps[0], np.zeros((2, 2))])).predict_log_density([None, None])
    with pytest.raises(ValueError, match="output must be one of"):
        model_output(type("Bad", (), {"output": "probability", "name": "bad"})())
    with pytest.raises(ValueError, match="no predict_log_density"):
        model_output(type("NoLd", (), {"output": "density", "name": "nold"})())
    assert log_densities_from_maps(np.ones((2, 3, 3))).shape == (2, 3, 3)


_DENSITY_PLUGIN = """
    import numpy as np

    class _Model:
        name = "dens"
        output = "density"
        card = {"name": "dens", "trained_on": "nothing", "output_size": [4, 4]}

        def predict(self, records):
            return np.ones((len(records), 4, 4), np.float32)

        def predict_log_density(self, records):
            raise ValueError("log-density not available for image 0")

    def dens(**kw):
        return _Model()
"""


def test_plugin_failing_in_predict_log_density_is_one_line_naming_it(tmp_path, monkeypatch):
    from salbench.models import ModelRegistry
    from salbench.models._registry import PluginError

    site = _dist(tmp_path, "dens-plugin", "dens_mod", _DENSITY_PLUGIN, {"dens": "dens_mod:dens"})
    monkeypatch.syspath_prepend(str(site))
    model = ModelRegistry(_eps(site)).create("dens")
    assert is_density_model(model)
    with pytest.raises(PluginError) as info:
        model.predict_log_density([None])
    assert str(info.value) == ("model 'dens' (plugin dens-plugin entry point 'dens = dens_mod:dens') raised in "
                               "predict_log_density: ValueError: log-density not available for image 0")
