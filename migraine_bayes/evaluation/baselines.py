"""Baseline forecasters for the backtest, on the same days and the same information as the twin.

- ``base_rate``: the patient's own attack rate on the known days before the forecast day
  (Jeffreys-smoothed, ``(k + 1/2) / (n + 1)``), updated every day;
- ``logistic``: a per-patient L2-penalised logistic regression on the twin's standardised
  features plus the time since the last attack (the published approach: diary factors in a
  per-person logistic model, e.g. Houle et al. 2017, Holsteen et al. 2020), fitted on the
  training days;
- ``boosting``: one gradient-boosted tree classifier (scikit-learn) over all patients' training
  days, with the same features and the patient's training log-odds;
- ``oracle_hazard``: on synthetic cohorts, the generator's true daily probability (from the
  causes: triggers, latent state, treatment);
- ``oracle``: that probability updated, by Bayes' rule under the generator's own symptom
  model, with the premonitory symptoms recorded the day before — the generator draws them
  from the coming attack, so they carry information the hazard lacks, and a forecaster that
  reads them can beat ``oracle_hazard``. The ceiling for diary data (wearable physiology,
  also shifted by a prodrome, is left out of it);
- ``oracle_filtered``: the same, but the hidden susceptibility is not known — it is inferred
  from the recorded outcomes before the day (:mod:`.oracles`): what the diaries can show.

Forecast days use the twin's forecast features (:func:`.ex_ante.forecast_design`), so an
``ex_ante`` backtest gives no baseline the day's own covariates either.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import logit

from migraine_bayes.dims import DAY, PATIENT
from migraine_bayes.evaluation.ex_ante import forecast_design
from migraine_bayes.evaluation.online_baselines import counts_before
from migraine_bayes.evaluation.oracles import (
    filtered_oracle_probability,
    has_state_model,
    oracle_probability,
)
from migraine_bayes.model import build_design

MIN_EVENTS = 2  # fewer training attacks than this: a regression falls back to the base rate


def baseline_forecasts(panel: xr.Dataset, twin, train_days: np.ndarray, days: pd.DataFrame,
                       ahead: xr.Dataset | None = None, truth: dict | None = None,
                       seed: int = 0) -> pd.DataFrame:
    """Forecasts of every baseline for the rows of ``days`` (``patient_id, day, date``).

    ``ahead``: :func:`.ex_ante.ex_ante_panel` of ``panel`` for an ex-ante backtest (the
    day's own covariates predicted the evening before); None forecasts with the observed ones.
    Returns the long table ``patient_id, date, model, p_attack, attack``.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression


    ids = [str(p) for p in panel[PATIENT].values]
    spec = twin.spec
    outcome, features, scaling = spec.outcome, spec.feature_specs, spec.scaling_dict
    train_panel = panel.isel({DAY: slice(0, int(np.max(train_days)))})
    centers = build_design(train_panel, outcome, features, list(spec.interventions),
                           scaling).centers  # patients' own means on training days only
    observed = build_design(panel, outcome, features, list(spec.interventions), scaling,
                            centers)
    predict = observed if ahead is None else forecast_design(ahead, observed, outcome)
    x_obs, x_pred = _matrix(observed), _matrix(predict)
    y = observed.y
    train = (np.arange(y.shape[1])[None, :] < np.asarray(train_days)[:, None]) & ~np.isnan(y)
    rate = np.array([(np.nansum(y[i][train[i]]) + 0.5) / (train[i].sum() + 1.0)
                     for i in range(len(ids))])
    out = []
    gbm = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05, max_depth=3,
                                         l2_regularization=1.0, early_stopping=False,
                                         random_state=seed)
    pooled_x = np.concatenate([_with_rate(x_obs[i][train[i]], rate[i])
                               for i in range(len(ids))])
    pooled_y = np.concatenate([y[i][train[i]] for i in range(len(ids))])
    gbm.fit(pooled_x, pooled_y.astype(int))
    # the generator's truth is of one outcome (onsets unless it says): no oracle for another
    truth_patients = ({p["patient_id"]: p for p in (truth or {}).get("patients", [])}
                      if (truth or {}).get("outcome", "onset") == outcome else {})
    k_before, n_before = counts_before(y)
    for pid, rows in days.groupby("patient_id", sort=False):
        i = ids.index(pid)
        d = rows["day"].to_numpy()
        preds = {"base_rate": (k_before[i, d] + 0.5) / (n_before[i, d] + 1.0)}
        yi = y[i][train[i]]
        if yi.sum() >= MIN_EVENTS and (1 - yi).sum() >= MIN_EVENTS:
            lr = LogisticRegression(C=1.0, max_iter=2000)
            lr.fit(x_obs[i][train[i]], yi.astype(int))
            preds["logistic"] = lr.predict_proba(x_pred[i][d])[:, 1]
        else:
            preds["logistic"] = np.full(d.size, rate[i])
        preds["boosting"] = gbm.predict_proba(_with_rate(x_pred[i][d], rate[i]))[:, 1]
        hazard = np.asarray(truth_patients.get(pid, {}).get("p_attack", []), dtype=float)
        if hazard.size > d.max():
            preds["oracle_hazard"] = hazard[d]
            preds["oracle"] = oracle_probability(truth_patients[pid],
                                                 panel.isel({PATIENT: i}), d)
            if has_state_model(truth_patients[pid]):
                preds["oracle_filtered"] = filtered_oracle_probability(
                    truth_patients[pid], panel.isel({PATIENT: i}), d, seed, outcome)
        for name, p in preds.items():
            out.append(pd.DataFrame({"patient_id": pid, "date": rows["date"].to_numpy(),
                                     "model": name, "p_attack": p,
                                     "attack": rows["attack"].to_numpy()}))
    return pd.concat(out, ignore_index=True)


def _matrix(design) -> np.ndarray:
    """Features (P, T, K + 2): standardised features, recent-attack decay, log days since."""
    ds = np.clip(design.days_since, 1.0, 365.0)
    return np.concatenate([design.z_mean, np.exp(-(ds - 1.0) / 2.0)[..., None],
                           np.log(ds)[..., None]], axis=-1)


def _with_rate(x: np.ndarray, rate: float) -> np.ndarray:
    return np.column_stack([x, np.full(len(x), logit(rate))])

