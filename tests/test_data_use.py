"""Nothing recorded is dropped without a word: every variable and treatment enters a model or
is listed as unused, with the reason."""

from __future__ import annotations

from migraine_bayes.dims import FEATURE, INTERVENTION
from migraine_bayes.model.features import panel_sources
from migraine_bayes.model.labels import feature_label, treatment_label
from migraine_bayes.twin.data_use import data_use


def test_every_recorded_variable_and_treatment_is_used_or_listed_unused(committed_twins
                                                                        ) -> None:
    twin = next(iter(committed_twins.values()))
    use = data_use(twin)
    panel, features = twin.panel, twin.spec.feature_specs
    variables = use[use["kind"] == "variable"].set_index("item")
    assert len(variables) == panel.sizes[FEATURE]  # every panel feature, once
    sources = {s for f in features for s in panel_sources(f, features)}
    for name in map(str, panel[FEATURE].values):
        row = variables.loc[feature_label(name)]
        if name in sources:
            assert row["used_by"] == "attack model", name
        elif name == "derived.days_since_attack":  # the refractory term's clock
            assert row["how"] == "refractory term after each attack"
        else:
            assert row["used_by"] == "unused" and row["how"], name
    treatments = use[use["kind"] == "treatment"]
    kinds = dict(zip(map(str, panel[INTERVENTION].values),
                     map(str, panel["intervention_kind"].values), strict=True))
    assert len(treatments) == len(kinds)
    for name, kind in kinds.items():
        row = treatments[treatments["item"] == f"{treatment_label(name)} ({kind})"].iloc[0]
        if kind == "acute":  # never silently dropped: the course model; overuse is opt-in
            assert row["used_by"] == "attack-course model" and "--overuse" in row["how"]
        else:
            assert row["used_by"] in ("attack model", "unused") and row["how"]
    assert (use["used_by"] != "unused").sum() > 0.8 * len(use)
