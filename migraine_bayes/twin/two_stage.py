"""Cohort twins that scale: a population fit, then every patient fitted against it in parallel.

Stage 1 fits the full hierarchy (:meth:`DigitalTwin.fit_cohort`'s model) on the cohort, or on a
stratified subsample of ``population_patients`` when the cohort is larger (:func:`subsample`:
spread over attack rates, with every preventive present). Its posterior gives the population
predictive prior of a patient (:meth:`PatientPrior.from_population`: mean ``E[mu]``, variance
``Var[mu] + E[sigma²]``).

Stage 2 fits each patient's own model under that prior — the same likelihood
(:func:`migraine_bayes.model.build_model`), design (features, scaling, interventions of the whole
cohort) and latent basis domain for all — on :mod:`migraine_bayes.twin.cluster` workers. Each fit is
checked (R-hat, ESS, divergences, E-BFMI) and retried — more chains, or safer settings — by
:func:`migraine_bayes.model.inference.fit`; a fit that still fails is kept and listed, a patient
whose fit raised is forecast from the population (admitted) and listed — none is dropped.

Every finished patient is written to the work directory at once (sealed when a key is in use),
so a run that stops — killed, a machine lost — and is started again fits only the patients
still missing. The gathered twin is an ordinary cohort twin: population parameters from stage 1
(thinned to stage 2's draws), patient parameters from stage 2; the latent-state lengthscale and
refractory time constant, shared in a full hierarchy, are each patient's own.

This is the classic two-stage approximation of the hierarchy: a patient's fit does not feed
back into the population; patients' draws are paired with population draws by index only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from filelock import FileLock, Timeout

from migraine_bayes.cohort.io import Cohort
from migraine_bayes.course import fit_course
from migraine_bayes.course.model import attacks_digest, course_of
from migraine_bayes.dims import CHAIN, DRAW, PATIENT
from migraine_bayes.model import FeatureOptions, FeatureSpec, PatientPrior, build_design, model_data
from migraine_bayes.model.inference import (
    COHORT_SETTINGS,
    Diagnostics,
    InferenceWarning,
    SamplerSettings,
    fit,
)
from migraine_bayes.state import build_panel
from migraine_bayes.store import atomic, crypto
from migraine_bayes.store.locking import TIMEOUT_S, TwinBusyError
from migraine_bayes.twin import cluster
from migraine_bayes.twin.cluster import ClusterOptions
from migraine_bayes.twin.core import DigitalTwin
from migraine_bayes.twin.fitting import fit_domain, metadata, slim
from migraine_bayes.twin.record import HORIZON_DAYS, TwinError
from migraine_bayes.twin.store import netcdf_bytes, netcdf_groups

# stage 2: one core per fit. The maximum (unrounded) R-hat over a patient's ~60 parameters
# exceeded 1.01 in 58% of 4 × 400-draw fits, 1.015 in 12% and 1.02 in 1.5% (200 patients;
# R-hat − 1 shrinks like 1/draws): 600 draws, more chains for the few that fail, cost the
# least sampling per passing patient (benchmarks/scale.py)
PATIENT_STAGE_SETTINGS = SamplerSettings(draws=600, tune=300, chains=4, cores=1,
                                         target_accept=0.9)
KEEP_DRAWS_PER_CHAIN = 250  # stored in the gathered twin (checked on all draws first)
PLAN = "plan.json"
POPULATION = "population.nc"
PARTS = "patients"
LOCK = "lock"


@dataclass(frozen=True)
class PatientJob:
    """Everything one patient's stage-2 fit needs (sent to a worker)."""

    index: int
    patient: str
    cohort: Cohort  # this patient's rows only
    outcome: str
    prior: PatientPrior
    features: list[FeatureSpec]
    scaling: dict[str, tuple[float, float]]
    interventions: list[str]
    options: FeatureOptions | None
    domain: tuple[float, float, np.ndarray]
    settings: SamplerSettings
    keep_draws: int


@dataclass
class PatientFit:
    """A finished stage-2 fit: the patient's posterior (netCDF bytes) and its checks.

    ``peak_memory_mb``: the worker's resident memory when the fit ended (the compiled model,
    the sampler's draws and the patient's data are all still held then).
    """

    patient: str
    posterior: bytes
    diagnostics: dict
    seconds: float
    peak_memory_mb: float
    worker: str


def fit_one(job: PatientJob) -> PatientFit:
    """Fit one patient under the population prior (runs on a worker; module text)."""
    t0 = time.perf_counter()
    panel = build_panel(job.cohort, patients=[job.patient], horizon_days=HORIZON_DAYS)
    design = build_design(panel, job.outcome, job.features, job.interventions, job.scaling,
                          options=job.options)
    data = model_data(design, job.domain)
    if len(data.y) == 0:
        raise TwinError("no day with a known outcome to fit on")
    with warnings.catch_warnings():  # a failed check is recorded and listed, not raised here
        warnings.simplefilter("ignore", InferenceWarning)
        idata, diag = fit(data, job.prior, job.settings)
    post = thin(slim(idata).posterior, job.keep_draws)
    return PatientFit(job.patient, netcdf_bytes({"posterior": post}), diag.to_dict(),
                      time.perf_counter() - t0, cluster.resident_memory_mb(),
                      cluster.process_label())


def thin(post: xr.Dataset, keep: int) -> xr.Dataset:
    """``keep`` evenly spaced draws per chain (all when there are fewer), renumbered from 0."""
    n = post.sizes[DRAW]
    if n <= keep:
        return post
    idx = np.unique(np.round(np.linspace(0, n - 1, keep)).astype(int))
    return post.isel({DRAW: idx}).assign_coords({DRAW: np.arange(idx.size)})


def aligned(ds: xr.Dataset, like: xr.Dataset) -> xr.Dataset:
    """Stage 1's ``ds`` on ``like``'s chains and draws: thinned, chains reused in turn."""
    chains = np.arange(like.sizes[CHAIN]) % ds.sizes[CHAIN]
    return thin(ds, like.sizes[DRAW]).isel({CHAIN: chains}).assign_coords(
        {CHAIN: like[CHAIN].values})


def patient_seed(seed: int, index: int) -> int:
    """Patient ``index``'s sampler seed: the same wherever and in whatever order it runs."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def subsample(panel: xr.Dataset, outcome: str, n: int, seed: int,
              interventions: list[str]) -> list[str]:
    """``n`` patients spread evenly over the cohort's attack rates, every preventive included.

    Patients are sorted by events per known day and taken at evenly spaced ranks (a seeded
    random start); then, for each intervention no chosen patient takes, the patient with the
    most exposed days replaces the chosen one of nearest rate. All patients when ``n`` ≥ P.
    """
    ids = [str(p) for p in panel[PATIENT].values]
    if n >= len(ids):
        return ids
    y = panel[outcome]
    rate = (y.sum("day") / np.maximum(y.notnull().sum("day"), 1)).values
    order = np.argsort(rate, kind="stable")
    rng = np.random.default_rng(seed)
    step = len(ids) / n
    picks = [int(order[int(np.floor(rng.uniform(0, step) + k * step))]) for k in range(n)]
    if "exposure" in panel and interventions:
        exposed = panel["exposure"].sel(intervention=interventions).fillna(0).sum("day").values
        for m in range(len(interventions)):
            if exposed[picks, m].sum() > 0 or exposed[:, m].max() <= 0:
                continue
            best = int(np.argmax(exposed[:, m]))
            swap = min(range(n), key=lambda k: abs(rate[picks[k]] - rate[best])
                       + 1e9 * (exposed[picks[k]].sum() > 0))
            picks[swap] = best
    return [ids[i] for i in sorted(set(picks))]


class ByPatient:
    """Single-patient cohorts cut from ``cohort`` on demand (one patient's copy at a time).

    The row positions of each patient are found once per table; :meth:`get` copies only that
    patient's rows, so a cohort of thousands is never held twice in memory. A patient whose rows
    are contiguous (files written patient by patient) is sliced, not gathered: a gather from
    Arrow string columns of millions of rows costs ~0.4 s a patient, a slice nothing.
    """

    TABLES = ("observations", "attacks", "treatments", "patients")

    def __init__(self, cohort: Cohort) -> None:
        self.cohort = cohort
        self.rows = {name: {str(k): v for k, v in getattr(cohort, name).groupby(
            "patient_id", sort=False, observed=True).indices.items()} for name in self.TABLES}

    def get(self, patient: str) -> Cohort:
        """The cohort of ``patient`` alone."""
        return self.of([patient])

    def of(self, patients: list[str]) -> Cohort:
        """The cohort of ``patients`` (rows in the cohort's order)."""
        tables = []
        for name in self.TABLES:
            df = getattr(self.cohort, name)
            found = [self.rows[name][p] for p in patients if p in self.rows[name]]
            idx = np.sort(np.concatenate(found)) if found else np.zeros(0, dtype=int)
            if len(idx) and idx[-1] - idx[0] + 1 == len(idx):  # ascending: one block of rows
                tables.append(df.iloc[idx[0]: idx[-1] + 1].reset_index(drop=True))
            else:
                tables.append(df.iloc[idx].reset_index(drop=True))
        return Cohort(*tables, registry=self.cohort.registry, source=self.cohort.source)


def fingerprint(cohort: Cohort, patients: list[str], plan: dict) -> str:
    """SHA-256 of the cohort's tables, the patients and the fit's settings (the work's key)."""
    h = hashlib.sha256(json.dumps(plan, sort_keys=True, default=str).encode())
    h.update(",".join(patients).encode())
    for name in ByPatient.TABLES:
        df = getattr(cohort, name)
        for column in df.columns:  # one column at a time: no copy of a whole table
            values = df[column]
            if values.dtype == object:
                values = values.astype(str)
            h.update(column.encode())
            h.update(pd.util.hash_pandas_object(values, index=False).to_numpy().tobytes())
    return h.hexdigest()


class WorkDir:
    """A two-stage fit's finished work: its plan, the population posterior, patients' parts.

    Parts are named by the patient's index in the plan (no patient id in a file name).
    """

    def __init__(self, path: Path, key: str) -> None:
        self.path = path
        self.parts = path / PARTS
        plan = path / PLAN
        if plan.is_file() and json.loads(plan.read_text())["key"] != key:
            for stale in (plan, path / POPULATION):  # another data set or settings: of no use
                stale.unlink(missing_ok=True)
            shutil.rmtree(self.parts, ignore_errors=True)
        self.parts.mkdir(parents=True, exist_ok=True)
        if not plan.is_file():
            atomic.write_text(plan, json.dumps({"key": key}))

    def part(self, index: int) -> Path:
        """The file of patient ``index``'s finished fit."""
        return self.parts / f"{index:06d}.nc"

    def done(self) -> set[int]:
        """Indices of the patients already fitted."""
        return {int(p.stem) for p in self.parts.glob("*.nc")}

    def write(self, index: int, result: PatientFit) -> None:
        """Store a finished fit atomically (sealed when a key is in use)."""
        meta = {"patient": result.patient, "diagnostics": result.diagnostics,
                "seconds": result.seconds, "peak_memory_mb": result.peak_memory_mb,
                "worker": result.worker}
        blob = json.dumps(meta).encode()
        data = len(blob).to_bytes(8, "big") + blob + result.posterior
        with atomic.atomic_path(self.part(index), mode=0o600) as tmp:
            tmp.write_bytes(crypto.encode(data, "two-stage part"))

    def read(self, index: int) -> tuple[dict, xr.Dataset]:
        """A stored fit: its record (patient, checks, time, memory) and posterior."""
        data = crypto.read_bytes(self.part(index), "two-stage part")
        n = int.from_bytes(data[:8], "big")
        return json.loads(data[8: 8 + n]), netcdf_groups(data[8 + n:])["posterior"]


def fit_two_stage(cohort: Cohort, patients: list[str] | None = None, outcome: str = "onset",
                  settings: SamplerSettings | None = None,
                  population_settings: SamplerSettings | None = None,
                  options: FeatureOptions | None = None, deviations: str = "normal",
                  cluster_options: ClusterOptions | None = None,
                  work_dir: str | Path | None = None, progress=None):
    """Fit a cohort twin in two stages (module text); returns a :class:`DigitalTwin`.

    ``settings``: each patient's sampler (default :data:`PATIENT_STAGE_SETTINGS`; its seed
    seeds every patient, :func:`patient_seed`); ``population_settings``: stage 1's (default
    :data:`~migraine_bayes.model.inference.COHORT_SETTINGS` with the same seed). ``work_dir`` keeps
    finished work so that a rerun resumes (default: a temporary directory beside nothing,
    removed at the end); the caller removes it once the twin is saved. ``progress(stage, done,
    total)`` is told each stage and patient.
    """
    say = progress or (lambda *_a: None)
    settings = settings or PATIENT_STAGE_SETTINGS
    population_settings = population_settings or dataclasses.replace(COHORT_SETTINGS,
                                                                     seed=settings.seed)
    opts = cluster_options or ClusterOptions()
    ids = list(patients or cohort.patient_ids)
    clock = {"start": time.perf_counter()}
    peak: dict[str, float] = {}  # the driver's peak memory (MB) at the end of each stage
    say("building the daily panel and design")
    panel = build_panel(cohort, patients=ids, horizon_days=HORIZON_DAYS)
    design = build_design(panel, outcome, options=options)
    domain = fit_domain(panel)
    plan = {"outcome": outcome, "settings": dataclasses.asdict(settings),
            "population_settings": dataclasses.asdict(population_settings),
            "options": None if options is None else options.to_dict(),
            "deviations": deviations, "population_patients": opts.population_patients,
            "keep": KEEP_DRAWS_PER_CHAIN}
    key = fingerprint(cohort, ids, plan)
    temporary = work_dir is None
    path = Path(work_dir) if work_dir is not None else Path(tempdir())
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)  # patients' posteriors: private
        with _locked(path):  # one fit of this work at a time
            work = WorkDir(path, key)
            course = fit_course(cohort.attacks, cohort.patient_ids, seed=settings.seed)
            cluster.release_memory()
            clock["panel"] = time.perf_counter()
            peak["panel"] = cluster.peak_memory_mb()
            singles = ByPatient(cohort)
            population, stats, pop_diag, chosen = _population(
                work, singles, panel, design, outcome, population_settings, options,
                deviations, opts, course, say)
            prior = PatientPrior.from_population(population, design.feature_names,
                                                 design.interventions)
            clock["population"] = time.perf_counter()
            peak["population"] = cluster.peak_memory_mb()
            failures = fit_patients(work, singles, ids, outcome, prior, design, options, domain,
                                    settings, opts, say)
            clock["patients"] = time.perf_counter()
            peak["patients"] = cluster.peak_memory_mb()
            cluster.release_memory()
            say("gathering the patients' posteriors into one cohort twin")
            posterior, fits = gather(work, ids, failures, population)
            twin = assemble(cohort, panel, design, domain, posterior, stats, fits, failures,
                            pop_diag, chosen, outcome, settings, opts, course)
            clock["gather"] = time.perf_counter()
            peak["gather"] = cluster.peak_memory_mb()
            twin.record = twin.record.replace(fitting={**twin.record.fitting, "seconds": {
                stage: round(clock[stage] - clock[before], 2) for before, stage in
                zip(["start", "panel", "population", "patients"],
                    ["panel", "population", "patients", "gather"], strict=True)},
                "driver_peak_mb": {k: round(v, 1) for k, v in peak.items()}})
    finally:
        if temporary:
            shutil.rmtree(path, ignore_errors=True)
    return twin


@contextlib.contextmanager
def _locked(path: Path):
    lock = FileLock(str(path / LOCK), mode=0o600)
    try:
        lock.acquire(timeout=TIMEOUT_S)
    except Timeout:
        raise TwinBusyError(f"another fit is using the work directory {path}; waited "
                            f"{TIMEOUT_S:.0f} s — try again when it has finished") from None
    try:
        yield
    finally:
        lock.release()


def tempdir() -> str:
    """A new private temporary directory for a fit's work."""
    import tempfile

    return tempfile.mkdtemp(prefix="migraine-twin-two-stage-")


def _population(work: WorkDir, singles: ByPatient, panel: xr.Dataset, design, outcome: str,
                settings: SamplerSettings, options, deviations: str, opts: ClusterOptions,
                course: xr.Dataset, say) -> tuple[xr.Dataset, xr.Dataset, dict, list[str]]:
    """Stage 1's posterior, sample stats, checks and patients (fitted once, then read back)."""
    stored = work.path / POPULATION
    if stored.is_file():
        groups = netcdf_groups(crypto.read_bytes(stored, "two-stage population"))
        post = groups["posterior"]
        return (post, groups["sample_stats"], json.loads(post.attrs["diagnostics"]),
                json.loads(post.attrs["patients"]))
    chosen = subsample(panel, outcome, opts.population_patients, settings.seed,
                       design.interventions)
    say(f"stage 1: population fit on {len(chosen)} of {panel.sizes[PATIENT]} patients "
        f"({settings.chains} chains × {settings.draws} draws)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InferenceWarning)  # listed in the twin's diagnostics
        pop = DigitalTwin._fit(singles.of(chosen), chosen, outcome, None, settings,
                               validate=False, features=design.features,
                               scaling=design.scaling, interventions=design.interventions,
                               options=options, deviations=deviations, course=course)
    post = pop.posterior.posterior.assign_attrs(
        diagnostics=json.dumps(pop.record.diagnostics), patients=json.dumps(chosen))
    with atomic.atomic_path(stored, mode=0o600) as tmp:
        tmp.write_bytes(crypto.encode(netcdf_bytes(
            {"posterior": post, "sample_stats": pop.posterior.sample_stats}),
            "two-stage population"))
    return post, pop.posterior.sample_stats, pop.record.diagnostics, chosen


def fit_patients(work: WorkDir, singles: ByPatient, ids: list[str], outcome: str,
                 prior: PatientPrior, design, options, domain, settings: SamplerSettings,
                 opts: ClusterOptions, say) -> dict[str, str]:
    """Stage 2 over the patients not yet in ``work``.

    Returns ``{patient: error}`` of the fits that raised (they are forecast from the population).
    """
    done = work.done()
    todo = [i for i in range(len(ids)) if i not in done]
    total = len(ids)
    stage = "stage 2: each patient against the population"
    say(stage, len(done), total)
    if not todo:
        return {}
    features, scaling = design.features, design.scaling
    # the same draws for every patient: a retried fit has more (its chains folded, inference.fit)
    keep = min(KEEP_DRAWS_PER_CHAIN, settings.draws)

    def jobs():
        for i in todo:
            yield str(i), PatientJob(i, ids[i], singles.get(ids[i]), outcome, prior, features,
                                     scaling, design.interventions, options, domain,
                                     dataclasses.replace(settings, seed=patient_seed(
                                         settings.seed, i), cores=1), keep)

    failures: dict[str, str] = {}
    finished = len(done)
    with cluster.session(opts) as client:
        for key, result in cluster.run(client, fit_one, jobs()):
            i = int(key)
            if isinstance(result, BaseException):
                failures[ids[i]] = f"{type(result).__name__}: {result}"
            else:
                work.write(i, result)
            finished += 1
            say(stage, finished, total)
    return failures


def gather(work: WorkDir, ids: list[str], failures: dict[str, str], population: xr.Dataset
           ) -> tuple[xr.Dataset, dict[str, dict]]:
    """The cohort posterior: stage-2 patients (in ``ids`` order) beside stage-1's population."""
    fitted = [i for i in range(len(ids)) if ids[i] not in failures]
    arrays: dict[str, np.ndarray] = {}
    dims: dict[str, tuple] = {}
    coords: dict = {}
    fits: dict[str, dict] = {}
    for k, i in enumerate(fitted):
        meta, post = work.read(i)
        fits[ids[i]] = meta
        if not arrays:
            for name, var in post.data_vars.items():
                d = [x for x in var.dims if x != PATIENT]
                dims[name] = (CHAIN, DRAW, PATIENT, *d[2:])
                shape = [post.sizes[x] for x in d[:2]] + [len(fitted)] + [
                    post.sizes[x] for x in d[2:]]
                arrays[name] = np.empty(shape, dtype=var.dtype)
            coords = {n: post[n].values for n in post.coords if n != PATIENT}
        for name in arrays:
            var = post[name]
            var = var.isel({PATIENT: 0}) if PATIENT in var.dims else var
            arrays[name][:, :, k] = var.transpose(CHAIN, DRAW, ...).values
    patients_ds = xr.Dataset({n: (dims[n], a) for n, a in arrays.items()},
                             coords={**coords, PATIENT: [ids[i] for i in fitted]})
    pop = aligned(population[[v for v in population.data_vars
                              if PATIENT not in population[v].dims and v not in patients_ds]],
                  patients_ds)
    merged = xr.merge([pop.drop_vars(PATIENT, errors="ignore"), patients_ds],
                      compat="override", combine_attrs="drop")
    return merged, fits


def assemble(cohort: Cohort, panel: xr.Dataset, design, domain, posterior: xr.Dataset,
             stats: xr.Dataset, fits: dict[str, dict], failures: dict[str, str], pop_diag: dict,
             chosen: list[str], outcome: str, settings: SamplerSettings,
             opts: ClusterOptions, course: xr.Dataset):
    """The gathered :class:`DigitalTwin` with its per-patient checks in its record's ``fitting``.

    Its ``sample_stats`` are stage 1's (thinned like its draws); each patient's own sampler
    checks are in its record's ``fitting['patients']``.
    """
    fitted = [str(p) for p in posterior[PATIENT].values]
    diag = _combined(fits, pop_diag, failures, settings)
    record = metadata(cohort, panel, design, domain, None, outcome, diag)
    coverage = record.coverage
    record = record.replace(patients=fitted, coverage={p: coverage[p] for p in fitted
                                                       if p in coverage}, fitting={
        "method": "two-stage", "population_patients": chosen,
        "population_diagnostics": pop_diag, "patient_settings": dataclasses.asdict(settings),
        "draws_kept_per_chain": int(posterior.sizes[DRAW]), "cluster": opts.to_dict(),
        "patients": {p: _patient_summary(f) for p, f in fits.items()},
        "not_fitted": dict(failures)})
    stats = aligned(stats, posterior)
    twin = DigitalTwin(az.InferenceData(posterior=posterior, sample_stats=stats), panel, record)
    if failures:
        twin.admit(list(failures), seed=settings.seed)
    ids = twin.patients
    twin.course = course_of(course, ids, attacks_digest(cohort.attacks, ids))
    return twin


def _patient_summary(fit_meta: dict) -> dict:
    d = fit_meta["diagnostics"]
    return {"ok": bool(d["ok"]), "attempts": d["attempts"], "max_rhat": d["max_rhat"],
            "min_ess_bulk": d["min_ess_bulk"], "min_ess_tail": d["min_ess_tail"],
            "divergences": d["divergences"], "failures": d["failures"],
            "retry": d.get("retry", ""), "first_failures": d.get("first_failures", []),
            "seconds": round(fit_meta["seconds"], 2), "worker": fit_meta["worker"],
            "peak_memory_mb": round(fit_meta["peak_memory_mb"], 1)}


def _combined(fits: dict[str, dict], pop_diag: dict, failures: dict[str, str],
              settings: SamplerSettings) -> Diagnostics:
    """One :class:`Diagnostics` over stage 1 and every patient: the worst of each check."""
    ds = [f["diagnostics"] for f in fits.values()] + [pop_diag]
    failed = sorted(p for p, f in fits.items() if not f["diagnostics"]["ok"])
    problems = []
    if not pop_diag["ok"]:
        problems.append("population fit: " + "; ".join(pop_diag["failures"]))
    if failed:
        problems.append(f"{len(failed)} of {len(fits)} patients failed their checks after a "
                        f"retry ({', '.join(failed[:10])}{' …' if len(failed) > 10 else ''})")
    if failures:
        problems.append(f"{len(failures)} patient(s) could not be fitted and are forecast from "
                        f"the population ({', '.join(sorted(failures)[:10])})")
    worst = max(ds, key=lambda d: d["max_rhat"])
    return Diagnostics(
        max_rhat=max(d["max_rhat"] for d in ds),
        min_ess_bulk=min(d["min_ess_bulk"] for d in ds),
        min_ess_tail=min(d["min_ess_tail"] for d in ds),
        divergences=int(sum(d["divergences"] for d in ds)),
        min_bfmi=min(d["min_bfmi"] for d in ds), worst=worst["worst"], failures=problems,
        attempts=max(d["attempts"] for d in ds),
        sampling_seconds=float(sum(d["sampling_seconds"] for d in ds)),
        settings=dataclasses.asdict(settings))
