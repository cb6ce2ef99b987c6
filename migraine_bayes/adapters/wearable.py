"""What the wearable adapters share: daily values with provenance, and adding them to a diary.

A wearable export says nothing about attacks: imported alone, its days would read as a
complete diary with no attack on any of them. So a wearable is imported *into* a cohort that
already holds the patient's diary (``import diary`` first): :func:`into_cohort` adds the
export's daily values to it. The same export again changes nothing; a longer one adds its new
days; one that changes a value already imported is refused (``force`` replaces those values).

Two variables the built-in registry lacks are declared in the cohort's ``variables`` file
when an export brings them (:data:`DECLARED`), with the daily rule in their description; the
device and app are in each observation's ``source``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from migraine_bayes.adapters.common import Origin, Tables
from migraine_bayes.cohort.io import Cohort, text_frame
from migraine_bayes.cohort.registry import VARIABLE_COLUMNS, Registry, Variable
from migraine_bayes.errors import InputDataError, Problem

DECLARED = {
    "heart_rate": Variable("heart_rate", "physiological", "bpm", 20, 250, "mean",
                           "heart rate: mean of the day's samples"),
    "hrv_sdnn": Variable("hrv_sdnn", "physiological", "ms", 1, 300, "mean",
                         "nocturnal heart-rate variability (SDNN): mean of the samples "
                         "starting 00:00-05:59"),
}
KEY = ["patient_id", "time", "variable", "source"]


@dataclass(frozen=True)
class Daily:
    """One daily value of one patient from one source, and the record it came from."""

    patient: str
    day: date
    variable: str
    value: float
    source: str
    origin: Origin


def daily_tables(days: Sequence[Daily], notices: list[str]) -> Tables:
    """An ``observations`` table of daily values (and the declared variables they use)."""
    obs = pd.DataFrame({"patient_id": [d.patient for d in days],
                        "time": [f"{d.day.isoformat()}T00:00:00" for d in days],
                        "variable": [d.variable for d in days],
                        "value": [d.value for d in days],
                        "source": [d.source for d in days]},
                       columns=["patient_id", "time", "variable", "value", "source"])
    variables = declared_frame(obs["variable"])
    return Tables({"observations": obs, "variables": variables},
                  {"observations": [d.origin for d in days],
                   "variables": [Origin("declared variables")] * len(variables)},
                  notices)


def declared_frame(variables: pd.Series) -> pd.DataFrame:
    """The ``variables`` rows of the :data:`DECLARED` variables among ``variables``."""
    present = set(variables)
    return pd.DataFrame([v.record() for name, v in DECLARED.items() if name in present],
                        columns=list(VARIABLE_COLUMNS))


def into_cohort(existing: Cohort, new: Tables, folder: str,
                force: bool = False) -> tuple[Tables, int]:
    """``existing`` (a cohort with the patients' diaries) with ``new``'s daily values added.

    Also returns how many values that adds or replaces (0: the export brings nothing new).

    Raises
    ------
    InputDataError
        A patient of the export without a diary in ``existing``; a value that changes one
        already imported (unless ``force``: the export's value replaces it); a declared
        variable defined otherwise in ``existing``.
    """
    obs = new.frames["observations"]
    origins = new.origins["observations"]
    problems: list[Problem] = []
    diaries = set(existing.patient_ids)
    for pid in dict.fromkeys(obs["patient_id"]):
        if pid not in diaries:
            first = origins[int(np.flatnonzero(obs["patient_id"].to_numpy() == pid)[0])]
            problems.append(Problem(first.file, f"patient '{pid}' has no diary in {folder}: "
                                    "a wearable says nothing about attacks, so its days "
                                    "cannot be diary days — import the patient's diary "
                                    "first (import diary …), then the wearable into it"))
    old = text_frame(existing.observations).reset_index(drop=True)
    old_keys = old[KEY].astype(str).fillna("")
    found = obs[KEY].astype(str).reset_index(drop=True).merge(
        old_keys.assign(_old=np.arange(len(old))), on=KEY, how="left")["_old"]
    same, changed_old = np.zeros(len(obs), bool), []
    for i, j in enumerate(found.to_numpy()):
        if j != j:  # NaN: a new value
            continue
        j = int(j)
        if np.isclose(float(old.at[j, "value"]), float(obs["value"].iat[i]), rtol=1e-9,
                      atol=0):
            same[i] = True
        elif force:
            changed_old.append(j)
        else:
            o = origins[i]
            problems.append(Problem(o.file, f"the export changes a value already in {folder} "
                                    f"({obs['variable'].iat[i]} of patient "
                                    f"'{obs['patient_id'].iat[i]}' on "
                                    f"{obs['time'].iat[i][:10]} was {old.at[j, 'value']}); "
                                    "--force replaces such values", row=o.record,
                                    column=o.field, value=str(obs["value"].iat[i])))
    problems += _declared_clash(existing.registry, new.frames.get("variables"))
    if problems:
        raise InputDataError(problems[:50], folder)
    keep_old = old.drop(index=changed_old)
    add = obs[~same].reset_index(drop=True)
    frames = {"observations": pd.concat([keep_old, add], ignore_index=True)}
    origin_of = {"observations": [Origin(f"{folder}/observations", i + 1)
                                  for i in keep_old.index] +
                 [o for o, s in zip(origins, same, strict=True) if not s]}
    for table in ("attacks", "treatments", "patients"):
        df = getattr(existing, table)
        frames[table] = text_frame(df) if len(df) else None
        origin_of[table] = [Origin(f"{folder}/{table}", i + 1) for i in range(len(df))]
    extra = [v.record() for v in existing.registry.declared()]
    have = {r["name"] for r in extra}
    new_vars = new.frames.get("variables")
    if new_vars is not None:
        extra += [r for r in new_vars.to_dict("records") if r["name"] not in have]
    frames["variables"] = pd.DataFrame(extra, columns=list(VARIABLE_COLUMNS)) if extra else None
    origin_of["variables"] = [Origin("declared variables")] * len(extra)
    notices = list(new.notices)
    notices.append(f"{int(same.sum())} daily values were already in {folder} (unchanged), "
                   f"{len(add)} added" + (f", {len(changed_old)} replaced (--force)"
                                          if changed_old else ""))
    return Tables(frames, origin_of, notices), len(add) + len(changed_old)


def _declared_clash(registry: Registry, variables: pd.DataFrame | None) -> list[Problem]:
    out = []
    for r in ([] if variables is None else variables.to_dict("records")):
        if r["name"] in registry:
            v = registry[r["name"]]
            if (v.unit, v.aggregate) != (r["unit"], r["aggregate"]):
                out.append(Problem("variables", f"the cohort defines {r['name']} in {v.unit} "
                                                f"({v.aggregate}); the export's is "
                                                f"{r['unit']} ({r['aggregate']})",
                                   column="name", value=r["name"]))
    return out
