"""Recovery of known truth: the twin's trigger sensitivities against the generator's.

Maps each true trigger of ``truth.json`` (``migraine_bayes.synthetic``) to the model feature it
acts through, on the model's scale (log odds ratio per SD, or of presence for 0/1 features).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# truth feature (+shape) -> model feature
TRUTH_TO_MODEL = {
    ("trigger.alcohol", "threshold"): "trigger.alcohol_5plus",
    ("derived.pressure_change", "fall"): "derived.pressure_fall",
}


def recovery_table(sensitivities: pd.DataFrame, truth: dict, scaling: dict) -> pd.DataFrame:
    """Join estimated sensitivities with the truth.

    Parameters
    ----------
    sensitivities : DataFrame
        :func:`migraine_bayes.sensitivity.trigger_sensitivities` of one or more twins; needs
        ``log_or_mean``/``log_or_sd`` and the 90% bounds ``or_low``/``or_high``.
    truth : dict
        ``truth.json`` content.
    scaling : dict
        The twin's feature scaling (``twin.meta["scaling"]``).

    Returns
    -------
    DataFrame
        One row per patient and true trigger with ``true_log_or`` (model scale),
        ``true_odds_ratio`` (at the truth's clinical contrast), ``covered`` and the estimate.
    """
    rows = []
    by_patient = {p["patient_id"]: p for p in truth["patients"]}
    est = sensitivities.set_index(["patient_id", "feature"])
    for pid in sensitivities["patient_id"].unique():
        if pid not in by_patient:
            continue
        for trig in by_patient[pid]["triggers"]:
            feature = TRUTH_TO_MODEL.get((trig["feature"], trig["shape"]), trig["feature"])
            if (pid, feature) not in est.index:
                continue
            binary = feature.endswith("_5plus") or trig["feature"] in (
                "trigger.menstruation", "trigger.skipped_meal")
            scale = 1.0 if binary else scaling[feature][1]
            true_beta = trig["log_or_per_unit"] * scale
            e = est.loc[(pid, feature)]
            lo, hi = np.log(e["or_low"]), np.log(e["or_high"])
            rows.append({"patient_id": pid, "feature": feature, "true_log_or": true_beta,
                         "true_odds_ratio": trig["odds_ratio"], "sensitive": trig["sensitive"],
                         "est_log_or": e["log_or_mean"], "low": lo, "high": hi,
                         "covered": bool(lo <= true_beta <= hi), "p_positive": e["p_positive"]})
    return pd.DataFrame(rows)


def trigger_identification(table: pd.DataFrame, or_threshold: float = 1.6,
                           p_flag: float = 0.95) -> dict[str, float]:
    """Precision and recall of flagging triggers (P(effect > 0) ≥ ``p_flag``).

    Recall: share of triggers with a true odds ratio ≥ ``or_threshold`` that are flagged.
    Precision: share of flagged triggers that truly raise risk (``precision``), and that reach
    the threshold (``precision_strict``).
    """
    flagged = table["p_positive"] >= p_flag
    strong = table["true_odds_ratio"] >= or_threshold
    real = table["true_log_or"] > 0
    n_flag = int(flagged.sum())
    return {
        "flagged": n_flag, "strong": int(strong.sum()),
        "precision": float((flagged & real).sum() / n_flag) if n_flag else float("nan"),
        "precision_strict": float((flagged & strong).sum() / n_flag) if n_flag else float("nan"),
        "recall": float((flagged & strong).sum() / strong.sum()) if strong.any() else float("nan"),
        "coverage": float(table["covered"].mean()),
    }
