"""Federated two-stage fitting (issue 38): sites send Gaussian summaries, never diaries."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from migraine_bayes.cohort.io import load_cohort
from migraine_bayes.model import build_design
from migraine_bayes.model.inference import InferenceWarning, SamplerSettings
from migraine_bayes.state import build_panel
from migraine_bayes.synthetic.cohort import simulate_cohort
from migraine_bayes.twin import federation, two_stage
from migraine_bayes.twin.federation import FederationError, check_message
from migraine_bayes.twin.record import HORIZON_DAYS

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "data" / "synthetic"


def _sites(cohort, groups: list[list[str]], **kw) -> list[federation.Site]:
    singles = two_stage.ByPatient(cohort)
    return [federation.Site(f"site-{k + 1}", singles.of(g), **kw) for k, g in enumerate(groups)]


def test_the_agreed_design_is_the_pooled_design() -> None:
    """Sites' plans pooled by the coordinator give the features, interventions and scaling of
    one design over every patient — from per-site counts, centres and scales alone. (Each
    site's panel is built (state residualised, days aligned) on its own patients, so a feature's
    values, hence its centre and scale, differ from the pooled panel's a little.)"""
    cohort = load_cohort(COMMITTED)
    ids = cohort.patient_ids
    sites = _sites(cohort, [ids[:5], ids[5:9], ids[9:]])
    agreed = federation.agree([s.plan() for s in sites])
    pooled = build_design(build_panel(cohort, horizon_days=HORIZON_DAYS), "onset")
    assert [f["name"] for f in agreed["features"]] == pooled.feature_names
    assert agreed["interventions"] == sorted(pooled.interventions)
    for spec in pooled.features:
        center, scale = pooled.scaling[spec.name]
        got = agreed["scaling"][spec.name]
        assert got[0] == pytest.approx(center, rel=1e-9 if spec.binary else 0.01), spec.name
        # a continuous feature's scale: within-patient spread, pooled over sites' cells
        assert got[1] == pytest.approx(scale, rel=0.02), spec.name


def test_a_message_holds_only_its_declared_fields() -> None:
    good = {"version": federation.VERSION, "outcome": "onset", "features": [],
            "interventions": [], "longest_diary": 10, "scaling": {}}
    assert check_message("agreed", good) is good
    with pytest.raises(FederationError, match="unexpected \\['patient_id'\\]"):
        check_message("agreed", good | {"patient_id": "P-01"})
    with pytest.raises(FederationError, match="missing \\['scaling'\\]"):
        check_message("agreed", {k: v for k, v in good.items() if k != "scaling"})
    with pytest.raises(FederationError, match="may not carry a date"):
        check_message("agreed", good | {"interventions": ["started 2025-01-03"]})
    with pytest.raises(FederationError, match="layout"):
        check_message("agreed", good | {"version": 99})


def _gaussian_summaries(rng, n_sites: int, per_site: int, agreed: dict, truth: dict):
    """Sites' summaries of patients whose likelihoods are exactly Gaussian (known truth)."""
    features = [f["name"] for f in agreed["features"]]
    names = federation.param_names(features, agreed["interventions"])
    k = len(names)
    prior = federation.PatientPrior.for_outcome("onset")
    m0, s0 = federation.prior_vector(prior, features, agreed["interventions"])
    out = []
    for s in range(n_sites):
        means, covs = [], []
        for _ in range(per_site):
            theta = truth["mu"] + truth["sd"] * rng.standard_normal(k)
            a = rng.standard_normal((k, k)) * 0.3
            lik_prec = a @ a.T + np.diag(rng.uniform(4, 25, k))
            obs = rng.multivariate_normal(theta, np.linalg.inv(lik_prec))
            post_prec = lik_prec + np.diag(1 / s0**2)
            cov = np.linalg.inv(post_prec)
            means.append(cov @ (lik_prec @ obs + m0 / s0**2))
            covs.append(cov)
        out.append({"version": federation.VERSION, "site": f"site-{s + 1}", "params": names,
                    "patients": per_site, "mean": [m.tolist() for m in means],
                    "cov": [c.tolist() for c in covs], "prior_mean": m0.tolist(),
                    "prior_sd": s0.tolist(), "informed": [[True] * k] * per_site,
                    "amplitude2": [0.25] * per_site})
    return out


@pytest.mark.slow  # two NUTS fits (~40 s): CI runs it right after make test
def test_the_population_fit_integrates_gaussian_summaries_exactly() -> None:
    """With Gaussian likelihoods the closed-form marginal is exact: the coordinator's
    posterior equals that of the hierarchy with every patient's parameters sampled."""
    import pymc as pm

    agreed = {"version": federation.VERSION, "outcome": "onset",
              "features": [federation._spec_dict(federation.FeatureSpec("trigger.stress",
                                                                         "trigger.stress"))],
              "interventions": [], "longest_diary": 100, "scaling": {"trigger.stress": [0, 1]}}
    truth = {"mu": np.array([-2.0, 0.4, -1.0, 0.7, 3.4]),
             "sd": np.array([0.4, 0.3, 0.3, 0.2, 0.4])}
    summaries = _gaussian_summaries(np.random.default_rng(5), 3, 8, agreed, truth)
    pop = federation.fit_population(summaries, agreed,
                                    settings=SamplerSettings(draws=1000, tune=1000, chains=4))
    assert pop.diagnostics.ok, pop.diagnostics.failures
    # the same hierarchy with each patient's theta a latent variable
    eta, lam, _site, _names = federation.likelihoods(summaries)
    hyper = federation.Hyper()
    with pm.Model():
        mu_a = pm.Normal("mu_alpha", *hyper.mu_alpha)
        s_a = pm.LogNormal("sigma_alpha", np.log(hyper.sigma_alpha[0]), hyper.sigma_alpha[1])
        mu_sd, tau_med = hyper.column_priors(["trigger.stress"])
        mu_b = pm.Normal("mu_beta", 0, mu_sd[0])
        s_b = pm.LogNormal("tau_beta", np.log(tau_med[0]), hyper.tau_beta[1])
        mu_g = pm.Normal("mu_gamma", *hyper.mu_gamma)
        s_g = pm.LogNormal("sigma_gamma", np.log(hyper.sigma_gamma[0]), hyper.sigma_gamma[1])
        mus, sds = [mu_a, mu_b, mu_g], [s_a, s_b, s_g]
        for name, (m, s) in (("tau_refractory", hyper.log_tau_refractory),
                             ("lengthscale", hyper.log_lengthscale)):
            mus.append(pm.Normal(f"mu_log_{name}", m, s))
            sds.append(pm.LogNormal(f"sd_log_{name}", np.log(federation.NUISANCE_SPREAD[0]),
                                    federation.NUISANCE_SPREAD[1]))
        mu = pm.math.stack(mus)
        sd = pm.math.stack(sds)
        z = pm.Normal("z", shape=eta.shape)
        theta = mu + sd * z
        pm.Potential("lik", (theta * eta).sum() - 0.5 * (
            (theta[:, :, None] * lam * theta[:, None, :]).sum()))
        direct = pm.sample(1000, tune=1000, chains=4, random_seed=1, progressbar=False,
                           nuts_sampler="nutpie")
    for name in ("mu_alpha", "sigma_alpha", "mu_beta", "mu_gamma", "sigma_gamma"):
        a = pop.idata.posterior[name].values.ravel()
        b = direct.posterior[name].values.ravel()
        assert abs(a.mean() - b.mean()) < 0.15 * b.std(), name
        assert a.std() == pytest.approx(b.std(), rel=0.12), name


def _attack(messages, cohort) -> list[str]:
    """Everything in the messages that points back at a patient or a day (empty: none).

    Searched: every patient id; any date; any measured value precise enough to single out a
    record (three decimals or more: a value of one decimal, 0.5, is also a prior's scale);
    any three consecutive days of a patient's series (three different fractional values), in
    order, at any precision.
    """
    found = []
    ids = set(cohort.patient_ids)
    obs = cohort.observations.assign(value=pd.to_numeric(cohort.observations["value"],
                                                         errors="coerce")).dropna(
        subset=["value"])
    precise = {round(float(v), 9) for v in obs["value"] if abs(v * 100 - round(v * 100)) > 1e-9}
    runs = set()
    for _key, series in obs.sort_values("time").groupby(["patient_id", "variable"])["value"]:
        v = [round(float(x), 9) for x in series]
        runs |= {r for i in range(len(v) - 2) if len(set(r := tuple(v[i:i + 3]))) == 3
                 and all(x != round(x) for x in r)}  # not counts, 0/1 or constant stretches
    for kind, route, msg in messages:
        text = json.dumps(msg)
        found += [f"{kind} {route}: id {p}" for p in ids if p in text]
        if re.search(r"\d{4}-\d{2}-\d{2}", text):
            found.append(f"{kind} {route}: a date")
        numbers = [round(float(x), 9) for x in re.findall(r"-?\d+\.\d+(?:e-?\d+)?", text)]
        leaked = set(numbers) & precise
        if leaked:
            found.append(f"{kind} {route}: measured values {sorted(leaked)[:3]}")
        if any(tuple(numbers[i:i + 3]) in runs for i in range(len(numbers) - 2)):
            found.append(f"{kind} {route}: three days of a series")
        if kind == "summaries":  # per patient: fixed-size summaries, nothing per day
            k = len(msg["params"])
            assert all(len(m) == k for m in msg["mean"])
            assert all(len(c) == k and all(len(r) == k for r in c) for c in msg["cov"])
    return found


def test_the_attack_finds_a_leaked_series() -> None:
    """The attack of the messages is able to fail: ids, dates, values and series are found."""
    cohort = load_cohort(COMMITTED)
    obs = cohort.observations
    pid = cohort.patient_ids[0]
    mine = obs[obs["patient_id"] == pid]
    measured = mine.groupby("variable")["value"].apply(lambda v: (v != v.round()).mean())
    rows = mine[mine["variable"] == measured.idxmax()]  # a measured (fractional) series
    series = rows.sort_values("time")["value"].tolist()[:5]
    agreed = {"version": federation.VERSION, "outcome": "onset", "features": [],
              "interventions": [], "longest_diary": 10, "scaling": {}}
    assert _attack([("agreed", "x", agreed)], cohort) == []
    leaky = [("agreed", "x", agreed | {"interventions": [pid]}),
             ("agreed", "x", agreed | {"scaling": {"a": series}})]
    found = _attack(leaky, cohort)
    assert any(f"id {pid}" in f for f in found) and any("three days" in f for f in found)


@pytest.mark.slow  # 12 patient fits, a population fit, a comparison: CI runs it
def test_a_federation_fits_each_site_and_no_message_points_back(tmp_path: Path) -> None:
    cohort = load_cohort(simulate_cohort(6, 150, seed=38).write(tmp_path / "c"))
    ids = cohort.patient_ids
    settings = SamplerSettings(draws=200, tune=300, chains=2, cores=1, seed=1)
    sites = _sites(cohort, [ids[:2], ids[2:]], settings=settings, work_dir=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InferenceWarning)
        fed = federation.federate(sites, settings=SamplerSettings(draws=500, tune=500,
                                                                  chains=2, seed=1))
    # every message sent is attacked: no id, no date, no measured value, nothing per day
    assert _attack(fed.messages, cohort) == []
    assert [k for k, _r, _m in fed.messages] == [
        "plan", "plan", "agreed", "summaries", "agreed", "summaries", "population",
        "population"]
    # the summaries' patient order is not the site's
    first = fed.messages[5][2]
    assert first["patients"] == 4
    # each site holds an ordinary cohort twin of its own patients, fitted against the
    # federated population (its prior in the record), that forecasts
    for site, twin in zip(sites, fed.twins.values(), strict=True):
        assert twin.patients == site.ids
        assert twin.record.fitting["method"] == "federated"
        assert "federated population" in twin.record.fitting["federation"]["prior"]["source"]
        assert "mu_alpha" in twin.posterior.posterior
    # a site that drops out and returns resumes from its finished fits: same summaries
    again = sites[1].summaries(fed.messages[4][2])
    assert again == fed.messages[5][2]
