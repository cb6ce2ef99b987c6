"""N-of-1 treatment effects of a twin (CENT 2015): each course a patient started, before and after.

For every treatment a patient's diary shows starting, :func:`treatment_effects` reports the
periods before and after the start (known diary days, attacks, attacks per 28 days and their
crude rate ratio with an exact 90% interval) beside the model's **rate ratio**: per posterior
draw, the expected attacks on the patient's own days from the start with the treatment at full
effect over the same days with it absent, everything else (latent susceptibility, refractory
period, triggers) as the twin fitted it. That ratio is what the crude comparison would be if the
latent trend, regression to the mean after a bad month and the triggers of the period had not
moved; the probability of benefit is P(rate ratio < 1). Pooled rows sum the expected attacks
of every patient who tried the treatment, draw by draw.

How the model handles the CENT items:

- **ramp-up and carry-over**: exposure rises as ``1 - exp(-t / tau_on)`` from the start and
  decays as ``exp(-t / tau_off)`` after the end (:mod:`.state.exposure`; ``RAMP`` below);
- **autocorrelation**: the latent susceptibility (a Gaussian process over days) and the
  refractory term carry day-to-day dependence, so days are not treated as independent;
- **between-patient pooling**: in a cohort twin each patient's effect is drawn around the
  treatment's population effect (``mu_delta``, ``sigma_delta``); a patient without a cohort starts
  from the published trial prior of the intervention catalogue.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from scipy import stats

from migraine_bayes.dims import CHAIN, DRAW
from migraine_bayes.model.kernel import probabilities
from migraine_bayes.state.exposure import TIME_CONSTANTS
from migraine_bayes.twin.core import DigitalTwin
from migraine_bayes.twin.forecast import posterior_terms

INTERVAL = (0.05, 0.95)
BLOCK = 28  # attacks per 28 days
RAMP = {kind: f"ramp-up time constant {on:g} d, wash-out {off:g} d" if on or off
        else "a step: effect only on the days of exposure"
        for kind, (on, off) in TIME_CONSTANTS.items()}
MAX_DRAWS = 1000


def treatment_effects(twin: DigitalTwin, max_draws: int = MAX_DRAWS,
                      patients: list[str] | None = None) -> pd.DataFrame:
    """One row per patient and treatment started in the diary, then one pooled row per treatment.

    Columns: ``patient_id`` ("pooled" for the pooled rows, with ``patients`` the number pooled),
    ``treatment, kind, start`` (date; "<first diary day> or before" when exposed from the
    diary's first day),
    ``handling`` (ramp-up and wash-out), ``days_before, attacks_before, rate_before``,
    ``days_after, attacks_after, rate_after`` (attacks per 28 known diary days),
    ``crude_rr, crude_low, crude_high`` (after/before, exact conditional binomial 90% interval),
    ``rate_ratio, rr_low, rr_high`` (model, posterior median and 90% interval),
    ``p_benefit`` = P(rate ratio < 1). The posterior is thinned evenly to at most
    ``max_draws`` draws (chains × draws); ``patients`` limits the rows (and the pooling) to
    these patients.
    """
    if not twin.spec.interventions:
        return pd.DataFrame()
    design = twin.design()
    center, half, _ = twin.domain
    panel = twin.panel
    posterior = _thinned(twin.posterior.posterior, max_draws)
    rows, pooled = [], {}
    for m, name in enumerate(design.interventions):
        kind = str(panel["intervention_kind"].sel(intervention=name).item())
        for i, pid in enumerate(design.patients):
            if patients is not None and pid not in patients:
                continue
            n_days = int(panel["in_diary"].sel(patient=pid).sum())
            days = np.arange(min(n_days, int(np.floor(center + half)) + 1))
            e = np.nan_to_num(design.exposure[i, days, m])
            if not (e > 0).any():
                continue
            first = int(np.argmax(e > 0))
            known = ~np.isnan(design.y[i, days])
            before, after = known & (days < first), known & (days >= first)
            if not after.any():  # no known diary day from the start: nothing to compare
                continue
            ratio = _model_ratio(twin, posterior, design, i, m, days[after])
            rows.append(_row(pid, name, kind, design.y[i, days], before, after, ratio, panel,
                             first))
            expected = pooled.setdefault(name, [kind, [], []])
            expected[1].append(ratio[0])
            expected[2].append(ratio[1])
    for name, (kind, full, none) in pooled.items():
        mine = [r for r in rows if r["treatment"] == name]
        ratio = np.sum(full, axis=0) / np.sum(none, axis=0)
        rows.append(_pooled_row(name, kind, mine, ratio))
    return pd.DataFrame(rows)


def _thinned(posterior, max_draws: int):
    """Every k-th draw of each chain, so that at most ``max_draws`` remain in all."""
    step = max(1, -(-posterior.sizes[CHAIN] * posterior.sizes[DRAW] // max_draws))
    return posterior.isel({DRAW: slice(None, None, step)})


def _model_ratio(twin: DigitalTwin, posterior, design, i: int, m: int, days: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per-draw expected attacks on ``days`` with treatment ``m`` at full effect and absent."""
    def expected(level: float) -> np.ndarray:
        exposure = design.exposure.copy()
        exposure[i, days, m] = level
        d = dataclasses.replace(design, exposure=exposure)
        return probabilities(posterior_terms(posterior, d, i, days, twin.domain)).sum(axis=1)

    return expected(1.0), expected(0.0)


def _rate(attacks: int, days: int) -> float:
    """Attacks per :data:`BLOCK` known diary days (NaN without a day)."""
    return BLOCK * attacks / days if days else np.nan


def _period(y: np.ndarray, mask: np.ndarray) -> tuple[int, int, float]:
    days, attacks = int(mask.sum()), int(np.nansum(y[mask]))
    return days, attacks, _rate(attacks, days)


def _crude(a_before: int, d_before: int, a_after: int, d_after: int) -> tuple[float, ...]:
    """After/before rate ratio with the exact 90% interval conditional on the total count."""
    if not d_before or not d_after:
        return (np.nan, np.nan, np.nan)
    n, share = a_before + a_after, d_after / (d_before + d_after)
    point = (a_after / d_after) / (a_before / d_before) if a_before else np.nan
    if n == 0:
        return (point, np.nan, np.nan)
    # Clopper-Pearson on the after-share of attacks, mapped to a rate ratio
    lo = stats.beta.ppf(INTERVAL[0], a_after, n - a_after + 1) if a_after else 0.0
    hi = stats.beta.ppf(INTERVAL[1], a_after + 1, n - a_after) if a_after < n else 1.0
    odds = share / (1 - share)

    def rr(q: float) -> float:
        return np.inf if q >= 1 else q / (1 - q) / odds

    return (point, rr(lo), rr(hi))


def _ratio_summary(ratio: np.ndarray) -> dict:
    lo, med, hi = np.quantile(ratio, (INTERVAL[0], 0.5, INTERVAL[1]))
    return {"rate_ratio": float(med), "rr_low": float(lo), "rr_high": float(hi),
            "p_benefit": float((ratio < 1).mean())}


def _row(pid: str, name: str, kind: str, y: np.ndarray, before: np.ndarray, after: np.ndarray,
         ratio: tuple[np.ndarray, np.ndarray], panel, first: int) -> dict:
    db, ab, rb = _period(y, before)
    da, aa, ra = _period(y, after)
    start = str(pd.Timestamp(panel["date"].sel(patient=pid).values[first]).date())
    if first == 0:  # exposed from the diary's first day: the course may have begun before
        start = f"{start} or before"
    crude = _crude(ab, db, aa, da)
    return {"patient_id": pid, "patients": 1, "treatment": name, "kind": kind, "start": start,
            "handling": RAMP.get(kind, ""), "days_before": db, "attacks_before": ab,
            "rate_before": rb, "days_after": da, "attacks_after": aa, "rate_after": ra,
            "crude_rr": crude[0], "crude_low": crude[1], "crude_high": crude[2],
            **_ratio_summary(ratio[0] / ratio[1])}


def _pooled_row(name: str, kind: str, rows: list[dict], ratio: np.ndarray) -> dict:
    sums = {k: int(sum(r[k] for r in rows)) for k in
            ("days_before", "attacks_before", "days_after", "attacks_after")}
    crude = _crude(sums["attacks_before"], sums["days_before"], sums["attacks_after"],
                   sums["days_after"])
    rate = {f"rate_{w}": _rate(sums[f"attacks_{w}"], sums[f"days_{w}"])
            for w in ("before", "after")}
    return {"patient_id": "pooled", "patients": len(rows), "treatment": name, "kind": kind,
            "start": "", "handling": RAMP.get(kind, ""), **sums, **rate,
            "crude_rr": crude[0], "crude_low": crude[1], "crude_high": crude[2],
            **_ratio_summary(ratio)}
