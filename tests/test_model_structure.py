"""Model pieces against independent computations, without sampling."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import COMMITTED
from scipy.special import expit

from migraine_bayes.cohort.io import load_cohort
from migraine_bayes.model import (
    FeatureOptions,
    FeatureSpec,
    PatientPrior,
    build_design,
    build_model,
    hsgp,
    model_data,
)
from migraine_bayes.model.design import residualised_means, transform_moments
from migraine_bayes.state import build_panel


@pytest.fixture(scope="module")
def panel():
    return build_panel(load_cohort(COMMITTED), patients=["syn125-005", "syn125-002"])


@pytest.fixture(scope="module")
def horizon_panel():
    """The same patients with days after the diary, as a fitted twin keeps them."""
    return build_panel(load_cohort(COMMITTED), patients=["syn125-005", "syn125-002"],
                       horizon_days=10)


@pytest.mark.parametrize("spec", [FeatureSpec("f", "x", "fall"),
                                  FeatureSpec("f2", "x", "fall", threshold=2.0),
                                  FeatureSpec("h", "x", "above", threshold=1.5),
                                  FeatureSpec("a", "x", "at_least", threshold=5, binary=True),
                                  FeatureSpec("i", "x")])
def test_transform_moments_match_monte_carlo(spec, rng) -> None:
    mean = np.array([-3.0, 0.5, 4.0, 6.0, 2.0])
    sd = np.array([2.0, 1.0, 1.5, 0.5, 0.0])
    m, v = transform_moments(spec, mean, sd)
    x = mean + sd * rng.standard_normal((400_000, mean.size))
    k = spec.threshold
    t = {"fall": np.clip(-x - k, 0, None), "above": np.clip(x - k, 0, None),
         "at_least": (x >= k).astype(float), "identity": x}[spec.transform]
    np.testing.assert_allclose(m, t.mean(0), atol=0.01)
    np.testing.assert_allclose(v, t.var(0), atol=0.02)


def test_probit_approximation_of_feature_uncertainty(rng) -> None:
    """E[logistic(eta + b x)] over x ~ N(0, s²) vs the model's eta / sqrt(1 + pi b² s² / 8)."""
    for eta, spread in [(-2.0, 0.5), (-1.0, 2.0), (0.5, 1.0), (-3.0, 4.0)]:
        mc = expit(eta + np.sqrt(spread) * rng.standard_normal(400_000)).mean()
        approx = expit(eta / np.sqrt(1 + np.pi * spread / 8))
        assert abs(mc - approx) < 0.02


def test_hsgp_approximates_the_exponentiated_quadratic_kernel() -> None:
    days = np.arange(365)
    center, half = hsgp.domain(365)
    phi = hsgp.basis(days, center, half, m=60)
    ell, amp = 40.0, 0.6
    s = hsgp.sqrt_psd(amp, ell, hsgp.sqrt_eigenvalues(half, 60)) ** 2
    approx = (phi * s) @ phi.T
    exact = amp**2 * np.exp(-0.5 * (days[:, None] - days[None, :]) ** 2 / ell**2)
    assert np.abs(approx - exact).max() < 0.02 * amp**2


def test_centred_basis_has_mean_zero_over_the_fit() -> None:
    center, half = hsgp.domain(200)
    phi = hsgp.basis(np.arange(200), center, half) - hsgp.basis_offset(200, center, half)
    np.testing.assert_allclose(phi.mean(0), 0, atol=1e-12)


def test_physiology_is_residualised_on_triggers(panel) -> None:
    adjusted = residualised_means(panel).sel(patient="syn125-005")
    raw = panel["imputed"].sel(patient="syn125-005")
    seen = panel["present"].sel(patient="syn125-005", feature="physiological.resting_hr").values
    stress = raw.sel(feature="trigger.stress").values[seen]
    hr_raw = raw.sel(feature="physiological.resting_hr").values[seen]
    hr_adj = adjusted.sel(feature="physiological.resting_hr").values[seen]
    assert abs(np.corrcoef(stress, hr_raw)[0, 1]) > 0.3  # the generator's stress → HR echo
    assert abs(np.corrcoef(stress, hr_adj)[0, 1]) < 1e-8  # least-squares residuals


def test_design_features_and_lags(panel) -> None:
    d = build_design(panel)
    names = d.feature_names
    assert "derived.pressure_fall" in names and "trigger.alcohol_5plus" in names
    assert "symptom.fatigue@lag1" in names and "symptom.fatigue" not in names
    assert "derived.days_since_attack" not in names
    k = names.index("symptom.fatigue@lag1")
    raw = panel["value"].sel(patient="syn125-005", feature="symptom.fatigue").values
    day = int(np.flatnonzero(raw == 1)[0])
    center = d.scaling["symptom.fatigue@lag1"][0]  # 0/1 features: cohort-centred, not scaled
    assert d.scaling["symptom.fatigue@lag1"][1] == 1.0 and 0 < center < 1
    assert d.z_mean[0, day + 1, k] == pytest.approx(1.0 - center)
    assert d.z_var[0, day + 1, k] == 0.0
    # continuous features: centred on the patient's own mean (within-patient effects)
    own = d.centers["syn125-005"]["trigger.stress"]
    stress = panel["value"].sel(patient="syn125-005", feature="trigger.stress").values
    assert own == pytest.approx(np.nanmean(stress))
    # a patient without a wearable: physiology absent, contributes nothing
    hr = names.index("physiological.resting_hr@lag1")
    assert (d.z_mean[1, :, hr] == 0).all() and (d.z_var[1, :, hr] == 0).all()
    # unknown outcomes stay unknown
    assert np.isnan(d.y[1]).sum() == int(panel["onset"].sel(patient="syn125-002").isnull().sum())


@pytest.mark.parametrize("hierarchical", [True, False])
def test_every_model_variable_has_named_dims(panel, hierarchical) -> None:
    data = model_data(build_design(panel))
    model = build_model(data, None if hierarchical else PatientPrior())
    dims = model.named_vars_to_dims
    for name in ("alpha", "beta", "gamma", "delta", "gp_amplitude", "gp_coef", "y_obs"):
        if name in model.named_vars:
            assert name in dims, name
    assert dims["beta"] == ("patient", "feature")
    assert list(model.coords["patient"]) == ["syn125-005", "syn125-002"]
    assert model.coords["feature"] == tuple(data.features)


def test_extra_lags_copy_triggers_only(panel) -> None:
    names = build_design(panel, options=FeatureOptions((1, 2))).feature_names
    assert {"trigger.alcohol_5plus@lag1", "derived.pressure_fall@lag2",
            "trigger.stress@lag2"} <= set(names)
    assert "derived.yesterday_unrecorded@lag1" not in names
    assert not any(n.startswith("environmental.") and "@lag" in n for n in names)
    assert sum(n.startswith("physiological.resting_hr") for n in names) == 1  # lag 1 already
    base = build_design(panel).feature_names
    assert names[: len(base)] == base


def test_patient_prior_round_trip() -> None:
    p = PatientPrior(beta={"trigger.stress": (0.1, 0.2)}, delta={"erenumab": (-0.5, 0.3)})
    assert PatientPrior.from_dict(p.to_dict()) == p
    mu, sd = p.beta_arrays(["trigger.stress", "trigger.other"])
    assert list(mu) == [0.1, 0.0] and list(sd) == [0.2, 0.5]


LEARNED = FeatureOptions(shapes="learned", interactions=True)
ALL = FeatureOptions((1, 2), "learned", True)


@pytest.mark.parametrize(("hierarchical", "outcome", "options", "deviations"),
                         [(True, "onset", None, "normal"), (False, "onset", None, "normal"),
                          (True, "headache_day", None, "normal"),
                          (False, "headache_day", None, "normal"),
                          (True, "onset", FeatureOptions((1, 2)), "normal"),
                          (False, "onset", FeatureOptions((1, 2)), "normal"),
                          (True, "onset", None, "horseshoe"),
                          (True, "onset", FeatureOptions((1, 2)), "horseshoe"),
                          (True, "onset", FeatureOptions(shapes="learned"), "normal"),
                          (True, "onset", LEARNED, "normal"), (False, "onset", LEARNED, "normal"),
                          (True, "headache_day", ALL, "horseshoe"),
                          (False, "onset", ALL, "normal")])
def test_every_caller_of_the_kernel_matches_the_compiled_likelihood(
        horizon_panel, hierarchical, outcome, options, deviations, monkeypatch) -> None:
    """The forecast, the particle filter, the counterfactual simulation and the sequential
    drift test's null (each through :mod:`migraine_bayes.model.kernel`) give, on random prior
    draws, the same per-day probabilities as the PyMC graph that is fitted — for every
    structure (lags, learned shapes, interactions, horseshoe, one patient and a cohort)."""
    _kernel_matches_graph(horizon_panel, hierarchical, outcome, options, deviations,
                          monkeypatch)


@pytest.mark.parametrize("hierarchical", [True, False])
def test_a_single_patient_model_broadcasts_the_same_likelihood(horizon_panel, hierarchical,
                                                               monkeypatch) -> None:
    """A one-patient graph broadcasts its parameters over the days (no patient index): the
    same per-day probabilities from every caller of the numpy kernel."""
    from pytensor.graph.traversal import ancestors

    one = horizon_panel.isel(patient=[1])
    data = model_data(build_design(one, "onset"))
    model = build_model(data, None if hierarchical else PatientPrior.for_outcome("onset"))
    assert "patient_index" not in {v.name for v in ancestors([model.logp()])}
    _kernel_matches_graph(one, hierarchical, "onset", None, "normal", monkeypatch)


def _graph_log_p(data, prior, hierarchical: bool, draws) -> np.ndarray:
    """log P(y_obs) per draw (S) and row (N) of the PyMC model of ``data`` at ``draws``."""
    import arviz as az
    import pymc as pm

    model = build_model(data, None if hierarchical else PatientPrior.for_outcome(data.outcome))
    ll = pm.compute_log_likelihood(az.InferenceData(posterior=draws), model=model,
                                   progressbar=False)
    return ll.log_likelihood["y_obs"].values.reshape(-1, len(data.y))


def _prior_twin(panel, design, domain, draws, hierarchical: bool, outcome: str):
    """A twin whose posterior is ``draws`` (prior draws): every caller reads it as a fit."""
    import arviz as az

    from migraine_bayes.twin import DigitalTwin
    from migraine_bayes.twin.record import FORMAT_VERSION, MODEL_NAME

    diary = panel["in_diary"].sum("day").values
    record = {
        "model_name": MODEL_NAME, "format_version": FORMAT_VERSION, "version": 1.0,
        "patients": design.patients, "outcome": outcome, "hierarchical": hierarchical,
        "prior": None if hierarchical else PatientPrior.for_outcome(outcome).to_dict(),
        "features": [f.to_dict() for f in design.features],
        "scaling": {k: list(v) for k, v in design.scaling.items()}, "centers": design.centers,
        "interventions": design.interventions,
        "domain": {"center": float(domain[0]), "half_width": float(domain[1]),
                   "basis_offset": np.asarray(domain[2]).tolist()},
        "coverage": {pid: {"diary_days": int(n)} for pid, n in zip(design.patients, diary,
                                                                     strict=True)},
        "diagnostics": {"ok": True}}
    return DigitalTwin(az.InferenceData(posterior=draws), panel, record)


def _kernel_matches_graph(panel, hierarchical: bool, outcome: str, options,
                          deviations: str, monkeypatch) -> None:
    import dataclasses

    import pymc as pm

    from migraine_bayes.interventions.simulation import PatientSimulator
    from migraine_bayes.living.drift import monitored_null
    from migraine_bayes.model.kernel import probabilities
    from migraine_bayes.twin import filtering
    from migraine_bayes.twin.fitting import fit_domain
    from migraine_bayes.twin.forecast import posterior_terms

    domain = fit_domain(panel)
    design = build_design(panel, outcome, options=options)
    data = model_data(design, domain, deviations)
    model = build_model(data, None if hierarchical else PatientPrior.for_outcome(outcome))
    with model:
        prior = pm.sample_prior_predictive(draws=6, random_seed=4).prior
    graph = _graph_log_p(data, prior, hierarchical, prior)  # (S, N)
    twin = _prior_twin(panel, design, domain, prior, hierarchical, outcome)
    monkeypatch.setattr(filtering, "OFFSET_SD", 0.0)  # the filter's drift offset stays 0
    n_draws = prior.sizes["chain"] * prior.sizes["draw"]
    for i, pid in enumerate(design.patients):
        rows = np.flatnonzero(data.patient_index == i)
        days = data.day_index[rows]
        y = data.y[rows]
        expected = np.exp(graph[:, rows])
        expected = np.where(y == 1, expected, 1 - expected)  # P(attack) per draw and day
        # the forecast
        terms = posterior_terms(prior, design, i, days, domain)
        np.testing.assert_allclose(probabilities(terms), expected, rtol=1e-6, atol=1e-9)
        # the particle filter: one particle, no drift offset — its one-step prediction
        for s in range(n_draws):
            state = filtering.FilterState.start(design.patients, 1, np.full(len(design.patients),
                                                                             days[0] - 1))
            state.index[:] = s
            res = filtering.filter_days(state, i, prior, design, days, domain,
                                        np.random.default_rng(0))
            np.testing.assert_allclose(res["p_pred"], expected[s], rtol=1e-6, atol=1e-9)
        # the sequential test's null, its latent state known (no AR(1) uncertainty)
        null = monitored_null(twin, design, i, days, int(days[0]) - 1)
        known = dataclasses.replace(null, eta=null.eta + terms["latent"],
                                    start=np.zeros(n_draws), start_var=np.zeros(n_draws),
                                    amplitude=np.zeros(n_draws), rho=np.ones(n_draws))
        np.testing.assert_allclose(known.probabilities(), expected, rtol=1e-6, atol=1e-9)
        # the simulation: its horizon's days, resampled covariates and simulated refractory
        # history, scored by the graph as data rows of the same draws
        sim = PatientSimulator(twin, pid, horizon_days=5, n_draws=n_draws, seed=1)
        p_sim = sim.run(None).p  # (S, H)
        since = np.empty_like(p_sim)
        since[:, 0] = sim.days_since0
        for h in range(1, p_sim.shape[1]):
            since[:, h] = np.where(sim.u[:, h - 1] < p_sim[:, h - 1], 1.0, since[:, h - 1] + 1.0)
        alpha = prior["alpha"].sel(patient=pid).values.ravel()
        order = np.array([np.flatnonzero(alpha == a)[0] for a in sim.draws.alpha])
        center, half, offset = domain
        n_basis = len(offset)
        rows_sim = dataclasses.replace(
            data, patient_index=np.full(p_sim.size, i), day_index=np.tile(sim.days, n_draws),
            z=sim.z_pool[sim.r].reshape(p_sim.size, -1),
            z_var=sim.v_pool[sim.r].reshape(p_sim.size, -1),
            exposure=np.tile(sim.exposure, (n_draws, 1)), days_since=since.ravel(),
            phi=np.tile(hsgp.basis(sim.days, center, half, n_basis) - np.asarray(offset),
                        (n_draws, 1)),
            y=np.ones(p_sim.size, dtype="int64"))
        scored = np.exp(_graph_log_p(rows_sim, prior, hierarchical, prior))  # (S, S*H)
        by_draw = scored.reshape(n_draws, n_draws, -1)[order, np.arange(n_draws)]
        np.testing.assert_allclose(p_sim, by_draw, rtol=1e-6, atol=1e-9)
    # the structure selection's pointwise log likelihood (PSIS-LOO's input), every known day
    from migraine_bayes.twin.selection import pointwise_log_likelihood

    ll = pointwise_log_likelihood(twin).values.reshape(n_draws, -1)
    rows = np.lexsort((data.day_index, data.patient_index))
    np.testing.assert_allclose(ll, graph[:, rows], rtol=1e-6, atol=1e-9)


def test_model_spec_round_trip_and_hash(panel) -> None:
    from migraine_bayes.model import ModelSpec

    design = build_design(panel, options=FeatureOptions((1,)))
    meta = {"outcome": "onset", "features": [f.to_dict() for f in design.features],
            "interventions": design.interventions,
            "scaling": {k: list(v) for k, v in design.scaling.items()},
            "centers": design.centers, "hierarchical": True, "prior": None,
            "domain": {"center": 10.0, "half_width": 20.0, "basis_offset": [0.1, 0.2]}}
    spec = ModelSpec.of(**meta)
    assert spec.feature_specs == design.features and spec.scaling_dict == design.scaling
    assert spec.lags == (1,)  # what a retraining refits with
    again = ModelSpec.of(**__import__("json").loads(__import__("json").dumps(meta)))
    assert again.digest() == spec.digest()
    meta["scaling"][design.features[0].name][1] *= 2  # an edited scale: another hash
    assert ModelSpec.of(**meta).digest() != spec.digest()


def test_distributed_lag_shares_each_trigger_effect_over_its_lags(panel) -> None:
    """With extra lags, a trigger's lagged copies are one patient effect times population lag
    weights (a simplex per trigger); a new patient drawn from the population keeps that."""
    import pymc as pm

    from migraine_bayes.model.features import LagStructure
    from migraine_bayes.model.population import with_new_patients
    from migraine_bayes.twin.fitting import fit_domain

    design = build_design(panel, options=FeatureOptions((1, 2)))
    lags = LagStructure.of(design.feature_names)
    assert lags.lags == [0, 1, 2] and "trigger.stress" in lags.triggers
    assert "physiological.resting_hr@lag1" not in lags.triggers  # no same-day column
    model = build_model(model_data(design, fit_domain(panel)))
    with model:
        prior = pm.sample_prior_predictive(draws=20, random_seed=2).prior
    w = prior["lag_weight"]
    assert w.dims[2:] == ("trigger", "lag")
    np.testing.assert_allclose(w.sum("lag"), 1.0, rtol=1e-9)
    names = design.feature_names
    for trigger in ("trigger.stress", "derived.pressure_fall"):
        for lag in (0, 1, 2):
            col = trigger if lag == 0 else f"{trigger}@lag{lag}"
            np.testing.assert_allclose(
                prior["beta"].sel(feature=col),
                prior["beta_total"].sel(effect=trigger) * w.sel(trigger=trigger, lag=lag),
                rtol=1e-9)
    assert "physiological.resting_hr@lag1" in prior["beta_total"]["effect"].values
    assert len(prior["beta_total"]["effect"]) == len(names) - 2 * len(lags.triggers)
    stored = prior.drop_vars([v for v in prior.data_vars if v.endswith("_z")])  # as saved
    extended = with_new_patients(stored, ["NEW"], 0.5, seed=1)
    new = extended.sel(patient="NEW")
    np.testing.assert_allclose(
        new["beta"].sel(feature="trigger.stress@lag2"),
        new["beta_total"].sel(effect="trigger.stress") * w.sel(trigger="trigger.stress", lag=2),
        rtol=1e-9)


def test_new_patient_prior_carries_the_population_lag_weights(panel) -> None:
    """A new patient fitted against a distributed-lag cohort gets Dirichlet lag priors with the
    population weights' mean and spread, and a prior on each trigger's total effect."""
    import pymc as pm

    from migraine_bayes.twin.fitting import fit_domain

    design = build_design(panel, options=FeatureOptions((1, 2)))
    model = build_model(model_data(design, fit_domain(panel)))
    with model:
        population = pm.sample_prior_predictive(draws=400, random_seed=5).prior
    prior = PatientPrior.from_population(population, design.feature_names, [])
    conc = np.asarray(prior.lag_weight["trigger.stress"])
    w = population["lag_weight"].sel(trigger="trigger.stress").values.reshape(-1, 3)
    np.testing.assert_allclose(conc / conc.sum(), w.mean(0), atol=1e-9)
    np.testing.assert_allclose(conc.sum(), 5.0, rtol=0.25)  # the hyperprior's 3 + 1 + 1
    assert "trigger.stress" in prior.beta and "trigger.stress@lag1" not in prior.beta
    assert PatientPrior.from_dict(prior.to_dict()) == prior
    new = build_model(model_data(design, fit_domain(panel)), prior)
    assert {"beta_total", "lag_weight"} <= set(new.named_vars)


def test_sparse_deviations_reach_new_patients_and_priors(panel) -> None:
    """Horseshoe deviations: local scales per patient and trigger, a slab; a new patient drawn
    from the population gets its own local scales, and its moment-matched prior is wider than
    the population mean's spread alone; the spec hash says which prior was fitted."""
    import pymc as pm

    from migraine_bayes.model import ModelSpec
    from migraine_bayes.model.population import with_new_patients
    from migraine_bayes.twin.fitting import fit_domain

    design = build_design(panel)
    model = build_model(model_data(design, fit_domain(panel), "horseshoe"))
    assert {"lambda_beta", "slab_beta"} <= set(model.named_vars)
    with model:
        prior = pm.sample_prior_predictive(draws=50, random_seed=3).prior
    stored = prior.drop_vars([v for v in prior.data_vars if v.endswith("_z")])
    new = with_new_patients(stored, ["NEW"], 0.5, seed=2).sel(patient="NEW")
    assert np.isfinite(new["beta"]).all() and (new["lambda_beta"] > 0).all()
    assert not np.allclose(new["beta"], stored["mu_beta"])
    p = PatientPrior.from_population(stored, design.feature_names, [])
    mu = stored["mu_beta"].sel(feature="trigger.stress")
    assert p.beta["trigger.stress"][1] > float(mu.std())
    with pytest.raises(ValueError, match="deviations"):
        model_data(design, fit_domain(panel), "laplace")
    meta = {"outcome": "onset", "features": [f.to_dict() for f in design.features],
            "interventions": design.interventions,
            "scaling": {k: list(v) for k, v in design.scaling.items()},
            "centers": design.centers, "hierarchical": True, "prior": None,
            "domain": {"center": 10.0, "half_width": 20.0, "basis_offset": [0.1]}}
    normal = ModelSpec.of(**meta)
    sparse = ModelSpec.of(**meta | {"deviations": "horseshoe"})
    assert normal.deviations == "normal" and sparse.deviations == "horseshoe"
    assert normal.digest() != sparse.digest()


def test_learned_shapes_and_interactions_in_the_design(panel) -> None:
    """Learned shapes: a graded trigger gets hinges at knots above its minimum (alcohol is
    graded, not "5 or more"); interactions: "both high on the same day" indicators of two
    same-day triggers (each from its upper dose quartile), after every other column; the
    options are read back from the feature list (what a retraining reuses)."""
    from migraine_bayes.model import ModelSpec
    from migraine_bayes.model.features import LagStructure

    design = build_design(panel, options=ALL)
    names = design.feature_names
    hinges = [f for f in design.features if "@over" in f.name and "@lag" not in f.name]
    assert "trigger.alcohol" in names and "trigger.alcohol_5plus" not in names
    debt = [f.threshold for f in hinges if f.source == "derived.sleep_debt"]
    assert debt == sorted(debt) and len(debt) >= 2 and min(debt) > 0
    fall = [f for f in hinges if f.source == "derived.pressure_change"]
    assert fall and all(f.transform == "fall" and f.threshold > 0 for f in fall)
    pairs = [k for k, n in enumerate(names) if ":" in n]
    assert pairs == list(range(len(names) - len(pairs), len(names)))
    assert "trigger.stress:derived.sleep_debt" in names
    assert design.features[names.index("trigger.stress:derived.sleep_debt")].levels[0] > 4
    assert not any("@over" in n or "@lag" in n for k in pairs for n in [names[k]])
    k = names.index("trigger.stress:derived.sleep_debt")
    a, b = names.index("trigger.stress"), names.index("derived.sleep_debt")
    for i, pid in enumerate(design.patients):
        known = (design.z_var[i, :, a] == 0) & (design.z_var[i, :, b] == 0) & (
            design.z_mean[i, :, k] != 0)
        dose = [design.z_mean[i, known, c] * design.scaling[names[c]][1]
                + design.centers[pid][names[c]] for c in (a, b)]  # back to the doses
        levels = design.features[k].levels
        both = (dose[0] >= levels[0] - 1e-9) & (dose[1] >= levels[1] - 1e-9)
        np.testing.assert_allclose(design.z_mean[i, known, k] + design.scaling[names[k]][0],
                                   both.astype(float), atol=1e-6)
    lags = LagStructure.of(names)  # a hinge's lagged copies move with its trigger's weights
    j = lags.trigger_index[names.index("derived.sleep_debt@lag1")]
    hinge_copy = names.index(f"derived.sleep_debt@over{debt[0]:g}@lag1")
    assert lags.trigger_index[hinge_copy] == j
    assert names[lags.base_index[hinge_copy]] == f"derived.sleep_debt@over{debt[0]:g}"
    assert FeatureOptions.of(design.features) == ALL
    meta = {"outcome": "onset", "features": [f.to_dict() for f in design.features],
            "interventions": design.interventions,
            "scaling": {n: list(v) for n, v in design.scaling.items()},
            "centers": design.centers, "hierarchical": True, "prior": None,
            "domain": {"center": 10.0, "half_width": 20.0, "basis_offset": [0.1]}}
    assert ModelSpec.of(**meta).options == ALL


def test_interactions_are_sparse_population_effects(panel) -> None:
    """An interaction has one effect for every patient (``beta_pair``, horseshoe); a new
    patient drawn from the population and a new patient's prior carry it."""
    import pymc as pm

    from migraine_bayes.model.population import with_new_patients
    from migraine_bayes.twin.fitting import fit_domain

    design = build_design(panel, options=LEARNED)
    model = build_model(model_data(design, fit_domain(panel)))
    assert {"tau_pair", "lambda_pair", "slab_pair", "beta_pair"} <= set(model.named_vars)
    with model:
        prior = pm.sample_prior_predictive(draws=30, random_seed=6).prior
    pair = "trigger.stress:derived.sleep_debt"
    for pid in design.patients:
        np.testing.assert_allclose(prior["beta"].sel(feature=pair, patient=pid),
                                   prior["beta_pair"].sel(pair=pair), rtol=1e-12)
    np.testing.assert_allclose(prior["mu_beta"].sel(feature=pair), prior["beta_pair"].sel(
        pair=pair), rtol=1e-12)
    assert float(abs(prior["tau_beta"].sel(feature=pair)).max()) == 0.0
    hinge = next(n for n in design.feature_names if "@over" in n)
    assert hinge in prior["beta_total"]["effect"].values
    stored = prior.drop_vars([v for v in prior.data_vars if v.endswith("_z")])
    new = with_new_patients(stored, ["NEW"], 0.5, seed=1).sel(patient="NEW")
    np.testing.assert_allclose(new["beta"].sel(feature=pair), prior["beta_pair"].sel(pair=pair),
                               rtol=1e-12)
    np.testing.assert_allclose(new["beta"].sel(feature=hinge),
                               new["beta_total"].sel(effect=hinge), rtol=1e-12)
    p = PatientPrior.from_population(prior, design.feature_names, [])
    assert pair in p.beta and hinge in p.beta
    assert p.beta[pair][0] == pytest.approx(float(prior["beta_pair"].sel(pair=pair).mean()))
    fixed = build_model(model_data(design, fit_domain(panel)), p)
    assert "beta_pair" in fixed.named_vars and "tau_pair" not in fixed.named_vars
