"""Twins across clinics without pooling diaries: a federated two-stage fit.

The two-stage fit (:mod:`.two_stage`) fits a population, then each patient against it. Here no
diary leaves its site:

1. **Plan** (round 0). Each site sends its model features and interventions (names from the
   registry), its longest diary (a count) and, per feature, the scaling of its own data with
   the number of cells it came from. The coordinator pools them into one plan — the features'
   common scale (weighted by cells), the union of interventions and one latent basis — so
   every site's coefficients mean the same thing.
2. **Summaries** (round 1). Each site fits each of its patients alone under the default
   weakly informative prior (:class:`~migraine_bayes.model.PatientPrior`) and sends, per
   patient and in a shuffled order, a Gaussian approximation of the posterior of the
   parameters the population layer pools — mean vector and covariance of ``alpha``, ``beta``
   per feature, ``gamma``, ``delta`` per intervention, log refractory time constant and log
   latent lengthscale — with the prior it used, which parameters the patient's diary informs
   (an intervention never taken, a feature never measured: none) and the mean square latent
   amplitude. No id, date, day count per patient or raw value (:func:`check_message`).
3. **Population** (the coordinator). Dividing each posterior by its local prior gives the
   patient's Gaussian likelihood approximation ``exp(eta'theta - theta' Lambda theta / 2)``
   (precision form: an uninformed parameter has zero precision); the population model
   ``theta_i ~ N(mu + site offset, diag(sigma^2))`` with the hierarchy's own hyperpriors
   (:class:`~migraine_bayes.model.Hyper`) integrates each ``theta_i`` out in closed form
   and is sampled with NUTS and checked like every fit. Site effects (optional): each site's
   own offset of the baseline and of every trigger effect, so a clinic whose patients differ is
   not forced into one population.
4. **Refit** (round 2). The coordinator sends each site its population prior (the predictive
   of a new patient of that site) and the population draws; the site refits its patients
   against it — the two-stage fit's stage 2, unchanged — into an ordinary cohort twin that
   never leaves the site.

This is two-stage shrinkage with Gaussian summaries (Bayesian federated inference): exact when
each patient's likelihood is Gaussian in the pooled parameters, an approximation otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import weakref
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import arviz as az
import numpy as np
import xarray as xr

from migraine_bayes.cohort.io import Cohort
from migraine_bayes.course import fit_course
from migraine_bayes.dims import CHAIN, DRAW, FEATURE, INTERVENTION, PATIENT
from migraine_bayes.model import FeatureSpec, Hyper, PatientPrior, build_design
from migraine_bayes.model.inference import Diagnostics, SamplerSettings, diagnose
from migraine_bayes.state import build_panel
from migraine_bayes.twin import two_stage
from migraine_bayes.twin.cluster import ClusterOptions
from migraine_bayes.twin.core import DigitalTwin
from migraine_bayes.twin.fitting import domain_for
from migraine_bayes.twin.record import HORIZON_DAYS, TwinError

VERSION = 1  # of the messages' layout
SITE = "site"
# the coordinator's sampler: a few dozen hyperparameters, cheap gradients
POPULATION_SETTINGS = SamplerSettings(draws=1000, tune=1000, chains=4, target_accept=0.9)
# the between-patient spread of the log refractory time constant and log lengthscale (shared by
# all patients in a full hierarchy, each patient's own here): lognormal (median, log-sd)
NUISANCE_SPREAD = (0.2, 0.7)
SITE_SPREAD = 0.25  # HalfNormal scale of the sites' offsets (log-odds per SD)


class FederationError(TwinError):
    """A message that breaks the federation's declared layout, or sites that disagree."""


# --- messages ------------------------------------------------------------------------------

# what each message may hold: key -> the kind of value (checked on sending and on receipt)
LAYOUT = {
    "plan": {"version": int, "site": str, "outcome": str, "features": list, "interventions": list,
             "longest_diary": int, "scaling": dict},
    "summaries": {"version": int, "site": str, "params": list, "patients": int, "mean": list,
                  "cov": list, "prior_mean": list, "prior_sd": list, "informed": list,
                  "amplitude2": list},
    "agreed": {"version": int, "outcome": str, "features": list, "interventions": list,
               "longest_diary": int, "scaling": dict},
    "population": {"version": int, "site": str, "prior": dict, "draws": dict,
                   "diverging": list, "sites": int, "patients": int, "diagnostics": dict},
}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def check_message(kind: str, message: dict) -> dict:
    """``message`` if it holds exactly the declared fields of ``kind`` (else FederationError).

    Every message is plain JSON (numbers, strings, lists, dicts) and carries no date.
    """
    layout = LAYOUT.get(kind)
    if layout is None:
        raise FederationError(f"unknown message kind {kind!r}")
    extra, missing = set(message) - set(layout), set(layout) - set(message)
    if extra or missing:
        raise FederationError(f"a {kind} message must hold exactly {sorted(layout)}: "
                              f"unexpected {sorted(extra)}, missing {sorted(missing)}")
    for key, kind_of in layout.items():
        if not isinstance(message[key], kind_of):
            raise FederationError(f"{kind} message field {key!r} must be {kind_of.__name__}")
    if message["version"] != VERSION:
        raise FederationError(f"{kind} message of layout {message['version']}, this "
                              f"coordinator reads {VERSION}")
    text = json.dumps(message, allow_nan=False)
    if _DATE.search(text):
        raise FederationError(f"a {kind} message may not carry a date")
    return message


# --- sites ---------------------------------------------------------------------------------

def site_seed(seed: int, site: str) -> int:
    """A site's sampler seed: the same wherever it runs, different between sites."""
    return int(np.random.SeedSequence([seed, zlib.crc32(site.encode())]).generate_state(1)[0])


@dataclass
class Site:
    """One clinic's side of a federation: its cohort never leaves this object.

    ``work_dir`` keeps finished patient fits so that a site that drops out and returns resumes
    (default: a private temporary directory, removed when the object is).
    """

    name: str
    cohort: Cohort
    outcome: str = "onset"
    settings: SamplerSettings = field(default_factory=lambda: two_stage.PATIENT_STAGE_SETTINGS)
    cluster: ClusterOptions = field(default_factory=lambda: ClusterOptions(workers=0))
    work_dir: Path | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        self.ids = list(self.cohort.patient_ids)
        if not self.ids:
            raise FederationError(f"site {self.name}: no patients")
        self.panel = build_panel(self.cohort, patients=self.ids, horizon_days=HORIZON_DAYS)
        self._singles = two_stage.ByPatient(self.cohort)
        if self.work_dir is None:  # patients' posteriors: removed with the object
            self.work_dir = Path(two_stage.tempdir())
            weakref.finalize(self, shutil.rmtree, str(self.work_dir), True)
        self.work_dir = Path(self.work_dir)
        self.work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    # round 0
    def plan(self) -> dict:
        """What the coordinator needs to agree one design: no patient-level value."""
        design = build_design(self.panel, self.outcome)
        return check_message("plan", {
            "version": VERSION, "site": self.name, "outcome": self.outcome,
            "features": [_spec_dict(f) for f in design.features],
            "interventions": list(design.interventions),
            "longest_diary": int(self.panel["in_diary"].sum("day").max()),
            "scaling": {name: [int(design.observed.get(name, 0)), float(c), float(s)]
                        for name, (c, s) in design.scaling.items()}})

    def _design(self, agreed: dict):
        features = [FeatureSpec(**{**d, "levels": tuple(d["levels"])})
                    for d in agreed["features"]]
        scaling = {k: (float(v[0]), float(v[1])) for k, v in agreed["scaling"].items()}
        return build_design(self.panel, agreed["outcome"], features, agreed["interventions"],
                            scaling)

    def _settings(self) -> SamplerSettings:
        return dataclasses.replace(self.settings, seed=site_seed(self.settings.seed, self.name))

    # round 1
    def summaries(self, agreed: dict) -> dict:
        """Each patient fitted alone under the default prior; Gaussian summaries, shuffled."""
        check_message("agreed", agreed)
        design = self._design(agreed)
        domain = domain_for(agreed["longest_diary"])
        prior = PatientPrior.for_outcome(agreed["outcome"])
        settings = self._settings()
        key = two_stage.fingerprint(self.cohort, self.ids, {
            "round": "summaries", "agreed": agreed, "settings": dataclasses.asdict(settings)})
        work = two_stage.WorkDir(self.work_dir / "local", key)
        failures = two_stage.fit_patients(work, self._singles, self.ids, agreed["outcome"],
                                          prior, design, None, domain, settings, self.cluster,
                                          lambda *_a: None)
        if failures:
            raise FederationError(f"site {self.name}: {len(failures)} patient(s) could not be "
                                  f"fitted alone: {'; '.join(sorted(failures.values()))[:300]}")
        names = param_names(design.feature_names, design.interventions)
        m0, s0 = prior_vector(prior, design.feature_names, design.interventions)
        rows = []
        for i in range(len(self.ids)):
            _meta, post = work.read(i)
            draws = param_draws(post, design.feature_names, design.interventions)
            informed = _informed(design, i)
            rows.append((draws.mean(0), np.cov(draws, rowvar=False), informed,
                         float((post["gp_amplitude"].values ** 2).mean())))
        order = np.random.default_rng(site_seed(self.seed, self.name)).permutation(len(rows))
        rows = [rows[k] for k in order]
        return check_message("summaries", {
            "version": VERSION, "site": self.name, "params": names, "patients": len(rows),
            "mean": [r[0].tolist() for r in rows], "cov": [r[1].tolist() for r in rows],
            "prior_mean": m0.tolist(), "prior_sd": s0.tolist(),
            "informed": [r[2].tolist() for r in rows], "amplitude2": [r[3] for r in rows]})

    # round 2
    def refit(self, agreed: dict, population: dict, progress=None) -> DigitalTwin:
        """The site's cohort twin: its patients refitted against the federated population."""
        check_message("agreed", agreed)
        check_message("population", population)
        design = self._design(agreed)
        domain = domain_for(agreed["longest_diary"])
        prior = PatientPrior.from_dict(population["prior"])
        pop = _dataset(population["draws"])
        settings = self._settings()
        key = two_stage.fingerprint(self.cohort, self.ids, {
            "round": "refit", "agreed": agreed, "prior": population["prior"],
            "settings": dataclasses.asdict(settings)})
        work = two_stage.WorkDir(self.work_dir / "refit", key)
        say = progress or (lambda *_a: None)
        failures = two_stage.fit_patients(work, self._singles, self.ids, agreed["outcome"],
                                          prior, design, None, domain, settings, self.cluster,
                                          say)
        posterior, fits = two_stage.gather(work, self.ids, failures, pop)
        course = fit_course(self.cohort.attacks, self.cohort.patient_ids, seed=settings.seed)
        stats = xr.Dataset({"diverging": ((CHAIN, DRAW), np.asarray(population["diverging"],
                                                                    bool))},
                           coords={CHAIN: pop[CHAIN], DRAW: pop[DRAW]})
        twin = two_stage.assemble(self.cohort, self.panel, design, domain, posterior, stats,
                                   fits, failures, population["diagnostics"], [],
                                   agreed["outcome"], settings, self.cluster, course)
        twin.record = twin.record.replace(fitting={
            **twin.record.fitting, "method": "federated", "federation": {
                "site": self.name, "sites": population["sites"],
                "patients": population["patients"], "prior": prior.to_dict()}})
        return twin


def _spec_dict(spec: FeatureSpec) -> dict:
    d = dataclasses.asdict(spec)
    d["levels"] = list(d["levels"])
    return d


def _informed(design, i: int) -> np.ndarray:
    """Which pooled parameters patient ``i``'s diary informs (a known day of each)."""
    known = ~np.isnan(design.y[i])
    beta = [bool(np.any(design.z_mean[i, known, k] != 0) or np.any(design.z_var[i, known, k]))
            for k in range(len(design.features))]
    delta = [bool(np.any(design.exposure[i, known, m] > 0))
             for m in range(len(design.interventions))]
    return np.array([True, *beta, True, *delta, True, True])


def param_names(features: list[str], interventions: list[str]) -> list[str]:
    """The pooled parameters, in the summaries' order."""
    return (["alpha"] + [f"beta[{f}]" for f in features] + ["gamma"]
            + [f"delta[{m}]" for m in interventions] + ["log_tau_refractory", "log_lengthscale"])


def prior_vector(prior: PatientPrior, features: list[str], interventions: list[str]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Means and sds of ``prior`` over :func:`param_names`."""
    b_mu, b_sd = prior.beta_arrays(features)
    d_mu, d_sd = prior.delta_arrays(interventions)
    mean = [prior.alpha[0], *b_mu, prior.gamma[0], *d_mu, prior.log_tau_refractory[0],
            prior.log_lengthscale[0]]
    sd = [prior.alpha[1], *b_sd, prior.gamma[1], *d_sd, prior.log_tau_refractory[1],
          prior.log_lengthscale[1]]
    return np.asarray(mean, float), np.asarray(sd, float)


def param_draws(post: xr.Dataset, features: list[str], interventions: list[str]) -> np.ndarray:
    """One patient's posterior draws (n, K) of :func:`param_names`."""
    def flat(v: xr.DataArray) -> np.ndarray:
        v = v.isel({PATIENT: 0}) if PATIENT in v.dims else v
        return v.transpose(CHAIN, DRAW, ...).values.reshape(v.sizes[CHAIN] * v.sizes[DRAW], -1)

    parts = [flat(post["alpha"]), flat(post["beta"].sel({FEATURE: features})),
             flat(post["gamma"])]
    if interventions:
        parts.append(flat(post["delta"].sel({INTERVENTION: interventions})))
    parts += [np.log(flat(post["tau_refractory"])), np.log(flat(post["lengthscale"]))]
    return np.concatenate(parts, axis=1)


# --- the coordinator -----------------------------------------------------------------------

def agree(plans: list[dict]) -> dict:
    """One design from the sites' plans: pooled scaling, union of features and interventions."""
    if not plans:
        raise FederationError("no site sent a plan")
    for p in plans:
        check_message("plan", p)
    outcomes = {p["outcome"] for p in plans}
    if len(outcomes) > 1:
        raise FederationError(f"sites model different outcomes: {sorted(outcomes)}")
    features: dict[str, dict] = {}
    for p in plans:
        for spec in p["features"]:
            seen = features.setdefault(spec["name"], spec)
            if seen != spec:
                raise FederationError(f"sites define feature {spec['name']!r} differently")
    interventions = sorted({m for p in plans for m in p["interventions"]})
    scaling = {}
    for name, spec in features.items():
        rows = [p["scaling"][name] for p in plans if name in p["scaling"]]
        n = np.array([r[0] for r in rows], float)
        c = np.array([r[1] for r in rows], float)
        s = np.array([r[2] for r in rows], float)
        w = n / n.sum() if n.sum() > 0 else np.full(len(rows), 1 / len(rows))
        center = float(w @ c)
        scale = 1.0 if spec["binary"] else float(np.sqrt(w @ s**2))
        scaling[name] = [center, scale if scale > 0 else 1.0]
    return check_message("agreed", {
        "version": VERSION, "outcome": outcomes.pop(), "features": list(features.values()),
        "interventions": interventions,
        "longest_diary": max(p["longest_diary"] for p in plans), "scaling": scaling})


@dataclass
class Population:
    """The coordinator's posterior of the population (and site) parameters, with its checks."""

    idata: az.InferenceData
    diagnostics: Diagnostics
    features: list[str]
    interventions: list[str]
    sites: list[str]
    patients: int
    amplitude: float  # root mean square of the patients' latent amplitudes

    def site_draws(self, site: str | None = None, seed: int = 0) -> xr.Dataset:
        """Population draws in the hierarchy's names, as a new patient of ``site`` sees them.

        ``mu_alpha``/``mu_beta`` include the site's offset (none when ``site`` is None or the
        federation has no site effects); ``tau_refractory``/``lengthscale`` are draws of a new
        patient's own (lognormal around the population's), ``gp_amplitude`` its typical value.
        """
        post = self.idata.posterior
        out = {v: post[v] for v in ("mu_alpha", "sigma_alpha", "mu_beta", "tau_beta",
                                    "mu_gamma", "sigma_gamma", "mu_delta", "sigma_delta")
               if v in post}
        if site is not None and "site_alpha" in post:
            out["mu_alpha"] = post["mu_alpha"] + post["site_alpha"].sel({SITE: site})
            out["mu_beta"] = post["mu_beta"] + post["site_beta"].sel({SITE: site})
        rng = np.random.default_rng(seed)
        for name in ("tau_refractory", "lengthscale"):
            mu, sd = post[f"mu_log_{name}"], post[f"sd_log_{name}"]
            out[name] = np.exp(mu + sd * xr.DataArray(rng.standard_normal(mu.shape),
                                                      dims=mu.dims))
        out["gp_amplitude"] = xr.full_like(post["mu_alpha"], self.amplitude)
        return xr.Dataset(out).drop_vars(SITE, errors="ignore")

    def prior(self, site: str | None = None) -> PatientPrior:
        """The prior of a new patient of ``site`` (moment-matched population predictive)."""
        prior = PatientPrior.from_population(self.site_draws(site), self.features,
                                             self.interventions)
        return dataclasses.replace(prior, source=(
            f"federated population posterior ({len(self.sites)} sites, {self.patients} "
            f"patients)" + (f", site {site}" if site is not None and "site_alpha"
                            in self.idata.posterior else "")))

    def message(self, site: str, keep: int = 250) -> dict:
        """What the coordinator sends ``site``: its prior and the population draws."""
        draws = two_stage.thin(self.site_draws(site), keep)
        diverging = two_stage.thin(self.idata.sample_stats[["diverging"]], keep)["diverging"]
        return check_message("population", {
            "version": VERSION, "site": site, "prior": self.prior(site).to_dict(),
            "draws": _plain(draws), "diverging": diverging.values.tolist(),
            "sites": len(self.sites), "patients": self.patients,
            "diagnostics": self.diagnostics.to_dict()})


def likelihoods(summaries: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Each patient's Gaussian likelihood approximation: ``eta`` (N, K), ``Lambda`` (N, K, K).

    The posterior's precision minus the local prior's, on the parameters the patient's diary
    informs (zero elsewhere), made positive semi-definite (negative eigenvalues — Monte Carlo
    noise on a weakly informed parameter — set to zero). Also each patient's site index and
    the parameter names.
    """
    names = summaries[0]["params"]
    etas, lams, site = [], [], []
    for s_index, msg in enumerate(summaries):
        check_message("summaries", msg)
        if msg["params"] != names:
            raise FederationError(f"site {msg['site']} summarised other parameters")
        m0, s0 = np.asarray(msg["prior_mean"]), np.asarray(msg["prior_sd"])
        p0 = 1.0 / s0**2
        for m, cov, informed in zip(msg["mean"], msg["cov"], msg["informed"], strict=True):
            m, cov, inf = np.asarray(m), np.asarray(cov), np.asarray(informed, bool)
            lam = np.zeros((len(names), len(names)))
            eta = np.zeros(len(names))
            idx = np.flatnonzero(inf)
            sub = cov[np.ix_(idx, idx)]
            prec = np.linalg.inv(sub + 1e-9 * np.eye(len(idx)))
            like = prec - np.diag(p0[idx])
            w, v = np.linalg.eigh((like + like.T) / 2)
            keep = v[:, w > 0]
            like = (keep * w[w > 0]) @ keep.T
            # the linear term P_post m - P_0 m0, on the directions the likelihood informs
            eta[idx] = keep @ (keep.T @ (prec @ m[idx] - p0[idx] * m0[idx]))
            lam[np.ix_(idx, idx)] = like
            etas.append(eta)
            lams.append(lam)
            site.append(s_index)
    return np.array(etas), np.array(lams), np.array(site), names


def fit_population(summaries: list[dict], agreed: dict, site_effects: bool = False,
                   settings: SamplerSettings = POPULATION_SETTINGS) -> Population:
    """The population posterior from the sites' summaries (module text)."""
    import nutpie
    import pymc as pm
    import pytensor.tensor as pt
    from pytensor.tensor.slinalg import cholesky, solve_triangular

    check_message("agreed", agreed)
    if not summaries:
        raise FederationError("no site sent summaries")
    eta, lam, site_of, names = likelihoods(summaries)
    features = [f["name"] for f in agreed["features"]]
    interventions = list(agreed["interventions"])
    if names != param_names(features, interventions):
        raise FederationError("the summaries are not over the agreed design's parameters")
    sites = [m["site"] for m in summaries]
    if len(set(sites)) != len(sites):
        raise FederationError(f"a site sent summaries twice: {sites}")
    n_f, n_m = len(features), len(interventions)
    hyper = Hyper.for_outcome(agreed["outcome"])
    mu_sd, tau_median = hyper.column_priors(features)
    coords = {FEATURE: features, INTERVENTION: interventions, SITE: sites}
    with pm.Model(coords=coords) as model:
        mu_alpha = pm.Normal("mu_alpha", *hyper.mu_alpha)
        sigma_alpha = pm.LogNormal("sigma_alpha", np.log(hyper.sigma_alpha[0]),
                                   hyper.sigma_alpha[1])
        mu_beta = pm.Normal("mu_beta", 0.0, mu_sd, dims=FEATURE)
        tau_beta = pm.LogNormal("tau_beta", np.log(tau_median), hyper.tau_beta[1], dims=FEATURE)
        mu_gamma = pm.Normal("mu_gamma", *hyper.mu_gamma)
        sigma_gamma = pm.LogNormal("sigma_gamma", np.log(hyper.sigma_gamma[0]),
                                   hyper.sigma_gamma[1])
        mus = [mu_alpha[None], mu_beta, mu_gamma[None]]
        sds = [sigma_alpha[None], tau_beta, sigma_gamma[None]]
        if n_m:
            mu_delta = pm.Normal("mu_delta", *hyper.mu_delta, dims=INTERVENTION)
            sigma_delta = pm.LogNormal("sigma_delta", np.log(hyper.sigma_delta[0]),
                                       hyper.sigma_delta[1])
            mus.append(mu_delta)
            sds.append(sigma_delta * pt.ones(n_m))
        for name, (m, s) in (("tau_refractory", hyper.log_tau_refractory),
                             ("lengthscale", hyper.log_lengthscale)):
            mus.append(pm.Normal(f"mu_log_{name}", m, s)[None])
            sds.append(pm.LogNormal(f"sd_log_{name}", np.log(NUISANCE_SPREAD[0]),
                                    NUISANCE_SPREAD[1])[None])
        mu = pt.concatenate(mus)
        sd = pt.concatenate(sds)
        mu_i = pt.broadcast_to(mu, (len(eta), len(names)))
        if site_effects and len(sites) > 1:
            spread = pm.HalfNormal("site_spread", SITE_SPREAD)
            off_a = pm.ZeroSumNormal("site_alpha", sigma=spread, dims=SITE)
            off_b = pm.ZeroSumNormal("site_beta", sigma=spread, dims=(SITE, FEATURE),
                                     n_zerosum_axes=1)
            offsets = pt.concatenate([off_a[:, None], off_b,
                                      pt.zeros((len(sites), len(names) - 1 - n_f))], axis=1)
            mu_i = mu_i + offsets[site_of]
        # log of  integral N(theta; mu_i, diag sd^2) exp(eta'theta - theta'Lambda theta/2)
        c = sd[None, :] * eta + mu_i / sd[None, :]
        b = pt.eye(len(names))[None] + sd[None, :, None] * lam * sd[None, None, :]
        chol = cholesky(b)
        v = solve_triangular(chol, c, lower=True, b_ndim=1)
        log_det = pt.log(pt.diagonal(chol, axis1=-2, axis2=-1)).sum()
        pm.Potential("patients", -log_det + 0.5 * (v**2).sum() - 0.5 * ((mu_i / sd) ** 2).sum())
    compiled = nutpie.compile_pymc_model(model)
    idata = nutpie.sample(compiled, draws=settings.draws, tune=settings.tune,
                          chains=settings.chains, cores=settings.cores, seed=settings.seed,
                          target_accept=settings.target_accept, maxdepth=settings.maxdepth,
                          save_warmup=False, progress_bar=False)
    diag = diagnose(idata)
    amp2 = np.concatenate([np.asarray(m["amplitude2"]) for m in summaries])
    return Population(idata, diag, features, interventions, sites, len(eta),
                      float(np.sqrt(amp2.mean())))


def _plain(ds: xr.Dataset) -> dict:
    """A dataset as JSON: per variable its dims and values, and the named coordinates."""
    return {"variables": {v: {"dims": list(ds[v].dims), "values": ds[v].values.tolist()}
                          for v in ds.data_vars},
            "coords": {c: ds[c].values.tolist() for c in ds.coords}}


def _dataset(d: dict) -> xr.Dataset:
    return xr.Dataset({v: (x["dims"], np.asarray(x["values"], float))
                       for v, x in d["variables"].items()}, coords=d["coords"])


# --- one federation, every site in this process ---------------------------------------------

@dataclass
class Federation:
    """A federation's result: the population, each site's twin and every message sent."""

    population: Population
    twins: dict[str, DigitalTwin]
    messages: list[tuple[str, str, dict]]  # (kind, from → to, message)


def federate(sites: list[Site], site_effects: bool = False,
             settings: SamplerSettings = POPULATION_SETTINGS, progress=None) -> Federation:
    """Run the three rounds with every site here (the transport aside): for studies and tests."""
    say = progress or (lambda *_a: None)
    log: list[tuple[str, str, dict]] = []
    plans = []
    for s in sites:
        plans.append(s.plan())
        log.append(("plan", f"{s.name} → coordinator", plans[-1]))
    agreed = agree(plans)
    summaries = []
    for s in sites:
        log.append(("agreed", f"coordinator → {s.name}", agreed))
        say(f"{s.name}: fitting {len(s.ids)} patients alone")
        summaries.append(s.summaries(agreed))
        log.append(("summaries", f"{s.name} → coordinator", summaries[-1]))
    say("coordinator: population fit")
    population = fit_population(summaries, agreed, site_effects, settings)
    twins = {}
    for s in sites:
        message = population.message(s.name)
        log.append(("population", f"coordinator → {s.name}", message))
        say(f"{s.name}: refitting against the population")
        twins[s.name] = s.refit(agreed, message)
    return Federation(population, twins, log)
