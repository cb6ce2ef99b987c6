"""Population insights of a cohort twin: subgroups of patients, season and weather, trigger shares.

- :func:`subgroups`: patients grouped by their posterior trigger profiles. Each patient's
  effects (log odds ratio per step of each trigger they measured) are summarised by posterior
  mean ``m_i`` and variance ``S_i``; a Gaussian mixture is fitted to the *deconvolved* profiles
  (extreme deconvolution, Bovy, Hogg & Roweis 2011, with diagonal covariances):
  ``m_i ~ sum_k w_k N(mu_k, V_k + S_i)``, so a patient with a vague posterior weighs little on
  the subgroups' shape and is not forced into a group by noise. The number of subgroups is
  chosen by BIC (1 … ``max_k``); ``deconvolved_mixture(tied=True)`` shares one spread between
  subgroups (on the subgroup study it recovered less: ARI 0.45 against 0.56).
- :func:`attack_rates`: attacks per 30 diary days by season and by weather (cohort tertiles of
  temperature and of the day's pressure change), with 90% intervals from resampling patients.
- :func:`trigger_shares`: per trigger, the share of patients sensitive to it — credibly
  (P(effect > 0) ≥ 0.95) and in posterior expectation (OR per step > ``min_or``, with a 90%
  interval over draws) — among the patients who measured it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from migraine_bayes.dims import CHAIN, DAY, DRAW, FEATURE, PATIENT
from migraine_bayes.model.features import is_interaction, panel_sources

TRIGGER_PARTS = ("trigger.", "derived.", "environmental.")
NOT_TRIGGERS = ("derived.yesterday_unrecorded", "derived.days_since_attack", "derived.cycle_day")
SEASONS = {12: "winter (Dec-Feb)", 1: "winter (Dec-Feb)", 2: "winter (Dec-Feb)",
           3: "spring (Mar-May)", 4: "spring (Mar-May)", 5: "spring (Mar-May)",
           6: "summer (Jun-Aug)", 7: "summer (Jun-Aug)", 8: "summer (Jun-Aug)",
           9: "autumn (Sep-Nov)", 10: "autumn (Sep-Nov)", 11: "autumn (Sep-Nov)"}
WEATHER = {"environmental.temperature": "temperature (°C)",
           "derived.pressure_change": "pressure change since yesterday (hPa)"}
N_BOOT = 1000


@dataclass
class Mixture:
    """A fitted deconvolved Gaussian mixture over K subgroups and F effects."""

    weights: np.ndarray  # (K,)
    means: np.ndarray  # (K, F)
    variances: np.ndarray  # (K, F) intrinsic (deconvolved) spread
    responsibilities: np.ndarray  # (P, K)
    log_likelihood: float
    tied: bool = False  # one intrinsic spread shared by the subgroups

    @property
    def bic(self) -> float:
        """Bayesian information criterion (lower is better)."""
        p, k = self.responsibilities.shape
        f = self.means.shape[1]
        spreads = f if self.tied else k * f
        return -2 * self.log_likelihood + (k - 1 + k * f + spreads) * np.log(p)


@dataclass
class Subgroups:
    """Patients grouped by trigger profile (:func:`subgroups`)."""

    patients: list[str]
    features: list[str]
    labels: np.ndarray  # (P,) most probable subgroup
    mixture: Mixture
    bic: dict[int, float]

    def table(self) -> pd.DataFrame:
        """One row per subgroup: size, weight, and its profile (OR per step, 90% spread)."""
        rows = []
        mix = self.mixture
        for k in range(len(mix.weights)):
            order = np.argsort(-np.abs(mix.means[k]))
            profile = "; ".join(
                f"{self.features[f]} OR {np.exp(mix.means[k, f]):.2f}" for f in order[:4]
                if abs(mix.means[k, f]) >= 0.05) or "no trigger away from OR 1"
            rows.append({"subgroup": k + 1, "patients": int((self.labels == k).sum()),
                         "weight": float(mix.weights[k]),
                         "mean_membership": float(mix.responsibilities[self.labels == k, k]
                                                  .mean()) if (self.labels == k).any()
                         else float("nan"),
                         "profile": profile})
        return pd.DataFrame(rows)

    def assignments(self) -> pd.DataFrame:
        """``patient_id, subgroup, membership`` (posterior probability of that subgroup)."""
        r = self.mixture.responsibilities
        return pd.DataFrame({"patient_id": self.patients, "subgroup": self.labels + 1,
                             "membership": r[np.arange(len(self.labels)), self.labels]})


def effect_profiles(twin) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """(patients, features, mean (P, F), variance (P, F)) of patients' trigger log odds ratios.

    Main effects of triggers, derived triggers and weather (not interactions, symptoms,
    wearables or diary bookkeeping such as ``derived.yesterday_unrecorded``). A feature a
    patient never measured gets an infinite variance (no information).
    """
    spec = twin.spec
    features = [f for f in spec.feature_specs
                if f.name.startswith(TRIGGER_PARTS) and not is_interaction(f.name)
                and f.name.split("@")[0] not in NOT_TRIGGERS]
    names = [f.name for f in features]
    beta = twin.posterior.posterior["beta"].sel({FEATURE: names})
    flat = beta.stack(s=(CHAIN, DRAW)).transpose(PATIENT, FEATURE, "s").values
    patients = [str(p) for p in beta[PATIENT].values]
    mean, var = flat.mean(-1), flat.var(-1)
    for i, pid in enumerate(patients):
        cover = twin.record.coverage.get(pid, {}).get("feature_coverage", {})
        for j, f in enumerate(features):
            if min(float(cover.get(s, 0.0)) for s in panel_sources(f, spec.feature_specs)) <= 0:
                var[i, j] = np.inf
    return patients, names, mean, var


def deconvolved_mixture(m: np.ndarray, s2: np.ndarray, k: int, seed: int = 0,
                        iterations: int = 500, tol: float = 1e-7, tied: bool = False
                        ) -> Mixture:
    """Extreme deconvolution (diagonal): fit ``m_i ~ sum_k w_k N(mu_k, V_k + S_i)`` by EM.

    ``m``, ``s2``: (P, F) estimates and their error variances (``inf``: missing). Starts from
    k-means++ seeds (``seed``) and runs EM to a relative change of ``tol`` in log-likelihood.
    ``tied``: one intrinsic spread ``V`` for every subgroup (fewer parameters: BIC can afford
    more subgroups on a small cohort).
    """
    p, f = m.shape
    rng = np.random.default_rng(seed)
    known = np.isfinite(s2)
    m = np.where(known, m, 0.0)
    spread = np.array([np.var(m[known[:, j], j]) if known[:, j].sum() > 1 else 1.0
                       for j in range(f)]) + 1e-4
    centres = [m[rng.integers(p)]]
    for _ in range(1, k):  # k-means++: far points more likely
        d = np.min([((m - c) ** 2 / spread).sum(1) for c in centres], axis=0)
        centres.append(m[rng.choice(p, p=d / d.sum() if d.sum() > 0 else None)])
    mu = np.array(centres)
    v = np.tile(spread, (k, 1))
    w = np.full(k, 1.0 / k)
    last = -np.inf
    for _ in range(iterations):
        t = v[None] + np.where(known, s2, 1.0)[:, None, :]  # (P, K, F)
        resid = m[:, None, :] - mu[None]
        dens = np.where(known[:, None, :], -0.5 * (np.log(2 * np.pi * t) + resid**2 / t), 0.0)
        logp = np.log(w)[None] + dens.sum(-1)
        norm = logsumexp(logp, axis=1)
        ll = float(norm.sum())
        r = np.exp(logp - norm[:, None])
        gain = np.where(known[:, None, :], v[None] / t, 0.0)
        b = mu[None] + gain * resid  # (P, K, F) each patient's deconvolved profile
        big_b = v[None] - gain * v[None]
        nk = r.sum(0) + 1e-12
        mu = (r[..., None] * b).sum(0) / nk[:, None]
        scatter = (r[..., None] * ((b - mu[None]) ** 2 + big_b)).sum(0)  # (K, F)
        v = np.maximum(np.tile(scatter.sum(0) / p, (k, 1)) if tied else scatter / nk[:, None],
                       1e-6)
        w = nk / p
        if abs(ll - last) <= tol * abs(ll):
            break
        last = ll
    return Mixture(w, mu, v, r, ll, tied)


def subgroups(twin, max_k: int = 4, seed: int = 0, restarts: int = 5) -> Subgroups:
    """Subgroups of the twin's patients by trigger profile (module text), K chosen by BIC."""
    patients, names, m, s2 = effect_profiles(twin)
    fits: dict[int, Mixture] = {}
    for k in range(1, min(max_k, len(patients)) + 1):
        tries = [deconvolved_mixture(m, s2, k, seed=seed * 1000 + t) for t in range(restarts)]
        fits[k] = max(tries, key=lambda x: x.log_likelihood)
    bic = {k: fit.bic for k, fit in fits.items()}
    best = fits[min(bic, key=bic.get)]
    return Subgroups(patients, names, best.responsibilities.argmax(1), best, bic)


def attack_rates(twin, seed: int = 0) -> pd.DataFrame:
    """Attacks per 30 diary days by season and by weather tertile, 90% patient-bootstrap CIs.

    Columns: ``by, group, patients, days, attacks, rate_30d, low, high``. Days are the twin's
    fit-data days with a known outcome; weather groups use days on which it was measured.
    """
    panel = twin.panel
    outcome = twin.record.outcome
    y = panel[outcome].transpose(PATIENT, DAY).values
    known = np.isfinite(y)
    attacks = np.where(known, y, 0.0)
    dates = pd.DatetimeIndex(panel["date"].values.ravel())
    month = np.asarray(dates.month).reshape(y.shape)
    groups: list[tuple[str, str, np.ndarray]] = []
    for name in dict.fromkeys(SEASONS.values()):
        months = [mo for mo, s in SEASONS.items() if s == name]
        groups.append(("season", name, np.isin(month, months)))
    for feature, label in WEATHER.items():
        if feature not in panel[FEATURE].values:
            continue
        x = panel["value"].sel({FEATURE: feature}).transpose(PATIENT, DAY).values
        seen = np.isfinite(x) & known
        if seen.sum() < 30:
            continue
        cuts = np.quantile(x[seen], [1 / 3, 2 / 3])
        bands = [(-np.inf, cuts[0], f"{label} < {cuts[0]:.3g}"),
                 (cuts[0], cuts[1], f"{label} {cuts[0]:.3g} to {cuts[1]:.3g}"),
                 (cuts[1], np.inf, f"{label} ≥ {cuts[1]:.3g}")]
        for lo, hi, text in bands:
            groups.append(("weather", text, seen & (x >= lo) & (x < hi)))
    rng = np.random.default_rng(seed)
    boot = rng.integers(0, y.shape[0], size=(N_BOOT, y.shape[0]))
    rows = []
    for by, name, mask in groups:
        use = mask & known
        days_p, att_p = use.sum(1), (attacks * use).sum(1)
        if days_p.sum() == 0:
            continue
        rate = 30 * att_p.sum() / days_p.sum()
        b = 30 * att_p[boot].sum(1) / np.maximum(days_p[boot].sum(1), 1)
        rows.append({"by": by, "group": name, "patients": int((days_p > 0).sum()),
                     "days": int(days_p.sum()), "attacks": int(att_p.sum()),
                     "rate_30d": float(rate), "low": float(np.quantile(b, 0.05)),
                     "high": float(np.quantile(b, 0.95))})
    return pd.DataFrame(rows)


def trigger_shares(twin, min_or: float = 1.2) -> pd.DataFrame:
    """Per trigger: how many patients are sensitive to it (module text).

    Columns: ``feature, patients`` (who measured it), ``credible`` (P(effect > 0) ≥ 0.95),
    ``share_credible``, ``share_mean, share_low, share_high`` (posterior share with OR per step
    above ``min_or``: mean and 90% interval over draws).
    """
    patients, names, _m, s2 = effect_profiles(twin)
    beta = twin.posterior.posterior["beta"].sel({FEATURE: names, PATIENT: patients})
    flat = beta.stack(s=(CHAIN, DRAW)).transpose("s", PATIENT, FEATURE).values  # (S, P, F)
    measured = np.isfinite(s2)  # (P, F)
    rows = []
    for j, name in enumerate(names):
        who = measured[:, j]
        if not who.any():
            continue
        b = flat[:, who, j]
        p_pos = (b > 0).mean(0)
        share = (b > np.log(min_or)).mean(1)
        rows.append({"feature": name, "patients": int(who.sum()),
                     "credible": int((p_pos >= 0.95).sum()),
                     "share_credible": float((p_pos >= 0.95).mean()),
                     "share_mean": float(share.mean()),
                     "share_low": float(np.quantile(share, 0.05)),
                     "share_high": float(np.quantile(share, 0.95))})
    return pd.DataFrame(rows).sort_values("share_mean", ascending=False, ignore_index=True)
