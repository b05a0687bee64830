"""Record: lazy fields, constructors and dataclasses.replace as before; duplicate names refused."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from salbench.data._maps import blurred_density, density_from_points
from salbench.data.base import SaliencyDataset
from salbench.data.record import Lazy, Record, y_original_from_density


def _calls(record, counter):
    counter.append(1)
    return np.ones(record.shape)


def make(**kw):
    pts = np.array([[1, 2], [3, 4], [1, 2]], np.int64)
    fmap = np.zeros((8, 10), bool)
    fmap[pts[:, 0], pts[:, 1]] = True
    base = dict(name="a.jpg", image=None, fixations=pts, observers=None, fixation_map=fmap,
                density=Lazy(blurred_density, 2.0), x96=None, y48=None, y_original=Lazy(y_original_from_density))
    base.update(kw)
    return Record(**base)


def test_lazy_field_computed_once_on_first_read():
    counter = []
    rec = make(density=Lazy(_calls, counter))
    assert not rec.is_computed("density") and counter == []
    assert rec.density.shape == (8, 10) and rec.density is rec.density
    assert counter == [1] and rec.is_computed("density")


def test_recipes_give_the_eager_values():
    rec = make()
    np.testing.assert_array_equal(rec.density, density_from_points(rec.fixations, (8, 10), 2.0))
    np.testing.assert_array_equal(rec.y_original, np.rint(255 * rec.density).astype(np.uint8))


def test_positional_and_keyword_constructors_and_defaults():
    d = np.zeros((2, 3))
    rec = Record("n", None, np.zeros((0, 2), np.int64), None, np.zeros((2, 3), bool), d, None, None)
    assert rec.density is d and rec.y_original is None and rec.true_density is None and rec.meta == {}
    with pytest.raises(TypeError):
        Record(name="n")  # still required fields
    assert [f.name for f in dataclasses.fields(Record)][:8] == [
        "name", "image", "fixations", "observers", "fixation_map", "density", "x96", "y48"]


def test_replace_keeps_lazy_fields_and_dataclasses_replace_still_works():
    counter = []
    rec = make(density=Lazy(_calls, counter))
    kept = rec.replace(image=None, true_density=None)
    assert not kept.is_computed("density") and counter == []
    with pytest.raises(TypeError, match="no field"):
        rec.replace(nope=1)
    other = dataclasses.replace(rec, name="b.jpg")  # reads every field: computes them
    assert other.name == "b.jpg" and other.density.shape == (8, 10) and counter == [1]


def test_lazy_records_pickle_uncomputed():
    rec = make()
    back = pickle.loads(pickle.dumps(rec))
    assert not back.is_computed("density")
    np.testing.assert_array_equal(back.density, rec.density)
    assert "density=<lazy>" not in repr(rec) and "density=<lazy>" in repr(back.replace(density=Lazy(_calls, [])))


class _Toy(SaliencyDataset):
    name = "toy"

    def __init__(self, names):
        super().__init__()
        self.split = "all"
        self.names = names


def test_duplicate_names_refused_when_opened():
    assert len(_Toy(["a", "b"])) == 2
    with pytest.raises(ValueError, match=r"toy/all: 2 duplicate image name\(s\) refused \('a' at \[0, 2\]; 'b' at "
                                         r"\[1, 3\]\)"):
        _Toy(["a", "b", "a", "b", "c"])
