"""The AI partner: another model's forecasts, combined with the twin's.

A partner is anything with ``predict_proba(features) -> p``: a :class:`PartnerPredictor`
(``features`` is a DataFrame of the patient's named features, one row per day forecast;
``p`` the probability of the outcome per row), e.g. a scikit-learn classifier behind a thin
wrapper, or :class:`HttpPartner` for a model served elsewhere.

:func:`combine_online` pools the twin's and the partner's forecasts on the logit scale,
``logit p = a + w_twin · logit p_twin + w_partner · logit p_partner``, with the weights learned
online by a Bayesian logistic regression (MAP under a Normal prior centred on "the twin alone":
``a = 0, w_twin = 1, w_partner = 0``) on the forecasts whose outcomes were known before the day
forecast — never on that day's or later outcomes. With few past outcomes the combination is
the twin; it moves towards the partner only as far as the partner has earned. In the backtest
the gradient-boosting baseline is the worked example (model ``twin+partner``).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit, logit

from migraine_bayes.metrics import log_scores

PRIOR_MEAN = np.array([0.0, 1.0, 0.0])  # intercept, twin weight, partner weight
PRIOR_SD = np.array([0.5, 0.5, 0.5])
CLIP = 1e-4  # probabilities are clipped to [CLIP, 1 - CLIP] before the logit
REFIT_EVERY_DAYS = 7
# the backtest's worked example: the gradient-boosting baseline as partner, under this name
PARTNER = "boosting"
COMBINATION = "twin+partner"


@runtime_checkable
class PartnerPredictor(Protocol):
    """Anything that turns named feature rows into probabilities."""

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Probability of the outcome for each row of ``features`` (shape ``(n,)``)."""
        ...


class HttpPartner:
    """A partner served over HTTP.

    ``POST url`` with ``{"features": [{name: value, ...}, ...]}`` (missing values as null)
    must answer ``{"p": [p_1, ...]}`` with one probability in [0, 1] per row.
    """

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Ask the endpoint; a malformed answer is a :class:`ValueError` that says what."""
        rows = json.loads(features.to_json(orient="records"))
        body = json.dumps({"features": rows}).encode("utf-8")
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read().decode("utf-8"))
        except (urllib.error.URLError, TimeoutError) as exc:
            raise ValueError(f"partner at {self.url} did not answer: {exc}") from None
        except json.JSONDecodeError:
            raise ValueError(f"partner at {self.url} did not answer JSON") from None
        p = np.asarray(answer.get("p", []) if isinstance(answer, dict) else [], dtype=float)
        if p.shape != (len(features),) or not np.all((p >= 0) & (p <= 1)):
            raise ValueError(f"partner at {self.url} must answer {{'p': [...]}} with "
                             f"{len(features)} probabilities in [0, 1]; got {str(answer)[:200]}")
        return p


def _fit_weights(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """MAP of the pooling weights (intercept, twin, partner) under the Normal prior."""

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        eta = w[0] + x @ w[1:]
        p = expit(eta)
        nll = -float(np.sum(log_scores(y, p)))
        r = (w - PRIOR_MEAN) / PRIOR_SD
        grad_eta = p - y
        grad = np.concatenate([[grad_eta.sum()], x.T @ grad_eta]) + r / PRIOR_SD
        return nll + 0.5 * float(r @ r), grad

    return minimize(loss, PRIOR_MEAN, jac=True, method="L-BFGS-B").x


def combine_online(table: pd.DataFrame, refit_every: int = REFIT_EVERY_DAYS) -> np.ndarray:
    """Online logit pooling of ``p_twin`` and ``p_partner`` (module text).

    ``table``: one row per forecast with ``date`` (the day forecast), ``p_twin``,
    ``p_partner`` and ``attack`` (the outcome, NaN while unknown). The weights used for a
    forecast of day ``d`` are fitted on the rows with a date before ``d`` (their outcomes were
    known when ``d`` was forecast); they are refitted every ``refit_every`` days.

    Returns the combined probabilities in the rows' order.
    """
    dates = pd.to_datetime(table["date"]).to_numpy()
    x = logit(np.clip(table[["p_twin", "p_partner"]].to_numpy(float), CLIP, 1 - CLIP))
    y = table["attack"].to_numpy(float)
    out = np.empty(len(table))
    w = PRIOR_MEAN.copy()
    fitted_at = None
    for day in np.unique(dates):
        if fitted_at is None or (day - fitted_at) >= np.timedelta64(refit_every, "D"):
            past = (dates < day) & ~np.isnan(y)
            w = _fit_weights(x[past], y[past]) if past.any() else PRIOR_MEAN.copy()
            fitted_at = day
        rows = dates == day
        out[rows] = expit(w[0] + x[rows] @ w[1:])
    return out


def combination_forecasts(predictions: pd.DataFrame, partner: str = PARTNER,
                          name: str = COMBINATION) -> pd.DataFrame:
    """The combination's rows for a backtest's long prediction table (empty without partner).

    ``predictions``: ``patient_id, date, model, p_attack, attack`` with the twin's and the
    ``partner`` model's forecasts of the same days.
    """
    twin = predictions[predictions["model"] == "twin"]
    other = predictions[predictions["model"] == partner]
    if twin.empty or other.empty:
        return predictions.iloc[:0]
    both = twin.merge(other[["patient_id", "date", "p_attack"]], on=["patient_id", "date"],
                      suffixes=("", "_partner")).rename(
        columns={"p_attack": "p_twin", "p_attack_partner": "p_partner"})
    both = both.sort_values(["date", "patient_id"]).reset_index(drop=True)
    both["p_attack"] = combine_online(both)
    return both.assign(model=name)[["patient_id", "date", "model", "p_attack", "attack"]]
