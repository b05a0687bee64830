"""Registry behaviour with real ``importlib.metadata.EntryPoint`` objects (flake8-style)."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from salbench.models import GROUP, ModelRegistry, UnknownModelError, create_model, list_models, register_model
from salbench.models._registry import default_registry

BUILTINS = ["center_bias", "gold", "shallow_kl", "shallow_mse", "uniform"]


def ep(name, value, group=GROUP):
    return EntryPoint(name=name, value=value, group=group)


def test_builtins_come_from_the_installed_entry_point_group():
    from importlib.metadata import entry_points

    installed = {e.name: e.value for e in entry_points(group=GROUP)}
    for name in BUILTINS:
        assert installed[name].startswith("salbench.models.")
        assert default_registry().origin(name).startswith(installed[name])
    assert set(BUILTINS) <= set(list_models())


def test_list_models_pattern_is_fnmatch():
    assert list_models("shallow_*") == ["shallow_kl", "shallow_mse"]
    assert list_models("*bias") == ["center_bias"]
    assert list_models("nothing*") == []


def test_entry_points_are_lazy_and_load_on_use():
    reg = ModelRegistry([ep("u", "salbench.models.baselines:uniform"), ep("other", "x:y", group="not.ours")])
    assert reg.names() == ["u"]  # other groups ignored
    assert reg._lazy and not reg._factories  # nothing imported yet
    assert reg.get("u")(output_size=(3, 5)).output_size == [3, 5]


def test_broken_plugin_is_recorded_and_does_not_break_others():
    reg = ModelRegistry([
        ep("good", "salbench.models.baselines:uniform"),
        ep("missing", "salbench_no_such_module_xyz:factory"),
        ep("notcallable", "salbench.models._registry:GROUP"),
    ])
    failures = reg.load_all()
    assert set(failures) == {"missing", "notcallable"}
    assert "ModuleNotFoundError" in failures["missing"] and "salbench_no_such_module_xyz" in failures["missing"]
    assert "not callable" in failures["notcallable"]
    assert reg.names() == ["good"]
    assert reg.get("good")().name == "uniform"
    with pytest.raises(ImportError, match="model 'missing' could not be loaded: entry point 'missing = "
                                          "salbench_no_such_module_xyz:factory': ModuleNotFoundError"):
        reg.get("missing")  # a failed plugin is reported as failed, not as an unknown name


def test_broken_plugin_error_on_direct_use():
    reg = ModelRegistry([ep("missing", "salbench_no_such_module_xyz:factory")])
    with pytest.raises(ImportError, match="could not be loaded.*ModuleNotFoundError"):
        reg.get("missing")


def test_duplicate_entry_point_is_a_failure_first_wins():
    reg = ModelRegistry([ep("m", "salbench.models.baselines:uniform"), ep("m", "salbench.models.baselines:gold")])
    assert reg.get("m")().name == "uniform"
    (key, msg), = reg.failures.items()
    assert "duplicate model name 'm'" in msg and "baselines:gold" in key


def test_register_duplicate_raises():
    reg = ModelRegistry([ep("u", "salbench.models.baselines:uniform")])
    reg.register(lambda: None, name="new")
    with pytest.raises(ValueError, match="already registered"):
        reg.register(lambda: None, name="new")
    with pytest.raises(ValueError, match="already registered"):
        reg.register(lambda: None, name="u")  # clashes with a lazy entry point too


def test_register_model_default_registry_and_decorator_name():
    @register_model(name="_test_const_model")
    def _factory(**kw):
        from salbench.models.baselines import UniformModel

        return UniformModel(**kw)

    assert "_test_const_model" in list_models("_test_*")
    with pytest.raises(ValueError, match="already registered"):
        register_model(_factory, name="uniform")


def test_unknown_name_did_you_mean():
    with pytest.raises(UnknownModelError, match=r"Did you mean 'shallow_kl'"):
        create_model("shallow_k1")
    with pytest.raises(ValueError, match="unknown model 'zzzz'"):  # also a ValueError for the CLI
        create_model("zzzz")


def test_create_model_drops_none_kwargs():
    m = create_model("uniform", output_size=None)  # None means "default"
    assert m.output_size == [48, 48]
    with pytest.raises(TypeError):
        create_model("gold", sigma=3)


def test_a_plugin_exiting_on_import_does_not_exit_salbench(tmp_path, monkeypatch):
    (tmp_path / "exiting_plugin_mod.py").write_text("import sys\nsys.exit('bye')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = ModelRegistry([ep("bye", "exiting_plugin_mod:factory"), ep("u", "salbench.models.baselines:uniform")])
    failures = reg.load_all()
    assert failures["bye"].startswith("entry point 'bye = exiting_plugin_mod:factory': SystemExit: bye")
    assert reg.create("u").name == "uniform"
