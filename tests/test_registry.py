from __future__ import annotations

import pytest

from migraine_bayes.cohort.registry import Registry, Variable


def test_builtin_registry_matches_schema() -> None:
    reg = Registry.builtin()
    assert len(reg) == 26
    hr = reg["resting_hr"]
    assert (hr.category, hr.unit, hr.min, hr.max, hr.aggregate) == ("physiological", "bpm", 25,
                                                                      220, "mean")
    assert reg["steps"].aggregate == "sum" and reg["menstruation"].is_binary
    assert set(reg.names("environmental")) == {"pressure", "temperature", "humidity", "pm25",
                                               "light_exposure", "noise"}


def test_unknown_name_lists_available() -> None:
    with pytest.raises(KeyError, match="available"):
        Registry.builtin()["mood"]


def test_extended_rejects_redefinition_and_bad_entries() -> None:
    reg = Registry.builtin().extended([Variable("aura_score", "symptom", "0-5", 0, 5, "max")])
    assert "aura_score" in reg
    with pytest.raises(ValueError, match="already"):
        reg.extended([Variable("stress", "trigger", "x", 0, 1, "mean")])
    with pytest.raises(ValueError, match="category"):
        Variable("a", "mood", "x", 0, 1, "mean")
    with pytest.raises(ValueError, match="min"):
        Variable("a", "trigger", "x", 2, 1, "mean")
