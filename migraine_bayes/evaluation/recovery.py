"""Recovery of known truth: the twin's trigger sensitivities against the generator's.

Maps each true trigger of ``truth.json`` (``migraine_bayes.synthetic.cohort``) to the model feature
it acts through, on the model's scale (log odds ratio per SD, or of presence for 0/1 features).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from migraine_bayes.synthetic.cohort import trigger_term

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
        :func:`migraine_bayes.analysis.sensitivity.trigger_sensitivities` of one or more twins;
        needs ``log_or_mean``/``log_or_sd`` and the 90% bounds ``or_low``/``or_high``.
    truth : dict
        ``truth.json`` content.
    scaling : dict
        The twin's feature scaling (:attr:`ModelSpec.scaling_dict` of ``twin.spec``).

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


def identification_bound(panel, truth: dict, or_threshold: float = 1.6,
                         p_flag: float = 0.95) -> pd.DataFrame:
    """How often an *ideal* analysis could flag each strong true trigger: the data's limit.

    For each patient and true trigger with odds ratio ≥ ``or_threshold``, the Fisher
    information of its coefficient on the patient's known days, given the *true* daily
    probabilities and the observed feature values (in the truth's own units, shape, lag and
    accumulation: the generator's own :func:`~migraine_bayes.synthetic.cohort.trigger_term`), is
    ``I = sum_t p_t (1 - p_t) (z_t - mean z)^2``. An efficient estimator is then about
    ``Normal(beta, 1 / I)``, and a one-sided flag at ``p_flag`` fires with probability
    ``Phi(beta sqrt(I) - z_{p_flag})`` — an upper bound on the recall of any flat-prior analysis
    of one patient's diary (it knows every probability except this coefficient's).

    Parameters
    ----------
    panel : xarray.Dataset
        :func:`migraine_bayes.state.build_panel` of the cohort (``onset`` outcome).
    truth : dict
        ``truth.json`` content.
    or_threshold, p_flag : float
        Which triggers count as strong, and the flagging level of P(effect > 0).

    Returns
    -------
    DataFrame
        ``patient_id, feature, true_log_or, z_score, p_flag`` per strong trigger; the mean of
        ``p_flag`` is the expected recall of the ideal analysis.
    """
    from scipy import stats

    rows = []
    z_crit = stats.norm.ppf(p_flag)
    for patient in truth["patients"]:
        pid = patient["patient_id"]
        if pid not in panel["patient"].values:
            continue
        q = panel.sel(patient=pid)
        p_true = np.asarray(patient["p_attack"], dtype=float)
        n = min(p_true.size, q.sizes["day"])  # a panel may hold forecast days beyond the truth
        q, p_true = q.isel(day=slice(0, n)), p_true[:n]
        y = q["onset"].values
        for trig in patient["triggers"]:
            if trig["odds_ratio"] < or_threshold or trig["feature"] not in q["feature"].values:
                continue
            x = np.where(q["present"].sel(feature=trig["feature"]).values.astype(bool),
                         q["value"].sel(feature=trig["feature"]).values, np.nan)
            z = np.asarray(trigger_term(trig, x, per_unit=1.0), dtype=float)
            use = ~np.isnan(y) & ~np.isnan(z)
            zc = z[use] - z[use].mean() if use.any() else np.zeros(0)
            info = float(np.sum(p_true[use] * (1 - p_true[use]) * zc**2))
            score = trig["log_or_per_unit"] * np.sqrt(info)
            rows.append({"patient_id": pid, "feature": trig["feature"],
                         "true_log_or": trig["log_or_per_unit"], "z_score": score,
                         "p_flag": float(stats.norm.cdf(score - z_crit))})
    return pd.DataFrame(rows)
