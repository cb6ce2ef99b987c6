"""The typed reader of twin.json: checked on read, never changed in place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migraine_bayes.twin.record import (
    FORMAT_VERSION,
    MODEL_NAME,
    TwinRecord,
    TwinVersionError,
)

BASE = {
    "model_name": MODEL_NAME, "model_version": 1, "format_version": FORMAT_VERSION,
    "package_version": "0.1.0", "created": "2026-12-01T00:00:00+00:00", "version": 2.0,
    "previous_version": 1.0, "patients": ["p1", "p2"], "outcome": "onset",
    "hierarchical": True, "prior": None,
    "features": [{"name": "trigger.stress", "source": "stress"}],
    "scaling": {"trigger.stress": [5.0, 2.0]},
    "centers": {"p1": {"trigger.stress": 0.1}, "p2": {"trigger.stress": -0.1}},
    "interventions": [], "domain": {"center": 10.0, "half_width": 20.0, "basis_offset": [0.1]},
    "coverage": {"p1": {"diary_days": 30}, "p2": {"diary_days": 12}},
    "diagnostics": {"ok": False}, "validation": None,
    "fitting": {"patients": {"p1": {"ok": True}}, "not_fitted": {"p2": "failed"}},
}


def test_typed_fields_and_the_model_configuration() -> None:
    r = TwinRecord.from_dict(BASE)
    assert r.version == 2.0 and r.previous_version == 1.0 and r.patients == ["p1", "p2"]
    assert r.outcome == "onset" and r.hierarchical and r.fitted_days("p2") == 12
    assert r.admitted == [] and r.filter is None and r.audit_head is None
    assert r.spec.scaling_dict == {"trigger.stress": (5.0, 2.0)}
    assert r.spec.feature_specs[0].source == "stress"
    # two-stage fits: each patient's own checks, a patient not fitted fails, else the fit's
    assert r.patient_checks_ok("p1") and not r.patient_checks_ok("p2")
    assert not TwinRecord.from_dict(BASE | {"fitting": None}).patient_checks_ok("p1")


def test_a_record_is_never_changed_in_place() -> None:
    r = TwinRecord.from_dict(BASE)
    coverage = r.coverage
    coverage["p1"]["diary_days"] = 999  # a copy
    assert r.fitted_days("p1") == 30
    newer = r.replace(version=3.0, admitted=["p3"])
    assert (r.version, r.admitted) == (2.0, []) and (newer.version, newer.admitted) == (3.0,
                                                                                      ["p3"])
    out = newer.to_dict()
    out["patients"].append("p9")
    assert newer.patients == ["p1", "p2"]


@pytest.mark.parametrize(("change", "message"), [
    ({"format_version": 99}, "twin format 99"),
    ({"model_name": "other"}, "of model 'other'"),
    ({"patients": "p1"}, "field 'patients' must be list"),
    ({"hierarchical": "yes"}, "field 'hierarchical' must be bool"),
    ({"version": True}, "field 'version' must be int or float"),
])
def test_a_malformed_twin_json_is_refused_naming_the_field(change, message) -> None:
    with pytest.raises(TwinVersionError, match=message):
        TwinRecord.from_dict(BASE | change, "t/twin.json")


def test_a_missing_field_is_named(tmp_path: Path) -> None:
    (tmp_path / "twin.json").write_text(json.dumps({k: v for k, v in BASE.items()
                                                    if k != "coverage"}))
    with pytest.raises(TwinVersionError, match="field 'coverage' is missing"):
        TwinRecord.read(tmp_path)
    (tmp_path / "twin.json").write_text("[1, 2]")
    with pytest.raises(TwinVersionError, match="a JSON object is needed"):
        TwinRecord.read(tmp_path)
    (tmp_path / "twin.json").write_text('{"model_name": ')
    with pytest.raises(TwinVersionError, match="not valid JSON"):
        TwinRecord.read(tmp_path)


def test_read_gives_what_was_written(tmp_path: Path) -> None:
    (tmp_path / "twin.json").write_text(json.dumps(BASE))
    assert TwinRecord.read(tmp_path).to_dict() == BASE


def test_the_simplest_structure_within_noise_of_the_best_is_chosen() -> None:
    """PSIS-LOO comparison rule (:mod:`migraine_bayes.twin.selection`): a difference below 4
    ELPD or below 2 SE of the paired difference is noise; the simplest such candidate wins."""
    import pandas as pd

    from migraine_bayes.twin.selection import choose

    def table(diffs, ses):
        names = ["same-day triggers", "distributed lag 0-3", "learned shapes"]
        return pd.DataFrame({"structure": names, "elpd_diff": diffs, "se_diff": ses})

    assert choose(table([3.0, 0.0, 1.0], [1.0, 0.0, 1.0]))[0] == "same-day triggers"
    name, why = choose(table([9.0, 0.0, 1.0], [5.0, 0.0, 1.0]))  # 9 < 2 × 5
    assert name == "same-day triggers" and "within 2 SE" in why
    name, why = choose(table([12.0, 0.0, 1.0], [3.0, 0.0, 1.0]))  # beyond noise: the lag
    assert name == "distributed lag 0-3" and "simplest within noise" in why
    assert choose(table([12.0, 7.0, 0.0], [3.0, 2.0, 0.0]))[0] == "learned shapes"
    # the best failed its sampler checks: not kept, and the reason names it
    failed = table([12.0, 0.0, 7.0], [3.0, 0.0, 2.0]).assign(checks_ok=[True, False, True])
    name, why = choose(failed)
    assert name == "learned shapes" and why == (
        "the best ELPD of the candidates that passed their checks; the best "
        "(distributed lag 0-3) failed its sampler checks")
    name, why = choose(failed.assign(elpd_diff=[3.0, 0.0, 7.0]))
    assert name == "same-day triggers" and why.endswith(
        "; the best (distributed lag 0-3) failed its sampler checks")
