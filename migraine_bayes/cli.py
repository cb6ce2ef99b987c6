"""The ``migraine-twin`` command line: a thin layer over :mod:`migraine_bayes.api`.

Exit codes (docs/SCHEMA.md §3): 0 success, 2 bad usage or invalid input data (every problem listed),
3 inference checks failed under ``--strict``, 1 anything else. A user error never prints a
Python traceback; set ``MIGRAINE_BAYES_DEBUG=1`` to see one for internal errors.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

# arviz 0.23 announces its 1.0 refactor once a day on import: noise for a CLI user
warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing", category=FutureWarning)
# pip's pytensor finds no BLAS on a clean machine; nutpie's numba backend does not use it
warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS",
                        category=UserWarning)

from migraine_bayes.errors import InferenceWarning, InputDataError, MigraineBayesError  # noqa: E402
from migraine_bayes.progress import reporter  # noqa: E402
from migraine_bayes.store import atomic  # noqa: E402
from migraine_bayes.store.targets import check_output_file  # noqa: E402
from migraine_bayes.twin.record import TwinError  # noqa: E402


class _OnUse:
    """A module imported when first used.

    The command line answers ``--help`` and usage errors without importing PyMC, pandas or
    ArviZ (every ``--help`` in under a second); a command pays for what it needs when it runs.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        import importlib

        return getattr(importlib.import_module(self._name), attr)


api: Any = _OnUse("migraine_bayes.api")

EXIT_OK, EXIT_ERROR, EXIT_INPUT, EXIT_STRICT = 0, 1, 2, 3

app = typer.Typer(
    name="migraine-twin",
    help="Per-patient Bayesian digital twins of migraine: validate data, fit, forecast, "
         "simulate interventions, monitor drift, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # plain click help: wraps to the terminal instead of cutting text in 80-column boxes,
    # shows on/off flags as --flag/--no-flag and the real metavars
    rich_markup_mode=None,
)

# options several commands share, declared once
Force = Annotated[bool, typer.Option("--force", help="Replace an existing cohort file, twin "
                                                     "file or folder there.")]
Dedupe = Annotated[bool, typer.Option("--dedupe", help="Drop exact duplicate rows (and say how "
                                                       "many) instead of rejecting them.")]
NewerData = Annotated[Path | None, typer.Option("--cohort", help="Newer data for the twin's "
                                                                 "patients.")]
Draws = Annotated[int | None, typer.Option(min=50, metavar="N", help="Draws per chain after "
                                                                  "1000 tuning steps [default: "
                                                                  "1000 for one patient, 1500 "
                                                                  "for a cohort].")]
Chains = Annotated[int | None, typer.Option(min=1, metavar="N", help="Chains [default: 4; more "
                                                                    "are added when R-hat or "
                                                                    "ESS fail].")]
Outcome = Annotated[str, typer.Option(metavar="onset|headache_day", help=(
    "What the model forecasts: onset (an attack starts that day) or headache_day (the day is "
    "covered by an attack: monthly migraine days, the outcome of a paper diary that records "
    "headache days)."))]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display (for "
                                                          "scripts).")]
Deviations = Annotated[str, typer.Option(help="Cohort prior of patients' trigger deviations "
                                               "from the population: normal, or horseshoe "
                                               "(sparse: a patient may be insensitive to a "
                                               "trigger the population reacts to).")]
Workers = Annotated[int | None, typer.Option(min=0, help="Fit the cohort in two stages "
                                                        "(a population fit, then each patient "
                                                        "against it) on this many local Dask "
                                                        "worker processes (0: in this "
                                                        "process). Resumable.")]
Scheduler = Annotated[str | None, typer.Option(help="As --workers, on a running Dask cluster: "
                                                    "its scheduler, tcp://HOST:PORT.")]
PopulationPatients = Annotated[int, typer.Option(min=2, help="With --workers/--scheduler: "
                                                            "patients in the population fit "
                                                            "(a stratified subsample).")]
Lags = Annotated[str | None, typer.Option(help="A distributed lag: triggers may also act these "
                                               "days later, e.g. 1,2 (each trigger's effect is "
                                               "spread over its lags by learned weights).")]
Shapes = Annotated[str, typer.Option(help="Dose-response of graded triggers: fixed (the "
                                          "literature's transforms) or learned (piecewise "
                                          "linear with hinges at the dose quartiles, shrunk "
                                          "towards linear: thresholds are learned).")]
Structure = Annotated[str | None, typer.Option(
    help="auto (the default for a cohort twin, unless --lags, --shapes, --interactions, "
         "--deviations or --workers/--scheduler fix it): every candidate structure (same-day, "
         "lag 0-3, learned shapes, interactions, sparse deviations) is fitted and compared by "
         "PSIS-LOO, and the simplest within noise of the best is kept (its table in "
         "twin.json); fixed: the structure the flags give.")]
Overuse = Annotated[bool, typer.Option("--overuse", help="Add medication overuse (days of acute "
                                                        "medication in the 30 days before) "
                                                        "to the attack model when the diaries "
                                                        "record acute medication.")]
Interactions = Annotated[bool, typer.Option("--interactions", help="Add pairwise trigger "
                                                                   "interactions (both high on "
                                                                   "one day) under a horseshoe "
                                                                   "prior: only those the data "
                                                                   "support move away from OR "
                                                                   "1.")]


def _err(message: str) -> None:
    typer.echo(message, err=True)


# commands that write twins, audit rows or exports: without a key they say so
# what the root callback found, for the command it runs (one invocation per process; reset by
# every invocation, so CliRunner tests see their own)
_RUN: dict[str, bool] = {}
WRITERS = {"fit", "update", "forecast", "drift", "monitor", "serve", "export",
           "import"}


@app.callback()
def _keys(
    ctx: typer.Context,
    key_file: Annotated[Path | None, typer.Option(
        "--key-file", help="Encryption key file (see `keygen`); default: the key in "
                           "MIGRAINE_BAYES_KEY. With a key, every twin, audit row, posted "
                           "diary and export written is encrypted (AES-256-GCM).")] = None,
) -> None:
    """Per-patient Bayesian digital twins of migraine."""
    from migraine_bayes.store import crypto

    try:
        crypto.use_key_file(key_file)
        key = crypto.active_key()
    except MigraineBayesError as exc:
        _err(f"error: {exc}")
        raise typer.Exit(EXIT_INPUT) from None
    # said when a command that writes patient data runs (not on its --help): see `handled`
    _RUN["unencrypted"] = key is None and ctx.invoked_subcommand in WRITERS


def handled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Map the package's errors to exit codes and clear messages (no tracebacks)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _RUN.pop("unencrypted", False):
            _err("note: no encryption key (MIGRAINE_BAYES_KEY or --key-file): data are written "
                 "unencrypted")
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # click reports usage errors itself (exit 2)
        except InputDataError as exc:
            _err(f"error: invalid input data\n{exc}")
            raise typer.Exit(EXIT_INPUT) from None
        except (TwinError, KeyError, ValueError, FileNotFoundError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            _err(f"error: {msg}")
            raise typer.Exit(EXIT_INPUT) from None
        except MigraineBayesError as exc:
            _err(f"error: {exc}")
            raise typer.Exit(EXIT_ERROR) from None
        except Exception as exc:
            if os.environ.get("MIGRAINE_BAYES_DEBUG"):
                raise
            _err(f"internal error: {type(exc).__name__}: {exc}\n"
                 "(set MIGRAINE_BAYES_DEBUG=1 for the traceback and please report it)")
            raise typer.Exit(EXIT_ERROR) from None

    return wrapper


def _print_table(df) -> None:
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_columns", 20):
        typer.echo(df.round(2).to_string())


@app.command("validate-data")
@handled
def validate_data(
    cohort: Annotated[Path, typer.Argument(help="Cohort folder (docs/SCHEMA.md §1).")],
    dedupe: Dedupe = False,
) -> None:
    """Check a cohort folder against docs/SCHEMA.md and list every problem (exit 2 if any)."""
    c = api.validate_data(cohort, dedupe=dedupe)
    for notice in c.notices:
        typer.echo(f"note: {notice}")
    typer.echo(f"ok: {len(c.patient_ids)} patients, {len(c.observations)} observations, "
               f"{len(c.attacks)} attacks, {len(c.treatments)} treatment courses")


@app.command("import")
@handled
def import_(
    format: Annotated[str, typer.Argument(help="Source format: diary (daily diary tables: "
                                               "CSV, TSV, Excel, Parquet), redcap (REDCap "
                                               "flat CSV exports, with --dictionary), fhir "
                                               "(HL7 FHIR R4 Bundles, resources or NDJSON); "
                                               "wearables, imported into a cohort holding the "
                                               "diaries: apple-health (export.xml or "
                                               "export.zip), fitbit (Fitabase CSV files).")],
    sources: Annotated[list[Path], typer.Argument(help="Source files (several are read as "
                                                       "one table).")],
    out: Annotated[Path, typer.Option("--out", help="Cohort folder to write (new or empty; "
                                                    "--force replaces a non-empty one); "
                                                    "wearables: the cohort to add to.")],
    mapping: Annotated[Path | None, typer.Option(help="TOML mapping from the source's "
                                                      "columns to the cohort's variables "
                                                      "(docs/import-diary.md, "
                                                      "docs/import-redcap.md).")] = None,
    dictionary: Annotated[Path | None, typer.Option(help="redcap: the project's data "
                                                         "dictionary (CSV).")] = None,
    patients: Annotated[str | None, typer.Option(help="Comma-separated patient ids to "
                                                      "import (default: all); apple-health: "
                                                      "the wearer of each export, in order; "
                                                      "fitbit: FITBITID=OURID to rename.")
                        ] = None,
    dedupe: Annotated[bool, typer.Option("--dedupe", help="Drop a row that repeats another "
                                                          "row's patient, day and every mapped "
                                                          "cell (and say how many) instead of "
                                                          "rejecting it.")] = False,
    append: Annotated[bool, typer.Option("--append", help="--out holds the import of an "
                                                          "earlier, shorter export: add only "
                                                          "the new days (the same export again "
                                                          "changes nothing; changed days are "
                                                          "refused).")] = False,
    force: Force = False,
) -> None:
    """Import a study's or clinic's files into a cohort folder, validated as validate-data."""
    ids = [p.strip() for p in patients.split(",") if p.strip()] if patients else None
    c = api.import_data(format, sources, out, mapping, ids, dedupe, force, dictionary, append)
    for notice in c.notices:
        typer.echo(f"note: {notice}")
    verb = "unchanged" if any(n.startswith("nothing new") for n in c.notices) else "wrote"
    typer.echo(f"{verb} {out}: {len(c.patient_ids)} patients, {len(c.observations)} "
               f"observations, {len(c.attacks)} attacks, {len(c.treatments)} treatment courses")


@app.command()
@handled
def generate(
    out: Annotated[Path, typer.Argument(help="Folder to write the cohort to (new or empty; "
                                             "--force replaces a non-empty one).")],
    patients: Annotated[int | None, typer.Option(min=1, help="Number of patients (default "
                                                             "12; 130 with --study).")] = None,
    days: Annotated[int, typer.Option(min=30, help="Diary length in days.")] = 365,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    drift_fraction: Annotated[float, typer.Option(min=0, max=1,
                                                  help="Share of patients that drift.")] = 0.0,
    csv: Annotated[bool, typer.Option("--csv", help="Write observations as CSV, "
                                                    "not Parquet.")] = False,
    study: Annotated[bool, typer.Option("--study", help="A study-shaped cohort instead: "
                                                        "1-17-week diaries with staggered "
                                                        "starts over three years, headache "
                                                        "days, two covariates, a programme "
                                                        "started mid-diary.")] = False,
    force: Force = False,
) -> None:
    """Simulate a synthetic cohort with known truth (files of docs/SCHEMA.md plus truth.json)."""
    if study:
        s = api.generate_study(out, patients=patients or 130, seed=seed, force=force)
        days_kept = sum(p["diary_days"] for p in s.truth["patients"])
        typer.echo(f"wrote a study of {patients or 130} patients ({days_kept} diary days) "
                   f"to {out}")
        return
    api.generate(out, patients=patients or 12, days=days, seed=seed,
                 drift_fraction=drift_fraction, observations_format="csv" if csv else "parquet",
                 force=force)
    typer.echo(f"wrote {patients or 12} patients × {days} days to {out}")


@app.command()
@handled
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo's outputs.")] = Path(
        "reports/demo"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 20261125,
    patients: Annotated[int, typer.Option(min=2, help="Synthetic patients.")] = 12,
    days: Annotated[int, typer.Option(min=150, help="Diary days per patient.")] = 365,
    quiet: Quiet = False,
) -> None:
    """Run the whole workflow on a synthetic cohort and say where the report is.

    Generates the cohort (the defaults make the committed one), backtests it over its last
    60 days against the baselines and the oracle, fits one patient's twin, simulates
    interventions and writes a self-contained HTML report.
    """
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InferenceWarning)
        with reporter(quiet) as progress:
            res = api.demo(out, seed=seed, patients=patients, days=days, progress=progress)
    for w in caught:  # shown once, without a source line
        if issubclass(w.category, InferenceWarning):
            _err(f"note: {w.message}")
    typer.echo("Per-patient summary of the synthetic cohort:")
    _print_table(res["summary"])
    typer.echo("\nBacktest (one-day-ahead forecasts over the last 60 days):")
    _print_table(res["scores"][["model", "days", "attacks", "auc", "auc_low", "auc_high",
                                "brier", "ece", "sensitivity", "specificity", "ppv"]])
    typer.echo(f"\ntwin written to {res['twin']}")
    typer.echo(f"report written to {res['report']} ({time.perf_counter() - t0:.0f} s)")


def _check_outcome(outcome: str) -> None:
    if outcome not in ("onset", "headache_day"):
        raise typer.BadParameter("must be 'onset' or 'headache_day'", param_hint="--outcome")


def _deviations(value: str) -> str:
    from migraine_bayes.model.builder import DEVIATIONS

    if value not in DEVIATIONS:
        raise typer.BadParameter(f"must be one of {', '.join(DEVIATIONS)}",
                                 param_hint="--deviations")
    return value


def _shapes(value: str) -> str:
    from migraine_bayes.model.features import SHAPES

    if value not in SHAPES:
        raise typer.BadParameter(f"must be one of {', '.join(SHAPES)}", param_hint="--shapes")
    return value


def _lags(value: str | None) -> tuple[int, ...]:
    try:
        lags = tuple(int(k) for k in value.split(",") if k.strip()) if value else ()
    except ValueError:
        raise typer.BadParameter("must be comma-separated whole days, e.g. 1,2",
                                 param_hint="--lags") from None
    if any(k < 1 or k > 7 for k in lags):
        raise typer.BadParameter("lags are 1 to 7 days", param_hint="--lags")
    return lags


def _patients(value: str | None) -> list[str] | None:
    return [p.strip() for p in value.split(",") if p.strip()] if value else None


@app.command()
@handled
def fit(
    cohort: Annotated[Path, typer.Argument(help="Cohort folder.")],
    out: Annotated[Path, typer.Option(help="Twin directory to write (atomically). The same "
                                           "patients' twin gets a new version; another twin "
                                           "or a non-empty folder needs --force.")],
    patients: Annotated[str | None, typer.Option(help="Comma-separated patient ids "
                                                      "(default: all).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    draws: Draws = None,
    chains: Chains = None,
    outcome: Outcome = "onset",
    strict: Annotated[bool, typer.Option("--strict", help="Exit 3 when the sampler's checks "
                                                          "fail.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace a twin of other patients or a "
                                                        "non-empty folder at --out (kept "
                                                        "beside it as OUT.replaced-TIME)."
                                        )] = False,
    dedupe: Dedupe = False,
    lags: Lags = None,
    shapes: Shapes = "fixed",
    interactions: Interactions = False,
    overuse: Overuse = False,
    deviations: Deviations = "normal",
    structure: Structure = None,
    workers: Workers = None,
    scheduler: Scheduler = None,
    population_patients: PopulationPatients = 20,
    quiet: Quiet = False,
) -> None:
    """Fit a twin (one patient: patient model; several: hierarchical) and save it.

    With --workers or --scheduler, a cohort is fitted in two stages: the hierarchy on a
    stratified subsample, then every patient against that population on Dask workers; each
    patient's checks are listed, and a fit started again resumes where it stopped.
    """
    _check_outcome(outcome)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InferenceWarning)  # reported below instead
        with reporter(quiet) as progress:
            twin = api.fit(cohort, out, patients=_patients(patients), seed=seed, draws=draws,
                           chains=chains, outcome=outcome, force=force, dedupe=dedupe,
                           lags=_lags(lags), deviations=_deviations(deviations),
                           shapes=_shapes(shapes), interactions=interactions,
                           overuse=overuse, progress=progress, structure=structure,
                           cluster=_cluster(workers, scheduler, population_patients))
    d = twin.record.diagnostics
    typer.echo(f"fitted {len(twin.patients)} patient(s) in {time.perf_counter() - t0:.0f} s; "
               f"max R-hat {d['max_rhat']:.3f}, min bulk ESS {d['min_ess_bulk']:.0f}, "
               f"divergences {d['divergences']}")
    if not d["ok"]:
        _err("WARNING: inference checks failed: " + "; ".join(d["failures"]))
        if strict:
            raise typer.Exit(EXIT_STRICT)
    _say_two_stage(twin)
    _say_selection(twin)
    _say_lags(twin)
    _say_shapes(twin)
    _say_data_use(twin)
    if twin.record.previous_version is not None:
        typer.echo(f"version {twin.record.version} (version "
                   f"{twin.record.previous_version} kept under versions/)")
    typer.echo(f"twin written to {out}")


def _say_data_use(twin) -> None:
    """What the data went into; every recorded variable or treatment no model uses, and why."""
    from migraine_bayes.twin.data_use import data_use

    use = data_use(twin)
    unused = use[use["used_by"] == "unused"]
    used = use[use["used_by"] != "unused"]
    typer.echo(f"data used: {int((used['kind'] == 'variable').sum())} recorded or derived "
               f"variable(s) and {int((used['kind'] == 'treatment').sum())} treatment(s); "
               f"{len(unused)} unused" + (":" if len(unused) else ""))
    for r in unused.itertuples():
        typer.echo(f"  unused: {r.item} — {r.how}")


@app.command()
@handled
def monitor(
    twin: Annotated[Path, typer.Argument(help="Twin directory.")],
    cohort: Annotated[Path, typer.Argument(help="Cohort folder with the days to walk over.")],
    start: Annotated[str, typer.Option(help="First step, YYYY-MM-DD (after the twin's last "
                                            "day).")],
    out: Annotated[Path, typer.Option(help="Alarm table to write (CSV, one row per patient "
                                           "and step); the same walk found there continues.")],
    every: Annotated[int, typer.Option(min=1, max=62, help="Days between steps.")] = 7,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    retrain_after: Annotated[int, typer.Option(min=7, help="Retrain when more than this many "
                                                          "diary days have passed since the "
                                                          "fit (the time criterion).")] = 90,
    no_retrain: Annotated[bool, typer.Option("--no-retrain", help="Check only; never "
                                                                  "retrain (the filter stops "
                                                                  "at the latent-state "
                                                                  "horizon, ~60 days after the "
                                                                  "fit; the test goes on).")
                          ] = False,
    force: Force = False,
    dedupe: Dedupe = False,
    quiet: Quiet = False,
) -> None:
    """Walk a twin forward from --start: update, sequential drift test, retrain when due.

    Every --every days the twin is updated with the new days (particle filter), tested for
    drift with evidence accumulated since its fit (false alarms ≤ 5% per 28 days by
    construction), and retrained after an alarm, when --retrain-after diary days have passed
    since its fit, or when the filter reaches the latent-state horizon — the reason, with the
    drift evidence at that moment, recorded in its audit trail.
    Interrupted, the same command continues after the last step done.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InferenceWarning)  # flagged in the retrained twin
        with reporter(quiet) as progress:
            table = api.monitor(twin, cohort, start, out, every=every, seed=seed,
                                retrain=not no_retrain, retrain_after=retrain_after,
                                force=force, dedupe=dedupe, progress=progress)
    alarms = table[table["alarm"].astype(bool)]
    typer.echo(f"{table['date'].nunique()} step(s), {len(table)} check(s): {len(alarms)} "
               f"alarm(s)" + ("" if alarms.empty else " — " + "; ".join(
                   f"{r.patient_id} {r.date} {r.category}" for r in alarms.itertuples()))
               + f"; {int(table.drop_duplicates('date')['retrained'].astype(bool).sum())} "
               f"retraining(s); written to {out}")


def _cluster(workers: int | None, scheduler: str | None, population_patients: int):
    """The two-stage options asked for on the command line (None: not asked)."""
    from migraine_bayes.twin.cluster import ClusterOptions

    if workers is None and scheduler is None:
        return None
    try:
        return ClusterOptions(workers=2 if workers is None else workers, scheduler=scheduler,
                              population_patients=population_patients)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _say_two_stage(twin) -> None:
    """A two-stage fit: the population fit, patients passing, those flagged or not fitted."""
    fitting = twin.record.fitting
    if not fitting:
        return
    per = fitting["patients"]
    failed = sorted(p for p, f in per.items() if not f["ok"])
    typer.echo(f"two-stage fit: population on {len(fitting['population_patients'])} "
               f"patient(s) (checks {'pass' if fitting['population_diagnostics']['ok'] else 'FAIL'}"
               f"); {len(per) - len(failed)} of {len(per)} patient fits pass their checks"
               + (f"; flagged: {', '.join(failed)}" if failed else ""))
    for pid, reason in fitting["not_fitted"].items():
        typer.echo(f"not fitted (forecast from the population): {pid}: {reason}")


def _say_shapes(twin) -> None:
    """With learned shapes or interactions: the bends and pairs the twin found."""
    from migraine_bayes.analysis.sensitivity import interactions, learned_shapes

    shapes = learned_shapes(twin)
    if len(shapes):
        typer.echo(f"learned dose-response ({shapes.attrs['of']}): " + "; ".join(
            f"{r.feature} half effect at {r.threshold:.3g} (90% {r.threshold_low:.3g}-"
            f"{r.threshold_high:.3g}), sharpest bend at {r.knee:g} (P {r.p_knee:.2f})"
            for r in shapes.itertuples()))
    pairs = interactions(twin)
    if len(pairs):
        strong = pairs[(pairs["p_positive"] >= 0.95) | (pairs["p_positive"] <= 0.05)]
        typer.echo(f"interactions ({len(pairs)} pairs, horseshoe): " + ("; ".join(
            f"{r.pair} OR {r.odds_ratio:.2f} ({r.or_low:.2f}-{r.or_high:.2f})"
            for r in strong.itertuples()) or "none credibly away from OR 1"))


def _say_selection(twin) -> None:
    chosen = twin.record.selection
    if not chosen:
        return
    typer.echo(f"structure chosen by PSIS-LOO: {chosen['chosen']} — {chosen['reason']}")
    for row in chosen["table"]:
        notes = ([] if row.get("checks_ok", True) else ["sampler checks failed: not kept"]) + (
            [f"{row['high_pareto_k']} day(s) with Pareto k > 0.7"]
            if row.get("high_pareto_k") else [])
        typer.echo(f"  {row['structure']:<22} ELPD {row['elpd_loo']:9.1f} (SE {row['se']:.1f})"
                   f"  difference to the best {row['elpd_diff']:6.1f} (SE {row['se_diff']:.1f})"
                   + (f"  [{'; '.join(notes)}]" if notes else ""))


def _say_lags(twin) -> None:
    """With a distributed lag: which triggers the twin found acting on a later day."""
    from migraine_bayes.analysis.sensitivity import lag_weights

    table = lag_weights(twin)
    if not len(table):
        return
    later = table[(table["lag"] == table["peak"]) & (table["peak"] > 0)
                  & (table["p_peak"] >= 0.8)]
    typer.echo(f"distributed lag over {sorted(set(table['lag']))} days: "
               + ("; ".join(f"{r.trigger} acts mostly {r.lag} day(s) later (share "
                            f"{r.weight:.2f}, {r.weight_low:.2f}-{r.weight_high:.2f}; "
                            f"P(peak) {r.p_peak:.2f})" for r in later.itertuples())
                  or "every trigger's effect peaks on its own day or is not yet placed"))


@app.command()
@handled
def forecast(
    twin: Annotated[Path, typer.Argument(help="Twin directory.")],
    cohort: NewerData = None,
    date: Annotated[str | None, typer.Option(help="First day to forecast, YYYY-MM-DD "
                                                  "(needs --cohort).")] = None,
    horizon: Annotated[int, typer.Option(min=1, max=60, help="Days to forecast.")] = 1,
    out: Annotated[Path | None, typer.Option(help="File to write (default: stdout).")] = None,
    json_lines: Annotated[bool, typer.Option("--json", help="JSON lines instead of "
                                                            "CSV.")] = False,
    fhir: Annotated[bool, typer.Option("--fhir", help="A FHIR R4 Bundle of RiskAssessment "
                                                      "resources instead of CSV "
                                                      "(docs/fhir.md).")] = False,
    prodrome: Annotated[str | None, typer.Option(
        help="Premonitory symptoms reported tonight, comma-separated (e.g. "
             "fatigue,yawning): forecast tomorrow given them.")] = None,
    force: Force = False,
    dedupe: Dedupe = False,
) -> None:
    """Forecast attack risk (90% interval), top factors, time to onset, the next attack's course."""
    import json

    if json_lines and fhir:
        raise ValueError("--json and --fhir are two formats: choose one")
    if out is not None:
        check_output_file(out, force, inputs=[twin, cohort])
    symptoms = None if prodrome is None else [s.strip() for s in prodrome.split(",") if s.strip()]
    table = api.forecast(twin, cohort, date=date, horizon=horizon, dedupe=dedupe,
                         prodrome=symptoms)
    text = (json.dumps(api.forecast_fhir(twin, table), indent=1) if fhir else
            table.to_json(orient="records", lines=True, date_format="iso") if json_lines
            else table.to_csv(index=False))
    if out is None:
        typer.echo(text.rstrip("\n"))
    else:
        atomic.write_text(out, text)
        typer.echo(f"forecast written to {out}")


@app.command("predict-state")
@handled
def predict_state(
    twin: Annotated[Path, typer.Argument(help="Twin directory.")],
    out: Annotated[Path, typer.Option(help="CSV file to write: patient_id, date, feature, "
                                           "mean, low, high.")],
    cohort: NewerData = None,
    date: Annotated[str | None, typer.Option(help="Day to predict, YYYY-MM-DD (needs "
                                                  "--cohort; data up to the day before).")
                    ] = None,
    force: Force = False,
    dedupe: Dedupe = False,
) -> None:
    """Predict each patient's measured state (sleep, stress, HRV, weather ...) for tomorrow."""
    check_output_file(out, force, inputs=[twin, cohort])
    table = api.predict_state(twin, cohort, date=date, dedupe=dedupe)
    atomic.write_text(out, table.to_csv(index=False))
    typer.echo(f"{len(table)} predictions ({table['patient_id'].nunique()} patients) written "
               f"to {out}")


@app.command()
@handled
def backtest(
    cohort: Annotated[Path, typer.Argument(help="Cohort folder.")],
    train_until: Annotated[str, typer.Option(help="Last day of the first fit, YYYY-MM-DD.")],
    out: Annotated[Path, typer.Option(help="Forecast table to write (CSV; siblings "
                                           "STEM.scores.csv, .predictions.csv, "
                                           ".state_errors.csv, .meta.json).")],
    patients: Annotated[str | None, typer.Option(help="Comma-separated patient ids "
                                                      "(default: all).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    information: Annotated[str, typer.Option(help="ex_ante: a day's own covariates are "
                                                  "predicted from the day before (honest "
                                                  "forecast); observed: they are known.")
                           ] = "ex_ante",
    separate: Annotated[bool, typer.Option("--separate", help="Independent patient twins "
                                                              "instead of one cohort "
                                                              "twin.")] = False,
    draws: Draws = None,
    chains: Chains = None,
    threshold: Annotated[float | None, typer.Option(min=0, max=1, help="Alarm threshold of "
                                                                      "the alarm metrics "
                                                                      "(default: the "
                                                                      "training event "
                                                                      "rate).")] = None,
    json_lines: Annotated[bool, typer.Option("--json", help="JSON lines instead of "
                                                            "CSV.")] = False,
    outcome: Outcome = "onset",
    refit_every: Annotated[int, typer.Option(min=1, max=62, help="Days between refits of "
                                                                "the twin.")] = 30,
    lags: Lags = None,
    shapes: Shapes = "fixed",
    interactions: Interactions = False,
    overuse: Overuse = False,
    deviations: Deviations = "normal",
    structure: Structure = None,
    state_model: Annotated[str, typer.Option(help="How an ex-ante forecast predicts the "
                                                  "day's covariates: var (the pooled VAR(1) "
                                                  "state model) or ar1 (each feature's own "
                                                  "AR(1)).")] = "var",
    workers: Workers = None,
    scheduler: Scheduler = None,
    population_patients: PopulationPatients = 20,
    force: Force = False,
    dedupe: Dedupe = False,
    quiet: Quiet = False,
) -> None:
    """Fit up to --train-until, then forecast each later day from the days before it.

    Diaries may start and end anywhere. The twin moves forward with every outcome (particle
    filter) and is refitted on everything before it every --refit-every days; a patient with
    no day before a forecast is forecast from the population. The same days are forecast by
    the baselines (the running rate shrunk to the population's, a logistic regression on it
    and yesterday's outcome, base rate, per-patient logistic regression, gradient boosting)
    and, for a synthetic cohort with a truth.json, the oracle; the score table (AUC, Brier,
    ECE, alarm metrics, lead time, each with a 90% bootstrap interval) is printed and
    written, with the scores by days of history and by patient beside it.
    """
    if information not in ("ex_ante", "observed"):
        raise typer.BadParameter("must be 'ex_ante' or 'observed'", param_hint="--information")
    if state_model not in ("var", "ar1"):
        raise typer.BadParameter("must be 'var' or 'ar1'", param_hint="--state-model")
    _check_outcome(outcome)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InferenceWarning)  # flagged per fit in the twins
        with reporter(quiet) as progress:
            result = api.backtest(cohort, out, train_until, patients=_patients(patients),
                                  seed=seed, information=information,
                                  hierarchical=False if separate else None, draws=draws,
                                  chains=chains, threshold=threshold, json_lines=json_lines,
                                  outcome=outcome, progress=progress,
                                  refit_every=refit_every, force=force, dedupe=dedupe,
                                  lags=_lags(lags), deviations=_deviations(deviations),
                                  shapes=_shapes(shapes), interactions=interactions,
                                  overuse=overuse, state_model=state_model,
                                  cluster=_cluster(workers, scheduler, population_patients),
                                  structure=structure)
    first = result.first_twin
    if first is not None:
        _say_selection(first)  # the structure the first origin chose and the refits kept
    _print_table(result.scores[["model", "days", "attacks", "auc", "auc_low", "auc_high",
                                "brier", "ece", "log_score", "sensitivity", "specificity",
                                "ppv", "f1"]])
    if not result.by_history.empty:
        typer.echo("\nby days of history at the forecast:")
        _print_table(result.by_history[["history", "model", "days", "attacks", "auc", "brier",
                                        "ece", "ece_noise"]])
    if not result.by_patient.empty:
        within = result.by_patient.groupby("model")["auc"].describe()[
            ["count", "25%", "50%", "75%"]].rename(columns={"count": "patients"})
        typer.echo("\nwithin-patient AUC over patients:")
        _print_table(within.reset_index())
    typer.echo(f"backtest written to {out} (and its sibling files; "
               f"{time.perf_counter() - t0:.0f} s)")


@app.command()
@handled
def report(
    twin: Annotated[Path, typer.Argument(help="Twin directory.")],
    out: Annotated[Path, typer.Option(help="HTML file to write (figures also go to "
                                           "STEM_figures/ as PNG and SVG).")],
    backtest: Annotated[Path | None, typer.Option(help="Forecast file of `migraine-twin "
                                                       "backtest` to include.")] = None,
    simulation: Annotated[Path | None, typer.Option(help="JSON of `migraine-twin simulate` "
                                                         "to include.")] = None,
    patient: Annotated[str | None, typer.Option(help="Write the one-patient report of this "
                                                     "patient instead of the cohort's.")] = None,
    max_patients: Annotated[int, typer.Option(min=1, help="Patients drawn in the small "
                                                          "multiples.")] = 12,
    seed: Annotated[int, typer.Option(help="Random seed (predictive replicates).")] = 0,
    force: Force = False,
    quiet: Quiet = False,
) -> None:
    """Write a self-contained HTML report of a twin (figures embedded, and as PNG and SVG).

    A one-screen summary (cohort, validation with intervals, top triggers, recommended
    scenario) and a table of contents, then data and outcome, methods, sampler diagnostics,
    posterior predictive checks, trigger sensitivities, the N-of-1 treatment report; with
    --backtest the TRIPOD+AI validation (scores beside the baselines, calibration, decision
    curve, subgroups, forecasts); with --simulation the counterfactual comparisons; and the
    TRIPOD+AI checklist. --patient writes one patient's short report.
    """
    from migraine_bayes.reports import figure_folder

    with reporter(quiet) as progress:
        path = api.report(twin, out, backtest=backtest, simulation=simulation, seed=seed,
                          max_patients=max_patients, force=force, patient=patient,
                          progress=lambda stage, done=None, total=None: progress(
                              "writing the report", done, total))
    typer.echo(f"report written to {path} (figures in {figure_folder(path)})")


@app.command()
@handled
def design(
    twin: Annotated[Path, typer.Argument(help="Twin directory.")],
    patient: Annotated[str, typer.Option(help="The patient whose next trial is planned.")],
    compare: Annotated[str | None, typer.Option(help="A,B: 'current' (the regimen now) and "
                                                     "the preventive added, e.g. "
                                                     "current,erenumab:140.")] = None,
    weeks: Annotated[int, typer.Option(help="Longest trial considered (12-24 weeks).")] = 16,
    mcid: Annotated[float, typer.Option(help="Minimal clinically important difference: the "
                                             "relative reduction of attacks that makes B "
                                             "worth it (0.3 = 30% fewer).")] = 0.3,
    sims: Annotated[int, typer.Option(help="Simulated futures per schedule.")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    decide: Annotated[Path | None, typer.Option(help="A plan written by design --out: say "
                                                     "from the updated twin whether to stop "
                                                     "or continue (audited).")] = None,
    out: Annotated[Path | None, typer.Option(help="Plan JSON to write.")] = None,
    force: Force = False,
) -> None:
    """Which N-of-1 trial to run next, for how long, and when to stop (Bayesian design).

    Scores AB schedules (blocks of 1-4 weeks, wash-out, length, stopping bounds) by
    simulating the patient's future diaries from the twin's posterior, and recommends the
    shortest that decides as often correctly as a fixed 12-week ABAB. With --decide, applies a
    plan's stopping rule to the twin updated with the trial's days.
    """
    if decide is not None:
        d = api.decide_trial(twin, decide, seed)
        lo, hi = d["rate_ratio_90"]
        typer.echo(f"{d['patient_id']}: {d['B']} — attacks × {d['rate_ratio']:.2f} (90% "
                   f"{lo:.2f} to {hi:.2f}); P(worth it) {d['p_worth_it']:.0%}: "
                   f"{d['decision']} (recorded in the audit trail)")
        return
    if compare is None:
        raise typer.BadParameter("--compare is needed (or --decide PLAN)")
    plan = api.design_trial(twin, patient, compare, weeks, mcid, sims, seed, out, force)
    r, f = plan["recommended"], plan["fixed_abab"]
    typer.echo(f"{patient}: current regimen against adding {plan['compare']['B']} "
               f"(prior: attacks × {math.exp(plan['prior']['log_rate_ratio_mean']):.2f}, "
               f"{plan['prior']['basis']})")
    typer.echo(f"  recommended: {r['schedule']}")
    typer.echo(f"    decides correctly {r['p_correct']:.0%}, in {r['weeks']:.1f} weeks on "
               f"average, {r['attacks']:.1f} attacks during the trial")
    typer.echo(f"  fixed ABAB:  {f['schedule']}")
    typer.echo(f"    decides correctly {f['p_correct']:.0%}, in {f['weeks']:.1f} weeks, "
               f"{f['attacks']:.1f} attacks")
    typer.echo(f"  rule: {plan['decision_rule']}")
    if max(r["p_correct"], f["p_correct"]) < 0.7:
        typer.echo("  note: no schedule of this length decides this patient's question well "
                   "(too few attacks, or an effect close to the minimal important difference)")
    if out is not None:
        typer.echo(f"plan written to {out}")


@app.command()
@handled
def simulate(
    twin: Annotated[Path, typer.Argument(help="Twin directory.")],
    scenarios: Annotated[Path, typer.Option(help="Scenarios JSON (docs/SCHEMA.md): a list of "
                                                 "{name, type, params}.")],
    horizon: Annotated[int, typer.Option(help="Days simulated after the diary (1-60).")] = 30,
    draws: Annotated[int, typer.Option(help="Posterior draws simulated.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    patients: Annotated[str | None, typer.Option(help="Comma-separated patient ids "
                                                      "(default: all).")] = None,
    out: Annotated[Path | None, typer.Option(help="JSON file to write (default: "
                                                  "stdout).")] = None,
    force: Force = False,
) -> None:
    """Simulate interventions against the no-intervention baseline and rank them.

    Writes per scenario the daily p_attack with its 90% interval, expected attacks, relative
    risk reduction (90% interval), time to benefit, duration of effect, P(best), the ranking and
    a recommendation that states its evidence. Scenarios are checked before anything runs.
    """
    import json

    result = api.simulate(twin, scenarios, horizon=horizon, draws=draws, seed=seed,
                          patients=_patients(patients), out=out, force=force)
    if out is None:
        typer.echo(json.dumps(result, indent=1))
        return
    from migraine_bayes.interventions.recommend import change_words

    for p in result["patients"]:
        typer.echo(f"{p['patient_id']}: ranking {' > '.join(p['ranking'])}")
        for s in p["scenarios"]:
            r = s["relative_risk_reduction"]
            a = s["expected_attacks"]
            rrr = "" if r is None else f"; {change_words(r)}"
            typer.echo(f"  {s['name']}: {a['mean']:.2f} attacks [{a['low']:.2f}, "
                       f"{a['high']:.2f}]{rrr}")
    typer.echo(f"simulation written to {out}")


@app.command()
@handled
def update(
    twin: Annotated[Path, typer.Argument(help="Twin directory.")],
    cohort: Annotated[Path, typer.Argument(help="Cohort folder with the patients' data up to "
                                                "now (old days and new).")],
    seed: Annotated[int, typer.Option(help="Random seed of the particle filter.")] = 0,
    retrain: Annotated[bool, typer.Option(help="Retrain when the policy says so (30 days "
                                               "since the fit, 1.5× worse Brier, > 5 drift "
                                               "adaptations).")] = True,
    rewrite_history: Annotated[bool, typer.Option("--rewrite-history", help="Accept data that "
                                                  "change days the twin has already seen "
                                                  "(recorded in the audit trail; the filter "
                                                  "restarts).")] = False,
    dedupe: Dedupe = False,
) -> None:
    """Move the twin forward over new diary days (particle filter, no refit).

    New outcomes go to the twin's audit trail; the twin is saved atomically. When the
    retraining policy says so (and --retrain), a new version is fitted, compared with the old
    one on the most recent days, and the old version kept under versions/.
    """
    res = api.update(twin, cohort, seed=seed, retrain_when_due=retrain,
                     rewrite_history=rewrite_history, dedupe=dedupe)
    days = res["days"]
    from migraine_bayes.twin.history import describe as describe_change

    for change in res["history_rewritten"]:
        typer.echo(f"history rewritten (audited): {describe_change(change)}")
    typer.echo(f"{len(days)} new day(s) filtered; drift adaptations so far: "
               + ", ".join(f"{k} {v}" for k, v in res["adaptations"].items()))
    for reason in res["retrain_reasons"]:
        typer.echo(f"retraining due: {reason}")
    if res["new_version"] is not None:
        typer.echo(f"retrained: twin version {res['new_version']} (previous kept)")
    typer.echo(f"twin updated in {twin}")


@app.command()
@handled
def drift(
    twin: Annotated[Path, typer.Argument(help="Twin directory.")],
    cohort: Annotated[Path | None, typer.Option(help="Cohort with the recent days (default: "
                                                     "the twin's own, updated data).")] = None,
    window: Annotated[int, typer.Option(min=7, help="Days checked (the most recent).")] = 28,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    out: Annotated[Path | None, typer.Option(help="JSON file to write.")] = None,
    force: Force = False,
    dedupe: Dedupe = False,
) -> None:
    """Posterior predictive drift checks on the most recent days, with the kind of drift.

    Per patient: attacks against the predictive interval, count / log-score / PIT / baseline /
    trigger tests, an alarm and its category (baseline shift, changed trigger sensitivity, new
    association) with the evidence.
    """
    for c in api.drift(twin, cohort, window=window, seed=seed, out=out, force=force,
                       dedupe=dedupe):
        e = c["expected_attacks"]
        flag = f"ALARM ({c['category']})" if c["alarm"] else "ok"
        typer.echo(f"{c['patient_id']} {c['window_start']}..{c['window_end']}: "
                   f"{c['attacks']} attacks, expected {e['mean']:.1f} [{e['low']:.0f}, "
                   f"{e['high']:.0f}] — {flag}: {c['evidence']}")
    if out is not None:
        typer.echo(f"drift checks written to {out}")


@app.command()
@handled
def sbc(
    out: Annotated[Path, typer.Option(help="Folder for the rank histogram and ranks.")],
    replicates: Annotated[int, typer.Option(min=5, help="Prior draws.")] = 200,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    cohort: Annotated[Path | None, typer.Option(help="Cohort whose first patient's "
                                                     "covariates are used (default: the "
                                                     "committed synthetic one).")] = None,
    lags: Lags = None,
    shapes: Shapes = "fixed",
    interactions: Interactions = False,
    quiet: Quiet = False,
) -> None:
    """Simulation-based calibration (Talts et al. 2018) of the model, course and state parts."""
    with reporter(quiet) as progress:
        result = api.sbc(out, replicates=replicates, seed=seed, cohort=cohort,
                         lags=_lags(lags), shapes=_shapes(shapes), interactions=interactions,
                         progress=progress)
    for name, p in result.p_values.items():
        typer.echo(f"{name}: uniformity p = {p:.3f}")
    for part, res in result.components.items():
        for name, p in res.p_values.items():
            typer.echo(f"{part} model, {name}: uniformity p = {p:.3f}")
    typer.echo(f"rank histograms written to {out} (sbc_ranks.png, sbc_course_ranks.png, "
               "sbc_state_ranks.png)")


audit_app = typer.Typer(help="The twin's tamper-evident audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
@handled
def audit_verify(
    twin: Annotated[Path, typer.Argument(help="Twin directory.")],
) -> None:
    """Check the audit trail: hash chain, append-only triggers, the twin's recorded head.

    Exit 1 naming the first broken row.
    """
    check = api.audit_verify(twin)
    if check.ok:
        typer.echo(f"ok: {check.entries} audit entries, hash chain intact"
                   + (" (HMAC-signed)" if check.keyed else "")
                   + f"; head {check.head[:16]}")
        return
    for problem in check.problems:
        _err(f"audit trail broken: {problem}")
    raise typer.Exit(EXIT_ERROR)


from migraine_bayes.service.cli import register  # noqa: E402

register(app, handled, _err)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(EXIT_ERROR)
