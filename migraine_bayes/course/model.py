"""The attack-course and acute-response model: how this patient's attacks unfold and respond.

Fitted on every attack of the cohort (the population level pools all patients), kept for the
twin's patients. Each quantity is a partially pooled family of :mod:`.hierarchy`:

========================  =====================================================  ==============
variable [dims]           what (per patient)                                     family
========================  =====================================================  ==============
``p_prodrome``            share of attacks with a recorded prodrome              binomial
``p_aura``                share of attacks with aura                             binomial
``p_symptom`` [symptom]   share of prodromes listing the symptom                 binomial
``log_median_h`` [phase]  log median hours of the prodrome (lead time before     lognormal
                          the headache), headache and postdrome
``p_severity``            probabilities of peak severity 0–3                     categorical
[severity]
``p_pain_free``           P(pain-free at 2 h) of an attack treated with the      binomial, prior
[acute_drug]              drug                                                   from catalogue
``p_recurrence``          P(headache back within 48 h | pain-free at 2 h)        binomial, prior
[acute_drug]                                                                     from catalogue
========================  =====================================================  ==============

The dataset (the twin's ``course`` group) also holds every family's hyperparameter draws
(``<variable>_mu``, ``_sigma``; ``phase_mu``/``phase_tau``/``log_sd_h``; ``severity_kappa``),
from which a patient the twin has not seen gets the population's predictive, the counts
behind each patient's posterior (``n_*``) and the cohort's behind the population level
(``cohort_n_*`` [acute_drug], over every pooled patient, kept or not): with none of its own, a
patient's drug posterior is the published prior pooled with the cohort's attacks.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats
from scipy.special import logit

from migraine_bayes.cohort.registry import BOOKKEEPING, Registry
from migraine_bayes.course import hierarchy
from migraine_bayes.course.records import PHASES, course_records
from migraine_bayes.dims import DRAW, PATIENT
from migraine_bayes.model.catalogue import catalogue

PHASE, SEVERITY, SYMPTOM, DRUG = "phase", "severity", "symptom", "acute_drug"
N_DRAWS = 1000
PHASE_PRIOR = {"prodrome_h": np.log(6.0), "headache_h": np.log(12.0),
               "postdrome_h": np.log(12.0)}  # prior mean of the log median (sd 1.5)
BINOMIAL_PRIORS = {  # (prior mean of mu as a probability, its sd on logit, sigma scale)
    "p_prodrome": (0.7, 1.0, 1.0),  # Giffin et al. 2003: ~70% of attacks
    "p_aura": (0.2, 1.5, 1.5),
    "p_symptom": (0.3, 1.5, 1.0),
}
UNKNOWN_DRUG = {"pain_free_2h": (0.25, 1.5), "recurrence_48h": (0.3, 1.0)}
DRUG_SIGMA_SCALE = 0.75


def drug_prior(drug: str, outcome: str) -> tuple[float, float, str]:
    """Prior of a drug's population logit mean for ``pain_free_2h``/``recurrence_48h``.

    Returns (mean on the logit scale, its sd, the source). A drug the catalogue does not hold
    gets a vague prior (said so in the source).
    """
    entry = _acute_catalogue().get(drug)
    if entry is None:
        rate, sd = UNKNOWN_DRUG[outcome]
        return float(logit(rate)), sd, f"no published figure for {drug}: a vague prior"
    if outcome == "pain_free_2h":
        return float(logit(entry["pain_free_2h"])), 0.35, entry["source"]
    rec = entry["recurrence_48h"]
    return float(logit(rec["rate"])), float(rec["logit_sd"]), rec["source"]


def fit_course(attacks: pd.DataFrame, patients: list[str], keep: list[str] | None = None,
               n_draws: int = N_DRAWS, seed: int = 0) -> xr.Dataset:
    """Posterior draws of the course model.

    Parameters
    ----------
    attacks : DataFrame
        The cohort's ``attacks`` table (docs/SCHEMA.md).
    patients : list of str
        Patients pooled at the population level (usually the whole cohort).
    keep : list of str, optional
        Patients whose draws are kept (default: ``patients``).
    n_draws : int
        Independent posterior draws S.
    seed : int
        Seed of the draws.

    Returns
    -------
    xarray.Dataset
        Variables of the module table with dims ``draw`` (S) and ``patient`` (of ``keep``),
        hyperparameter draws and counts ``n_*``.

    """
    keep = list(patients) if keep is None else keep
    rng = np.random.default_rng(seed)
    rec = course_records(attacks, patients)
    by = {pid: rec[rec["patient_id"] == pid] for pid in patients}
    drugs = sorted(set(_acute_catalogue()) | {d for d in rec["drug"] if d})
    symptoms = sorted((set(Registry.builtin().names("symptom")) - BOOKKEEPING)
                      | {s for t in rec["symptoms"] for s in t})
    data_vars: dict[str, tuple] = {}

    def pooled(k: np.ndarray, n: np.ndarray, prior: tuple[float, float, float]
               ) -> tuple[np.ndarray, dict]:
        p, m_sd, scale = prior
        res = hierarchy.binomial(k, n, (float(logit(p)), m_sd), scale, n_draws, rng)
        return res.patient, res.hyper

    counts: dict[str, np.ndarray] = {}
    for name, column in (("p_prodrome", "prodrome"), ("p_aura", "aura")):
        k = np.array([float(by[p][column].sum()) for p in patients])
        n = np.array([float(by[p][column].notna().sum()) for p in patients])
        counts[name] = n
        draws, hyper = pooled(k, n, BINOMIAL_PRIORS[name])
        _put(data_vars, name, draws, hyper, n.sum() > 0)
    # symptoms named in the prodromes
    sym_draws, sym_mu, sym_sigma, sym_k = [], [], [], []
    with_pro = [by[p][by[p]["prodrome"].fillna(False).astype(bool)] for p in patients]
    listed = [r["symptoms"].tolist() for r in with_pro]
    n = np.array([float(len(t)) if any(t) else 0.0 for t in listed])  # prodromes of listers
    for s in symptoms:
        k = np.array([float(sum(s in x for x in t)) for t in listed])
        d, h = pooled(k, n, BINOMIAL_PRIORS["p_symptom"])
        sym_draws.append(d), sym_mu.append(h["mu"]), sym_sigma.append(h["sigma"])
        sym_k.append(k)
    any_symptom = np.sum(sym_k) > 0
    data_vars["p_symptom"] = ((DRAW, PATIENT, SYMPTOM), _nan_unless(np.stack(sym_draws, -1),
                                                                    any_symptom))
    data_vars["p_symptom_mu"] = ((DRAW, SYMPTOM), np.stack(sym_mu, -1))
    data_vars["p_symptom_sigma"] = ((DRAW, SYMPTOM), np.stack(sym_sigma, -1))
    data_vars["k_symptom"] = ((PATIENT, SYMPTOM), np.stack(sym_k, -1))  # prodromes listing it
    # phase durations
    logm, mus, taus, sds, n_phase = [], [], [], [], []
    for phase in PHASES:
        res, groups = _phase(by, patients, phase, n_draws, rng)
        seen = any(g.size for g in groups)
        logm.append(_nan_unless(res.patient, seen))
        mus.append(res.hyper["mu"]), taus.append(res.hyper["tau"])
        sds.append(_nan_unless(res.hyper["s"], seen))
        n_phase.append([g.size for g in groups])
    data_vars["log_median_h"] = ((DRAW, PATIENT, PHASE), np.stack(logm, -1))
    data_vars["phase_mu"] = ((DRAW, PHASE), np.stack(mus, -1))
    data_vars["phase_tau"] = ((DRAW, PHASE), np.stack(taus, -1))
    data_vars["log_sd_h"] = ((DRAW, PHASE), np.stack(sds, -1))
    data_vars["n_phase"] = ((PATIENT, PHASE), np.array(n_phase, float).T)
    # severity
    sev = np.array([[float((by[p]["severity"] == c).sum()) for c in range(4)] for p in patients])
    res = hierarchy.categorical(sev, n_draws, rng)
    data_vars["p_severity"] = ((DRAW, PATIENT, SEVERITY), _nan_unless(res.patient,
                                                                      sev.sum() > 0))
    data_vars["severity_kappa"] = ((DRAW,), res.hyper["kappa"])
    data_vars["severity_pi0"] = ((SEVERITY,), res.hyper["pi0"][0])
    data_vars["n_severity"] = ((PATIENT, SEVERITY), sev)
    # acute response per drug
    for name, outcome in (("p_pain_free", "pain_free_2h"), ("p_recurrence", "recurrence_48h")):
        d_draws, d_mu, d_sigma, d_k, d_n = [], [], [], [], []
        for drug in drugs:
            if outcome == "pain_free_2h":
                rows = [by[p][(by[p]["drug"] == drug) & by[p]["pain_free_2h"].notna()]
                        for p in patients]
            else:
                rows = [by[p][(by[p]["drug"] == drug) & by[p]["pain_free_2h"].fillna(False)
                              .astype(bool) & by[p]["recurrence_48h"].notna()] for p in patients]
            k = np.array([float(r[outcome].astype(bool).sum()) for r in rows])
            n = np.array([float(len(r)) for r in rows])
            m0, s0, _ = drug_prior(drug, outcome)
            res = hierarchy.binomial(k, n, (m0, s0), DRUG_SIGMA_SCALE, n_draws, rng)
            d_draws.append(res.patient), d_mu.append(res.hyper["mu"])
            d_sigma.append(res.hyper["sigma"]), d_k.append(k), d_n.append(n)
        data_vars[name] = ((DRAW, PATIENT, DRUG), np.stack(d_draws, -1))
        data_vars[f"{name}_mu"] = ((DRAW, DRUG), np.stack(d_mu, -1))
        data_vars[f"{name}_sigma"] = ((DRAW, DRUG), np.stack(d_sigma, -1))
        data_vars[f"n_{outcome}"] = ((PATIENT, DRUG), np.stack(d_n, -1))
        data_vars[f"k_{outcome}"] = ((PATIENT, DRUG), np.stack(d_k, -1))
    data_vars["n_attacks"] = ((PATIENT,), np.array([float(len(by[p])) for p in patients]))
    for name, n in counts.items():
        data_vars[f"n_{name[2:]}"] = ((PATIENT,), n)
    ds = xr.Dataset(data_vars, coords={
        DRAW: np.arange(n_draws), PATIENT: list(patients), PHASE: list(PHASES),
        SEVERITY: np.arange(4), SYMPTOM: symptoms, DRUG: drugs})
    for outcome in ("pain_free_2h", "recurrence_48h"):  # everyone pooled, kept or not
        ds[f"cohort_n_{outcome}"] = ds[f"n_{outcome}"].sum(PATIENT)
    ds.attrs["about"] = ("attack course and acute response: migraine_bayes.course "
                         "(exact hierarchical posteriors on a grid of the hyperparameters)")
    ds.attrs["pooled_patients"] = len(patients)
    return ds.sel({PATIENT: keep})


def course_of(course: xr.Dataset, patients: list[str], digest: str) -> xr.Dataset:
    """``course`` kept for ``patients``, stamped with their attacks' digest.

    ``digest``: :func:`attacks_digest` of the patients' attacks, kept as the attribute
    ``own_attacks_digest`` (an update refits the course when it changes).
    """
    out = course.sel({PATIENT: patients})
    out.attrs = {**course.attrs, "own_attacks_digest": digest}  # selections share attrs
    return out


def attacks_digest(attacks: pd.DataFrame, patients: list[str]) -> str:
    """SHA-256 of the attack rows of ``patients`` (has a twin's course seen these attacks)."""
    a = attacks[attacks["patient_id"].isin(patients)].sort_values(["patient_id", "onset"])
    rows = pd.util.hash_pandas_object(a.astype(str), index=False).to_numpy()
    return hashlib.sha256(rows.tobytes() + ",".join(sorted(patients)).encode()).hexdigest()


def _phase(by: dict[str, pd.DataFrame], patients: list[str], phase: str, n_draws: int,
           rng: np.random.Generator) -> tuple[hierarchy.Pooled, list[np.ndarray]]:
    """Fit one phase's log durations; lengths cut short by the next attack are lower bounds.

    A first fit on the complete lengths gives each patient's mean and the within-patient sd;
    a cut-short length ``c`` then enters at ``E[y | y > log c]`` under them (one EM step).
    """
    def logs(p: str, censored: bool) -> np.ndarray:
        r = by[p]
        use = r[phase].notna() & (r[f"{phase}_censored"] == censored)
        return np.log(r.loc[use, phase].to_numpy(float))

    groups = [logs(p, False) for p in patients]
    cut = [logs(p, True) for p in patients]
    res = hierarchy.lognormal(groups, (PHASE_PRIOR[phase], 1.5), n_draws, rng)
    if not any(c.size for c in cut):
        return res, groups
    m, s = res.patient.mean(0), float(res.hyper["s"].mean())
    for i, c in enumerate(cut):
        if c.size:
            a = (c - m[i]) / s
            groups[i] = np.r_[groups[i], m[i] + s * stats.norm.pdf(a) / stats.norm.sf(a).clip(
                1e-12)]
    return hierarchy.lognormal(groups, (PHASE_PRIOR[phase], 1.5), n_draws, rng), groups


def _acute_catalogue() -> dict:
    """The catalogue's acute drugs (imported here: the interventions package imports twins)."""
    return catalogue()["acute"]


def _put(data_vars: dict, name: str, draws: np.ndarray, hyper: dict, seen: bool) -> None:
    data_vars[name] = ((DRAW, PATIENT), _nan_unless(draws, seen))
    data_vars[f"{name}_mu"] = ((DRAW,), hyper["mu"])
    data_vars[f"{name}_sigma"] = ((DRAW,), hyper["sigma"])


def _nan_unless(values: np.ndarray, seen: bool) -> np.ndarray:
    """No data in the whole cohort: the quantity is unknown (NaN), not its vague prior."""
    return values if seen else np.full_like(values, np.nan)
