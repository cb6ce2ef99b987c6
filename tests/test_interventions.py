"""Counterfactual interventions: encoding errors, common random numbers, truth recovery, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import COMMITTED
from typer.testing import CliRunner

from migraine_bayes.cli import app
from migraine_bayes.errors import InputDataError
from migraine_bayes.evaluation import true_stop_rrr
from migraine_bayes.interventions import (
    compare,
    comparison_json,
    encode_intervention,
    parse_scenarios,
    simulate,
)

SCHEMA_EXAMPLE = [
    {"name": "erenumab", "type": "medication",
     "params": {"medication": "erenumab", "dosage": "70mg", "frequency": "monthly"}},
    {"name": "prodrome_ubrogepant", "type": "medication",
     "params": {"medication": "ubrogepant", "dosage": "100mg", "frequency": "once",
                "timing": "prodrome"}},
    {"name": "stress_reduction", "type": "behavioral",
     "params": {"behavior": "stress_reduction", "intensity": "moderate", "duration": "60min"}},
]
TRUTH = json.loads((COMMITTED / "truth.json").read_text())
BY_ID = {p["patient_id"]: p for p in TRUTH["patients"]}
PREVENTIVE = {p["patient_id"]: c["name"] for p in TRUTH["patients"] for c in p["interventions"]
              if c["kind"] == "preventive"}


def _problems(exc: pytest.ExceptionInfo) -> str:
    return "\n".join(str(p) for p in exc.value.problems)


# ------------------------------------------------------------------ encoding (no twin needed)
def test_schema_example_encodes_each_kind_with_its_pathway() -> None:
    s = parse_scenarios(SCHEMA_EXAMPLE)
    assert [x.name for x in s] == ["erenumab", "prodrome_ubrogepant", "stress_reduction"]
    assert [x.pathways for x in s] == [["log_odds"], ["prodrome"], ["covariate"]]
    ere = s[0].interventions[0]
    assert ere.kind == "preventive" and ere.dose_mg == 70.0
    assert ere.prior["log_rr"] == pytest.approx(np.log((8.3 - 3.2) / (8.3 - 1.8)), abs=1e-3)
    assert "STRIVE" in ere.prior["source"]
    stress = s[2].interventions[0]
    assert (stress.variable, stress.operation, stress.value) == ("trigger.stress", "shift", -1.0)
    acute = encode_intervention("medication", {"medication": "sumatriptan", "dosage": "100 mg"})
    assert acute.pathway == "attack_outcome" and acute.prior["pain_free_2h"] == 0.32


def test_invalid_scenarios_list_every_problem_before_simulating() -> None:
    bad = [
        {"name": "x", "type": "medication", "params": {"medication": "aspirinex"}},
        {"name": "neg", "type": "medication", "params": {"medication": "erenumab",
                                                         "dosage": "-70mg"}},
        {"name": "dose", "type": "medication", "params": {"medication": "erenumab",
                                                          "dosage": "35mg"}},
        {"name": "suma", "type": "medication", "params": {"medication": "sumatriptan",
                                                          "timing": "prodrome"}},
        {"name": "baseline", "type": "behavioral", "params": {"behavior": "yoga"}},
        {"name": "neg", "type": "behavioral", "params": {"behavior": "stress_reduction",
                                                         "intensity": "extreme", "colour": 1}},
        {"name": "ov", "type": "behavioral", "params": {"behavior": "regular_meals"},
         "override": {"status": "maybe"}},
    ]
    with pytest.raises(InputDataError) as exc:
        parse_scenarios(bad, file="scenarios.json")
    text = _problems(exc)
    for needle in ("row 1, column 'params.medication': unknown medication",
                   "row 2, column 'params.dosage': dose must be positive",
                   "row 3, column 'params.dosage': no published prior for erenumab",
                   "row 4, column 'params.timing': no published evidence for sumatriptan",
                   "row 5, column 'name': 'baseline' is reserved",
                   "row 5, column 'params.behavior': unknown behaviour",
                   "row 6, column 'name': duplicate scenario name",
                   "row 6, column 'params.intensity'", "row 6, column 'params.colour'",
                   "row 7, column 'override.status'", "row 7, column 'override.reason'"):
        assert needle in text, (needle, text)


def test_scenarios_file_errors(tmp_path: Path) -> None:
    f = tmp_path / "s.json"
    f.write_text("{not json")
    with pytest.raises(InputDataError, match=r"s\.json: not valid JSON"):
        parse_scenarios(f)
    f.write_text("{}")
    with pytest.raises(InputDataError, match="non-empty JSON list"):
        parse_scenarios(f)
    with pytest.raises(InputDataError, match="file not found"):
        parse_scenarios(tmp_path / "missing.json")
    f.write_text("[" * 100_000 + "]" * 100_000)  # a parser's recursion, not a traceback
    with pytest.raises(InputDataError, match="nested too deeply"):
        parse_scenarios(f)
    f.write_text(json.dumps([{"name": "s", "type": "behavioral", "params": {
        "behavior": "stress_reduction", "intensity": [[[[[[["moderate"]]]]]]]}}]))
    with pytest.raises(InputDataError, match="nested deeper than 8 levels"):
        parse_scenarios(f)
    f.write_text(json.dumps([SCHEMA_EXAMPLE[0] | {"name": f"s{i}"} for i in range(51)]))
    with pytest.raises(InputDataError, match="51 scenarios: at most 50"):
        parse_scenarios(f)
    f.write_text(" " * 1_000_001 + "[]")
    with pytest.raises(InputDataError, match="larger than 1,000,000 bytes"):
        parse_scenarios(f)


# ------------------------------------------------------------------ on fitted twins
def test_twin_specific_problems_are_caught_before_simulation(committed_twins) -> None:
    twin = committed_twins["syn125-001"]  # takes galcanezumab
    cases = [
        ({"behavior": "covariate", "variable": "trigger.chocolate", "operation": "shift",
          "value": -1}, "behavioral", "the twin has no feature from 'trigger.chocolate'"),
        ({"medication": "galcanezumab"}, "medication", "already taking galcanezumab"),
        ({"medication": "topiramate", "action": "stop"}, "medication",
         "not taking topiramate: nothing to stop"),
    ]
    for params, kind, message in cases:
        scen = parse_scenarios([{"name": "s", "type": kind, "params": params}])
        with pytest.raises(InputDataError, match=message):
            compare(twin, scen)
    ok = parse_scenarios(SCHEMA_EXAMPLE[:1])
    for horizon in (0, -3, 61):
        with pytest.raises(InputDataError, match=r"horizon must be 1\.\.60"):
            compare(twin, ok, horizon_days=horizon)
    with pytest.raises(InputDataError, match="draws must be"):
        simulate(twin, None, n_draws=0)
    # bounded work: no run that grows to gigabytes, no change no patient can have
    with pytest.raises(InputDataError, match=r"draws must be a whole number 1\.\.10000"):
        simulate(twin, None, n_draws=100_000_000)
    with pytest.raises(InputDataError, match=r"draws × horizon must be at most 300,000"):
        simulate(twin, None, horizon_days=60, n_draws=6000)
    for params, message in [
        ({"behavior": "covariate", "variable": "trigger.stress", "operation": "set",
          "value": -1e9}, r"set 'trigger.stress' to -1e\+09: outside its range \[0, 10\]"),
        ({"behavior": "covariate", "variable": "trigger.stress", "operation": "shift",
          "value": 1e308}, "larger than its whole range"),
        ({"behavior": "stress_reduction", "shift": -50}, "larger than its whole range"),
        ({"behavior": "alcohol_limit", "max_drinks": 400}, r"outside its range \[0, 40\]"),
    ]:
        scen = parse_scenarios([{"name": "s", "type": "behavioral", "params": params}])
        with pytest.raises(InputDataError, match=message):
            compare(twin, scen)


def test_common_random_numbers_and_reproducibility(committed_twins) -> None:
    twin = committed_twins["syn125-005"]
    null = parse_scenarios([{"name": "null", "type": "behavioral", "params": {
        "behavior": "covariate", "variable": "trigger.caffeine", "operation": "shift",
        "value": 0.0}}])
    a = compare(twin, null, 30, 500, seed=3)[0]
    # a change of nothing changes nothing, draw by draw: scenarios share every random number
    np.testing.assert_array_equal(a.runs[0].p, a.runs[1].p)
    assert a.summary("null")["relative_risk_reduction"]["low"] == 0.0
    b = compare(twin, null, 30, 500, seed=3)[0]
    np.testing.assert_array_equal(a.runs[0].p, b.runs[0].p)
    c = compare(twin, null, 30, 500, seed=4)[0]
    assert not np.array_equal(a.runs[0].p, c.runs[0].p)
    daily = simulate(twin, None, 30, 500, seed=3)
    np.testing.assert_allclose(daily["p_attack"], a.runs[0].p.mean(0))
    assert daily.attrs["expected_attacks"]["mean"] == pytest.approx(a.runs[0].attacks.mean())
    assert (daily["p_low"] <= daily["p_attack"]).all()
    assert (daily["p_attack"] <= daily["p_high"]).all()


def test_stopping_a_preventive_matches_the_true_effect(committed_twins) -> None:
    """Coverage of the true RRR; ranking where the true effects clearly differ.

    Caffeine is a decoy (true effect 0), like the baseline; where stopping the drug truly adds
    ≥ 20% attacks the twin must rank stopping below the baseline.
    """
    covered, clear = [], []
    for pid, drug in PREVENTIVE.items():
        scen = parse_scenarios([
            {"name": "stop", "type": "medication", "params": {"medication": drug,
                                                               "action": "stop"}},
            {"name": "caffeine", "type": "behavioral", "params": {
                "behavior": "caffeine_change"}}])
        res = compare(committed_twins[pid], scen, 30, 2000, seed=0)[0]
        rrr = res.summary("stop")["relative_risk_reduction"]
        truth = true_stop_rrr(BY_ID[pid], drug, 30)
        covered.append(rrr["low"] <= truth <= rrr["high"])
        if truth <= -0.2:  # the true effects of stopping and of the baseline differ clearly
            clear.append(res.summary("stop")["rank"] > res.summary("baseline")["rank"])
    assert len(covered) == 6 and len(clear) >= 2
    assert np.mean(covered) >= 0.8, covered
    assert all(clear), clear


def test_insensitive_triggers_give_intervals_that_include_zero(committed_twins) -> None:
    behaviours = {"trigger.caffeine": "caffeine_change", "trigger.stress": "stress_reduction",
                  "trigger.alcohol": "alcohol_limit", "derived.sleep_debt":
                  "sleep_regularisation"}
    include, n = 0, 0
    for pid, twin in committed_twins.items():
        null = [t["feature"] for t in BY_ID[pid]["triggers"]
                if not t["sensitive"] and t["feature"] in behaviours]
        scen = parse_scenarios([{"name": f, "type": "behavioral",
                                 "params": {"behavior": behaviours[f]}} for f in null])
        res = compare(twin, scen, 30, 1000, seed=1)[0]
        for f in null:
            r = res.summary(f)["relative_risk_reduction"]
            include += r["low"] <= 0.0 <= r["high"]
            n += 1
    assert n >= 20
    assert include / n >= 0.9, (include, n)


def test_acute_pathways_overrides_and_json(committed_twins) -> None:
    twin = committed_twins["syn125-009"]  # treats attacks with sumatriptan only
    spec = [
        {"name": "riza", "type": "medication", "params": {"medication": "rizatriptan"}},
        {"name": "prodrome", "type": "medication", "params": {"medication": "ubrogepant",
                                                               "timing": "prodrome"}},
        {"name": "erenumab", "type": "medication", "params": {"medication": "erenumab"},
         "override": {"status": "excluded", "reason": "patient declines injections",
                      "by": "dr-a"}},
    ]
    res = compare(twin, parse_scenarios(spec), 30, 1000, seed=0)
    one = res[0]
    np.testing.assert_array_equal(one.summary("riza")["expected_attacks"]["mean"],
                                  one.summary("baseline")["expected_attacks"]["mean"])
    ev = one.summary("riza")["evidence"][0]
    assert ev["current_practice"] == "sumatriptan"  # compared with what the patient does now
    assert ev["patient_treated_attacks"] == [0, 0]  # never took rizatriptan ...
    # ... but other patients of the cohort did: their attacks and the published prior
    assert ev["basis"] == "the cohort's attacks and the published prior"
    rec, sustained = ev["recurrence_48h"], ev["sustained_pain_free_48h"]
    assert 0 < rec["low"] < rec["high"] < 1 and sustained["median"] < ev["pain_free_2h"]["median"]
    assert one.summary("prodrome")["relative_risk_reduction"]["low"] > 0  # PRODROME prior
    assert one.summary("erenumab")["rank"] is None  # excluded: simulated, not ranked
    rec = one.summary("erenumab")["recommendation"]
    assert rec["recommended"] is False and "patient declines injections" in rec["clinician"]
    out = json.loads(json.dumps(comparison_json(res, "twin", 30, 1000, 0)))
    p = out["patients"][0]
    assert "erenumab" not in p["ranking"] and p["ranking"][0] == "prodrome"
    assert out["overrides"][0]["reason"] == "patient declines injections"
    base = p["scenarios"][0]
    assert base["name"] == "baseline" and len(base["daily"]) == 30
    for s in p["scenarios"][1:]:
        assert {"relative_risk_reduction", "time_to_benefit_days", "duration_of_effect_days",
                "p_best", "rank", "expected_attacks", "recommendation"} <= set(s)
    assert sum(s["p_best"] or 0 for s in p["scenarios"]) == pytest.approx(1.0)


def test_cli_simulate(committed_twins, tmp_path: Path) -> None:
    twin_dir = committed_twins["syn125-012"].save(tmp_path / "twin")
    scen = tmp_path / "scenarios.json"
    scen.write_text(json.dumps(SCHEMA_EXAMPLE))
    out = tmp_path / "sim.json"
    runner = CliRunner()
    res = runner.invoke(app, ["simulate", str(twin_dir), "--scenarios", str(scen), "--out",
                              str(out), "--draws", "300", "--horizon", "14"])
    assert res.exit_code == 0, res.output
    assert "ranking" in res.output
    data = json.loads(out.read_text())
    assert data["horizon_days"] == 14 and len(data["patients"][0]["scenarios"]) == 4
    scen.write_text(json.dumps([{"name": "x", "type": "medication",
                                 "params": {"medication": "erenumab", "dosage": "-1mg"}}]))
    res = runner.invoke(app, ["simulate", str(twin_dir), "--scenarios", str(scen)])
    assert res.exit_code == 2
    assert "dose must be positive" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["simulate", str(twin_dir), "--scenarios", str(scen),
                              "--horizon", "0"])
    assert res.exit_code == 2


@pytest.mark.slow
def test_stop_rrr_coverage_on_a_larger_cohort() -> None:
    """``make validate``: coverage of true preventive effects over ~15 new patients."""
    from conftest import ROOT

    from migraine_bayes.store import atomic
    from migraine_bayes.synthetic.cohort import simulate_cohort
    from migraine_bayes.twin.core import fit_patients

    sc = simulate_cohort(60, 365, seed=606)
    drugs = {p["patient_id"]: c["name"] for p in sc.truth["patients"]
             for c in p["interventions"] if c["kind"] == "preventive"}
    truth = {p["patient_id"]: p for p in sc.truth["patients"]}
    twins = fit_patients(sc.cohort, list(drugs))
    rows = []
    for pid, drug in drugs.items():
        scen = parse_scenarios([{"name": "stop", "type": "medication",
                                 "params": {"medication": drug, "action": "stop"}}])
        res = compare(twins[pid], scen, 30, 2000, seed=0)[0]
        r = res.summary("stop")["relative_risk_reduction"]
        t = true_stop_rrr(truth[pid], drug, 30)
        rows.append({"patient_id": pid, "drug": drug, "true_rrr": t, **r,
                     "covered": bool(r["low"] <= t <= r["high"]),
                     "ranked_right": bool((res.summary("stop")["rank"] >
                                           res.summary("baseline")["rank"]) == (t < 0))})
    coverage = float(np.mean([r["covered"] for r in rows]))
    clear = [r["ranked_right"] for r in rows if r["true_rrr"] <= -0.2]
    atomic.write_text(ROOT / "reports" / "validation" / "interventions.json", json.dumps(
        {"patients": len(rows), "coverage": coverage, "clear_cases": len(clear),
         "clear_ranked_right": float(np.mean(clear)) if clear else None, "rows": rows},
        indent=1))
    assert len(rows) >= 10
    assert coverage >= 0.8, rows
    assert all(clear), rows
