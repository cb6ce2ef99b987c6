"""The HTML report of a twin (a cohort, or one patient of it): what a paper's supplement shows.

The report opens with one screen of summary (the cohort, the headline validation with 90%
intervals, each patient's top triggers, the recommended scenario and its evidence), then a table
of contents and the sections: data and outcome; model and methods; sampler diagnostics; posterior
predictive checks and LOO-PIT; trigger sensitivities; population insights (a cohort: subgroups
by trigger profile, attack rate by season and weather, share of patients sensitive to each
trigger); the N-of-1 treatment report (CENT 2015);
the backtest's validation to TRIPOD+AI (scores beside the baselines, calibration, decision
curve, subgroups, forecast series); counterfactual interventions; and the TRIPOD+AI checklist
saying where each item is answered. Per-patient figures are small multiples (one grid per kind).
Every figure is also written as PNG and SVG into ``<report>_figures/`` beside the HTML.

:func:`build_patient_report` writes the one-patient version a clinician reads in a minute.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np
import pandas as pd

from migraine_bayes.analysis.insights import attack_rates, subgroups, trigger_shares
from migraine_bayes.analysis.sensitivity import (
    interactions,
    lag_weights,
    learned_shapes,
    measured_effects,
    population_effects,
    trigger_sensitivities,
)
from migraine_bayes.analysis.treatment_effects import treatment_effects
from migraine_bayes.course import course_summary
from migraine_bayes.course.predict import warning_symptoms
from migraine_bayes.dims import PATIENT
from migraine_bayes.metrics import calibration_curve
from migraine_bayes.reports import figures
from migraine_bayes.reports.checks import patient_checks
from migraine_bayes.reports.html import Document
from migraine_bayes.reports.summary import Summary, summarise
from migraine_bayes.reports.tripod import checklist_html
from migraine_bayes.store import atomic
from migraine_bayes.twin.data_use import data_use

MIN_POPULATION = 3  # patients for the population section
TRACE_VARS = ["mu_alpha", "alpha", "gamma", "tau_refractory", "lengthscale", "gp_amplitude"]
SCORE_COLUMNS = ["model", "days", "attacks", "auc", "auc_low", "auc_high", "auc_within",
                 "brier", "brier_low", "brier_high", "ece", "ece_low", "ece_high",
                 "log_score", "sensitivity", "specificity", "ppv", "npv", "f1",
                 "diagnostic_odds_ratio", "lead_time_days"]
VALIDATION_COLUMNS = ("model", "prevalence", "auc", "auprc", "auprc_low", "auprc_high",
                      "observed_expected", "citl", "citl_low", "citl_high", "cal_slope",
                      "cal_slope_low", "cal_slope_high", "cal_intercept", "brier_skill",
                      "brier_skill_low", "brier_skill_high", "within_c", "within_c_low",
                      "within_c_high", "within_c_q25", "within_c_q75")
SECTIONS = {"summary": "Summary", "data": "Data and outcome", "methods": "Model and methods",
            "diagnostics": "Sampler diagnostics", "checks": "Posterior predictive checks",
            "sensitivities": "Trigger sensitivities",
            "population": "Population insights",
            "treatments": "Treatments: N-of-1 report (CENT 2015)",
            "course": "Attack course and acute response",
            "validation": "Validation: forecasts walked forward (TRIPOD+AI)",
            "interventions": "Counterfactual interventions",
            "tripod": "TRIPOD+AI checklist"}


def figure_folder(out: str | os.PathLike) -> Path:
    """Where the report ``out`` writes its figures as PNG and SVG: ``<stem>_figures/``."""
    out = Path(out)
    return out.with_name(f"{out.stem}_figures")


def build_report(twin, out: str | os.PathLike, backtest: dict | None = None,
                 simulation: dict | None = None, title: str | None = None,
                 max_patients: int = 12, seed: int = 0, progress=None) -> Path:
    """Write the report of ``twin`` to ``out`` (one self-contained HTML file, atomically).

    Parameters
    ----------
    twin : DigitalTwin
        The fitted twin (one patient or a cohort).
    out : path
        The HTML file; its figures also go to :func:`figure_folder` as PNG and SVG.
    backtest : dict, optional
        ``forecasts``, ``predictions``, ``scores``, ``state_errors`` … DataFrames (as written by
        ``migraine-twin backtest``) and ``meta`` (information, threshold, train_until).
    simulation : dict, optional
        The JSON of ``migraine-twin simulate``.
    title : str, optional
        Default: "Migraine digital twin — N patient(s)".
    max_patients : int
        Patients drawn in the small multiples (all enter the pooled figures and tables).
    seed : int
        Seeds the predictive replicates and the randomised PIT.
    progress : callable, optional
        Called with ``(stage, done, total)`` as the sections are written.
    """
    step = _stepper(progress, 10)  # sections written, of 10
    shown = twin.patients[:max_patients]
    with atomic.atomic_directory(figure_folder(out)) as folder:
        doc = Document(title or f"Migraine digital twin — {len(twin.patients)} patient(s)",
                       figure_dir=folder)
        step("summary")
        sens = trigger_sensitivities(twin)
        treat = treatment_effects(twin)
        _summary(doc, summarise(twin, sens, backtest, simulation, treat,
                                max_patients=max_patients))
        doc.contents()
        step("data")
        _data(doc, twin)
        _methods(doc, twin, backtest)
        step("diagnostics")
        _diagnostics(doc, twin)
        step("predictive checks")
        _predictive_checks(doc, twin, shown, seed)
        step("sensitivities")
        _sensitivities(doc, twin, sens, shown)
        step("population")
        if twin.record.hierarchical and len(twin.patients) >= MIN_POPULATION:
            _population(doc, twin, seed)
        step("treatments")
        _treatments(doc, treat)
        _course(doc, twin, shown)
        step("validation")
        if backtest is not None:
            _backtest(doc, backtest, shown)
        step("interventions")
        if simulation is not None:
            _simulation(doc, simulation, shown)
        step("checklist")
        _checklist(doc)
        atomic.write_text(out, doc.render())
        step("done")
    return Path(out)


def build_patient_report(twin, patient: str, out: str | os.PathLike,
                         backtest: dict | None = None, simulation: dict | None = None,
                         seed: int = 0, progress=None) -> Path:
    """Write the one-patient report of ``patient`` (a clinician reads it in a minute).

    The patient's summary (diary, forecast quality, top triggers, treatments tried, recommended
    scenario), then their trigger forest plot, treatment effects, attacks per 4 weeks against the
    twin, their backtest forecasts and the counterfactual scenarios.
    """
    if patient not in twin.patients:
        raise KeyError(f"patient {patient!r} is not in the twin (it has "
                       f"{', '.join(twin.patients[:5])}{' …' if len(twin.patients) > 5 else ''})")
    step = _stepper(progress, 4)
    with atomic.atomic_directory(figure_folder(out)) as folder:
        doc = Document(f"Migraine twin — patient {patient}", figure_dir=folder)
        step("summary")
        sens = trigger_sensitivities(twin)
        treat = treatment_effects(twin, patients=[patient])
        mine = treat[treat["patient_id"] == patient] if len(treat) else treat
        _summary(doc, summarise(twin, sens, backtest, simulation, mine, patient=patient))
        doc.contents()
        step("triggers")
        doc.section("sensitivities", "Triggers")
        own = measured_effects(sens)
        own = own[own["patient_id"] == patient]
        doc.figure(figures.forest(own, f"{patient}: trigger sensitivities"),
                   f"{patient}: odds ratio of an attack per step of each factor measured (90% "
                   "credible interval); red: P(effect > 0) ≥ 0.95 or ≤ 0.05.", "forest")
        if len(mine):
            doc.section("treatments", "Treatments")
            _treatment_table(doc, mine)
        if twin.course is not None:
            rows = course_summary(twin.course.sel({PATIENT: [patient]}))
            if len(rows):
                doc.section("course", "How the attacks unfold")
                doc.table(rows.drop(columns="patient_id"))
        step("checks")
        doc.section("checks", "The twin against the diary")
        c = patient_checks(twin, patient, seed=seed)
        doc.figure(figures.ppc_monthly_counts(c.y, c.replicates, patient),
                   f"{patient}: attacks per 4 weeks against 90% intervals of diaries replicated "
                   "from the twin.", "ppc")
        step("forecasts")
        if backtest is not None and (backtest["forecasts"]["patient_id"] == patient).any():
            doc.section("validation", "Forecasts walked forward")
            doc.figure(figures.forecast_series(backtest["forecasts"], patient),
                       f"{patient}: one-day-ahead attack probability with its 90% interval; "
                       "triangles mark the attacks that happened.", "forecasts")
        sims = [p for p in (simulation or {}).get("patients", []) if p["patient_id"] == patient]
        if sims:
            doc.section("interventions", "What if …?")
            _scenarios(doc, sims[0], simulation["horizon_days"])
        step("done")
        atomic.write_text(out, doc.render())
    return Path(out)


def _stepper(progress, total: int):
    count = iter(range(total + 1))

    def step(stage: str) -> None:
        if progress is not None:
            progress(stage, next(count), total)
    return step


def _summary(doc: Document, s: Summary) -> None:
    doc.open_box("summary", SECTIONS["summary"])
    doc.paragraph(s.cohort)
    boxes = "".join(f"<div>{html.escape(label)}<b>{html.escape(value)}</b>"
                    f"<span class=\"meta\">{html.escape(note)}</span></div>"
                    for label, value, note in s.headline)
    doc.raw(f'<div class="headline">{boxes}</div>')
    for line in s.verdicts:
        doc.paragraph(line, css="warn" if line.startswith("WARNING") else None)
    if len(s.triggers):
        doc.heading("Top triggers per patient")
        doc.table(s.triggers, css="text")
    if len(s.treatments):
        doc.heading("Treatments tried")
        doc.table(s.treatments)
    if len(s.recommendations):
        doc.heading("Recommended scenario")
        doc.table(s.recommendations, css="text")
    doc.close_box()


def _data(doc: Document, twin) -> None:
    m = twin.record
    doc.section("data", SECTIONS["data"])
    kind = "hierarchical cohort" if m.hierarchical else "single-patient"
    doc.paragraph(f"Model {m.model_name} v{m.model_version}, twin version "
                  f"{m.version}, fitted {m.created} with migraine_bayes "
                  f"{m.package_version}; {kind} fit.", css="meta")
    cov = pd.DataFrame([{"patient": pid, "diary start": c["diary_start"],
                         "diary end": str((pd.Timestamp(c["diary_start"])
                                           + pd.Timedelta(days=c["diary_days"] - 1)).date()),
                         "diary days": c["diary_days"], "known days": c["known_days"],
                         "attacks": c["events"],
                         "attacks / 28 days": 28 * c["events"] / max(c["known_days"], 1)}
                        for pid, c in m.coverage.items()])
    source = Path(str(m.data_source or "")).name or "not recorded"  # no full path
    doc.paragraph(f"Data source: cohort folder '{source}'; "
                  f"{len(cov)} patient(s), diaries from {cov['diary start'].min()} to "
                  f"{cov['diary end'].max()}; every patient with a diary day enters.")
    doc.table(cov)
    outcome = {"onset": "the day an attack began (its onset date in the attacks table)",
               "headache_day": "a day with headache (any attack lasting into the day)"}
    doc.paragraph(
        f"Outcome: {outcome.get(m.outcome, m.outcome)}, as recorded by the patient in "
        "the diary (self-report: no outcome assessor, no blinding). Horizon: the next day; "
        "every forecast uses only what was known by the end of the day before. Study size: "
        "every diary day of every patient enters; there is no sample-size calculation.")
    doc.paragraph(
        "Missing days: a day without a diary entry has an unknown outcome and is left out of "
        "the likelihood (never counted as attack-free); a missing measurement is imputed "
        "within the patient by a Gaussian AR(1) bridge between the days around it (cohort "
        "mean and spread when a patient never measured it), and the model carries the "
        "imputation's variance instead of treating the imputed value as known. Input tables are "
        "validated first: a bad row is an error naming file, row, column and rule, never a "
        "silent drop.")
    doc.paragraph(
        "Treatments: a preventive or behavioural course is an exposure in [0, 1] that ramps up "
        "after the start and washes out after the end (preventives: 14 and 30 days; "
        "behavioural programmes: 7 and 14 days), with one log-odds effect per patient and "
        "treatment (see the N-of-1 section). Acute drugs do not prevent attacks: they enter "
        "the attack-course model (pain-free at 2 h and recurrence, per drug) and, as the days "
        "of acute use in the 30 days before each day, the attack model — medication overuse "
        "(ICHD-3 8.2: 10 days a month for triptans, ergots, opioids and combinations, 15 for "
        "simple analgesics). The window ends the day before, so a dose taken for an attack "
        "cannot explain that attack.")
    use = data_use(twin)
    unused = use[use["used_by"] == "unused"]
    doc.paragraph("What each recorded variable and treatment went into"
                  + (f" ({len(unused)} unused, with the reason):" if len(unused) else
                     " (nothing recorded is left unused):"))
    doc.table(use.rename(columns={"item": "recorded", "kind": "type", "used_by": "used by",
                                  "how": "as"}), css="text", name="data-use")


def _structure(twin) -> str:
    """The predictors' structure as fitted, in words (what was actually run)."""
    options = twin.spec.options
    parts = []
    if options.lags:
        parts.append("distributed lags over " + ", ".join(
            str(k) for k in (0, *options.lags)) + " days")
    if options.shapes == "learned":
        parts.append("learned dose-responses (hinges at the dose quartiles)")
    if options.interactions:
        parts.append("pairwise trigger interactions under a horseshoe prior")
    sel = twin.record.selection
    chosen = (f" Structure chosen by PSIS-LOO among {len(sel.get('table', []))} candidates: "
              f"{sel.get('chosen')} ({sel.get('reason')}).") if sel else ""
    return ("Linear on that scale, each factor on its own day (symptoms and physiology the "
            "day before)" if not parts else "With " + "; ".join(parts)) + "." + chosen


def _methods(doc: Document, twin, backtest: dict | None = None) -> None:
    spec = twin.spec
    doc.section("methods", SECTIONS["methods"])
    evaluated = ("evaluated by walking forward through time (validation section)"
                 if backtest is not None else "not evaluated in this report: no backtest was "
                 "run (`migraine-twin backtest`, then `report --backtest`)")
    doc.paragraph(
        "Objective: development of per-patient prediction models (digital twins) of next-day "
        f"attack risk, {evaluated}. Each day's attack is "
        "Bernoulli with log-odds = the patient's baseline + Σ trigger effects × standardised "
        "triggers + a refractory term after each attack + Σ treatment effects × exposure + a "
        "latent susceptibility (a Hilbert-space Gaussian process over days); a cohort twin "
        "pools every patient's parameters around population means (partial pooling), which is "
        "how heterogeneity between patients is modelled. Priors, equations and the meaning of "
        "each parameter: docs/MODEL.md in the repository; the code is open source "
        "(migraine_bayes).")
    doc.paragraph(
        f"Predictors ({len(spec.feature_specs)}): the registry's triggers, environment, "
        "premonitory symptoms and derived features (pressure change, stress let-down, sleep "
        "debt …), each centred on the patient's own mean and scaled by the cohort's SD, so an "
        "effect is per within-patient SD (presence for 0/1 factors), and is also reported per "
        "natural unit (per hour of sleep, per 10 hPa); measured by the patient or a wearable, "
        f"not blinded to the outcome. {_structure(twin)}")
    _selection_table(doc, twin)
    alarm = (f"; an alarm when it reaches {backtest['meta'].get('threshold', 'the')} (the "
             "backtest's threshold)" if backtest is not None and backtest.get("meta") else "")
    doc.paragraph(
        "Output: the posterior-predictive probability of an attack tomorrow with its 90% "
        f"interval{alarm}. No resampling for class imbalance: the likelihood is fitted on every "
        "day, which keeps the probabilities calibrated.")


def _selection_table(doc: Document, twin) -> None:
    """The structure selection's table: each candidate's ELPD and its difference to the best."""
    sel = twin.record.selection
    if not sel or not sel.get("table"):
        return
    rows = pd.DataFrame(sel["table"])
    table = pd.DataFrame({
        "structure": rows["structure"] + np.where(rows["structure"] == sel["chosen"],
                                                  " (kept)", ""),
        "ELPD (PSIS-LOO)": rows["elpd_loo"], "SE": rows["se"],
        "ELPD below the best": rows["elpd_diff"], "SE of the difference": rows["se_diff"],
        "effective parameters": rows["p_loo"],
        "days with Pareto k > 0.7": rows.get("high_pareto_k", 0),
        "sampler checks": np.where(rows.get("checks_ok", pd.Series(True, index=rows.index)),
                                   "passed", "failed")})
    doc.paragraph(f"Structure selection ({sel['criterion']}; rule: {sel['rule']}). "
                  f"Kept: {sel['chosen']} — {sel['reason']}.")
    doc.table(table, digits=4, name="structure-selection")


def _diagnostics(doc: Document, twin) -> None:
    d = twin.record.diagnostics
    doc.section("diagnostics", SECTIONS["diagnostics"])
    status = "all checks passed" if d["ok"] else "CHECKS FAILED: " + "; ".join(d["failures"])
    doc.paragraph(f"Sampler {twin.record.sampler.get('sampler')}, "
                  f"{twin.record.sampler.get('chains')} chains × "
                  f"{twin.record.sampler.get('draws')} draws: {status}.",
                  css=None if d["ok"] else "warn")
    rows = {"max R-hat (≤ 1.01)": d["max_rhat"], "min bulk ESS (≥ 400)": d["min_ess_bulk"],
            "min tail ESS (≥ 400)": d["min_ess_tail"], "divergences (0)": d["divergences"],
            "min E-BFMI (≥ 0.3)": d.get("min_bfmi")}
    doc.table(pd.DataFrame({"check": list(rows), "value": list(rows.values())}), digits=4)
    fitting = twin.record.fitting
    if fitting:  # a two-stage fit: the worst of every patient's checks above; each one here
        per = pd.DataFrame([{"patient_id": p, **{k: f[k] for k in (
            "ok", "attempts", "max_rhat", "min_ess_bulk", "min_ess_tail", "divergences")}}
            for p, f in fitting["patients"].items()])
        failed = per[~per["ok"]]
        doc.paragraph(
            f"Fitted in two stages (docs: Large cohorts): the population on "
            f"{len(fitting['population_patients'])} patients (checks "
            f"{'passed' if fitting['population_diagnostics']['ok'] else 'FAILED'}), then each "
            f"patient against it: {int(per['ok'].sum())} of {len(per)} patient fits pass "
            f"their checks ({int((per['attempts'] > 1).sum())} after a retry); "
            f"{len(fitting['not_fitted'])} patient(s) could not be fitted and are forecast "
            "from the population." + (" Patients whose fit failed its checks:" if len(failed)
                                      else ""), css="warn" if len(failed) else None)
        if len(failed):
            doc.table(failed, digits=3)
    v = twin.record.validation
    if v and v.get("skipped"):
        doc.paragraph(f"Time-ordered validation skipped: {v['skipped']}.")
    elif v:
        doc.paragraph(f"Time-ordered validation ({v['kind']}): {v['n_days']} days, "
                      f"{v['events']} attacks; Brier {v['brier']:.3f} (base rate "
                      f"{v['brier_base_rate']:.3f}), AUC {v['auc']:.3f}; the validation fit's "
                      f"sampler checks {'passed' if v.get('checks_ok') else 'FAILED'}.")
    doc.figure(figures.sampler_trace(twin.posterior, TRACE_VARS),
               "Posterior densities per chain and rank plots of the baseline, refractory and "
               "latent-state parameters: the chains agree and their ranks are uniform when "
               "they mix.", "trace")


def _predictive_checks(doc: Document, twin, shown: list[str], seed: int) -> None:
    doc.section("checks", SECTIONS["checks"])
    design = twin.design()  # built once for every patient's checks
    checks = [patient_checks(twin, pid, seed=seed + k, design=design)
              for k, pid in enumerate(twin.patients)]
    doc.figure(figures.ppc_monthly_grid([c for c in checks if c.patient in shown]),
               "Attacks per 4 weeks of each patient (dots) against the 90% interval and median "
               "of diaries replicated from the posterior.", "ppc-monthly")
    doc.figure(figures.ppc_intervals([c.y for c in checks], [c.replicates for c in checks]),
               "Days between attack onsets, all patients pooled: the observed distribution "
               "against the 90% band of replicated diaries.", "ppc-gaps")
    pit = np.concatenate([c.pit for c in checks])
    k = np.concatenate([c.pareto_k for c in checks])
    doc.figure(figures.loo_pit(pit, k),
               "LOO-PIT: randomised probability integral transform of each known day under "
               "its PSIS leave-one-out predictive; a calibrated twin stays inside the band.",
               "loo-pit")


def _sensitivities(doc: Document, twin, sens: pd.DataFrame, shown: list[str]) -> None:
    doc.section("sensitivities", SECTIONS["sensitivities"])
    if twin.record.hierarchical and len(twin.patients) > 1:
        pop = population_effects(twin)
        pop = pop[pop["kind"] == "effect"]
        doc.figure(figures.forest(pop, "Population (mean patient) effects"),
                   "Population-level odds ratios with 90% credible intervals; red: "
                   "P(effect > 0) ≥ 0.95 or ≤ 0.05.", "forest-population")
    measured = measured_effects(sens)
    doc.figure(figures.forest_grid(measured, shown),
               "Each patient's odds ratio of an attack per natural step of each factor they "
               "measured (the step in brackets: per hour, per 10 hPa …, or presence for 0/1 "
               "factors; 90% credible interval), factors in one order in every panel.",
               "forest-patients")
    flagged = measured[measured["p_positive"] >= 0.95][[
        "patient_id", "feature", "natural_step", "or_natural", "or_natural_low",
        "or_natural_high", "p_positive", "coverage"]]
    doc.paragraph(f"{len(flagged)} patient-trigger pairs raise risk with P(effect > 0) ≥ 0.95:")
    doc.table(flagged)
    lags = lag_weights(twin)
    if len(lags):
        doc.paragraph("Distributed lag: the share of each trigger's effect acting on its own "
                      "day and on the days after (population weights, 90% intervals); "
                      "p_peak = probability that the lag carries the largest share.")
        doc.table(lags)
    shapes = learned_shapes(twin)
    if len(shapes):
        doc.paragraph(f"Learned dose-response ({shapes.attrs['of']}), in each trigger's own "
                      "units: the half-effect dose (threshold: where the effect reaches half "
                      "its largest size over the observed doses, 90% interval; p_rise = "
                      "probability of an effect at all), the knot where the slope changes most "
                      "(knee, its probability) and the slopes below and above it (log-odds per "
                      "unit).")
        doc.table(shapes)
    pairs = interactions(twin)
    if len(pairs):
        doc.paragraph("Trigger interactions (population, regularised horseshoe): odds ratio "
                      "of both triggers being high on one day (from the doses in 'levels'), on "
                      "top of their own effects, 90% intervals; unsupported pairs are shrunk "
                      "to OR 1. Strongest ten:")
        doc.table(pairs.head(10))


def _population(doc: Document, twin, seed: int) -> None:
    """Subgroups by trigger profile, attack rate by season and weather, trigger shares."""
    doc.section("population", SECTIONS["population"])
    groups = subgroups(twin, seed=seed)
    k = len(groups.mixture.weights)
    doc.paragraph(
        f"Subgroups of patients by their posterior trigger profiles: a Gaussian mixture over "
        f"patients' trigger effects that deconvolves each patient's posterior uncertainty "
        f"(extreme deconvolution), the number of subgroups chosen by BIC "
        f"({', '.join(f'K={n}: {b:.0f}' for n, b in groups.bic.items())}): {k} subgroup(s). "
        "A profile lists the subgroup's largest mean odds ratios per step; mean membership is "
        "the average posterior probability of the subgroup among the patients assigned to it.")
    doc.table(groups.table())
    doc.paragraph("Attack rate per 30 diary days across the cohort, by season and by weather "
                  "(cohort tertiles of the day's temperature and pressure change, on days it "
                  "was measured), with 90% intervals from resampling patients.")
    doc.table(attack_rates(twin, seed=seed))
    doc.paragraph("Share of patients sensitive to each trigger, among those who measured it: "
                  "credibly (P(effect > 0) ≥ 0.95) and in posterior expectation (OR per step "
                  "> 1.2, mean and 90% interval over draws).")
    doc.table(trigger_shares(twin))


TREATMENT_COLUMNS = ["patient_id", "treatment", "kind", "start", "days_before", "rate_before",
                     "days_after", "rate_after", "crude_rr", "rate_ratio", "rr_low", "rr_high",
                     "p_benefit"]


def _treatment_table(doc: Document, rows: pd.DataFrame) -> None:
    doc.table(rows[[c for c in TREATMENT_COLUMNS if c in rows]])


def _treatments(doc: Document, treat: pd.DataFrame) -> None:
    doc.section("treatments", SECTIONS["treatments"])
    if not len(treat):
        doc.paragraph("No patient of this twin started a treatment during the diary.")
        return
    doc.paragraph(
        "For every treatment a patient's diary shows: the known diary days before and from the "
        "start, attacks per 28 days in each, the crude after/before rate ratio, and the "
        "model's rate ratio — per posterior draw, expected attacks on the patient's own days "
        "from the start with the treatment at full effect over the same days without it, the "
        "latent susceptibility, refractory period and triggers held as fitted (median, 90% "
        "interval), with P(benefit) = P(rate ratio < 1). Pooled rows sum the expected attacks "
        "of every patient who tried the treatment, draw by draw. Ramp-up and carry-over: the "
        "exposure ramps up and washes out with the time constants in 'handling' (a period "
        "without wash-out is not needed: carry-over is modelled). Autocorrelation: the latent "
        "Gaussian process and the refractory term carry day-to-day dependence, so days are "
        "not treated as independent. A course that began before the diary has no before-"
        "period: its effect rests on the prior and, in a cohort, on the other patients.")
    doc.table(treat[[c for c in [*TREATMENT_COLUMNS[:3], "handling", *TREATMENT_COLUMNS[3:],
                                 "patients"] if c in treat]])
    for name, rows in treat.groupby("treatment", sort=False):
        doc.figure(figures.treatment_forest(rows, str(name)),
                   f"{name}: model rate ratio of attacks at full effect per patient who started "
                   "it and pooled (90% intervals); crosses: the crude after/before ratio.",
                   f"treatment-{name}")


def _course(doc: Document, twin, shown: list[str]) -> None:
    doc.section("course", SECTIONS["course"])
    if twin.course is None:
        doc.paragraph("This twin was saved without a course posterior: refit it to add one.")
        return
    rows = course_summary(twin.course.sel({PATIENT: shown}), symptoms=False)
    if not len(rows):
        doc.paragraph("The diaries record no attack course (no end, severity, aura, prodrome "
                      "or acute outcome): nothing to show.")
        return
    doc.paragraph(
        "How each patient's attacks unfold and respond (migraine_bayes.course): the share of "
        "attacks with a prodrome and with aura, the median hours of the prodrome before the "
        "headache, of the headache and of the postdrome, the mean peak severity (0–3), and per "
        "acute drug the probability of being pain-free at 2 h and of the headache returning "
        "within 48 h: posterior mean (90% interval); and the premonitory symptoms that at "
        "least 30% of the patient's prodromes list (posterior mean). "
        "Every quantity is partially pooled across patients (logit-normal, log-normal and "
        "Dirichlet hierarchies integrated exactly over their hyperparameters); acute drugs "
        "start from the catalogue's published rates, so a patient with few treated attacks "
        "is close to the trial figure. A headache or postdrome cut short by the next attack "
        "counts as at least that long.")
    wide = rows.assign(value=[f"{m:.2g} ({lo:.2g}–{hi:.2g})" for m, lo, hi in
                              zip(rows["mean"], rows["low"], rows["high"], strict=True)])
    table = (wide.pivot(index="patient_id", columns="quantity", values="value")
             .reindex(columns=list(dict.fromkeys(rows["quantity"]))).rename_axis(columns=None))
    table["prodromes usually list"] = [", ".join(warning_symptoms(twin.course, p)) or "–"
                                       for p in table.index]
    doc.table(table.reset_index())


def _backtest(doc: Document, bt: dict, shown: list[str]) -> None:
    run = bt.get("meta", {})  # the backtest's settings (<stem>.meta.json)
    doc.section("validation", SECTIONS["validation"])
    doc.paragraph(f"Development data: diaries up to {run.get('train_until')}; evaluation: "
                  "each later day forecast from the days before it (temporal validation, "
                  f"information: {run.get('information')}; alarm threshold "
                  f"{float(run.get('threshold', float('nan'))):.3f}). The evaluation days "
                  "are later days of the same patients: the same setting, eligibility, outcome "
                  "and predictors. Baselines "
                  "forecast the same days from the same information. On synthetic cohorts, "
                  "oracle_hazard is the generator's true probability and oracle the same "
                  "updated with the day-before premonitory symptoms under the generator's "
                  "own symptom model; oracle_filtered knows every true parameter but infers "
                  "the hidden susceptibility from the outcomes before the day (the bound of "
                  "a forecaster that reads diaries). Intervals are 90% bootstrap intervals "
                  "over days.")
    scores = bt["scores"]
    doc.table(scores[[c for c in SCORE_COLUMNS if c in scores]])
    validation = bt.get("validation")
    if validation is not None and len(validation):
        doc.heading("Discrimination, calibration and overall performance")
        doc.paragraph("TRIPOD+AI measures (Collins et al., BMJ 2024), 90% bootstrap intervals: "
                      "area under the precision-recall curve (auprc; against the prevalence), "
                      "observed/expected events and calibration-in-the-large (citl, the "
                      "intercept with the forecast's logit as offset; 0 = right on average), "
                      "calibration intercept and slope (attack ~ a + b logit p; slope < 1: too "
                      "extreme), Brier skill against each patient's own running base rate, and "
                      "the within-patient C (median and quartiles over patients).")
        doc.table(validation[[c for c in VALIDATION_COLUMNS if c in validation]])
    models = [m for m in ("twin", "oracle", "logistic")
              if m in set(bt["predictions"]["model"])]
    doc.figure(figures.reliability(bt["predictions"], models),
               "Reliability diagram of the backtest forecasts of the twin, the oracle and the "
               "best-known baseline (equal-count bins, Jeffreys 90% intervals of the observed "
               "rate; the twin's bin counts in the table below).", "reliability")
    doc.table(_reliability_bins(bt["predictions"]))
    by_patient = bt.get("by_patient")
    if by_patient is not None and len(by_patient):
        doc.figure(figures.within_patient_c(by_patient),
                   "Within-patient C of each patient's own backtest days (one dot per patient, "
                   "per model): how well the forecasts rank a patient's own days.",
                   "within-patient-c")
    curve = bt.get("decision_curve")
    if curve is not None and len(curve):
        doc.heading("Decision curve")
        doc.figure(figures.decision_curve(curve),
                   "Net benefit of the twin's alarms (true alarms less false alarms weighted "
                   "by the threshold's odds, per patient-day; 90% bootstrap band) against "
                   "alarming on every day and on none (Vickers & Elkin 2006).", "decision-curve")
        doc.table(curve[curve["threshold"].isin(curve["threshold"].iloc[::3])])
    groups = bt.get("by_subgroup")
    if groups is not None and len(groups):
        doc.heading("Performance by subgroup (fairness)")
        doc.paragraph("The twin's validation by subgroup: days of history at the forecast, sex, "
                      "and whether the patient wore a wearable (90% bootstrap intervals).")
        twin_rows = groups[groups["model"] == "twin"]
        doc.table(twin_rows[["subgroup", "level"] + [c for c in VALIDATION_COLUMNS[1:]
                                                     if c in twin_rows] + ["days", "attacks"]])
    doc.heading("Forecasts")
    with_forecasts = [p for p in shown if (bt["forecasts"]["patient_id"] == p).any()]
    if with_forecasts:
        doc.figure(figures.forecast_grid(bt["forecasts"], with_forecasts),
                   "Each patient's one-day-ahead attack probability with its 90% interval; "
                   "triangles mark the attacks that happened.", "forecasts")
    if "state_errors" in bt and len(bt["state_errors"]):
        doc.paragraph("Predicting the measured state: one-step-ahead error of each feature "
                      "on the backtest days (MAE in the feature's units) of the state model "
                      "(the pooled VAR(1) the ex-ante forecasts use), of the feature's own "
                      "AR(1) and of the patient's training mean; the feature's lag-1 "
                      "autocorrelation; and the horizon (days) up to which the state model "
                      "beats the mean:")
        doc.table(bt["state_errors"])


def _reliability_bins(predictions: pd.DataFrame, bins: int = 10) -> pd.DataFrame:
    d = predictions[predictions["model"] == "twin"]
    c = calibration_curve(d["attack"].to_numpy(), d["p_attack"].to_numpy(), bins)
    return pd.DataFrame({"bin": np.arange(1, c["n"].size + 1), "days": c["n"].astype(int),
                         "attacks": np.rint(c["observed"] * c["n"]).astype(int),
                         "mean forecast": c["p_mean"], "observed rate": c["observed"],
                         "observed low": c["low"], "observed high": c["high"]})


def _scenarios(doc: Document, p: dict, horizon: int) -> None:
    doc.figure(figures.counterfactuals(p["scenarios"], p["patient_id"], horizon),
               f"{p['patient_id']}: expected attacks per scenario (90% interval); ranking "
               + " > ".join(p["ranking"]) + ".", f"scenarios-{p['patient_id']}")
    doc.table(_scenario_rows(p))


def _scenario_rows(p: dict) -> pd.DataFrame:
    rows = []
    for s in p["scenarios"]:
        r = s["relative_risk_reduction"]
        rows.append({"patient": p["patient_id"], "scenario": s["name"],
                     "expected attacks": s["expected_attacks"]["mean"],
                     "risk reduction": None if r is None else r["median"],
                     "RRR low": None if r is None else r["low"],
                     "RRR high": None if r is None else r["high"],
                     "P(best)": s["p_best"], "rank": s["rank"]})
    return pd.DataFrame(rows)


def _simulation(doc: Document, sim: dict, shown: list[str]) -> None:
    doc.section("interventions", SECTIONS["interventions"])
    doc.paragraph(f"{sim.get('method', '')}. Horizon {sim['horizon_days']} days, "
                  f"{sim['n_draws']} posterior draws.")
    patients = [p for p in sim["patients"] if p["patient_id"] in shown] or sim["patients"][:1]
    doc.figure(figures.counterfactual_grid(patients, sim["horizon_days"]),
               "Expected attacks per scenario for each simulated patient (90% interval; grey: "
               "no intervention).", "scenarios")
    doc.table(pd.concat([_scenario_rows(p) for p in patients], ignore_index=True))


def _checklist(doc: Document) -> None:
    doc.section("tripod", SECTIONS["tripod"])
    doc.paragraph("Where this report answers each item of TRIPOD+AI (Collins et al., BMJ "
                  "2024;385:e078378, doi:10.1136/bmj-2023-078378). Items about the study's "
                  "context, ethics and governance are the authors' to report.")
    present = {key: text for _, key, text in doc.sections}
    doc.raw(checklist_html(present))
