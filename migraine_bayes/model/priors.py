"""Priors of the twin, on the model's (standardised) scale.

:class:`PatientPrior` is the prior of one patient's parameters when patients are fitted one by
one: weakly informative defaults, or — the clinic's path for a new patient — moment-matched to
the predictive distribution of a new patient under a saved cohort posterior.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from migraine_bayes.model.features import is_hinge, is_interaction

DEFAULT_BASE_RATE = 0.12  # a day's onset probability, ≈ 3.7 attacks/month (docs/REFERENCES.md)


@dataclass
class Hyper:
    """Hyperpriors of the cohort (hierarchical) model."""

    mu_alpha: tuple[float, float] = (float(np.log(DEFAULT_BASE_RATE / (1 - DEFAULT_BASE_RATE))),
                                     1.0)
    # between-patient scales: lognormal (median, log-sd). Patients differ in attack frequency
    # (2-8 a month) and in trigger sensitivity ("effects vary widely between patients",
    # docs/REFERENCES.md), so no mass at zero heterogeneity — which is also the funnel's neck
    sigma_alpha: tuple[float, float] = (0.4, 0.5)
    mu_beta_sd: float = 0.5
    tau_beta: tuple[float, float] = (0.25, 0.5)
    mu_gamma: tuple[float, float] = (-1.0, 0.7)
    sigma_gamma: tuple[float, float] = (0.3, 0.6)  # lognormal (median, log-sd), as above
    mu_delta: tuple[float, float] = (0.0, 0.7)
    # responders and non-responders: treatment effects differ widely between patients
    sigma_delta: tuple[float, float] = (0.35, 0.5)
    log_tau_refractory: tuple[float, float] = (float(np.log(2.0)), 0.5)
    log_lengthscale: tuple[float, float] = (float(np.log(30.0)), 0.4)
    gp_amplitude: float = 0.5
    # distributed lag: Dirichlet concentration of a trigger's weight on its own day and on
    # each later lag; the default (same day) is favoured, a lag must be earned by the data
    lag_concentration: tuple[float, float] = (3.0, 1.0)
    # patients' trigger deviations (builder.DEVIATIONS); for "horseshoe", the local scales'
    # Student-t degrees of freedom and the slab scale (log-odds per SD) that caps them
    deviations: str = "normal"
    local_df: float = 3.0
    slab_scale: float = 1.0
    # learned dose-response: a hinge's slope change (log-odds per SD of the hinge) has a
    # tighter population prior and patient spread than a trigger: linear is the default shape
    shape_sd: float = 0.3
    shape_tau: tuple[float, float] = (0.1, 0.5)
    # interactions: population effects under a regularised horseshoe (local scales
    # HalfStudentT(local_df), global scale HalfStudentT(local_df, pair_global): few pairs
    # matter; a slab of scale slab_scale); Student-t rather than Cauchy tails keep the sampler
    # free of divergences (with Cauchy, 165 on a 12-patient cohort)
    pair_global: float = 0.1

    def column_priors(self, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Per column: sd of the population mean and median of the patient spread."""
        hinge = np.array([is_hinge(n) for n in names], dtype=bool)
        return (np.where(hinge, self.shape_sd, self.mu_beta_sd),
                np.where(hinge, self.shape_tau[0], self.tau_beta[0]))

    def lag_prior(self, n_lags: int) -> np.ndarray:
        """Dirichlet concentrations over ``[0, k1, ...]`` (``n_lags`` lags)."""
        return np.array([self.lag_concentration[0]]
                        + [self.lag_concentration[1]] * (n_lags - 1))

    @classmethod
    def for_outcome(cls, outcome: str) -> Hyper:
        """Hyperpriors for ``onset`` (a refractory dip after an attack) or ``headache_day``.

        Headache days persist (multi-day headaches): the term of "days since the last event"
        may be of either sign and large, so its mean gets a wide prior centred on 0.
        """
        if outcome == "headache_day":
            return cls(mu_gamma=PERSISTENCE_PRIOR, sigma_gamma=(0.5, 0.6))
        return cls()


PERSISTENCE_PRIOR = (0.0, 1.5)  # headache_day: mean of the yesterday-had-headache term
DEFAULT_HINGE = (0.0, Hyper().shape_sd)  # one patient's slope change at a knot, no cohort
DEFAULT_PAIR = (0.0, 0.2)  # one patient's interaction, no cohort: OR within ~0.67-1.5


@dataclass
class PatientPrior:
    """Independent normal priors of one patient's parameters (mean, sd).

    ``beta``/``delta`` map feature/intervention names to (mean, sd); a name missing from the map
    gets ``default_beta``/``default_delta``.
    """

    alpha: tuple[float, float] = Hyper().mu_alpha
    beta: dict[str, tuple[float, float]] = field(default_factory=dict)
    default_beta: tuple[float, float] = (0.0, 0.5)
    gamma: tuple[float, float] = (-1.0, 0.7)
    delta: dict[str, tuple[float, float]] = field(default_factory=dict)
    default_delta: tuple[float, float] = (0.0, 0.7)
    log_tau_refractory: tuple[float, float] = Hyper().log_tau_refractory
    log_lengthscale: tuple[float, float] = Hyper().log_lengthscale
    gp_amplitude: float = 0.5
    source: str = "default weakly informative priors"
    # distributed lag (extra lags): Dirichlet concentrations over a trigger's lags; a trigger
    # missing from the map gets the default (:meth:`Hyper.lag_prior`)
    lag_weight: dict[str, tuple[float, ...]] = field(default_factory=dict)

    @classmethod
    def for_outcome(cls, outcome: str) -> PatientPrior:
        """Default weakly informative priors for ``onset`` or ``headache_day``."""
        if outcome == "headache_day":
            return cls(gamma=PERSISTENCE_PRIOR)
        return cls()

    def beta_arrays(self, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Means and sds of the trigger coefficients, in ``names`` order.

        A name missing from ``beta`` gets ``default_beta``, but a hinge (a learned shape's
        slope change) the tighter :data:`DEFAULT_HINGE` and an interaction
        :data:`DEFAULT_PAIR`: one patient alone cannot pay for many free shape terms.
        """
        def default(n: str) -> tuple[float, float]:
            if is_interaction(n):
                return DEFAULT_PAIR
            return DEFAULT_HINGE if is_hinge(n) else self.default_beta

        pairs = [self.beta.get(n, default(n)) for n in names]
        return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])

    def delta_arrays(self, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Means and sds of the intervention effects, in ``names`` order."""
        pairs = [self.delta.get(n, self.default_delta) for n in names]
        return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])

    def lag_arrays(self, triggers: list[str], default: np.ndarray) -> np.ndarray:
        """Dirichlet concentrations (trigger, lag) of the lag weights, in ``triggers`` order."""
        return np.array([self.lag_weight.get(t, tuple(default)) for t in triggers], dtype=float)

    def to_dict(self) -> dict:
        """Plain dict for ``twin.json`` (no ``lag_weight`` key when there is no lag prior)."""
        d = asdict(self)
        if not d["lag_weight"]:
            del d["lag_weight"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PatientPrior:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        for key in ("alpha", "default_beta", "gamma", "default_delta", "log_tau_refractory",
                    "log_lengthscale"):
            d[key] = tuple(d[key])
        d["beta"] = {k: tuple(v) for k, v in d["beta"].items()}
        d["delta"] = {k: tuple(v) for k, v in d["delta"].items()}
        d["lag_weight"] = {k: tuple(v) for k, v in d.get("lag_weight", {}).items()}
        return cls(**d)

    @classmethod
    def from_population(cls, posterior, features: list[str], interventions: list[str]
                        ) -> PatientPrior:
        """Prior for a *new* patient from a cohort posterior (an xarray Dataset).

        For a partially pooled parameter ``theta_i = mu + sigma * eps``, a new patient's
        ``theta`` has mean ``E[mu]`` and variance ``Var[mu] + E[sigma^2]`` (law of total
        variance over the posterior).
        """

        def pooled(mu: str, sigma: str, sel: dict | None = None) -> tuple[float, float]:
            m = posterior[mu] if sel is None else posterior[mu].sel(sel)
            s = posterior[sigma] if sel is None or sigma not in _PER else posterior[sigma].sel(
                sel)
            slab = _SLAB.get(sigma)
            if slab in posterior:  # horseshoe deviations: E[tau² lambda~²] over the prior's
                scale2 = _horseshoe_variance(s.values.ravel(), posterior[slab].values.ravel())
                return float(m.mean()), float(np.sqrt(m.var() + scale2))
            return float(m.mean()), float(np.sqrt(m.var() + (s**2).mean()))

        def lognormal(name: str) -> tuple[float, float]:
            logs = np.log(posterior[name].values)
            return float(logs.mean()), float(max(logs.std(), 0.05))

        beta = {f: pooled("mu_beta", "tau_beta", {"feature": f}) for f in features
                if f in posterior["feature"].values}
        lag_weight = {}
        if "beta_total" in posterior:  # effects (and lag weights), not columns
            beta = {f: pooled("mu_effect", "tau_effect", {"effect": f}) for f in features
                    if f in posterior["effect"].values}
        if "lag_weight" in posterior:
            lag_weight = {str(t): _dirichlet_moments(posterior["lag_weight"].sel(trigger=t))
                          for t in posterior["trigger"].values}
        if "beta_pair" in posterior:  # interactions: the population's effect, no spread
            beta |= {f: (float(posterior["beta_pair"].sel(pair=f).mean()),
                         float(max(posterior["beta_pair"].sel(pair=f).std(), 0.01)))
                     for f in features if f in posterior["pair"].values}
        delta = {}
        if "mu_delta" in posterior:
            delta = {m: pooled("mu_delta", "sigma_delta", {"intervention": m})
                     for m in interventions if m in posterior["intervention"].values}
        return cls(
            alpha=pooled("mu_alpha", "sigma_alpha"), beta=beta, gamma=pooled("mu_gamma",
                                                                             "sigma_gamma"),
            delta=delta, log_tau_refractory=lognormal("tau_refractory"),
            log_lengthscale=lognormal("lengthscale"),
            gp_amplitude=float(np.sqrt((posterior["gp_amplitude"].values ** 2).mean())),
            source="population posterior of a fitted cohort twin", lag_weight=lag_weight,
        )


_PER = {"tau_beta", "tau_effect"}  # scale parameters indexed like their means
_SLAB = {"tau_beta": "slab_beta", "tau_effect": "slab_effect"}  # horseshoe slab of a scale


def _horseshoe_variance(tau: np.ndarray, c2: np.ndarray, n: int = 64, seed: int = 0) -> float:
    """``E[tau² lambda~²]`` for a new patient: local scales from their HalfStudentT prior."""
    lam = np.abs(np.random.default_rng(seed).standard_t(Hyper().local_df, (n, 1)))
    lt2 = c2 * lam**2 / (c2 + tau**2 * lam**2)
    return float(np.mean(tau**2 * lt2))


def _dirichlet_moments(weights) -> tuple[float, ...]:
    """Dirichlet concentrations matching posterior weight draws (a DataArray with a ``lag`` dim).

    Mean and average variance are matched: ``Var w_k = m_k (1 - m_k) / (a0 + 1)``.
    """
    w = weights.transpose(..., "lag").values.reshape(-1, weights.sizes["lag"])
    m = w.mean(0)
    a0 = float(np.mean(m * (1 - m)) / max(float(np.mean(w.var(0))), 1e-9) - 1.0)
    return tuple(float(v) for v in m * float(np.clip(a0, 1.0, 1e3)))
