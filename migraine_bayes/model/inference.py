"""Sampling and its checks: nutpie by default, PyMC's NUTS as fallback; never a silent bad fit.

After every fit the sampler is checked: R-hat, bulk and tail ESS, divergences and E-BFMI of every
non-latent parameter (the HSGP coefficients are latent; their scale, ``gp_amplitude``, is held to
the targets like any other parameter). A failed check triggers a retry: chains that were sound
but too short (only R-hat or ESS failed) are joined by as many new chains, and all are checked
together (up to :data:`MAX_CHAIN_SETS` sets); chains that diverged or explored energy poorly are
discarded and sampled again with safer settings (longer tuning, smaller steps, deeper trees). If
the retry fails too, an :class:`InferenceWarning` is raised and the failure is recorded in the
returned :class:`Diagnostics` (and so in the twin's metadata).
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from dataclasses import asdict, dataclass, field

import arviz as az
import numpy as np
import pymc as pm
import xarray as xr

from migraine_bayes.errors import InferenceWarning
from migraine_bayes.model import LATENT_VARS, ModelData, build_model
from migraine_bayes.model.priors import PatientPrior

log = logging.getLogger(__name__)

RHAT_MAX = 1.01
ESS_MIN = 400
BFMI_MIN = 0.3
# sound chains failing R-hat or ESS get more chains, up to this many times the first set: the
# maximum R-hat over a patient's ~60 parameters exceeds 1.01 by chance in about half of 4 ×
# 400-draw fits (rank-normalised split-R-hat's noise; migraine_bayes.twin.two_stage)
MAX_CHAIN_SETS = 3


@dataclass(frozen=True)
class SamplerSettings:
    """Sampler settings; defaults: :data:`COHORT_SETTINGS`, :data:`PATIENT_SETTINGS`.

    ``sampler`` is ``"nutpie"`` (default) or ``"pymc"`` (PyMC's own NUTS, the fallback).
    """

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    cores: int = 2
    target_accept: float = 0.8
    maxdepth: int = 10
    sampler: str = "nutpie"
    seed: int = 0

    def safer(self) -> SamplerSettings:
        """Settings for a retry after divergences or low E-BFMI: twice the tuning, deeper trees."""
        return dataclasses.replace(self, tune=2 * self.tune, target_accept=0.95,
                                   maxdepth=self.maxdepth + 2, seed=self.seed + 1)

    def more_chains(self, k: int = 1) -> SamplerSettings:
        """Settings of the ``k``-th set of chains joining sound but short ones: another seed."""
        return dataclasses.replace(self, seed=self.seed + k)


PATIENT_SETTINGS = SamplerSettings(draws=1000, tune=1000, chains=4, target_accept=0.9)
# the cohort's between-patient scales mix slower: more draws to reach ESS ≥ 400
COHORT_SETTINGS = SamplerSettings(draws=1500, tune=1000, chains=4)


@dataclass
class Diagnostics:
    """Outcome of the checks of one fit."""

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    min_bfmi: float
    worst: dict[str, str]
    failures: list[str]
    attempts: int = 1
    sampling_seconds: float = 0.0
    settings: dict = field(default_factory=dict)
    retry: str = ""  # what the retry did: "" (none), "4 more chains" … or "safer settings"
    first_failures: list[str] = field(default_factory=list)  # the first attempt's, if retried

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return not self.failures

    def to_dict(self) -> dict:
        """Plain dict for ``twin.json``."""
        return asdict(self) | {"ok": self.ok}


def checked_variables(idata: az.InferenceData) -> list[str]:
    """Posterior variables held to the targets.

    All but the latent coefficients, the standardised offsets behind deterministic parameters
    (``*_z``), the sampler's transformed copies (``*_log__``, ``*_zerosum__``: same ranks) and,
    where patients' effects are ``beta_total``, the per-column copies ``mu_beta``/``tau_beta``
    of the checked ``mu_effect``/``tau_effect`` (an interaction's ``tau_beta`` is 0: no R-hat).
    """
    copies = {"mu_beta", "tau_beta"} if "beta_total" in idata.posterior else set()
    return [v for v in idata.posterior.data_vars
            if v not in LATENT_VARS and v not in copies and not v.endswith("_z")
            and not v.endswith("__")]


def diagnose(idata: az.InferenceData) -> Diagnostics:
    """R-hat, ESS, divergences and E-BFMI of a posterior against the module's thresholds."""
    names = checked_variables(idata)
    # unrounded: the default rounds R-hat to two decimals, and 1.014 would pass "≤ 1.01"
    summary = az.summary(idata, var_names=names, kind="diagnostics", round_to="none")
    div = int(idata.sample_stats["diverging"].sum()) if "diverging" in idata.sample_stats else 0
    bfmi = float(np.min(az.bfmi(idata))) if "energy" in idata.sample_stats else float("nan")
    max_rhat = float(summary["r_hat"].max())
    min_bulk = float(summary["ess_bulk"].min())
    min_tail = float(summary["ess_tail"].min())
    failures = []
    if not max_rhat <= RHAT_MAX:
        failures.append(f"R-hat {max_rhat:.3f} > {RHAT_MAX} ({summary['r_hat'].idxmax()})")
    if not min_bulk >= ESS_MIN:
        failures.append(f"bulk ESS {min_bulk:.0f} < {ESS_MIN} ({summary['ess_bulk'].idxmin()})")
    if not min_tail >= ESS_MIN:
        failures.append(f"tail ESS {min_tail:.0f} < {ESS_MIN} ({summary['ess_tail'].idxmin()})")
    if div:
        failures.append(f"{div} divergent transitions")
    if not bfmi >= BFMI_MIN:
        failures.append(f"E-BFMI {bfmi:.2f} < {BFMI_MIN}")
    worst = {"r_hat": str(summary["r_hat"].idxmax()), "ess_bulk": str(summary["ess_bulk"].idxmin()),
             "ess_tail": str(summary["ess_tail"].idxmin())}
    return Diagnostics(max_rhat, min_bulk, min_tail, div, bfmi, worst, failures)


class CompiledModels:
    """Compiled models keyed by their shape signature: compile once, swap data per patient.

    The first nutpie compile of a shape costs ~30 s; later fits of a same-shaped model (another
    patient, a refit with new days) only replace the ``pm.Data`` values.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple, tuple[pm.Model, object]] = {}

    def get(self, data: ModelData, prior: PatientPrior | None, sampler: str
            ) -> tuple[pm.Model, object | None]:
        """The (PyMC model, nutpie compiled model or None) for ``data``, with its data set."""
        key = (data.signature(), prior is None, sampler,
               None if prior is None else repr(prior.to_dict()))
        if key not in self._cache:
            model = build_model(data, prior)
            compiled = None
            if sampler == "nutpie":
                import nutpie

                compiled = nutpie.compile_pymc_model(model)
            self._cache[key] = (model, compiled)
            return self._cache[key]
        model, compiled = self._cache[key]
        values = data.as_data()
        with model:
            pm.set_data(values, coords=_coords(data))
        if compiled is not None:  # data a graph does not use (no interventions) is not shared
            compiled = compiled.with_data(**{k: v for k, v in values.items()
                                             if k in compiled.shared_data})
        return model, compiled


MODELS = CompiledModels()


def _coords(data: ModelData) -> dict:
    return {"patient": data.patients, "obs": np.arange(len(data.y))}


def sample(data: ModelData, prior: PatientPrior | None, settings: SamplerSettings,
           models: CompiledModels = MODELS) -> az.InferenceData:
    """Draw from the posterior of the model of ``data`` (one attempt, no checks)."""
    model, compiled = models.get(data, prior, settings.sampler)
    if settings.sampler == "nutpie":
        import nutpie

        idata = nutpie.sample(compiled, draws=settings.draws, tune=settings.tune,
                              chains=settings.chains, cores=settings.cores, seed=settings.seed,
                              target_accept=settings.target_accept, maxdepth=settings.maxdepth,
                              save_warmup=False, progress_bar=False)
    elif settings.sampler == "pymc":
        with model:
            idata = pm.sample(draws=settings.draws, tune=settings.tune, chains=settings.chains,
                              cores=settings.cores, random_seed=settings.seed,
                              target_accept=settings.target_accept,
                              nuts={"max_treedepth": settings.maxdepth}, progressbar=False,
                              compute_convergence_checks=False)
    else:
        raise ValueError(f"sampler must be 'nutpie' or 'pymc', got {settings.sampler!r}")
    # a reused compiled model carries the first patients' labels: relabel to this data
    return idata.assign_coords({"patient": data.patients}, groups="posterior")


def fit(data: ModelData, prior: PatientPrior | None = None,
        settings: SamplerSettings = PATIENT_SETTINGS, retry: bool = True,
        models: CompiledModels = MODELS) -> tuple[az.InferenceData, Diagnostics]:
    """Sample, check, retry if needed (more chains, or safer settings), warn loudly on failure."""
    t0 = time.perf_counter()
    idata = sample(data, prior, settings, models)
    diag = diagnose(idata)
    used = settings
    if not diag.ok and retry:
        first = diag.failures
        if _sound(diag):  # too short: more chains, checked with the first ones
            log.warning("inference checks failed (%s); adding chains", "; ".join(first))
            both, k = idata, 0
            while not diag.ok and _sound(diag) and k < MAX_CHAIN_SETS - 1:
                k += 1
                both = joined(both, sample(data, prior, settings.more_chains(k), models))
                diag = diagnose(both)
            idata = folded(both, settings.chains)
            kind = f"{k * settings.chains} more chains"
        else:
            log.warning("inference checks failed (%s); retrying with safer settings",
                        "; ".join(first))
            used = settings.safer()
            idata = sample(data, prior, used, models)
            diag = diagnose(idata)
            kind, k = "safer settings", 1
        diag.attempts, diag.retry, diag.first_failures = 1 + k, kind, first
    diag.sampling_seconds = time.perf_counter() - t0
    diag.settings = asdict(used)
    if not diag.ok:
        when = "after a retry" if retry else "(no retry asked)"
        warnings.warn(f"posterior failed its checks {when}: " + "; ".join(diag.failures)
                      + ". Forecasts from this twin are flagged; consider more data or draws.",
                      InferenceWarning, stacklevel=2)
    return idata, diag


def _sound(diag: Diagnostics) -> bool:
    """Chains without divergences and with enough energy exploration (short ones may fail)."""
    return diag.divergences == 0 and diag.min_bfmi >= BFMI_MIN


def joined(a: az.InferenceData, b: az.InferenceData) -> az.InferenceData:
    """``b``'s chains after ``a``'s (numbered on): one posterior of both runs' chains."""
    groups = {g: a[g] for g in a.groups()}
    for g in a.groups():
        if g in b.groups() and "chain" in a[g].dims:
            second = b[g].assign_coords(chain=b[g]["chain"].values + a[g].sizes["chain"])
            groups[g] = xr.concat([a[g], second], dim="chain", combine_attrs="override")
    return az.InferenceData(**groups)


def folded(idata: az.InferenceData, chains: int) -> az.InferenceData:
    """``k × chains`` chains stored as ``chains``: chain ``c``, then ``c + chains``, and so on.

    Every draw is kept and the chain count stays what every other posterior of the twin has;
    the checks are made on the unfolded chains first (a folded chain is not one Markov chain).
    """
    groups = {g: idata[g] for g in idata.groups()}
    for g in idata.groups():
        ds = idata[g]
        if "chain" not in ds.dims:
            continue
        n = ds.sizes["chain"] // chains
        parts = [ds.isel(chain=slice(k * chains, (k + 1) * chains)).assign_coords(
            chain=np.arange(chains)) for k in range(n)]
        out = xr.concat(parts, dim="draw", combine_attrs="override")
        groups[g] = out.assign_coords(draw=np.arange(out.sizes["draw"]))
    return az.InferenceData(**groups)
