"""The HTML report of a twin (one patient or a cohort): what a paper's supplement would show.

Sections: the twin and its data; sampler diagnostics; posterior predictive checks (attacks per
4 weeks, time between attacks); LOO-PIT calibration; trigger sensitivities (forest plots,
population effects for a cohort twin); and, when given, a backtest (forecast series with the
attacks that happened, reliability diagram, the score table of the twin beside the baselines,
one-step state prediction errors) and counterfactual comparisons (``migraine-twin simulate``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .. import atomic
from ..sensitivity import (
    interactions,
    lag_weights,
    learned_shapes,
    population_effects,
    trigger_sensitivities,
)
from . import figures
from .checks import patient_checks
from .html import Document

TRACE_VARS = ["mu_alpha", "alpha", "gamma", "tau_refractory", "lengthscale", "gp_amplitude"]
SCORE_COLUMNS = ["model", "days", "attacks", "auc", "auc_low", "auc_high", "auc_within",
                 "brier", "brier_low", "brier_high", "ece", "ece_low", "ece_high",
                 "log_score", "sensitivity", "specificity", "ppv", "npv", "f1",
                 "diagnostic_odds_ratio", "lead_time_days"]


def build_report(twin, out: str | os.PathLike, backtest: dict | None = None,
                 simulation: dict | None = None, title: str | None = None,
                 max_patients: int = 12, seed: int = 0) -> Path:
    """Write the report of ``twin`` to ``out`` (one self-contained HTML file, atomically).

    Parameters
    ----------
    twin : DigitalTwin
        The fitted twin (one patient or a cohort).
    out : path
        The HTML file.
    backtest : dict, optional
        ``forecasts``, ``predictions``, ``scores``, ``state_errors`` DataFrames (as written by
        ``migraine-twin backtest``) and ``meta`` (information, threshold, train_until).
    simulation : dict, optional
        The JSON of ``migraine-twin simulate``.
    title : str, optional
        Default: "Migraine digital twin — N patient(s)".
    max_patients : int
        Patients shown one by one (PPC, forest plots, forecast series); all enter the pooled
        figures.
    seed : int
        Seeds the predictive replicates and the randomised PIT.
    """
    doc = Document(title or f"Migraine digital twin — {len(twin.patients)} patient(s)")
    shown = twin.patients[:max_patients]
    _overview(doc, twin)
    _diagnostics(doc, twin)
    _predictive_checks(doc, twin, shown, seed)
    _sensitivities(doc, twin, shown)
    if backtest is not None:
        _backtest(doc, backtest, shown)
    if simulation is not None:
        _simulation(doc, simulation, shown)
    out = Path(out)
    atomic.write_text(out, doc.render())
    return out


def _overview(doc: Document, twin) -> None:
    m = twin.meta
    kind = "hierarchical cohort" if m["hierarchical"] else "single-patient"
    doc.paragraph(f"Model {m['model_name']} v{m['model_version']}, twin version "
                  f"{m['version']}, fitted {m['created']} with migraine_bayes "
                  f"{m['package_version']}; outcome '{m['outcome']}'; {kind} fit.", css="meta")
    cov = pd.DataFrame([{"patient": pid, "diary start": c["diary_start"],
                         "diary days": c["diary_days"], "known days": c["known_days"],
                         "attacks": c["events"],
                         "attacks / 28 days": 28 * c["events"] / max(c["known_days"], 1)}
                        for pid, c in m["coverage"].items()])
    doc.heading("Data")
    doc.table(cov)


def _diagnostics(doc: Document, twin) -> None:
    d = twin.meta["diagnostics"]
    doc.heading("Sampler diagnostics")
    status = "all checks passed" if d["ok"] else "CHECKS FAILED: " + "; ".join(d["failures"])
    doc.paragraph(f"Sampler {twin.meta['sampler'].get('sampler')}, "
                  f"{twin.meta['sampler'].get('chains')} chains × "
                  f"{twin.meta['sampler'].get('draws')} draws: {status}.",
                  css=None if d["ok"] else "warn")
    rows = {"max R-hat (≤ 1.01)": d["max_rhat"], "min bulk ESS (≥ 400)": d["min_ess_bulk"],
            "min tail ESS (≥ 400)": d["min_ess_tail"], "divergences (0)": d["divergences"],
            "min E-BFMI (≥ 0.3)": d.get("min_bfmi")}
    doc.table(pd.DataFrame({"check": list(rows), "value": list(rows.values())}), digits=4)
    v = twin.meta.get("validation")
    if v and v.get("skipped"):
        doc.paragraph(f"Time-ordered validation skipped: {v['skipped']}.")
    elif v:
        doc.paragraph(f"Time-ordered validation ({v['kind']}): {v['n_days']} days, "
                      f"{v['events']} attacks; Brier {v['brier']:.3f} (base rate "
                      f"{v['brier_base_rate']:.3f}), AUC {v['auc']:.3f}; the validation fit's "
                      f"sampler checks {'passed' if v.get('checks_ok') else 'FAILED'}.")
    doc.figure(figures.sampler_trace(twin.posterior, TRACE_VARS),
               "Trace plots of the baseline, refractory and latent-state parameters; chains "
               "should overlap.")


def _predictive_checks(doc: Document, twin, shown: list[str], seed: int) -> None:
    doc.heading("Posterior predictive checks")
    design = twin.design()  # built once for every patient's checks
    checks = [patient_checks(twin, pid, seed=seed + k, design=design)
              for k, pid in enumerate(twin.patients)]
    for c in checks:
        if c.patient in shown:
            doc.figure(figures.ppc_monthly_counts(c.y, c.replicates, c.patient),
                       f"{c.patient}: attacks per 4 weeks against 90% intervals of diaries "
                       "replicated from the posterior.")
    doc.figure(figures.ppc_intervals([c.y for c in checks], [c.replicates for c in checks]),
               "Days between attack onsets, all patients pooled: the observed distribution "
               "against the 90% band of replicated diaries.")
    pit = np.concatenate([c.pit for c in checks])
    k = np.concatenate([c.pareto_k for c in checks])
    doc.figure(figures.loo_pit(pit, k),
               "LOO-PIT: randomised probability integral transform of each known day under "
               "its PSIS leave-one-out predictive; a calibrated twin stays inside the band.")


def _sensitivities(doc: Document, twin, shown: list[str]) -> None:
    doc.heading("Trigger sensitivities")
    sens = trigger_sensitivities(twin)
    if twin.meta["hierarchical"] and len(twin.patients) > 1:
        pop = population_effects(twin)
        doc.figure(figures.forest(pop, "Population (mean patient) effects"),
                   "Population-level odds ratios with 90% credible intervals; red: "
                   "P(effect > 0) ≥ 0.95 or ≤ 0.05.")
    # a never-measured feature has no own evidence; slope changes and interactions have
    # their own tables below
    measured = sens[(sens["coverage"] > 0) & (sens["kind"] == "effect")]
    for pid in shown:
        t = measured[measured["patient_id"] == pid]
        doc.figure(figures.forest(t, f"{pid}: trigger sensitivities"),
                   f"{pid}: odds ratio of an attack per step of each factor the patient "
                   "measured (90% credible interval; a step is one within-patient SD, or "
                   "presence for 0/1 factors); red: P(effect > 0) ≥ 0.95 or ≤ 0.05.")
    flagged = measured[measured["p_positive"] >= 0.95][[
        "patient_id", "feature", "odds_ratio", "or_low", "or_high", "p_positive", "coverage"]]
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
                      "units: the "
                      "half-effect dose (threshold: where the effect reaches half its largest "
                      "size over the observed doses, 90% interval; p_rise = probability of an "
                      "effect at all), the knot where the slope changes most (knee, its "
                      "probability) and the slopes below and above it (log-odds per unit).")
        doc.table(shapes)
    pairs = interactions(twin)
    if len(pairs):
        doc.paragraph("Trigger interactions (population, regularised horseshoe): odds ratio "
                      "of both triggers being high on one day (from the doses in 'levels'), on "
                      "top of their own effects, 90% intervals; unsupported pairs are shrunk "
                      "to OR 1. Strongest ten:")
        doc.table(pairs.head(10))


VALIDATION_COLUMNS = ("model", "prevalence", "auc", "auprc", "auprc_low", "auprc_high",
                      "observed_expected", "citl", "citl_low", "citl_high", "cal_slope",
                      "cal_slope_low", "cal_slope_high", "cal_intercept", "brier_skill",
                      "brier_skill_low", "brier_skill_high", "within_c", "within_c_q25",
                      "within_c_q75")


def _backtest(doc: Document, bt: dict, shown: list[str]) -> None:
    meta = bt.get("meta", {})
    doc.heading("Backtest: forecasts walked forward day by day")
    doc.paragraph(f"Fitted on data up to {meta.get('train_until')}, then each day forecast "
                  f"from the days before it (information: {meta.get('information')}; alarm "
                  f"threshold {float(meta.get('threshold', float('nan'))):.3f}). Baselines "
                  "forecast the same days from the same information. On synthetic cohorts, "
                  "oracle_hazard is the generator's true probability and oracle the same "
                  "updated with the day-before premonitory symptoms under the generator's "
                  "own symptom model; oracle_filtered knows every true parameter but infers "
                  "the hidden susceptibility from the outcomes before the day (the bound of "
                  "a forecaster that reads diaries). Intervals are 90% bootstrap intervals "
                  "over days.")
    scores = bt["scores"]
    doc.table(scores[[c for c in SCORE_COLUMNS if c in scores]])
    models = [m for m in ("twin", "oracle", "logistic")
              if m in set(bt["predictions"]["model"])]
    doc.figure(figures.reliability(bt["predictions"], models),
               "Reliability diagram of the backtest forecasts of the twin, the oracle and the "
               "best-known baseline (equal-count bins, Jeffreys 90% intervals of the observed "
               "rate).")
    validation = bt.get("validation")
    if validation is not None and len(validation):
        doc.paragraph("Validation measures of TRIPOD+AI (Collins et al., BMJ 2024), 90% "
                      "bootstrap intervals: area under the precision-recall curve (auprc; "
                      "against the prevalence), observed/expected events and "
                      "calibration-in-the-large (citl, the intercept with the forecast's logit "
                      "as offset; 0 = right on average), calibration intercept and slope "
                      "(attack ~ a + b logit p; slope < 1: too extreme), Brier skill against "
                      "each patient's own running base rate, and the within-patient C (median "
                      "and quartiles over patients).")
        doc.table(validation[[c for c in VALIDATION_COLUMNS if c in validation]])
    groups = bt.get("by_subgroup")
    if groups is not None and len(groups):
        doc.paragraph("The twin's validation by subgroup: days of history at the forecast, sex, "
                      "and whether the patient wore a wearable (90% bootstrap intervals).")
        twin_rows = groups[groups["model"] == "twin"]
        doc.table(twin_rows[["subgroup", "level"] + [c for c in VALIDATION_COLUMNS[1:]
                                                     if c in twin_rows] + ["days", "attacks"]])
    curve = bt.get("decision_curve")
    if curve is not None and len(curve):
        doc.paragraph("Decision curve of the twin's alarms: net benefit (true alarms less false "
                      "alarms weighted by the threshold's odds, per patient-day) against "
                      "alarming on every day and on none (Vickers & Elkin 2006).")
        doc.table(curve[curve["threshold"].isin(curve["threshold"].iloc[::3])])
    for pid in shown:
        if (bt["forecasts"]["patient_id"] == pid).any():
            doc.figure(figures.forecast_series(bt["forecasts"], pid),
                       f"{pid}: one-day-ahead attack probability with its 90% interval; "
                       "triangles mark the attacks that happened.")
    if "state_errors" in bt and len(bt["state_errors"]):
        doc.paragraph("One-step-ahead prediction error of the measured features on the "
                      "backtest days (MAE in the feature's units; 'mean only' predicts the "
                      "patient's training mean):")
        doc.table(bt["state_errors"])


def _simulation(doc: Document, sim: dict, shown: list[str]) -> None:
    doc.heading("Counterfactual interventions")
    doc.paragraph(f"{sim.get('method', '')}. Horizon {sim['horizon_days']} days, "
                  f"{sim['n_draws']} posterior draws.")
    for p in sim["patients"]:
        if p["patient_id"] not in shown:
            continue
        doc.figure(figures.counterfactuals(p["scenarios"], p["patient_id"], sim["horizon_days"]),
                   f"{p['patient_id']}: expected attacks per scenario (90% interval); ranking "
                   + " > ".join(p["ranking"]) + ".")
        rows = []
        for s in p["scenarios"]:
            r = s["relative_risk_reduction"]
            rows.append({"scenario": s["name"], "expected attacks": s["expected_attacks"]["mean"],
                         "risk reduction": None if r is None else r["median"],
                         "RRR low": None if r is None else r["low"],
                         "RRR high": None if r is None else r["high"],
                         "P(best)": s["p_best"], "rank": s["rank"]})
        doc.table(pd.DataFrame(rows))
