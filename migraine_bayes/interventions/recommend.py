"""Recommendations that explain their basis: pathway, posterior evidence, certainty, next step.

A scenario is *recommended* when the twin is at least 80% sure it lowers the expected number of
attacks and the expected reduction is at least 10%, unless a clinician excluded it; a
clinician's ``preferred`` mark is reported with its reason and never silently changes the
twin's numbers.
"""

from __future__ import annotations

from migraine_bayes.interventions.encoding import Scenario
from migraine_bayes.twin.core import DigitalTwin

SURE, LIKELY = 0.95, 0.80
MIN_RRR = 0.10
PATHWAY_WORDS = {
    "log_odds": "a preventive lowering the daily risk of an attack",
    "covariate": "changing the patient's own trigger exposure; the effect is the twin's "
                 "posterior sensitivity to it",
    "prodrome": "treating the prodrome so that fewer prodromes turn into a headache",
    "attack_outcome": "treating attacks once they start (pain-free at 2 h); the number of "
                      "attacks does not change",
}


def change_words(rrr: dict) -> str:
    """A relative risk reduction in words whose sign cannot be misread.

    ``rrr`` (``median, low, high``) is the fall in expected attacks against no change: 0.10
    reads "attacks fall by 10%", −0.10 "attacks rise by 10%"; the 90% interval is said as a
    range of changes in the same direction words ("from a 19% rise to a 34% fall").
    """
    def one(x: float) -> str:
        if round(abs(x) * 100) == 0:
            return "no change"
        return f"a {abs(x):.0%} {'fall' if x > 0 else 'rise'}"

    m = float(rrr["median"])
    head = ("attacks unchanged" if round(abs(m) * 100) == 0
            else f"attacks {'fall' if m > 0 else 'rise'} by {abs(m):.0%}")
    return f"{head} (90% interval: from {one(float(rrr['low']))} to {one(float(rrr['high']))})"


def why_not(entry: dict, scenario: Scenario) -> str:
    """Why a scenario is not recommended, against the rule stated in this module's docstring."""
    override = entry.get("override")
    if override and override["status"] == "excluded":
        return "excluded by a clinician"
    if scenario.pathways == ["attack_outcome"]:
        better = min(ev["p_better_than_current"] for ev in entry["evidence"])
        return (f"P(more attacks pain-free at 2 h than now) = {better:.2f}, below the "
                f"{LIKELY:.2f} required")
    p = float(entry["p_risk_reduced"])
    rrr = entry["relative_risk_reduction"]
    if p < LIKELY:
        return f"P(fewer attacks) = {p:.2f}, below the {LIKELY:.2f} required"
    return (f"expected fall in attacks {rrr['mean']:.0%}, below the {MIN_RRR:.0%} required")


def certainty(p: float) -> str:
    """Words for P(the scenario reduces attacks)."""
    if p >= SURE:
        return f"very likely reduces attacks (P = {p:.2f})"
    if p >= LIKELY:
        return f"likely reduces attacks (P = {p:.2f})"
    if p <= 1 - SURE:
        return f"very likely increases attacks (P = {1 - p:.2f})"
    if p <= 1 - LIKELY:
        return f"likely increases attacks (P = {1 - p:.2f})"
    return f"no clear effect on attacks (P(reduction) = {p:.2f})"


def recommendation(entry: dict, scenario: Scenario, twin: DigitalTwin, patient: str) -> dict:
    """Recommendation of one scenario from its comparison summary ``entry``."""
    p = float(entry["p_risk_reduced"])
    rrr = entry["relative_risk_reduction"]
    override = entry.get("override")
    outcome_only = scenario.pathways == ["attack_outcome"]
    if outcome_only:  # judged on the attack's outcome: frequency is unchanged by design
        better = min(ev["p_better_than_current"] for ev in entry["evidence"])
        recommended = better >= LIKELY
        how_sure = (f"does not change attack frequency; P(more attacks pain-free at 2 h than "
                    f"now) = {better:.2f}")
    else:
        recommended = p >= LIKELY and rrr["mean"] >= MIN_RRR
        how_sure = certainty(p)
    if override and override["status"] == "excluded":
        recommended = False
    basis = [_basis(ev) for ev in entry["evidence"]]
    days = twin.record.coverage[patient]["known_days"]
    return {
        "recommended": bool(recommended),
        "pathways": [PATHWAY_WORDS[p_] for p_ in scenario.pathways],
        "evidence": basis,
        "certainty": how_sure,
        "risk_reduction": f"{change_words(rrr)} over the horizon",
        "why_not": None if recommended else why_not(entry, scenario),
        "to_be_surer": [_next_step(ev, days) for ev in entry["evidence"]],
        "clinician": None if override is None else (
            f"{override['status']} by {override['by'] or 'clinician'}: {override['reason']}"),
    }


def _basis(ev: dict) -> str:
    name = ev["intervention"]
    if "log_or_per_step" in ev:
        parts = [f"{f}: log OR {s['median']:+.2f} per step (90% {s['low']:+.2f} to "
                 f"{s['high']:+.2f})" for f, s in ev["log_or_per_step"].items()]
        return f"{name}: the patient's posterior sensitivity to {ev['variable']} — " + "; ".join(
            parts)
    if ev["basis"] == "patient posterior":
        s = ev["log_or"]
        return (f"{name}: the patient's own posterior effect after {ev['days_on_drug']} days "
                f"on it: log OR {s['median']:+.2f} (90% {s['low']:+.2f} to {s['high']:+.2f})")
    if "relative_risk_of_headache" in ev:
        rr, share = ev["relative_risk_of_headache"], ev["share_of_attacks_with_prodrome"]
        return (f"{name}: published trial prior — relative risk of a headache after a treated "
                f"prodrome {rr['median']:.2f} (90% {rr['low']:.2f}–{rr['high']:.2f}); "
                f"{share['median']:.0%} of this patient's attacks have a prodrome")
    if "pain_free_2h" in ev:
        q = ev["pain_free_2h"]
        c = ev["current_pain_free_2h"]
        return (f"{name}: P(pain-free at 2 h) {q['median']:.0%} (90% {q['low']:.0%}–"
                f"{q['high']:.0%}), {ev['basis']}; now ({ev['current_practice']}) "
                f"{c['median']:.0%} (90% {c['low']:.0%}–{c['high']:.0%})")
    s = ev["log_or"]
    return (f"{name}: published trial prior only (no history of it for this patient): log OR "
            f"{s['median']:+.2f} (90% {s['low']:+.2f} to {s['high']:+.2f}) for a new patient")


def _next_step(ev: dict, known_days: int) -> str:
    name = ev["intervention"]
    if ev["basis"] == "published prior":
        return (f"{name}: a trial period of 8–12 weeks with the diary would let the twin learn "
                "this patient's own response instead of the trial average")
    if "log_or_per_step" in ev:
        return (f"{name}: the interval narrows as sqrt(days): about {3 * known_days} more diary "
                f"days (with and without {ev['variable']}) would halve it")
    if "relative_risk_of_headache" in ev:
        return (f"{name}: recording prodromes (prodrome_onset) and trying the drug on a few of "
                "them would replace the trial average with the patient's own response")
    if "pain_free_2h" in ev:
        return f"{name}: recording pain_free_2h after each treated attack updates the rate"
    return (f"{name}: the interval narrows as sqrt(days on the drug): more diary days on "
            "and off it would narrow it")
