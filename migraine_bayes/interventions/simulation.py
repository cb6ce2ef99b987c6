"""Counterfactual simulation of a twin's patient under scenarios, on common random numbers.

For each of S posterior draws and each day h of the horizon (the days after the diary)::

    eta[s, h] = alpha_s + sum_k beta_sk z[r_sh, k] + gamma_s exp(-(d_sh - 1) / tau_s)
                + sum_m delta_sm e[h, m] + f_s(t_h) + scenario terms
    p[s, h]   = logit^-1(eta / sqrt(1 + pi v / 8)) * prodrome factor
    attack    = u[s, h] < p[s, h]        (d: days since the simulated last attack)

Each term and the link come from the likelihood kernel (:mod:`migraine_bayes.model.kernel`),
the one the forecast, the filter and the drift test use and that is tested against the PyMC
graph.
Covariates are whole days resampled from the patient's own diary (``r``, so a day's triggers
stay together) unless a behavioural scenario changes them; the latent state ``f`` continues its
posterior HSGP path. Every scenario of a comparison reuses the same draws, resampled days,
uniforms ``u`` and prior draws (common random numbers), so differences between scenarios are
the interventions' and not simulation noise. Vectorised over draws; a 30-day horizon loops 30
times over (S,) arrays for the refractory feedback.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from migraine_bayes.cohort.registry import Registry
from migraine_bayes.course import acute_response
from migraine_bayes.dims import FEATURE, INTERVENTION, PATIENT
from migraine_bayes.errors import InputDataError, Problem
from migraine_bayes.interventions.encoding import BASELINE, Intervention, Scenario
from migraine_bayes.model import hsgp
from migraine_bayes.model.catalogue import catalogue
from migraine_bayes.model.design import Design
from migraine_bayes.model.features import panel_sources
from migraine_bayes.model.kernel import (
    feature_effects,
    intervention_effects,
    inverse_link,
    latent_state,
    refractory,
    spread,
)
from migraine_bayes.state.exposure import TIME_CONSTANTS, exposure_profile
from migraine_bayes.twin.core import DigitalTwin
from migraine_bayes.twin.forecast import posterior_draws
from migraine_bayes.twin.record import HORIZON_DAYS, TwinError

INTERVAL = (0.05, 0.95)
MAX_DRAWS = 10_000  # posterior draws simulated per patient
MAX_DRAW_DAYS = 300_000  # draws × horizon days: bounds the memory of one scenario's run
TAKING = 0.05  # exposure above which a patient counts as taking a drug at the end of the diary
PRODROME_SHARE_PRIOR = (7.0, 3.0)  # Beta: ~70% of attacks have premonitory symptoms (Giffin 2003)
PAIN_FREE_PRIOR_N = 20.0  # prior strength (attacks) of a published pain-free rate for one patient


@dataclass
class ScenarioRun:
    """Simulated outcome of one scenario for one patient.

    ``p`` (S, H): per-draw daily attack probability; ``attacks`` (S,): expected attacks over the
    horizon per draw; ``pain_free`` (S,) or None: P(pain-free at 2 h) of a treated attack.
    """

    name: str
    scenario: Scenario | None
    p: np.ndarray
    attacks: np.ndarray
    pain_free: np.ndarray | None = None
    evidence: list[dict] = field(default_factory=list)


class PatientSimulator:
    """Everything shared by one patient's scenarios: draws, resampled days, random numbers.

    Parameters
    ----------
    twin : DigitalTwin
    patient : str
    horizon_days : int
        Days simulated after the last diary day (1..``HORIZON_DAYS``).
    n_draws : int
        Posterior draws used (resampled with replacement when more than the posterior holds).
    seed : int
    """

    def __init__(self, twin: DigitalTwin, patient: str, horizon_days: int = 30,
                 n_draws: int = 2000, seed: int = 0) -> None:
        check_settings(twin, patient, horizon_days, n_draws)
        self.twin, self.patient, self.horizon, self.seed = twin, patient, horizon_days, seed
        rng = np.random.default_rng([seed, _stable(patient)])
        self.panel = twin.panel.sel({PATIENT: [patient]})
        self.design: Design = twin.design(self.panel)
        self.diary_days = int(self.panel["in_diary"].values[0].sum())
        self.days = self.diary_days + np.arange(horizon_days)
        center, half, offset = twin.domain
        if self.days[-1] > center + half:
            raise TwinError(f"patient {patient}: day {self.days[-1]} lies beyond the twin's "
                            "latent-state domain; refit the twin")
        draws = posterior_draws(twin.posterior.posterior, patient,
                                hsgp.sqrt_eigenvalues(half, offset.size))
        particles, drift = _particles(twin, patient, self.diary_days, draws.alpha.size,
                                      horizon_days)
        pick = rng.choice(particles.size, n_draws, replace=n_draws > particles.size)
        self.draws = draws.take(particles[pick])
        phi = hsgp.basis(self.days, center, half, offset.size) - offset
        self.latent = latent_state(self.draws.weights, phi) + drift[pick]  # (S, H)
        diary = np.flatnonzero(self.panel["in_diary"].values[0])
        self.pool = diary[diary >= 1]  # day 0 has no lagged features
        if not self.pool.size:  # no diary day yet: the horizon's own days, whose covariates
            self.pool = self.days  # are the population's (mean and sd) until measured
        self.r = self.pool[rng.integers(self.pool.size, size=(n_draws, horizon_days))]
        self.u = rng.random((n_draws, horizon_days))
        self.z_pool = self.design.z_mean[0]  # (T, K), indexed by day
        self.v_pool = self.design.z_var[0]
        self.exposure = self.design.exposure[0, self.days]  # (H, M): current regimen continues
        self.last_exposure = (self.design.exposure[0, self.diary_days - 1] if self.diary_days
                              else np.zeros(self.design.exposure.shape[-1]))
        self.days_since0 = float(self.design.days_since[0, self.diary_days])
        self.n_draws = n_draws
        self.dates = pd.to_datetime(self.panel["date"].values[0][self.days])
        self.history = twin.record.attack_history.get(patient, {})

    # ---------------------------------------------------------------- random numbers per name
    def _normals(self, key: str) -> np.ndarray:
        """Standard normals for ``key``: the same in every scenario (common random numbers)."""
        return np.random.default_rng([self.seed, _stable(self.patient), _stable(key)]
                                     ).standard_normal(self.n_draws)

    def _betas(self, key: str, a: float, b: float) -> np.ndarray:
        rng = np.random.default_rng([self.seed, _stable(self.patient), _stable(key)])
        return rng.beta(a, b, self.n_draws)

    # ---------------------------------------------------------------- scenario terms
    def run(self, scenario: Scenario | None) -> ScenarioRun:
        """Simulate the baseline (``None``) or a scenario."""
        s, h_n = self.n_draws, self.horizon
        exposure = self.exposure.copy()
        extra = np.zeros((s, h_n))  # added log-odds
        factor = np.ones((s, h_n))  # multiplies p (treated prodromes)
        z_mod: dict[int, np.ndarray] = {}  # feature column -> (T,) modified values
        v_mod: dict[int, np.ndarray] = {}
        weight = {}  # feature column -> (H,) programme exposure
        evidence: list[dict] = []
        pain_free = None
        for item in (scenario.interventions if scenario else ()):
            window = self._window(item, item.kind)
            if item.pathway == "log_odds":
                evidence.append(self._preventive(item, exposure, extra, window))
            elif item.pathway == "covariate":
                evidence.append(self._behaviour(item, z_mod, v_mod, weight, window))
            elif item.pathway == "prodrome":
                f, rr, ev = self._prodrome(item)
                factor *= 1.0 - window[None, :] * f[:, None] * (1.0 - rr[:, None])
                evidence.append(ev)
            else:
                pain_free, ev = self._pain_free(item)
                evidence.append(ev)
        z = self.z_pool[self.r]  # (S, H, K)
        v = self.v_pool[self.r]
        for k, values in z_mod.items():
            w = weight[k][None, :]
            z[:, :, k] = z[:, :, k] + w * (values[self.r] - z[:, :, k])
            v[:, :, k] = v[:, :, k] + w * (v_mod[k][self.r] - v[:, :, k])
        d = self.draws
        eta = (d.alpha[:, None] + feature_effects(d.beta, z).sum(-1)
               + intervention_effects(d.delta, exposure).sum(-1) + self.latent + extra)
        variance = spread(d.beta, v)
        p = np.empty((s, h_n))
        since = np.full(s, self.days_since0)
        for h in range(h_n):  # the refractory term follows each draw's own simulated attacks
            e = eta[:, h] + refractory(d.gamma, d.tau, since)
            p[:, h] = inverse_link(e, variance[:, h]) * factor[:, h]
            since = np.where(self.u[:, h] < p[:, h], 1.0, since + 1.0)
        return ScenarioRun(BASELINE if scenario is None else scenario.name, scenario, p,
                           p.sum(1), pain_free, evidence)

    def _window(self, item: Intervention, kind: str) -> np.ndarray:
        """(H,) exposure of an intervention started on ``start_day`` (ramp, then wash-out)."""
        tau_on, tau_off = TIME_CONSTANTS[kind]
        end = None if item.duration_days is None else item.start_day + item.duration_days - 1
        return exposure_profile(np.arange(self.horizon), item.start_day, end, tau_on, tau_off)

    def _preventive(self, item: Intervention, exposure: np.ndarray, extra: np.ndarray,
                    window: np.ndarray) -> dict:
        names = self.design.interventions
        own = item.name in names
        if item.action == "stop":
            m = names.index(item.name)
            _, tau_off = TIME_CONSTANTS["preventive"]
            h = np.arange(self.horizon)
            after = h >= item.start_day
            exposure[after, m] = self.last_exposure[m] * np.exp(
                -(h[after] - item.start_day + 1) / tau_off)
            return {"intervention": item.name, "basis": "patient posterior",
                    "log_or": _summary(self.draws.delta[:, m]),
                    "days_on_drug": int((self.design.exposure[0, :self.diary_days, m]
                                         > TAKING).sum())}
        if own:  # taken before and stopped: the patient's own posterior effect
            m = names.index(item.name)
            extra += self.draws.delta[:, m][:, None] * window[None, :]
            return {"intervention": item.name, "basis": "patient posterior",
                    "log_or": _summary(self.draws.delta[:, m]),
                    "days_on_drug": int((self.design.exposure[0, :self.diary_days, m]
                                         > TAKING).sum())}
        prior = item.prior
        sd = float(np.hypot(prior["se"], prior["between_patient_sd"]))
        d = prior["log_rr"] + sd * self._normals(f"preventive:{item.name}")
        extra += d[:, None] * window[None, :]
        return {"intervention": item.name, "basis": "published prior",
                "log_or": _summary(d), "source": prior["source"]}

    def _behaviour(self, item: Intervention, z_mod: dict, v_mod: dict, weight: dict,
                   window: np.ndarray) -> dict:
        panel = self.panel.copy(deep=True)
        var = item.variable
        for name in ("imputed", "value"):
            x = panel[name].loc[{FEATURE: var}].values
            if item.operation == "shift":
                x = x + item.value
            elif item.operation == "cap":
                x = np.minimum(x, item.value)
            else:
                x = np.where(np.isnan(x), x, item.value) if name == "value" else np.full_like(
                    x, item.value)
            panel[name].loc[{FEATURE: var}] = x
        if item.operation == "set":
            panel["imputed_sd"].loc[{FEATURE: var}] = 0.0
        design = self.twin.design(panel)
        cols = [k for k, f in enumerate(self.design.features)
                if var in panel_sources(f, self.design.features)]
        for k in cols:
            z_mod[k] = design.z_mean[0, :, k]
            v_mod[k] = design.z_var[0, :, k]
            weight[k] = np.maximum(weight.get(k, 0.0), window)
        return {"intervention": item.name, "basis": "patient posterior sensitivity",
                "variable": var, "features": [self.design.features[k].name for k in cols],
                "log_or_per_step": {self.design.features[k].name: _summary(self.draws.beta[:, k])
                                    for k in cols}}

    def _prodrome(self, item: Intervention) -> tuple[np.ndarray, np.ndarray, dict]:
        pr = item.prior["prodrome"]
        p_drug, p_plac, n = (1 - pr["no_headache_24h"], 1 - pr["no_headache_24h_placebo"],
                             pr["n_per_arm"])
        log_rr = np.log(p_drug / p_plac)
        se = np.sqrt((1 - p_drug) / (n * p_drug) + (1 - p_plac) / (n * p_plac))
        rr = np.exp(log_rr + se * self._normals(f"prodrome_rr:{item.name}"))
        a, b = PRODROME_SHARE_PRIOR
        n_att, n_pro = self.history.get("attacks", 0), self.history.get("with_prodrome", 0)
        if n_pro > 0:  # a diary that records prodromes: update the published share
            a, b = a + n_pro, b + n_att - n_pro
        share = self._betas(f"prodrome_share:{item.name}", a, b)
        return share, rr, {"intervention": item.name, "basis": "published prior (PRODROME)",
                           "relative_risk_of_headache": _summary(rr),
                           "share_of_attacks_with_prodrome": _summary(share),
                           "patient_attacks_with_prodrome": [n_pro, n_att],
                           "source": item.prior["source"]}

    def _pain_free(self, item: Intervention) -> tuple[np.ndarray, dict]:
        """P(pain-free at 2 h) of the scenario's drug and of the patient's current practice.

        From the twin's course posterior (:mod:`migraine_bayes.course`: this patient's treated
        attacks pooled with the cohort's and the catalogue's published rate); a twin saved
        without one falls back to the published rate updated with the patient's counts.
        """
        acute = self.history.get("acute", {})
        draws, rec, basis, treated, free = self._acute_draws(item.name,
                                                            item.prior["pain_free_2h"])
        if acute:  # current practice: the acute drug the patient used most
            current = max(acute, key=lambda d: acute[d][0])
            entry = catalogue()["acute"].get(current)
            q0 = entry["pain_free_2h"] if entry else acute[current][1] / max(acute[current][0], 1)
            now, *_ = self._acute_draws(current, q0)
        else:
            current = "untreated"
            q0 = item.prior["pain_free_2h_placebo"]
            now = self._betas("pain_free:untreated", q0 * PAIN_FREE_PRIOR_N,
                              (1 - q0) * PAIN_FREE_PRIOR_N)
        ev = {"intervention": item.name, "basis": basis,
              "pain_free_2h": _summary(draws), "patient_treated_attacks": [free, treated],
              "current_practice": current, "current_pain_free_2h": _summary(now),
              "p_better_than_current": float((draws > now).mean()),
              "note": "acts on attack outcomes: the number of attacks is unchanged",
              "source": item.prior["source"]}
        if rec is not None:
            ev["recurrence_48h"] = _summary(rec)
            ev["sustained_pain_free_48h"] = _summary(draws * (1 - rec))
        return draws, ev

    def _acute_draws(self, drug: str, q: float
                     ) -> tuple[np.ndarray, np.ndarray | None, str, int, int]:
        """Draws of a drug's pain-free rate (and recurrence), their basis, the patient's counts.

        With a course posterior its draws are resampled (the same indices in every scenario:
        common random numbers); otherwise Beta draws of the published ``q`` + own attacks.
        """
        treated, free = self.history.get("acute", {}).get(drug, [0, 0])
        course = self.twin.course
        if course is not None and drug in [str(d) for d in course["acute_drug"].values]:
            resp = acute_response(course, self.patient, drug)
            rng = np.random.default_rng([self.seed, _stable(self.patient), _stable(drug)])
            idx = rng.integers(resp["pain_free_2h"].size, size=self.n_draws)
            basis = resp["basis"]
            if basis == "this patient's attacks":
                basis = "this patient's treated attacks, pooled with the cohort and the prior"
            return (resp["pain_free_2h"][idx], resp["recurrence_48h"][idx], basis, treated,
                    free)
        a, b = q * PAIN_FREE_PRIOR_N + free, (1 - q) * PAIN_FREE_PRIOR_N + treated - free
        basis = ("published prior updated with the patient's treated attacks" if treated
                 else "published prior")
        return self._betas(f"pain_free:{drug}", a, b), None, basis, treated, free


def _particles(twin: DigitalTwin, patient: str, diary_days: int, n_post: int,
               horizon_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Posterior draws to simulate from and their drift offsets over the horizon.

    After :meth:`~migraine_bayes.twin.core.DigitalTwin.update` has seen the patient's last diary
    day, the filter's particles (draws reweighted by every day since the fit, with their
    drift offsets, propagated over the horizon) are the patient's current posterior; before
    that, every draw with no offset.
    """
    f = twin.filter_state
    if f is not None and patient in f.patients:
        i = f.patients.index(patient)
        if int(f.last_day[i]) == diary_days - 1:
            return f.index[i], f.propagate(i, np.arange(1, horizon_days + 1))
    return np.arange(n_post), np.zeros((n_post, horizon_days))


def check_settings(twin: DigitalTwin, patient: str, horizon_days: int, n_draws: int) -> None:
    """Raise ``InputDataError`` for a bad horizon, draw count or patient."""
    problems = []
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, int | np.integer) or not (
            1 <= horizon_days <= HORIZON_DAYS):
        problems.append(Problem("arguments", f"horizon must be 1..{HORIZON_DAYS} days", None,
                                "horizon", str(horizon_days)))
    if isinstance(n_draws, bool) or not isinstance(n_draws, int | np.integer) or not (
            1 <= n_draws <= MAX_DRAWS):
        problems.append(Problem("arguments", f"draws must be a whole number 1..{MAX_DRAWS}",
                                None, "draws", str(n_draws)))
    elif not problems and n_draws * horizon_days > MAX_DRAW_DAYS:
        problems.append(Problem("arguments", f"draws × horizon must be at most {MAX_DRAW_DAYS:,} "
                                f"(draws {n_draws} × {horizon_days} days); simulate fewer draws",
                                None, "draws", str(n_draws)))
    if patient not in twin.patients:
        problems.append(Problem("arguments", "patient not in this twin", None, "patient",
                                str(patient)))
    if problems:
        raise InputDataError(problems, "simulation settings")


def check_scenarios(twin: DigitalTwin, patient: str, scenarios: list[Scenario]) -> None:
    """Problems a scenario has *for this twin and patient*, raised before any simulation.

    A behavioural change of a covariate the twin has no feature from, or by an amount outside
    what the covariate can take (:func:`covariate_bounds`); starting a preventive the patient
    is already taking; stopping one they are not taking.
    """
    taking = _taking(twin, patient)
    specs = twin.spec.feature_specs
    sources = set().union(*(panel_sources(f, specs) for f in specs))
    problems = []
    for row, sc in enumerate(scenarios, start=1):
        for item in sc.interventions:
            rule = None
            if item.pathway == "covariate" and item.variable not in sources:
                rule = (f"the twin has no feature from {item.variable!r}; it has: "
                        f"{sorted(sources)}")
            elif item.pathway == "covariate" and item.value is not None:
                rule = _out_of_bounds(item, covariate_bounds(twin, item.variable))
            elif item.kind == "preventive" and item.action == "start" and item.name in taking:
                rule = f"patient {patient} is already taking {item.name}"
            elif item.kind == "preventive" and item.action == "stop" and item.name not in taking:
                rule = f"patient {patient} is not taking {item.name}: nothing to stop"
            if rule:
                problems.append(Problem("scenarios", rule, row, "params", sc.name))
    if problems:
        raise InputDataError(problems, "scenarios")


def covariate_bounds(twin: DigitalTwin, variable: str) -> tuple[float, float]:
    """The values a panel covariate can take: its registry range, else what the cohort shows.

    A measured variable (``trigger.stress``: ``stress``) has the registry's [min, max]; a derived
    one (``derived.sleep_debt``) the range observed in the twin's panel, widened by that range
    on each side.
    """
    registry = Registry.builtin()
    name = variable.split(".", 1)[-1]
    if name in registry:
        return float(registry[name].min), float(registry[name].max)
    values = twin.panel["value"].sel({FEATURE: variable}).values
    values = values[np.isfinite(values)]
    if not values.size:  # never observed: nothing to hold a change to
        return -np.inf, np.inf
    lo, hi = float(values.min()), float(values.max())
    return lo - (hi - lo), hi + (hi - lo)


def _out_of_bounds(item: Intervention, bounds: tuple[float, float]) -> str | None:
    """Why a covariate change is impossible (None: it is not)."""
    lo, hi = bounds
    if item.operation == "shift" and abs(item.value) > hi - lo:
        return (f"a shift of {item.value:g} in {item.variable!r} is larger than its whole range "
                f"[{lo:g}, {hi:g}]")
    if item.operation in ("set", "cap") and not lo <= item.value <= hi:
        return (f"{item.operation} {item.variable!r} to {item.value:g}: outside its range "
                f"[{lo:g}, {hi:g}]")
    return None


def _taking(twin: DigitalTwin, patient: str) -> set[str]:
    panel = twin.panel.sel({PATIENT: patient})
    last = int(panel["in_diary"].values.sum()) - 1
    known = [str(n) for n in panel[INTERVENTION].values]
    return {n for n in twin.record.interventions if n in known and float(
        panel["exposure"].sel({INTERVENTION: n}).fillna(0.0).values[last]) > TAKING}


def simulate(twin: DigitalTwin, scenario: Scenario | None, horizon_days: int = 30,
             n_draws: int = 2000, seed: int = 0, patient: str | None = None) -> pd.DataFrame:
    """Forward-simulate one scenario (None = no intervention) for one patient.

    Returns
    -------
    DataFrame
        One row per day: ``date, day`` (1 = first day after the diary), ``p_attack``
        (posterior-predictive mean), ``p_low, p_high`` (90% interval over draws) and, in
        ``attrs``, ``expected_attacks`` (mean and 90% interval over the horizon).
    """
    patient = _one_patient(twin, patient)
    if scenario is not None:
        check_scenarios(twin, patient, [scenario])
    sim = PatientSimulator(twin, patient, horizon_days, n_draws, seed)
    run = sim.run(scenario)
    out = daily_table(sim, run)
    out.attrs["expected_attacks"] = _summary(run.attacks)
    return out


def daily_table(sim: PatientSimulator, run: ScenarioRun) -> pd.DataFrame:
    """Daily mean and 90% interval of ``p_attack`` of a run."""
    lo, hi = np.quantile(run.p, INTERVAL, axis=0)
    return pd.DataFrame({"date": sim.dates.date, "day": np.arange(1, sim.horizon + 1),
                         "p_attack": run.p.mean(0), "p_low": lo, "p_high": hi})


def _one_patient(twin: DigitalTwin, patient: str | None) -> str:
    if patient is None:
        if len(twin.patients) != 1:
            raise TwinError(f"this twin has {len(twin.patients)} patients: name one")
        return twin.patients[0]
    return patient


def _summary(x: np.ndarray) -> dict[str, float]:
    lo, hi = np.quantile(x, INTERVAL)
    return {"mean": float(np.mean(x)), "median": float(np.median(x)), "low": float(lo),
            "high": float(hi)}


def _stable(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))

