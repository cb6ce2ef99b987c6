"""Predictions from the course posterior: the next attack, a drug's response, summaries.

A patient the course posterior does not hold (admitted after the fit) gets the population's
predictive: a new draw from each family around its hyperparameter draws.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import expit

from migraine_bayes.course.model import DRUG, PHASE, drug_prior
from migraine_bayes.dims import DRAW, PATIENT

INTERVAL = (0.05, 0.95)
_BINOMIAL = ("p_prodrome", "p_aura", "p_symptom", "p_pain_free", "p_recurrence")


def patient_draws(course: xr.Dataset, patient: str, name: str) -> xr.DataArray:
    """Draws of ``name`` for ``patient`` (dims ``draw`` and the variable's others).

    A patient outside the posterior gets the population predictive (seeded by the patient id
    and variable, so it is reproducible).
    """
    if patient in [str(p) for p in course[PATIENT].values]:
        return course[name].sel({PATIENT: patient})
    rng = np.random.default_rng([zlib.crc32(patient.encode()), zlib.crc32(name.encode())])
    if name in _BINOMIAL:
        mu, sigma = course[f"{name}_mu"], course[f"{name}_sigma"]
        eps = xr.DataArray(rng.standard_normal(mu.shape), dims=mu.dims)
        out = xr.apply_ufunc(expit, mu + sigma * eps)
        return out.where(course[name].notnull().any(PATIENT)) if course.sizes[PATIENT] else out
    if name == "log_median_h":
        mu, tau = course["phase_mu"], course["phase_tau"]
        eps = xr.DataArray(rng.standard_normal(mu.shape), dims=mu.dims)
        return (mu + tau * eps).where(course["log_sd_h"].notnull())
    if name == "p_severity":
        alpha = course["severity_kappa"] * course["severity_pi0"]
        g = rng.standard_gamma(alpha.transpose(DRAW, ...).values)
        out = xr.DataArray(g / g.sum(-1, keepdims=True), dims=alpha.transpose(DRAW, ...).dims)
        return out.where(course["p_severity"].notnull().any(PATIENT).any(DRAW)
                         if course.sizes[PATIENT] else out.notnull())
    raise KeyError(name)


def next_attack(course: xr.Dataset, patient: str, seed: int = 0) -> dict[str, float]:
    """The patient's next attack: severity, duration and aura.

    ``severity_mean`` (0–3), ``duration_h_median`` and its 90% predictive interval
    ``duration_h_low``/``high`` (the attack's own variability included), ``p_aura``; NaN where
    the cohort records nothing of it.
    """
    sev = patient_draws(course, patient, "p_severity").transpose(DRAW, ...).values
    severity = float(np.nanmean(sev @ np.arange(sev.shape[-1]))) if np.isfinite(sev).all() \
        else np.nan
    logm = patient_draws(course, patient, "log_median_h").sel({PHASE: "headache_h"}).values
    sd = course["log_sd_h"].sel({PHASE: "headache_h"}).values
    if np.isfinite(logm).all():
        rng = np.random.default_rng([seed, zlib.crc32(patient.encode())])
        hours = np.exp(logm + sd * rng.standard_normal(logm.shape))
        lo, med, hi = np.quantile(hours, [INTERVAL[0], 0.5, INTERVAL[1]])
    else:
        lo = med = hi = np.nan
    aura = patient_draws(course, patient, "p_aura").values
    return {"severity_mean": severity, "duration_h_median": float(med),
            "duration_h_low": float(lo), "duration_h_high": float(hi),
            "p_aura": float(aura.mean()) if np.isfinite(aura).all() else np.nan}


def acute_response(course: xr.Dataset, patient: str, drug: str) -> dict:
    """Draws of P(pain-free at 2 h) and of P(recurrence within 48 h) for ``drug``, and whose.

    ``basis``: ``"this patient's attacks"`` when the patient treated attacks with it,
    ``"the cohort's attacks and the published prior"`` when others did, else ``"published
    prior"`` (or ``"vague prior"`` for a drug the catalogue lacks).
    """
    drug = drug.lower()
    if drug not in [str(d) for d in course[DRUG].values]:
        raise KeyError(drug)
    pain = patient_draws(course, patient, "p_pain_free").sel({DRUG: drug}).values
    rec = patient_draws(course, patient, "p_recurrence").sel({DRUG: drug}).values
    own = (float(course["n_pain_free_2h"].sel({PATIENT: patient, DRUG: drug}))
           if patient in [str(p) for p in course[PATIENT].values] else 0.0)
    cohort = float(course["cohort_n_pain_free_2h"].sel({DRUG: drug}))
    _, _, source = drug_prior(drug, "pain_free_2h")
    basis = ("this patient's attacks" if own else
             "the cohort's attacks and the published prior" if cohort else
             "vague prior" if source.startswith("no published figure") else "published prior")
    return {"pain_free_2h": pain, "recurrence_48h": rec, "basis": basis,
            "patient_treated_attacks": int(own), "source": source}


def course_summary(course: xr.Dataset, symptoms: bool = True) -> pd.DataFrame:
    """Per patient: posterior means and 90% intervals of every course quantity (report, CLI).

    Columns: ``patient_id``, ``quantity``, ``mean``, ``low``, ``high``, ``n`` (records behind
    it). Durations are the patient's median hours; probabilities are shares of attacks (of
    prodromes, for ``symptoms``: which premonitory symptoms the patient's prodromes list).
    """
    rows = []
    for pid in [str(p) for p in course[PATIENT].values]:
        c = course.sel({PATIENT: pid})
        items = [("prodrome share", c["p_prodrome"], c["n_prodrome"]),
                 ("aura share", c["p_aura"], c["n_aura"])]
        for ph in c[PHASE].values:
            items.append((f"{str(ph)[:-2]} median (h)", np.exp(c["log_median_h"].sel(
                {PHASE: ph})), c["n_phase"].sel({PHASE: ph})))
        if symptoms:
            for sym in c["symptom"].values:
                items.append((f"prodromes with {sym}", c["p_symptom"].sel(symptom=sym),
                              c["n_prodrome"]))
        sev = c["p_severity"].transpose(DRAW, ...)
        items.append(("mean peak severity (0-3)", sev @ xr.DataArray(
            np.arange(sev.sizes["severity"]), dims="severity"), c["n_severity"].sum()))
        for drug in c[DRUG].values:
            n = c["n_pain_free_2h"].sel({DRUG: drug})
            if float(n) > 0:
                items.append((f"{drug}: pain-free at 2 h", c["p_pain_free"].sel({DRUG: drug}), n))
                items.append((f"{drug}: recurrence within 48 h",
                              c["p_recurrence"].sel({DRUG: drug}),
                              c["n_recurrence_48h"].sel({DRUG: drug})))
        for name, draws, n in items:
            v = np.asarray(draws.values, float)
            if not np.isfinite(v).all():
                continue
            rows.append({"patient_id": pid, "quantity": name, "mean": float(v.mean()),
                         "low": float(np.quantile(v, INTERVAL[0])),
                         "high": float(np.quantile(v, INTERVAL[1])), "n": int(n)})
    return pd.DataFrame(rows, columns=["patient_id", "quantity", "mean", "low", "high", "n"])


def warning_symptoms(course: xr.Dataset, patient: str, share: float = 0.3) -> list[str]:
    """The premonitory symptoms most of whose posterior says ≥ ``share`` of prodromes list."""
    if patient not in [str(p) for p in course[PATIENT].values]:
        return []
    p = course["p_symptom"].sel({PATIENT: patient}).mean(DRAW)
    ranked = p.sortby(p, ascending=False)
    return [str(s) for s, v in zip(ranked["symptom"].values, ranked.values, strict=True)
            if np.isfinite(v) and v >= share]
