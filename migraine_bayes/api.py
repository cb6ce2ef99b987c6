"""Python API behind the command line: one function per ``migraine-twin`` command."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pandas as pd

from migraine_bayes.cohort.io import Cohort, load_cohort
from migraine_bayes.course.prodrome import with_prodrome
from migraine_bayes.errors import InputDataError, Problem, did_you_mean
from migraine_bayes.evaluation import SBCResult
from migraine_bayes.living.drift import check_drift
from migraine_bayes.living.monitor import MonitorPolicy, walk_file
from migraine_bayes.living.monitor import monitor as walk
from migraine_bayes.living.transaction import save_fit, update_saved
from migraine_bayes.model import FeatureOptions
from migraine_bayes.model.inference import COHORT_SETTINGS, PATIENT_SETTINGS, SamplerSettings
from migraine_bayes.state import build_panel, summarise_panel
from migraine_bayes.store import atomic, audit
from migraine_bayes.store.locking import real_path, twin_lock
from migraine_bayes.store.targets import (
    TargetError,
    check_folder_target,
    check_output_file,
)
from migraine_bayes.synthetic.cohort import SyntheticCohort, simulate_cohort
from migraine_bayes.synthetic.study import SyntheticStudy, simulate_study
from migraine_bayes.twin.cluster import ClusterOptions
from migraine_bayes.twin.core import DigitalTwin
from migraine_bayes.twin.forecasting import data_hashes
from migraine_bayes.twin.record import TwinRecord
from migraine_bayes.twin.selection import fit_chosen
from migraine_bayes.twin.store import twin_target
from migraine_bayes.twin.two_stage import PATIENT_STAGE_SETTINGS, fit_two_stage


def validate_data(cohort: str | os.PathLike, dedupe: bool = False) -> Cohort:
    """Load and validate a cohort folder; raises ``InputDataError`` listing every problem.

    ``dedupe``: drop exact duplicate rows (counted in the cohort's notices) instead of
    rejecting them.
    """
    return load_cohort(cohort, dedupe=dedupe)


def generate(out: str | os.PathLike, patients: int = 12, days: int = 365, seed: int = 0,
             observations_format: str = "parquet", force: bool = False,
             **options: object) -> SyntheticCohort:
    """Simulate a synthetic cohort and write it (docs/SCHEMA.md files, ``truth.json``) to ``out``.

    A non-empty ``out`` is replaced only with ``force``.
    """
    check_folder_target(out, force)
    sc = simulate_cohort(patients, days, seed, **options)
    sc.write(out, observations_format=observations_format)
    return sc


def generate_study(out: str | os.PathLike, patients: int = 130, seed: int = 0,
                   force: bool = False, **options: object) -> SyntheticStudy:
    """Simulate a study-shaped cohort (:mod:`migraine_bayes.synthetic.study`) and write it.

    A non-empty ``out`` is replaced only with ``force``.
    """
    check_folder_target(out, force)
    study = simulate_study(patients, seed, **options)
    study.write(out)
    return study


IMPORT_FORMATS = ("diary", "redcap", "fhir", "apple-health", "fitbit")
WEARABLE_FORMATS = ("apple-health", "fitbit")


def import_data(format: str, sources: list[str | os.PathLike], out: str | os.PathLike,
                mapping: str | os.PathLike | None = None, patients: list[str] | None = None,
                dedupe: bool = False, force: bool = False,
                dictionary: str | os.PathLike | None = None, append: bool = False) -> Cohort:
    """Import ``sources`` of ``format`` into the cohort folder ``out``.

    ``diary``: daily diary tables (CSV, TSV, Excel, Parquet) read with the TOML ``mapping``
    (:mod:`migraine_bayes.adapters.diary`, docs/import-diary.md); ``redcap``: REDCap flat CSV
    exports read with their data ``dictionary`` and a mapping
    (:mod:`migraine_bayes.adapters.redcap`, docs/import-redcap.md); ``fhir``: HL7 FHIR R4
    Bundles, resources or NDJSON (:mod:`migraine_bayes.adapters.fhir_in`, docs/fhir.md; the
    ``mapping`` is optional). The cohort is validated by the rules of ``validate-data``
    (every problem named by source file, row and column) and written atomically; a non-empty
    ``out`` is replaced only with ``force``. ``append``: ``out`` holds the cohort of an
    earlier, shorter export of the same source — only the new days are added (the same export
    again changes nothing; an export that changes imported days is refused).

    ``apple-health`` (``export.xml`` or ``export.zip``, one per id in ``patients``) and
    ``fitbit`` (Fitabase CSV files; ``patients``: ``FITBITID=OURID`` items) are wearables:
    imported *into* ``out``, a cohort that already holds the patients' diaries (a wearable
    says nothing about attacks); the same export again changes nothing, a longer one adds its
    new days, and ``force`` lets it replace values it changes
    (:mod:`migraine_bayes.adapters.wearable`, docs/import-wearables.md).

    Returns the cohort (its notices say what was counted, appended, dropped with ``dedupe`` or
    not imported).
    """
    from migraine_bayes.adapters.common import appended, validated, write_cohort

    if format not in IMPORT_FORMATS:
        raise ValueError(f"unknown import format '{format}'{did_you_mean(format, IMPORT_FORMATS)}"
                         f"; formats: {', '.join(IMPORT_FORMATS)}")
    if not sources:
        raise ValueError("no source file given")
    paths = [Path(s) for s in sources]
    if format in WEARABLE_FORMATS:
        if mapping is not None or dictionary is not None:
            raise ValueError(f"{format} reads its export as documented "
                             "(docs/import-wearables.md): --mapping and --dictionary are "
                             "not used — leave them out")
        return _import_wearable(format, paths, out, patients, dedupe, force)
    if mapping is None and format in ("diary", "redcap"):
        raise ValueError(f"the {format} format needs --mapping (a TOML file: "
                         f"docs/import-{format}.md)")
    if format == "redcap" and dictionary is None:
        raise ValueError("the redcap format needs --dictionary (the project's data dictionary "
                         "CSV)")
    if append and force:
        raise ValueError("--append adds new days to a cohort; --force replaces it: choose one")
    existing = load_cohort(out) if append and Path(out).is_dir() and any(
        Path(out).iterdir()) else None
    if existing is None:
        check_folder_target(out, force)
    if format == "redcap":
        from migraine_bayes.adapters.redcap import import_redcap
        cohort = import_redcap(paths, dictionary, mapping, patients, dedupe)
    elif format == "fhir":
        from migraine_bayes.adapters.fhir_in import fhir_tables
        cohort = validated(fhir_tables(paths, mapping, patients),
                           ", ".join(map(str, paths)), dedupe)
    else:
        from migraine_bayes.adapters.diary import import_diary
        cohort = import_diary(paths, mapping, patients, dedupe)
    if existing is not None:
        added = appended(existing, cohort)
        if not any(added.values()):
            cohort.notices.append(f"nothing new: {out} already holds every day of the export "
                                  "(left as it was)")
            return cohort
        cohort.notices.append(f"appended {added['observations']} observations, "
                              f"{added['attacks']} attacks and {added['treatments']} treatment "
                              f"courses after the days {out} held")
    write_cohort(cohort, out, force or existing is not None)
    return cohort


def _import_wearable(format: str, paths: list[Path], out: str | os.PathLike,
                     patients: list[str] | None, dedupe: bool, force: bool) -> Cohort:
    from migraine_bayes.adapters.common import validated, write_cohort
    from migraine_bayes.adapters.wearable import into_cohort

    if not (Path(out).is_dir() and any(Path(out).iterdir())):
        raise ValueError(f"{format} is a wearable export: it is imported into a cohort that "
                         f"holds the patients' diaries, and {out} holds none — import the "
                         "diary first (import diary … --out COHORT), then the wearable into it "
                         "(a wearable says nothing about attacks: its days alone are no diary)")
    if format == "apple-health":
        from migraine_bayes.adapters.apple_health import apple_health_tables
        if not patients:
            raise ValueError("apple-health needs --patients: the id of each export's wearer, "
                             "in the order of the files (an export holds no patient id)")
        tables = apple_health_tables(paths, patients)
    else:
        from migraine_bayes.adapters.fitbit import fitbit_tables
        tables = fitbit_tables(paths, patients)
    merged, changes = into_cohort(load_cohort(out), tables, str(out), force)
    cohort = validated(merged, ", ".join(map(str, paths)), dedupe)
    if not changes:
        cohort.notices.append(f"nothing new: {out} already holds every value of the export "
                              "(left as it was)")
        return cohort
    write_cohort(cohort, out, True)
    return cohort


def cohort_summary(cohort: str | os.PathLike | Cohort) -> pd.DataFrame:
    """Per-patient summary (days, known days, attacks/month, coverage) of a cohort."""
    if not isinstance(cohort, Cohort):
        cohort = load_cohort(cohort)
    return summarise_panel(build_panel(cohort))


BACKTEST_PARTS = ("predictions", "scores", "state_errors", "by_history", "by_patient",
                  "validation", "by_subgroup", "decision_curve")
# absent from backtests written before them
NEWER_PARTS = ("validation", "by_subgroup", "decision_curve")


def backtest_paths(out: str | os.PathLike) -> dict[str, Path]:
    """Where ``backtest`` writes: ``out`` (the forecasts) and its sibling files."""
    out = Path(out)
    stem = out.name[: -len(out.suffix)] if out.suffix else out.name
    paths = {"forecasts": out, "meta": out.with_name(f"{stem}.meta.json")}
    paths |= {part: out.with_name(f"{stem}.{part}.csv") for part in BACKTEST_PARTS}
    return paths


def backtest(cohort: str | os.PathLike, out: str | os.PathLike, train_until: str,
             patients: list[str] | None = None, seed: int = 0, information: str = "ex_ante",
             hierarchical: bool | None = None, draws: int | None = None,
             chains: int | None = None, truth: str | os.PathLike | None = None,
             threshold: float | None = None, json_lines: bool = False,
             outcome: str = "onset", progress=None, refit_every: int = 30,
             force: bool = False, dedupe: bool = False, lags: tuple[int, ...] = (),
             deviations: str = "normal", shapes: str = "fixed", interactions: bool = False,
             state_model: str = "var", cluster: ClusterOptions | None = None,
             overuse: bool = False, structure: str | None = None):
    """Rolling-origin backtest (:func:`migraine_bayes.evaluation.backtest`) written to files.

    ``out`` gets docs/SCHEMA.md's backtest table (CSV, or JSON lines); beside it
    ``<stem>.predictions.csv`` (twin, baselines and oracle, long), ``<stem>.scores.csv``,
    ``<stem>.by_history.csv`` (scores by days of history at the forecast),
    ``<stem>.by_patient.csv`` (within-patient AUCs), ``<stem>.state_errors.csv``,
    ``<stem>.validation.csv`` (TRIPOD+AI measures per model: AUPRC, calibration slope and
    intercept, observed/expected, Brier skill, within-patient C), ``<stem>.by_subgroup.csv``
    (the same by days of history, sex, wearable or not and prodrome the evening before),
    ``<stem>.decision_curve.csv`` (the twin's net benefit per alarm threshold) and
    ``<stem>.meta.json``. A synthetic cohort's ``truth.json`` (in the cohort folder, or
    ``truth``) adds the oracle. ``lags``, ``shapes``, ``interactions``, ``overuse``: the twin's
    features
    (:class:`migraine_bayes.model.FeatureOptions`); ``deviations``: its cohort prior of
    patients' trigger deviations; ``state_model``: how an ex-ante forecast predicts the day's
    covariates (``var``, the pooled VAR(1), or ``ar1``, each feature's own AR(1));
    ``cluster``: each origin's cohort twin fitted in two stages on Dask workers
    (:mod:`migraine_bayes.twin.two_stage`). ``structure``: as :func:`fit`'s — by default a
    cohort twin's structure is chosen at the first origin by PSIS-LOO and kept by the refits
    (its table in the meta file's ``selection``).
    """
    import json

    from migraine_bayes.evaluation import backtest as run_backtest

    for path in backtest_paths(out).values():
        check_output_file(path, force, inputs=[cohort])
    c = load_cohort(cohort, dedupe=dedupe)
    _check_patients(c, patients)
    truth_file = Path(truth) if truth is not None else Path(cohort) / "truth.json"
    truth_data = json.loads(truth_file.read_text()) if truth_file.is_file() else None
    n = len(patients or c.patient_ids)
    settings = sampler_settings(n > 1 and hierarchical is not False, seed, draws, chains)
    if cluster is not None and n > 1 and hierarchical is not False:
        settings = sampler_settings(False, seed, draws, chains, PATIENT_STAGE_SETTINGS)
    options = FeatureOptions(tuple(lags), shapes, interactions, overuse)
    structure = resolve_structure(structure, options, deviations, cluster,
                                  cohort_twin=n > 1 and hierarchical is not False)
    result = run_backtest(c, train_until, patients, information, hierarchical, settings,
                          truth_data, threshold, seed, outcome=outcome, progress=progress,
                          refit_every=refit_every, deviations=deviations, options=options,
                          state_model=state_model, cluster=cluster, structure=structure)
    first = result.first_twin
    selection = first.record.selection if first is not None else None
    if structure == "auto" and first is not None:  # the structure the refits kept
        options, deviations = first.spec.options, first.spec.deviations
    paths = backtest_paths(out)
    f = result.forecasts
    atomic.write_text(paths["forecasts"], f.to_json(orient="records", lines=True,
                                                    date_format="iso") if json_lines
                      else f.to_csv(index=False))
    for part in BACKTEST_PARTS:
        atomic.write_text(paths[part], getattr(result, part).to_csv(index=False))
    atomic.write_text(paths["meta"], json.dumps({
        "train_until": result.train_until, "information": result.information,
        "threshold": result.threshold, "patients": sorted(f["patient_id"].unique().tolist()),
        "oracle": truth_data is not None, "seed": seed, "refit_every": refit_every,
        "outcome": outcome, **options.to_dict(), "deviations": deviations,
        "state_model": state_model, "structure": structure, "selection": selection,
        "cluster": None if cluster is None else cluster.to_dict()}, indent=1))
    return result


def read_backtest(out: str | os.PathLike) -> dict:
    """The files of a ``backtest`` back as DataFrames (``meta`` as a dict)."""
    import json

    paths = backtest_paths(out)
    missing = [str(p) for k, p in paths.items() if not p.is_file() and k not in NEWER_PARTS]
    if missing:
        raise FileNotFoundError(f"backtest files missing: {missing} (write them with "
                                "`migraine-twin backtest`)")
    text = paths["forecasts"].read_text(encoding="utf-8")
    forecasts = (pd.read_json(paths["forecasts"], lines=True) if text.lstrip().startswith("{")
                 else pd.read_csv(paths["forecasts"]))
    return {"forecasts": forecasts, "meta": json.loads(paths["meta"].read_text()),
            **{part: pd.read_csv(paths[part]) if paths[part].is_file() else pd.DataFrame()
               for part in BACKTEST_PARTS}}


def report(twin: str | os.PathLike | DigitalTwin, out: str | os.PathLike,
           backtest: str | os.PathLike | None = None,
           simulation: str | os.PathLike | None = None, seed: int = 0,
           max_patients: int = 12, force: bool = False, patient: str | None = None,
           progress=None) -> Path:
    """Write the HTML report of a twin, with a backtest's and a simulation's results if given.

    ``backtest``: the forecasts file of ``backtest`` (its sibling files are read too);
    ``simulation``: the JSON of ``simulate``; ``patient``: write the one-patient report of this
    patient instead of the cohort's. Every figure is also written as PNG and SVG into
    ``<out stem>_figures/``. ``progress(stage, done, total)`` is called as sections are written.
    """
    import json

    from migraine_bayes.reports import build_patient_report, build_report, figure_folder

    check_output_file(out, force, inputs=[None if isinstance(twin, DigitalTwin) else twin])
    folder = figure_folder(out)
    if folder.exists() and not force and not Path(out).exists():
        raise TargetError(f"{folder} exists and would be replaced by the report's figures — "
                          "choose another file, or pass --force")
    t = twin if isinstance(twin, DigitalTwin) else DigitalTwin.load(twin)
    bt = read_backtest(backtest) if backtest is not None else None
    sim = None
    if simulation is not None:
        path = Path(simulation)
        if not path.is_file():
            raise FileNotFoundError(f"simulation file {path} not found")
        sim = json.loads(path.read_text(encoding="utf-8"))
    if patient is not None:
        if patient not in t.patients:
            where = "" if isinstance(twin, DigitalTwin) else f" {twin}"
            raise InputDataError([f"--patient: {patient!r} is not in the twin{where} (its "
                                  f"patients: {', '.join(t.patients[:8])}"
                                  f"{' …' if len(t.patients) > 8 else ''})"])
        return build_patient_report(t, patient, out, backtest=bt, simulation=sim, seed=seed,
                                    progress=progress)
    return build_report(t, out, backtest=bt, simulation=sim, max_patients=max_patients,
                        seed=seed, progress=progress)


DEMO_SCENARIOS = [
    {"name": "erenumab", "type": "medication",
     "params": {"medication": "erenumab", "dosage": "70mg", "frequency": "monthly"}},
    {"name": "stress_reduction", "type": "behavioral",
     "params": {"behavior": "stress_reduction", "intensity": "moderate", "duration": "60min"}},
    {"name": "sleep_regularisation", "type": "behavioral",
     "params": {"behavior": "sleep_regularisation", "intensity": "moderate"}},
]


def demo(out: str | os.PathLike = "reports/demo", seed: int = 20261125,
         patients: int = 12, days: int = 365, progress=None) -> dict:
    """The whole workflow on a synthetic cohort, written under ``out``.

    Generates a cohort (``out/cohort``; with the defaults it is the committed one), backtests
    it over its last 60 days (``out/backtest.csv`` and siblings), fits the first patient's twin
    on the whole diary (``out/twin``), simulates interventions for that patient
    (``out/simulation.json``) and writes the report (``out/report.html``) of the backtest's
    cohort twin, with the backtest and the simulation.
    """
    import json

    say = progress or (lambda _stage, _done=None, _total=None: None)
    out = Path(out)
    folder = out / "cohort"
    say(f"generating {patients} patients × {days} days")
    generate(folder, patients=patients, days=days, seed=seed, force=True)  # the demo's own
    summary = cohort_summary(folder)
    c = load_cohort(folder)
    end = min(pd.Timestamp(e) for e in c.diary_periods()["end"])
    train_until = str((end - pd.Timedelta(days=60)).date())
    say(f"backtest: fit up to {train_until}, then walk forward")
    # one fit: the demo shows the workflow, not rolling refits
    bt = backtest(folder, out / "backtest.csv", train_until, seed=seed, progress=say,
                  refit_every=60, force=True, structure="fixed")  # the fit below chooses
    pid = c.patient_ids[0]
    say(f"fitting the twin of {pid}")
    twin = fit(folder, out / "twin", patients=[pid], seed=seed, force=True,
               progress=lambda stage: say(f"{pid}: {stage}"))
    say("simulating interventions")
    scenarios = applicable_scenarios(twin, DEMO_SCENARIOS)
    atomic.write_text(out / "scenarios.json", json.dumps(scenarios, indent=1))
    simulate(out / "twin", out / "scenarios.json", seed=seed, out=out / "simulation.json",
             force=True)
    say("writing the report")
    cohort_twin = bt.first_twin
    report(cohort_twin, out / "report.html", backtest=out / "backtest.csv",
           simulation=out / "simulation.json", seed=seed, force=True,
           progress=lambda _stage, done, total: say("writing the report", done, total))
    return {"summary": summary, "scores": bt.scores, "report": out / "report.html",
            "twin": out / "twin"}


def applicable_scenarios(twin: DigitalTwin, scenarios: list[dict]) -> list[dict]:
    """The scenarios (docs/SCHEMA.md entries) that apply to every patient of the twin.

    A behavioural scenario needs the covariate it changes; a preventive cannot be started by
    a patient already taking it.
    """
    from migraine_bayes.interventions import parse_scenarios
    from migraine_bayes.interventions.simulation import check_scenarios

    keep = []
    for scenario in scenarios:
        try:
            for pid in twin.patients:
                check_scenarios(twin, pid, parse_scenarios([scenario]))
        except (InputDataError, ValueError, KeyError):
            continue
        keep.append(scenario)
    return keep


def resolve_structure(structure: str | None, options: FeatureOptions, deviations: str,
                      cluster: ClusterOptions | None, cohort_twin: bool = True) -> str:
    """``fixed`` or ``auto``: the default is auto unless flags fix the structure.

    Lags, shapes, interactions, sparse deviations or a two-stage cluster fit fix it (as does
    a backtest of separate patient twins, ``cohort_twin`` False); asked for ``auto`` with them,
    the clash is named before any fit.
    """
    fixing = (dataclasses.replace(options, overuse=False) != FeatureOptions()
              or deviations != "normal" or cluster is not None)
    if structure is None:
        return "fixed" if fixing or not cohort_twin else "auto"
    if structure not in ("fixed", "auto"):
        raise InputDataError([Problem("arguments", f"structure must be fixed or auto, not "
                                      f"{structure!r}")], "arguments")
    if structure == "auto" and not cohort_twin:
        raise InputDataError([Problem("arguments", "--structure auto chooses a cohort twin's "
                                      "structure: not with --separate patient twins or one "
                                      "patient's backtest")], "arguments")
    if structure == "auto" and fixing:
        raise InputDataError([Problem("arguments", "--structure auto chooses the lags, shapes, "
                                      "interactions and deviations itself (and fits in one "
                                      "stage): leave those flags out, or fix the structure")],
                             "arguments")
    return structure


def sampler_settings(cohort: bool, seed: int = 0, draws: int | None = None,
                     chains: int | None = None, base: SamplerSettings | None = None
                     ) -> SamplerSettings:
    """The default settings of a cohort (hierarchical) or a patient fit, with these changes.

    ``base``: other defaults instead (a two-stage fit's per-patient
    :data:`~migraine_bayes.twin.two_stage.PATIENT_STAGE_SETTINGS`).
    """
    base = base or (COHORT_SETTINGS if cohort else PATIENT_SETTINGS)
    return dataclasses.replace(base, seed=seed, draws=draws or base.draws,
                               chains=chains or base.chains)


def _check_patients(c: Cohort, patients: list[str] | None) -> None:
    unknown = sorted(set(patients or []) - set(c.patient_ids))
    if unknown:
        raise KeyError(f"unknown patient ids {unknown}; available: {c.patient_ids}")


def fit(cohort: str | os.PathLike, out: str | os.PathLike, patients: list[str] | None = None,
        seed: int = 0, draws: int | None = None, chains: int | None = None,
        outcome: str = "onset", validate: bool | None = None, force: bool = False,
        dedupe: bool = False, lags: tuple[int, ...] = (),
        deviations: str = "normal", shapes: str = "fixed",
        interactions: bool = False, progress=None,
        cluster: ClusterOptions | None = None, structure: str | None = None,
        overuse: bool = False) -> DigitalTwin:
    """Fit a twin and save it to ``out``: one patient → patient model, several → hierarchy.

    ``cluster`` (:class:`~migraine_bayes.twin.cluster.ClusterOptions`): fit the cohort in two
    stages, each patient on a Dask worker (:mod:`migraine_bayes.twin.two_stage`). Its finished work
    is kept in ``.<out name>.fitting`` beside ``out`` until the twin is saved, so an interrupted fit
    started again with the same data and settings fits only the patients still missing.

    ``validate`` (time-ordered holdout, a second fit) defaults to on for one patient and off
    for a cohort, where it would double the fitting time. ``out`` holding the twin of the same
    patients gets a new version (the old one kept under ``versions/``, the audit trail
    continued); a twin of other patients or any other non-empty folder is replaced only with
    ``force`` (:func:`migraine_bayes.twin.store.twin_target`). ``lags``: extra days at which
    triggers may act; ``shapes="learned"``: graded triggers get a learned piecewise-linear
    dose–response; ``interactions``: pairwise trigger interactions under a horseshoe
    (:class:`migraine_bayes.model.FeatureOptions`); ``deviations``: the cohort prior of
    patients' trigger deviations (``normal`` or sparse ``horseshoe``). ``progress(stage)`` is
    told each stage (:mod:`migraine_bayes.progress`).

    ``structure``: ``"auto"`` (the default unless lags, shapes, interactions, deviations or a
    cluster are given, which fix the structure: ``"fixed"``) chooses the structure from the
    data — every candidate of :mod:`migraine_bayes.twin.selection` fitted and compared by
    PSIS-LOO, the simplest within noise of the best kept, the table in the twin's
    ``selection``; only the kept one gets the validation fit.
    """
    options = FeatureOptions(tuple(lags), shapes, interactions, overuse)
    structure = resolve_structure(structure, options, deviations, cluster)
    c = load_cohort(cohort, dedupe=dedupe)
    _check_patients(c, patients)
    ids = patients or c.patient_ids
    twin_target(out, ids, force, aside=False)  # fail before a long fit, not after it
    settings = sampler_settings(len(ids) > 1, seed, draws, chains)
    work = None

    validating = (len(ids) == 1) if validate is None else validate

    def one_stage(options: FeatureOptions, deviations: str, validating: bool) -> DigitalTwin:
        if len(ids) == 1:
            return DigitalTwin.fit_patient(c, ids[0], outcome=outcome, settings=settings,
                                           validate=validating, options=options,
                                           progress=progress)
        return DigitalTwin.fit_cohort(c, ids, outcome=outcome, settings=settings,
                                      validate=validating, options=options,
                                      deviations=deviations, progress=progress)

    if structure == "auto":
        twin = fit_chosen(c, ids, outcome, settings, overuse, diary_days(c, ids), progress)
        if validating:  # the kept structure's held-out check, as a fixed fit would have it
            twin = twin.validated(settings, progress)
    elif cluster is not None and len(ids) > 1:
        work = fitting_dir(out)
        per_patient = sampler_settings(False, seed, draws, chains, PATIENT_STAGE_SETTINGS)
        twin = fit_two_stage(c, ids, outcome, per_patient, settings, options, deviations,
                             cluster, work, progress)
    else:
        twin = one_stage(options, deviations, validating)
    if progress is not None:
        progress("saving the twin")
    save_fit(twin, out, ids, force)
    if work is not None:
        shutil.rmtree(work, ignore_errors=True)  # the twin is saved: its parts are no use
    return twin


def diary_days(cohort: Cohort, ids: list[str]) -> int:
    """Diary days of the patients ``ids``, all together."""
    periods = cohort.diary_periods()
    periods = periods[periods.index.isin(ids)]
    return int(((periods["end"] - periods["start"]).dt.days + 1).sum())


def fitting_dir(out: str | os.PathLike) -> Path:
    """Where a two-stage fit of the twin ``out`` keeps its finished work until it is saved."""
    real = real_path(out)
    return real.with_name(f".{real.name}.fitting")


def forecast(twin: str | os.PathLike | DigitalTwin, cohort: str | os.PathLike | None = None,
             date: str | None = None, horizon: int = 1, dedupe: bool = False,
             prodrome: list[str] | None = None) -> pd.DataFrame:
    """Forecast table (docs/SCHEMA.md) from a twin, optionally on newer cohort data.

    ``prodrome``: premonitory symptoms reported tonight — the forecast is then given them.

    A twin given by its directory records every forecast in its audit trail, with the twin
    version and a hash of the data the forecast used.
    """
    t = twin if isinstance(twin, DigitalTwin) else DigitalTwin.load(twin)
    c = load_cohort(cohort, dedupe=dedupe) if cohort is not None else None
    if isinstance(twin, DigitalTwin):
        return t.forecast(c, date=date, horizon=horizon, prodrome=prodrome)
    panel = t.data_panel(c, date)  # built once: forecast and the audit's data hash
    if prodrome is not None:
        panel = with_prodrome(panel, prodrome)
    table = t.forecast_panel(panel, horizon)
    hashes = data_hashes(panel)
    with twin_lock(twin):
        audit.record_forecasts(twin, table, t.record.version, hashes)
    return table


def forecast_fhir(twin: str | os.PathLike, table: pd.DataFrame,
                  base: str | None = None) -> dict:
    """A forecast table of the twin at ``twin`` as a FHIR R4 searchset ``Bundle``.

    One ``RiskAssessment`` per row (:mod:`migraine_bayes.adapters.fhir`): the twin's name and
    version in ``meta``, its outcome in ``prediction``, the top factors by their human names
    in ``basis``.
    """
    from migraine_bayes.adapters.fhir import searchset
    from migraine_bayes.model.labels import feature_name

    record = TwinRecord.read(Path(twin))
    return searchset(table, Path(twin).name, record.version, record.outcome, base,
                     lambda f: feature_name(f)[0])


def predict_state(twin: str | os.PathLike | DigitalTwin, cohort: str | os.PathLike | None = None,
                  date: str | None = None, dedupe: bool = False) -> pd.DataFrame:
    """Tomorrow's measured state per patient and feature with 90% intervals.

    :meth:`~migraine_bayes.twin.core.DigitalTwin.predict_next_state`; the table is
    ``patient_id, date, feature, mean, low, high``.
    """
    t = twin if isinstance(twin, DigitalTwin) else DigitalTwin.load(twin)
    c = load_cohort(cohort, dedupe=dedupe) if cohort is not None else None
    return t.predict_next_state(c, date)


def update(twin: str | os.PathLike, cohort: str | os.PathLike | Cohort, seed: int = 0,
           retrain_when_due: bool = True, rewrite_history: bool = False,
           dedupe: bool = False) -> dict:
    """Filter a saved twin over new diary days, save it, audit it; retrain if the policy says.

    The update transaction (:func:`migraine_bayes.living.transaction.update_saved`): the whole
    update holds the twin's lock; the save and its audit rows commit together. A
    cohort whose past days differ from what the twin has seen is refused
    (:class:`~migraine_bayes.twin.core.HistoryError`, naming the first difference) unless
    ``rewrite_history``, which is recorded in the audit trail.

    Returns the new days' one-step forecasts (``days``), the filter's adaptations, the
    retraining reasons, the history changes accepted and, when retrained, the new version.
    """
    c = cohort if isinstance(cohort, Cohort) else load_cohort(cohort, dedupe=dedupe)
    return update_saved(twin, c, seed=seed, rewrite_history=rewrite_history,
                        retrain_when_due=retrain_when_due).as_dict()


def drift(twin: str | os.PathLike, cohort: str | os.PathLike | None = None,
          window: int = 28, seed: int = 0, out: str | os.PathLike | None = None,
          force: bool = False, dedupe: bool = False) -> list[dict]:
    """Drift checks of a saved twin on its last ``window`` days (JSON to ``out``); audited."""
    import json

    if out is not None:
        check_output_file(out, force, inputs=[twin, cohort])
    t = DigitalTwin.load(twin)
    checks = check_drift(t, load_cohort(cohort, dedupe=dedupe) if cohort is not None else None,
                         window, seed=seed)
    with twin_lock(twin):
        audit.record_event(twin, t.record.version, "drift", {
            c["patient_id"]: {"alarm": c["alarm"], "category": c["category"]} for c in checks})
    if out is not None:
        atomic.write_text(out, json.dumps(checks, indent=1))
    return checks


def monitor(twin: str | os.PathLike, cohort: str | os.PathLike | Cohort, start: str,
            out: str | os.PathLike, every: int = 7, seed: int = 0, retrain: bool = True,
            retrain_after: int = 90, force: bool = False, dedupe: bool = False,
            progress=None) -> pd.DataFrame:
    """Walk a saved twin forward over ``cohort`` from ``start`` (:mod:`.living.monitor`).

    Every ``every`` days: update, sequential drift test, retraining after an alarm or when
    more than ``retrain_after`` diary days have passed since the fit (``retrain=False``:
    never). Rows (``patient_id, date, alarm, category,
    statistic, p_value, evidence, twin_version, retrained``) go to ``out`` (CSV) after each
    step; the same walk started again continues where it stopped. An ``out`` that is not this
    walk's is replaced only with ``force``.
    """
    if not walk_file(out).is_file():
        check_output_file(out, force, inputs=[twin, cohort])
    c = cohort if isinstance(cohort, Cohort) else load_cohort(cohort, dedupe=dedupe)
    policy = MonitorPolicy(every=every, retrain=retrain, max_days_since_fit=retrain_after)
    return walk(twin, c, start, out, policy, seed=seed, progress=progress)


def audit_verify(twin: str | os.PathLike) -> audit.Verification:
    """Check a twin's audit trail: hash chain, append-only triggers, the head the twin recorded."""
    path = real_path(twin)
    meta_file = path / "twin.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"{twin} is not a twin directory (no twin.json)")
    with twin_lock(path):
        audit.apply_journal(path)
        return audit.verify(path, TwinRecord.read(path).audit_head, files=True)


COMMITTED_COHORT = Path(__file__).resolve().parent.parent / "data" / "synthetic"


def sbc(out: str | os.PathLike, replicates: int = 200, seed: int = 0,
        cohort: str | os.PathLike | None = None, days: int = 180,
        lags: tuple[int, ...] = (), shapes: str = "fixed",
        interactions: bool = False, progress=None) -> SBCResult:
    """Simulation-based calibration of the single-patient model; histogram and ranks to ``out``.

    The covariates are those of the first patient of ``cohort`` (default: the committed
    synthetic cohort of a source checkout, else a freshly simulated patient); outcomes and
    parameters are drawn from the prior. ``lags``: stress also acts at these lags (the
    distributed lag: its effect and lag weights are ranked too); ``shapes="learned"``: sleep
    debt gets a hinge at 1 h (its slope change is ranked); ``interactions``: stress ≥ 6 and
    sleep debt ≥ 1 h on one day (its effect is ranked). ``progress(stage, done, total)`` after
    each replicate. The closed-form components — the attack-course families and the state
    model's pooled regression (:mod:`migraine_bayes.evaluation.component_sbc`) — are checked
    with as many replicates, into ``sbc_course_ranks.*`` and ``sbc_state_ranks.*``
    (``result.components``).
    """
    from migraine_bayes.evaluation import run_sbc
    from migraine_bayes.evaluation.component_sbc import course_sbc, state_sbc
    from migraine_bayes.model import FeatureSpec, build_design, model_data

    if cohort is not None:
        c = load_cohort(cohort)
    elif COMMITTED_COHORT.is_dir():
        c = load_cohort(COMMITTED_COHORT)
    else:
        c = simulate_cohort(1, days, seed=seed).cohort
    panel = build_panel(c, patients=c.patient_ids[:1]).isel(day=slice(0, days))
    features = [f for f in (FeatureSpec("trigger.stress", "trigger.stress"),
                            FeatureSpec("derived.sleep_debt", "derived.sleep_debt"))
                if f.source in panel["feature"].values]
    if shapes == "learned" and len(features) > 1:
        features.append(FeatureSpec("derived.sleep_debt@over1", "derived.sleep_debt", "above",
                                    threshold=1.0))
    features += [FeatureSpec(f"{features[0].name}@lag{k}", features[0].source, lag=k)
                 for k in lags if features]
    if interactions and len(features) > 1:
        features.append(FeatureSpec("trigger.stress:derived.sleep_debt",
                                    "trigger.stress*derived.sleep_debt", "product",
                                    binary=True, levels=(6.0, 1.0)))
    design = build_design(panel, features=features)
    result = run_sbc(model_data(design), design, replicates=replicates, seed=seed,
                     progress=progress)
    out = Path(out)
    result.histogram(out / "sbc_ranks.png")
    with atomic.atomic_path(out / "sbc_ranks.csv") as tmp:
        result.ranks.to_csv(tmp, index=False)
    if progress is not None:
        progress("SBC of the attack-course and state models")
    result.components = {"course": course_sbc(replicates, seed=seed),
                         "state": state_sbc(replicates, seed=seed)}
    for name, part in result.components.items():
        part.histogram(out / f"sbc_{name}_ranks.png")
        with atomic.atomic_path(out / f"sbc_{name}_ranks.csv") as tmp:
            part.ranks.to_csv(tmp, index=False)
    return result


def _compare(compare: str) -> tuple[str, float | None]:
    """``current,erenumab:140`` → ("erenumab", 140.0)."""
    parts = [p.strip() for p in compare.split(",")]
    if len(parts) != 2 or parts[0].lower() not in ("current", "none"):
        raise InputDataError([Problem("arguments", "--compare is A,B with A 'current' (the "
                                      "patient's regimen now) and B a preventive, e.g. "
                                      "current,erenumab:140", None, "compare", compare)],
                             "design settings")
    name, _, dose = parts[1].partition(":")
    try:
        return name.strip().lower(), (float(dose.removesuffix("mg")) if dose else None)
    except ValueError:
        raise InputDataError([Problem("arguments", "a dose is a number of mg, e.g. "
                                      "erenumab:140", None, "compare", parts[1])],
                             "design settings") from None


def design_trial(twin: str | os.PathLike, patient: str, compare: str, weeks: int = 16,
                 mcid: float = 0.3, sims: int = 1000, seed: int = 0,
                 out: str | os.PathLike | None = None, force: bool = False) -> dict:
    """Which N-of-1 trial ``patient`` should run next (:mod:`.interventions.trial_design`).

    ``compare``: ``current,B[:dose]`` — the current regimen against adding the preventive B.
    Scores every candidate schedule and the fixed 12-week ABAB by preposterior simulation on
    the twin's posterior and returns the plan (JSON written atomically to ``out``).
    """
    import json

    from migraine_bayes.interventions.trial_design import design

    if out is not None:
        check_output_file(out, force, inputs=[twin])
    medication, dose = _compare(compare)
    t = DigitalTwin.load(twin)
    if patient not in t.patients:
        raise InputDataError([Problem("arguments", "patient not in this twin", None,
                                      "patient", patient)], "design settings")
    plan = design(t, patient, medication, dose, weeks, mcid, sims, seed)
    if out is not None:
        atomic.write_text(out, json.dumps(plan, indent=1))
    return plan


def decide_trial(twin: str | os.PathLike, plan: str | os.PathLike, seed: int = 0) -> dict:
    """The running decision of a planned trial, from the twin updated with its diary days.

    Reads B's effect for the plan's patient from the twin's posterior (the diary must hold
    the course of B), applies the plan's stopping rule — stop (benefit or no benefit) or
    continue — and records the decision with its evidence in the twin's audit trail.
    """
    import json

    from migraine_bayes.interventions.trial_design import decision

    spec = json.loads(Path(plan).read_text(encoding="utf-8"))
    t = DigitalTwin.load(twin)
    out = decision(t, spec, seed)
    with twin_lock(twin):
        audit.record_event(twin, t.record.version, "trial decision", out)
    return out


def simulate(twin: str | os.PathLike, scenarios: str | os.PathLike | list[dict],
             horizon: int = 30, draws: int = 2000, seed: int = 0,
             patients: list[str] | None = None, out: str | os.PathLike | None = None,
             force: bool = False) -> dict:
    """Compare scenarios with the no-intervention baseline (docs/SCHEMA.md's simulate JSON).

    Every scenario is checked before anything is simulated; with ``out`` the JSON is written
    atomically.
    """
    import json

    from migraine_bayes.interventions import compare, comparison_json, parse_scenarios

    if out is not None:
        check_output_file(out, force, inputs=[twin])
    model = DigitalTwin.load(twin)
    parsed = parse_scenarios(scenarios)
    result = comparison_json(compare(model, parsed, horizon, draws, seed, patients), str(twin),
                             horizon, draws, seed)
    if out is not None:
        atomic.write_text(out, json.dumps(result, indent=1))
    return result
