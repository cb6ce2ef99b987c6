"""What each recorded variable and treatment of a twin's data went into — or why nothing.

Nothing a cohort records is dropped without a word: ``fit`` prints this table's unused rows and
the report's data section shows the table. A recorded variable enters the attack model (as
one or more model features: same day, the day before, learned shape, interaction), or the
attack model's refractory term, or is listed as unused with the reason; a treatment enters
the attack model as an exposure effect (preventives, behavioural programmes), or — acute drugs
— the attack-course model (pain-free at 2 h, recurrence, per drug) and, with ``--overuse``,
the attack model through the days of acute use in the previous 30 days (medication overuse).
"""

from __future__ import annotations

import pandas as pd

from migraine_bayes.dims import FEATURE, INTERVENTION
from migraine_bayes.model.features import panel_sources
from migraine_bayes.model.labels import feature_label, treatment_label

COLUMNS = ["item", "kind", "used_by", "how"]
# panel features the attack model uses outside the feature list
_SPECIAL_USE = {
    "derived.days_since_attack": ("attack model", "refractory term after each attack"),
}
_NOT_USED = {
    "derived.cycle_day": "not a model feature: menstruation enters as recorded",
    "derived.acute_use_days": "opt-in: fit with --overuse to add medication overuse to the "
                              "attack model",
}


def data_use(twin) -> pd.DataFrame:
    """What the twin's data went into.

    One row per recorded variable (panel feature) and treatment: ``item, kind, used_by,
    how``; ``used_by`` is ``"unused"`` (and ``how`` the reason) for what no model uses.
    """
    spec = twin.spec
    features = spec.feature_specs
    panel = twin.panel
    uses: dict[str, list[str]] = {}
    for f in features:
        for source in panel_sources(f, features):
            uses.setdefault(source, []).append(feature_label(f.name))
    rows = []
    systematic = panel["systematic_missing"].all("patient")
    for name in map(str, panel[FEATURE].values):
        label = feature_label(name)
        if name in uses:
            rows.append({"item": label, "kind": "variable", "used_by": "attack model",
                         "how": "; ".join(dict.fromkeys(uses[name]))})
        elif name in _SPECIAL_USE:
            rows.append({"item": label, "kind": "variable", "used_by": _SPECIAL_USE[name][0],
                         "how": _SPECIAL_USE[name][1]})
        else:
            why = _NOT_USED.get(name) or (
                "too few recorded days for any patient (systematically missing)"
                if bool(systematic.sel({FEATURE: name})) else "not a feature of this model")
            rows.append({"item": label, "kind": "variable", "used_by": "unused", "how": why})
    course_drugs = set()
    if twin.course is not None and "acute_drug" in twin.course.coords:
        course_drugs = {str(d) for d in twin.course["acute_drug"].values}
    overuse = any(f.source == "derived.acute_use_days" for f in features)
    kinds = dict(zip(map(str, panel[INTERVENTION].values),
                     map(str, panel["intervention_kind"].values), strict=True))
    for name, kind in kinds.items():
        label = f"{treatment_label(name)} ({kind})"
        if name in spec.interventions:
            rows.append({"item": label, "kind": "treatment", "used_by": "attack model",
                         "how": "exposure effect on the daily log-odds (N-of-1 section)"})
        elif kind == "acute" and (name in course_drugs or overuse):
            how = [h for h, ok in (
                ("pain-free at 2 h and recurrence per drug", name in course_drugs),
                ("acute medication days in the previous 30 days (overuse)", overuse)) if ok]
            used = [u for u, ok in (("attack-course model", name in course_drugs),
                                    ("attack model", overuse)) if ok]
            if not overuse:
                how.append("overuse (days of acute use in the previous 30 days) only with "
                           "--overuse")
            rows.append({"item": label, "kind": "treatment", "used_by": " and ".join(used),
                         "how": "; ".join(how)})
        else:
            rows.append({"item": label, "kind": "treatment", "used_by": "unused",
                         "how": "no exposure on any diary day" if kind != "acute" else
                         "no attack records its use"})
    return pd.DataFrame(rows, columns=COLUMNS)
