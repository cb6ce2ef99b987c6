"""Which trial next: Bayesian N-of-1 designs by preposterior simulation (issue 37).

A patient and clinician compare two options, A (usually what the patient does now) and B (a
preventive or programme), on the twin's attack probability. For a candidate **schedule** —
blocks of A and B of 1–4 weeks (ABAB, or each AB pair in random order), a wash-out left out of
the analysis at the start of each block, a maximum length, and optionally a stopping rule —
:func:`evaluate` simulates ``S`` future diaries (common random numbers across schedules):

1. the **truth** of each simulated diary: a baseline daily log-odds path (from the twin's
   posterior through the simulation kernel, :class:`~.simulation.PatientSimulator`, or given)
   and a true effect ``delta`` of B against A drawn from the prior (the twin's posterior of
   the patient's effect, else the catalogue's published prior with its between-patient
   spread), acting through the ramp-up and carry-over of its kind (:mod:`.state.exposure`);
2. the diary: ``attack[h] = u[h] < logistic(eta0[h] + delta · exposure[h])``;
3. the **analysis** the twin would make of it: the effect's posterior under the model
   ``logit p[h] = m[h] + b + delta · x[h]`` (``m`` the twin's predicted baseline, ``b`` a level
   shift with the spread of the baseline's uncertainty, ``delta`` with its prior), by a
   vectorised Laplace approximation (Newton steps over all diaries at once);
4. the **decision** at the end, or at the first look (after each AB pair) where the
   posterior probability that B beats A by at least the minimal clinically important
   difference (``mcid``: a relative reduction of the attack rate, 0.3 = 30% fewer) crosses the
   stopping bounds.

Each schedule is scored by the probability of the correct decision (B worth it, i.e. true
``delta < log(1 - mcid)``, or not), the expected weeks to the decision, the expected
information gain about ``delta`` (mean KL divergence from prior to posterior) and the expected
attacks during the trial. :func:`recommend` picks the shortest schedule whose probability of a
correct decision is not below the fixed 12-week ABAB's (paired difference, common random
numbers, beyond two standard errors), and reports it beside the fixed ABAB.

For more than two options, :func:`thompson` runs an adaptive allocation: after a first block
of each option (the minimum exposure), each next block goes to the option a draw from the
joint posterior ranks best (Thompson sampling), with carry-over in the exposures. The policy
is a function of the diary so far and a seed: replayed on the same diary it chooses the same.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from migraine_bayes.errors import InputDataError, Problem, did_you_mean
from migraine_bayes.interventions.simulation import PatientSimulator
from migraine_bayes.model.catalogue import catalogue
from migraine_bayes.state.exposure import TIME_CONSTANTS
from migraine_bayes.twin.core import DigitalTwin
from migraine_bayes.twin.record import HORIZON_DAYS

WEEK = 7
LOOK_BOUNDS = (0.1, 0.9)  # stop for futility / benefit at a look
NEWTON_STEPS = 12


@dataclass(frozen=True)
class Schedule:
    """One candidate trial: blocks of A and B, their order, wash-out, length, stopping."""

    block_weeks: int
    total_weeks: int
    order: str = "random"  # "ABAB": fixed; "random": each AB pair in random order
    washout_days: int = 0
    sequential: bool = True
    bound: float = LOOK_BOUNDS[1]  # stop when P(worth it) >= bound or <= 1 - bound

    @property
    def name(self) -> str:
        """The schedule in words."""
        pattern = "ABAB" if self.order == "ABAB" else "randomised pairs"
        stop = f", stop at {self.bound:.0%} either way" if self.sequential else ""
        wash = f", {self.washout_days}-day wash-out" if self.washout_days else ""
        return (f"{pattern}, {self.block_weeks}-week blocks, up to {self.total_weeks} weeks"
                f"{wash}{stop}")

    @property
    def days(self) -> int:
        """Its maximum length in days."""
        return self.total_weeks * WEEK

    def check(self) -> None:
        """Raise ``ValueError`` for a schedule that cannot be run."""
        if not 1 <= self.block_weeks <= 8:
            raise ValueError(f"block of {self.block_weeks} weeks: 1 to 8")
        if self.total_weeks % (2 * self.block_weeks):
            raise ValueError(f"{self.total_weeks} weeks is not a whole number of "
                             f"{self.block_weeks}-week AB pairs")
        if not 0 <= self.washout_days < self.block_weeks * WEEK:
            raise ValueError("the wash-out must be shorter than a block")


FIXED_ABAB = Schedule(block_weeks=3, total_weeks=12, order="ABAB", sequential=False)


def candidates(max_weeks: int = 16) -> list[Schedule]:
    """The schedules :func:`recommend` compares (all end at whole AB pairs)."""
    out = []
    for block in (1, 2, 3, 4):
        for total in (8, 12, 16):
            if total <= max_weeks and total % (2 * block) == 0:
                for washout in (0, WEEK) if block > 1 else (0,):
                    for bound in (0.9, 0.8, 0.7):
                        out.append(Schedule(block, total, "random", washout, True, bound))
    return out


@dataclass
class Prior:
    """Normal prior of B's effect against A: a log rate ratio (log-odds shift)."""

    mean: float
    sd: float
    kind: str = "preventive"
    basis: str = "published prior"


def assignment(schedule: Schedule, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, days) 1 on the days B is assigned, per simulated trial."""
    block = schedule.block_weeks * WEEK
    pairs = schedule.days // (2 * block)
    if schedule.order == "ABAB":
        first_b = np.zeros((n, pairs), bool)
    else:
        first_b = rng.random((n, pairs)) < 0.5
    pattern = np.empty((n, pairs, 2), np.int8)
    pattern[:, :, 0] = first_b
    pattern[:, :, 1] = ~first_b
    return np.repeat(pattern.reshape(n, 2 * pairs), block, axis=1)


def exposure(on: np.ndarray, kind: str) -> np.ndarray:
    """Exposure (0–1) of assignments ``on`` (…, days): ramp-up and carry-over of the kind.

    The day-by-day form of :func:`~.state.exposure.exposure_profile`: on a day on the option
    the exposure closes ``1 - exp(-1/tau_on)`` of its gap to 1, off it decays by
    ``exp(-1/tau_off)`` (a step where a time constant is 0).
    """
    tau_on, tau_off = TIME_CONSTANTS[kind]
    up = 1.0 - math.exp(-1.0 / tau_on) if tau_on > 0 else 1.0
    down = math.exp(-1.0 / tau_off) if tau_off > 0 else 0.0
    out = np.empty(on.shape, float)
    e = np.zeros(on.shape[:-1])
    for h in range(on.shape[-1]):
        e = np.where(on[..., h] > 0, e + up * (1.0 - e), e * down)
        out[..., h] = e
    return out


def laplace(y: np.ndarray, used: np.ndarray, m: np.ndarray, x: np.ndarray,
            prior_mean: np.ndarray, prior_cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and covariance of ``theta`` in ``logit p = m + x @ theta`` (Laplace).

    ``y``, ``used`` (S, H): outcomes and which days count; ``m`` (H,) or (S, H): the known
    offset; ``x`` (S, H, P): the design; ``prior_mean`` (P,), ``prior_cov`` (P, P): a normal
    prior. Newton's method on all S diaries at once. Returns (S, P) means and (S, P, P)
    covariances.
    """
    s, _, p = x.shape
    theta = np.broadcast_to(prior_mean, (s, p)).copy()
    w_used = used.astype(float)
    prec0 = np.linalg.inv(prior_cov)

    def hessian(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        eta = m + np.einsum("shp,sp->sh", x, theta)
        prob = 1.0 / (1.0 + np.exp(-eta))
        weight = w_used * prob * (1.0 - prob)
        return prob, np.einsum("sh,shp,shq->spq", weight, x, x) + prec0[None]

    for _ in range(NEWTON_STEPS):
        prob, hess = hessian(theta)
        grad = (np.einsum("sh,shp->sp", w_used * (y - prob), x)
                - (theta - prior_mean) @ prec0)
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        theta = theta + step
        if np.max(np.abs(step)) < 1e-8:
            break
    return theta, np.linalg.inv(hessian(theta)[1])


@dataclass
class Baseline:
    """The analyst's model of the baseline: weekly levels with their joint normal prior.

    Built by :func:`baseline_model` from simulated baseline paths (the twin's posterior
    predictive): ``offset`` (H,) each day's mean deviation from its week's level (weekday
    patterns), ``mean`` (W,) and ``cov`` (W, W) the weekly levels' mean and covariance —
    so a drifting latent state is in the analysis as the twin itself would have it.
    """

    offset: np.ndarray
    mean: np.ndarray
    cov: np.ndarray

    def analysis(self, x: np.ndarray, effect_mean: list[float], effect_var: list[float]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The analysis model over the days of ``x`` (S, H, E), H whole weeks.

        Returns its design (S, H, W + E) — one level per week, then the effects' exposures —
        and the prior's mean and covariance: the weekly levels jointly as this baseline has
        them, the effects independent with ``effect_mean`` and ``effect_var``.
        """
        s, h, e = x.shape
        w = h // WEEK
        levels = np.broadcast_to(np.repeat(np.eye(w), WEEK, axis=0), (s, h, w))
        cov = np.zeros((w + e, w + e))
        cov[:w, :w] = self.cov[:w, :w]
        cov[w:, w:] = np.diag(effect_var)
        return (np.concatenate([levels, x], axis=-1), np.append(self.mean[:w], effect_mean),
                cov)


def baseline_model(paths: np.ndarray) -> Baseline:
    """A :class:`Baseline` from (S, H) simulated baseline log-odds paths (whole weeks)."""
    s, h = paths.shape
    weeks = paths[:, :h - h % WEEK].reshape(s, -1, WEEK)
    level = weeks.mean(axis=2)  # (S, W)
    offset = (weeks - level[..., None]).mean(axis=0).ravel()
    cov = np.atleast_2d(np.cov(level, rowvar=False)) + 1e-4 * np.eye(level.shape[1])
    return Baseline(offset, level.mean(axis=0), cov)


def kl_normal(mean: np.ndarray, var: np.ndarray, prior_mean: float, prior_var: float
              ) -> np.ndarray:
    """KL(N(mean, var) || N(prior_mean, prior_var)) in nats."""
    return 0.5 * (var / prior_var + (mean - prior_mean) ** 2 / prior_var - 1.0
                  - np.log(var / prior_var))


@dataclass
class Truth:
    """What the simulated trials are run against: baseline paths, effects, random numbers."""

    eta0: np.ndarray  # (S, H) baseline log-odds of each simulated patient-future
    delta: np.ndarray  # (S,) true effect of B (log-odds shift at full exposure)
    u: np.ndarray  # (S, H) uniforms: the same in every schedule (common random numbers)
    fade: np.ndarray | None = None  # (S, H) multiplies the effect (a fading preventive)

    @property
    def n(self) -> int:
        """The number of simulated futures."""
        return self.delta.size


@dataclass
class Outcome:
    """One schedule's simulated trials, and its scores."""

    schedule: Schedule
    decision: np.ndarray  # (S,) True: B worth it
    stated: np.ndarray  # (S,) the posterior probability that the decision is right
    weeks: np.ndarray  # (S,) weeks to the decision
    correct: np.ndarray  # (S,) bool
    information: np.ndarray  # (S,) KL(posterior || prior) of delta at the decision, nats
    attacks: np.ndarray  # (S,) expected attacks during the trial
    summary: dict = field(default_factory=dict)


def evaluate(schedule: Schedule, truth: Truth, prior: Prior, baseline: Baseline,
             mcid: float = 0.3, seed: int = 0) -> Outcome:
    """Run ``schedule`` on every simulated future of ``truth`` and score it.

    ``baseline``: the analyst's (the twin's) model of the baseline over the trial's weeks.
    """
    schedule.check()
    n, h_n = truth.n, schedule.days
    if truth.eta0.shape[1] < h_n:
        raise ValueError(f"the simulated futures cover {truth.eta0.shape[1]} days, the "
                         f"schedule {h_n}")
    rng = np.random.default_rng([seed, schedule.block_weeks, schedule.total_weeks,
                                 schedule.washout_days])
    bounds = (1.0 - schedule.bound, schedule.bound)
    on = assignment(schedule, n, rng)
    x = exposure(on, prior.kind)
    effect = truth.delta[:, None] * (truth.fade[:, :h_n] if truth.fade is not None else 1.0)
    p = 1.0 / (1.0 + np.exp(-(truth.eta0[:, :h_n] + effect * x)))
    y = (truth.u[:, :h_n] < p).astype(float)
    block = schedule.block_weeks * WEEK
    day_in_block = np.arange(h_n) % block
    kept = np.broadcast_to(day_in_block >= schedule.washout_days, (n, h_n))
    n_weeks = h_n // WEEK
    if baseline.mean.size < n_weeks:
        raise ValueError(f"the baseline model covers {baseline.mean.size} weeks, the "
                         f"schedule {n_weeks}")
    threshold = math.log(1.0 - mcid)
    looks = (list(range(2 * block, h_n + 1, 2 * block)) if schedule.sequential else [h_n])
    decided = np.zeros(n, bool)
    decision = np.zeros(n, bool)
    stated = np.zeros(n)
    weeks = np.zeros(n)
    info = np.zeros(n)
    attacks = np.zeros(n)
    for look in looks:  # the analysis of the weeks seen so far
        design, mean0, cov0 = baseline.analysis(x[:, :look, None], [prior.mean],
                                                [prior.sd ** 2])
        mean, cov = laplace(y[:, :look], kept[:, :look], baseline.offset[:look], design,
                            mean0, cov0)
        mu, var = mean[:, -1], cov[:, -1, -1]
        worth = stats.norm.cdf((threshold - mu) / np.sqrt(var))
        last = look == looks[-1]
        stop = ~decided & ((worth >= bounds[1]) | (worth <= bounds[0]) | last)
        decision[stop] = worth[stop] >= 0.5
        stated[stop] = np.where(worth[stop] >= 0.5, worth[stop], 1.0 - worth[stop])
        weeks[stop] = look / WEEK
        info[stop] = kl_normal(mu[stop], var[stop], prior.mean, prior.sd ** 2)
        attacks[stop] = p[stop, :look].sum(axis=1)
        decided |= stop
    correct = decision == (truth.delta < threshold)
    out = Outcome(schedule, decision, stated, weeks, correct, info, attacks)
    out.summary = summarise(out)
    return out


def summarise(o: Outcome) -> dict:
    """An outcome's scores (JSON-ready)."""
    n = o.correct.size
    pc = float(o.correct.mean())
    return {"schedule": o.schedule.name, **asdict(o.schedule),
            "p_correct": pc, "p_correct_se": math.sqrt(pc * (1 - pc) / n),
            "weeks": float(o.weeks.mean()), "information_nats": float(o.information.mean()),
            "attacks": float(o.attacks.mean()), "stated": float(o.stated.mean()),
            "simulations": n}


def recommend(outcomes: list[Outcome], reference: Outcome) -> Outcome:
    """The shortest schedule not worse than ``reference`` at deciding correctly.

    "Not worse": the paired difference in the probability of a correct decision over the same
    simulated futures is not below minus two standard errors.
    """
    fit = []
    for o in outcomes:
        diff = o.correct.astype(float) - reference.correct.astype(float)
        se = diff.std(ddof=1) / math.sqrt(diff.size) if diff.size > 1 else 0.0
        if diff.mean() >= -2.0 * se:
            fit.append(o)
    pool = fit or [max(outcomes, key=lambda o: o.correct.mean())]
    return min(pool, key=lambda o: (o.weeks.mean(), -o.correct.mean()))


def reliability(stated: np.ndarray, correct: np.ndarray,
                edges: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0001)
                ) -> list[dict]:
    """Stated probability the decision is right against how often it was, by bin."""
    rows = []
    for lo, hi in itertools.pairwise(edges):
        m = (stated >= lo) & (stated < hi)
        if m.any():
            rows.append({"bin": f"{lo:.2f}–{min(hi, 1):.2f}", "n": int(m.sum()),
                         "stated": float(stated[m].mean()),
                         "observed": float(correct[m].mean())})
    return rows


# ------------------------------------------------------------------ more than two options
@dataclass
class PolicyRun:
    """An allocation policy run on simulated patients: choices, attacks, regret."""

    name: str
    choices: np.ndarray  # (S, blocks) option per block
    attacks: np.ndarray  # (S,) expected attacks over the horizon
    regret: np.ndarray  # (S,) attacks beyond the oracle's (always the best option)
    final_best: np.ndarray  # (S,) the option the policy would continue with


def _p(eta0: np.ndarray, deltas: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(S, H) daily probability: baseline plus each option's effect at its exposure."""
    return 1.0 / (1.0 + np.exp(-(eta0 + np.einsum("sk,skh->sh", deltas, x))))


def _exposures(choice_days: np.ndarray, k: int, kinds: list[str]) -> np.ndarray:
    """(S, K, H) exposures of K options from the option taken each day (S, H)."""
    return np.stack([exposure((choice_days == j).astype(np.int8), kinds[j])
                     for j in range(k)], axis=1)


def allocate(eta0: np.ndarray, deltas: np.ndarray, u: np.ndarray, priors: list[Prior],
             baseline: Baseline, block_weeks: int, blocks: int, policy: str,
             seed: int = 0) -> PolicyRun:
    """Run an allocation ``policy`` over ``blocks`` blocks for every simulated patient.

    Option 0 is A (effect 0 by definition); options 1..K-1 have ``priors``. ``policy``:
    ``"crossover"`` (each cycle visits every option once, in random order), ``"thompson"``
    (a first block of each option in random order, then each block to the option a joint
    posterior draw ranks best) or ``"oracle"`` (always the truly best option).
    """
    s, k = deltas.shape
    block = block_weeks * WEEK
    h_n = blocks * block
    rng = np.random.default_rng([seed, {"crossover": 1, "thompson": 2, "oracle": 3}[policy]])
    kinds = ["preventive", *[p.kind for p in priors]]
    choices = np.zeros((s, blocks), int)
    best = np.argmin(deltas, axis=1)
    first_cycle = np.argsort(rng.random((s, k)), axis=1)
    effects_mean = np.array([p.mean for p in priors])
    effects_var = np.square([p.sd for p in priors])
    for j in range(blocks):
        if policy == "oracle":
            choices[:, j] = best
        elif policy == "crossover" or j < k:
            cycle = first_cycle if j < k else np.argsort(rng.random((s, k)), axis=1)
            choices[:, j] = cycle[:, j % k]
        else:
            days = choices[:, :j].repeat(block, axis=1)
            seen = j * block
            x = _exposures(days, k, kinds)  # (S, K, seen)
            y = (u[:, :seen] < _p(eta0[:, :seen], deltas, x)).astype(float)
            design, mean0, cov0 = baseline.analysis(np.moveaxis(x[:, 1:], 1, 2),
                                                    effects_mean, effects_var)
            mean, cov = laplace(y, np.ones_like(y, bool), baseline.offset[:seen], design,
                                mean0, cov0)
            mean, cov = mean[:, -(k - 1):], cov[:, -(k - 1):, -(k - 1):]
            chol = np.linalg.cholesky(cov + 1e-12 * np.eye(k - 1))
            draw = mean + np.einsum("spq,sq->sp", chol,
                                           rng.standard_normal((s, k - 1)))
            effects = np.concatenate([np.zeros((s, 1)), draw], axis=1)
            choices[:, j] = np.argmin(effects, axis=1)
    days = choices.repeat(block, axis=1)
    p = _p(eta0[:, :h_n], deltas, _exposures(days, k, kinds))
    oracle_days = np.repeat(best[:, None], h_n, axis=1)
    p_oracle = _p(eta0[:, :h_n], deltas, _exposures(oracle_days, k, kinds))
    attacks = p.sum(axis=1)
    return PolicyRun(policy, choices, attacks, attacks - p_oracle.sum(axis=1), choices[:, -1])


# ------------------------------------------------------------------ a twin's patient
@dataclass
class Option:
    """The option B compared with the patient's current regimen (A)."""

    name: str
    dose_mg: float | None
    prior: Prior


def effect_prior(sim: PatientSimulator, medication: str, dose_mg: float | None) -> Option:
    """B's effect prior.

    The patient's own posterior if the twin has seen the drug, else the catalogue's published
    prior widened by its between-patient spread.
    """
    names = list(sim.design.interventions)
    if medication in names:
        d = sim.draws.delta[:, names.index(medication)]
        return Option(medication, dose_mg, Prior(float(d.mean()), float(d.std(ddof=1)),
                                                 "preventive", "the patient's posterior"))
    entry = catalogue()["preventive"].get(medication)
    if entry is None:
        known = sorted(catalogue()["preventive"])
        raise InputDataError([Problem("arguments", "not a preventive of the intervention "
                                      f"catalogue{did_you_mean(medication, known)}; known: "
                                      f"{', '.join(known)}", None, "compare", medication)],
                             "design settings")
    doses = entry["doses_mg"]
    key = (f"{dose_mg:g}" if dose_mg is not None else next(iter(doses)))
    if key not in doses:
        raise InputDataError([Problem("arguments", f"{medication}: doses in the catalogue are "
                                      f"{', '.join(doses)} mg", None, "compare",
                                      f"{medication}:{dose_mg:g}")], "design settings")
    d = doses[key]
    sd = float(math.hypot(d["se"], entry.get("between_patient_sd", 0.0)))
    return Option(medication, float(key), Prior(float(d["log_rr"]), sd, "preventive",
                                                 "published prior, widened by the spread "
                                                 "between patients"))


def twin_futures(sim: PatientSimulator, days: int, seed: int) -> np.ndarray:
    """(S, ``days``) baseline log-odds of the patient's simulated futures, current regimen.

    The simulation kernel gives each posterior draw's baseline for the twin's horizon (its
    latent-state domain, :data:`HORIZON_DAYS`); a longer trial continues each draw with whole
    weeks resampled from its own last four simulated weeks. The true effect of B is not in
    these paths: :func:`design` draws it from the prior.
    """
    p = np.clip(sim.run(None).p, 1e-6, 1 - 1e-6)
    eta = np.log(p / (1 - p))
    weeks = eta.shape[1] // WEEK
    eta = eta[:, :weeks * WEEK]
    rng = np.random.default_rng([seed, 37])
    while eta.shape[1] < days:
        pick = rng.integers(max(0, weeks - 4), weeks, size=eta.shape[0])
        idx = pick[:, None] * WEEK + np.arange(WEEK)[None, :]
        eta = np.concatenate([eta, np.take_along_axis(eta[:, :weeks * WEEK], idx, axis=1)],
                             axis=1)
    return eta[:, :days]


def design(twin: DigitalTwin, patient: str, medication: str, dose_mg: float | None = None,
           weeks: int = 16, mcid: float = 0.3, sims: int = 1000, seed: int = 0) -> dict:
    """The trial to run next for ``patient``: current regimen (A) against ``medication`` (B).

    Every candidate schedule (:func:`candidates`, up to ``weeks``) and the fixed 12-week ABAB
    are scored on the same ``sims`` simulated futures (common random numbers); returns the plan
    (JSON-ready): the recommended schedule with its probability of a correct decision,
    expected weeks, information gain and attacks, the fixed ABAB beside it, every candidate,
    the stopping rule and the calendar of the recommended schedule's blocks.
    """
    if not 0 < mcid < 1:
        raise InputDataError([Problem("arguments", "the minimal clinically important "
                                      "difference is a relative reduction between 0 and 1",
                                      None, "mcid", str(mcid))], "design settings")
    if not FIXED_ABAB.total_weeks <= weeks <= 24:
        raise InputDataError([Problem("arguments", "weeks must be 12..24 (the fixed ABAB "
                                      "compared is 12 weeks)", None, "weeks", str(weeks))],
                             "design settings")
    sim = PatientSimulator(twin, patient, min(HORIZON_DAYS, weeks * WEEK), sims, seed)
    option = effect_prior(sim, medication, dose_mg)
    eta0 = twin_futures(sim, weeks * WEEK, seed)
    rng = np.random.default_rng([seed, 38])
    truth = Truth(eta0, rng.normal(option.prior.mean, option.prior.sd, sims),
                  rng.random(eta0.shape))
    baseline = baseline_model(eta0)
    reference = evaluate(FIXED_ABAB, truth, option.prior, baseline, mcid, seed)
    outcomes = [evaluate(s, truth, option.prior, baseline, mcid, seed)
                for s in candidates(weeks)]
    best = recommend(outcomes, reference)
    start = pd.Timestamp(sim.dates[0])
    block = best.schedule.block_weeks * WEEK
    calendar = [{"block": j + 1, "from": str((start + pd.Timedelta(days=j * block)).date()),
                 "to": str((start + pd.Timedelta(days=(j + 1) * block - 1)).date()),
                 "option": "A then B at random (pair)" if best.schedule.order == "random"
                 else ("B" if j % 2 else "A")}
                for j in range(best.schedule.days // block)]
    threshold = 1.0 - mcid
    return {
        "patient_id": patient, "twin_version": twin.record.version,
        "compare": {"A": "current regimen", "B": option.name, "B_dose_mg": option.dose_mg},
        "prior": {"log_rate_ratio_mean": option.prior.mean, "sd": option.prior.sd,
                  "basis": option.prior.basis},
        "mcid": mcid, "simulations": sims, "seed": seed,
        "decision_rule": (f"B is worth it if it lowers the attack rate by at least "
                          f"{mcid:.0%} (rate ratio ≤ {threshold:.2f}); at each look (after every "
                          f"AB pair) stop when P(worth it) ≥ {best.schedule.bound:.0%} or ≤ "
                          f"{1 - best.schedule.bound:.0%}, else decide at the end by "
                          "P(worth it) ≥ 50%"),
        "recommended": best.summary, "fixed_abab": reference.summary,
        "weeks_ratio": best.summary["weeks"] / reference.summary["weeks"],
        "reliability": reliability(best.stated, best.correct),
        "calendar": calendar,
        "candidates": sorted((o.summary for o in outcomes), key=lambda r: r["weeks"]),
        "method": ("preposterior simulation on the twin's posterior (simulation kernel, common "
                   "random numbers); each simulated diary analysed by a Laplace approximation "
                   "of the effect with the twin's weekly baseline as its prior"),
    }


def decision(twin: DigitalTwin, plan: dict, seed: int = 0) -> dict:
    """A planned trial's running decision from the twin's current posterior of B's effect.

    ``plan``: what :func:`design` returned. The twin must hold the course of B in the
    patient's diary (``update`` with the trial's days and the ``treatments`` row of B).
    """
    patient, medication = plan["patient_id"], plan["compare"]["B"]
    if patient not in twin.patients:
        raise InputDataError([Problem("plan", "the plan's patient is not in this twin", None,
                                      "patient_id", patient)], "trial decision")
    sim = PatientSimulator(twin, patient, 1, 1000, seed)
    names = list(sim.design.interventions)
    if medication not in names:
        raise InputDataError([Problem("plan", f"the patient's diary holds no course of "
                                      f"{medication} yet: record the trial's B blocks in "
                                      "treatments and update the twin", None, "compare",
                                      medication)], "trial decision")
    d = sim.draws.delta[:, names.index(medication)]
    threshold = math.log(1.0 - plan["mcid"])
    worth = float((d < threshold).mean())
    bound = plan["recommended"]["bound"]
    verdict = ("stop: B is worth it" if worth >= bound else
               "stop: B is not worth it" if worth <= 1 - bound else "continue")
    return {"patient_id": patient, "B": medication, "twin_version": twin.record.version,
            "rate_ratio": float(np.exp(np.median(d))),
            "rate_ratio_90": [float(np.exp(q)) for q in np.quantile(d, [0.05, 0.95])],
            "p_worth_it": worth, "bound": bound, "decision": verdict,
            "rule": plan["decision_rule"]}
