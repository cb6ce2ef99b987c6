"""The true effect of a counterfactual on a synthetic patient, from the generator's truth.

Used to check the twin's simulated relative risk reductions against a known answer
(:mod:`migraine_bayes.interventions`).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logit

from migraine_bayes.state.exposure import TIME_CONSTANTS


def true_stop_rrr(truth_patient: dict, drug: str, horizon_days: int) -> float:
    """True relative risk reduction of stopping ``drug`` on the first day after the diary.

    The patient's true daily probability over the last ``horizon_days`` of the diary (on the
    drug) stands in for the next ``horizon_days``; stopping removes the true effect ``delta`` as
    the exposure washes out (``exp(-h / tau_off)``, the profile the twin uses)::

        p_off[h] = logit^-1(logit(p_on[h]) - delta * (1 - exp(-(h + 1) / tau_off)))
        RRR      = 1 - sum(p_off) / sum(p_on)           (negative: stopping adds attacks)

    Refractory feedback between days is ignored (second order over a month).
    """
    course = next((c for c in truth_patient["interventions"] if c["name"] == drug), None)
    if course is None or course["kind"] != "preventive":
        raise ValueError(f"{truth_patient['patient_id']} did not take preventive {drug!r}")
    p_on = np.asarray(truth_patient["p_attack"][-horizon_days:], dtype=float)
    _, tau_off = TIME_CONSTANTS["preventive"]
    washed = 1.0 - np.exp(-(np.arange(horizon_days) + 1.0) / tau_off)
    p_off = expit(logit(np.clip(p_on, 1e-9, 1 - 1e-9)) - course["log_odds_ratio"] * washed)
    return float(1.0 - p_off.sum() / p_on.sum())
