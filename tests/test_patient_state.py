from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from migraine_bayes.state import PARTS, PatientState, split_feature

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.0123456789", min_size=1, max_size=12)
values = st.floats(allow_nan=True, allow_infinity=False, width=64)
parts = st.fixed_dictionaries({p: st.dictionaries(names, values, max_size=5) for p in PARTS})


@given(parts)
def test_feature_vector_round_trip(p: dict) -> None:
    state = PatientState(patient_id="x", **p)
    vec, feature_names = state.to_feature_vector()
    assert vec.shape == (len(feature_names),)
    back = PatientState.from_feature_vector(vec, feature_names, patient_id="x")
    for part in PARTS:
        a, b = getattr(state, part), getattr(back, part)
        assert list(a) == list(b)
        np.testing.assert_array_equal(np.array(list(a.values()), dtype=float),
                                      np.array(list(b.values()), dtype=float))
    vec2, names2 = back.to_feature_vector()
    assert names2 == feature_names
    np.testing.assert_array_equal(vec, vec2)


@given(parts, st.permutations(list(range(6))))
def test_requested_order_and_missing_names(p: dict, perm: list[int]) -> None:
    state = PatientState(**p)
    all_names = [*state.feature_names(), "trigger.never_measured"]
    order = [all_names[i % len(all_names)] for i in perm][: len(set(all_names))]
    order = list(dict.fromkeys(order))
    vec, got = state.to_feature_vector(order)
    assert got == order
    if "trigger.never_measured" in order:
        assert np.isnan(vec[order.index("trigger.never_measured")])


def test_names_are_part_dot_name() -> None:
    s = PatientState(trigger={"stress": 4.0}, derived={"sleep_debt": 1.5})
    _vec, n = s.to_feature_vector()
    assert n == ["trigger.stress", "derived.sleep_debt"]
    assert split_feature("derived.a.b") == ("derived", "a.b")
    with pytest.raises(ValueError, match="part in"):
        split_feature("mood.stress")
    with pytest.raises(ValueError, match="unique"):
        PatientState.from_feature_vector([1, 2], ["trigger.a", "trigger.a"])


def test_update_returns_a_copy() -> None:
    s = PatientState(trigger={"stress": 4.0})
    t = s.update({"trigger.stress": 1.0, "trigger.alcohol": 2.0})
    assert s.trigger == {"stress": 4.0}
    assert t.trigger == {"stress": 1.0, "alcohol": 2.0}
