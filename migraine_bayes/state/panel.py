"""The daily panel: a validated cohort as an ``xarray.Dataset`` with dims (patient, day, feature).

``day`` is the day index within each patient's own diary period (day 0 = diary start), so
patients from different years share one dense array; ``date`` maps it back to the calendar and
``in_diary`` marks the padding of patients with shorter diaries.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from migraine_bayes.cohort.daily import aggregate
from migraine_bayes.cohort.io import Cohort
from migraine_bayes.cohort.registry import BOOKKEEPING, Registry
from migraine_bayes.dims import DAY, FEATURE, INTERVENTION, PATIENT
from migraine_bayes.state.derived import (
    DERIVED,
    KNOWN_AHEAD,
    NOT_IMPUTED,
    acute_use_days,
    yesterday_unrecorded,
)
from migraine_bayes.state.exposure import TIME_CONSTANTS, exposure_profile
from migraine_bayes.state.imputation import MIN_OBSERVED, impute_series
from migraine_bayes.state.patient_state import PatientState

PANEL_VERSION = 1
OUTCOMES = ("onset", "headache_day")
SYSTEMATIC_FRACTION = 0.05  # observed on fewer than 5% of diary days: systematically missing
CHUNK_PATIENTS = 64  # patients aggregated to days at a time (bounds the observations' copies)


def build_panel(cohort: Cohort, patients: Sequence[str] | None = None,
                horizon_days: int = 0) -> xr.Dataset:
    """Build the daily panel of a cohort.

    Parameters
    ----------
    cohort : Cohort
        A validated cohort (:func:`migraine_bayes.cohort.io.load_cohort`).
    patients : sequence of str, optional
        Subset and order of patients (default: all, sorted).
    horizon_days : int
        Days appended after each patient's diary end, to forecast: their measured features are
        missing (imputed one-sided from the past, with sd), their calendar features, counters
        and treatment exposures are known ahead; their outcomes are NaN.

    Returns
    -------
    xarray.Dataset
        Coordinates ``patient`` (str), ``day`` (int, 0 = diary start), ``feature``
        (``<part>.<name>``, with ``feature_category`` and ``feature_unit``), ``intervention``
        (treatment names, with ``intervention_kind``). Variables:

        ``date`` (patient, day) — calendar date, NaT in padding;
        ``in_diary`` (patient, day) — day within the diary period;
        ``future`` (patient, day) — one of the ``horizon_days`` after the diary end;
        ``diary_entry`` (patient, day) — a diary was kept that day (outcome known);
        ``onset``, ``headache_day`` (patient, day) — 1/0 outcomes, NaN when unknown
        (docs/SCHEMA.md);
        ``value`` (patient, day, feature) — daily value in registry units, NaN = missing;
        ``present`` (patient, day, feature) — presence indicator (value measured);
        ``imputed``, ``imputed_sd`` (patient, day, feature) — value where present, else the
        within-patient AR(1)-bridge imputation and its sd (cohort mean/sd for systematically
        missing features; NaN for counters that cannot be imputed);
        ``coverage`` (patient, feature) — fraction of diary days with a value;
        ``systematic_missing`` (patient, feature) — too few values to impute from the patient;
        ``exposure`` (patient, day, intervention) — treatment exposure in [0, 1].

    """
    periods = cohort.diary_periods()
    ids = list(periods.index) if patients is None else list(patients)
    unknown = sorted(set(ids) - set(periods.index))
    if unknown:
        raise KeyError(f"unknown patient ids {unknown}; available: {list(periods.index)}")
    periods = periods.loc[ids]
    # a diary ending before it starts (a cohort truncated before a patient's first day): 0 days
    n_days = np.clip(((periods["end"] - periods["start"]).dt.days + 1).to_numpy(), 0, None)
    n_span = n_days + horizon_days
    n_pat, n_max = len(ids), int(n_span.max()) if len(ids) else 0
    day_idx = np.arange(n_max)
    in_diary = day_idx[None, :] < n_days[:, None]
    in_span = day_idx[None, :] < n_span[:, None]
    start = periods["start"].to_numpy().astype("datetime64[ns]")
    dates = start[:, None] + day_idx[None, :].astype("timedelta64[D]")
    dates = np.where(in_span, dates, np.datetime64("NaT"))

    raw, recorded = _daily_values(cohort, periods, ids, n_days, n_max)
    entries = raw.pop("diary_entry", np.full((n_pat, n_max), np.nan))
    variables = [v for v in cohort.registry if v.name in recorded and v.name not in BOOKKEEPING]
    raw = np.stack([raw[v.name] for v in variables], axis=-1) if variables else np.empty(
        (n_pat, n_max, 0))
    entry = _diary_entry_days(entries, in_diary)
    onset, headache = _outcomes(cohort, periods, ids, n_max, in_diary, entry)

    names = [f"{v.category}.{v.name}" for v in variables]
    columns = [raw[:, :, i] for i in range(len(variables))]
    by_name = {v.name: raw[:, :, i] for i, v in enumerate(variables)}
    for name, (fn, needs) in DERIVED.items():
        if needs is None:
            columns.append(fn(np.where(in_span, np.nan_to_num(onset, nan=0.0), np.nan)))
        elif needs in by_name:
            columns.append(fn(by_name[needs]))
        else:
            continue
        names.append(f"derived.{name}")
    use = _acute_use(cohort, periods, ids, n_max)
    if use is not None:  # recorded acute medication: days of use in the month before
        columns.append(np.where(in_span, acute_use_days(use, in_diary), np.nan))
        names.append("derived.acute_use_days")
    columns.append(np.where(in_span, yesterday_unrecorded(
        np.where(in_diary, headache, np.nan)), np.nan))
    names.append("derived.yesterday_unrecorded")
    weekday = pd.DatetimeIndex(dates.ravel()).day_of_week.to_numpy().reshape(dates.shape)
    columns.append(np.where(in_span, (weekday >= 5).astype(float), np.nan))
    names.append("temporal.weekend")

    value = np.stack(columns, axis=-1) if columns else np.empty((n_pat, n_max, 0))
    ahead = np.array([n in KNOWN_AHEAD for n in names], dtype=bool)
    value = np.where(np.where(ahead[None, None, :], in_span[:, :, None], in_diary[:, :, None]),
                     value, np.nan)
    present = ~np.isnan(value)
    n_obs = (present & in_diary[:, :, None]).sum(axis=1)
    coverage = n_obs / np.maximum(n_days, 1)[:, None]  # a patient with 0 diary days: 0
    systematic = n_obs < np.maximum(MIN_OBSERVED, SYSTEMATIC_FRACTION * n_days[:, None])
    imputed, imputed_sd = _impute(value, present, systematic, names, in_span, cohort.registry)

    categories = [n.partition(".")[0] for n in names]
    units = [_unit(n, cohort.registry) for n in names]
    treatments, kinds, exposure = _exposures(cohort, periods, ids, n_max, n_span)

    return xr.Dataset(
        data_vars={
            "date": ((PATIENT, DAY), dates),
            "in_diary": ((PATIENT, DAY), in_diary),
            "future": ((PATIENT, DAY), in_span & ~in_diary),
            "diary_entry": ((PATIENT, DAY), entry),
            "onset": ((PATIENT, DAY), onset),
            "headache_day": ((PATIENT, DAY), headache),
            "value": ((PATIENT, DAY, FEATURE), value),
            "present": ((PATIENT, DAY, FEATURE), present),
            "imputed": ((PATIENT, DAY, FEATURE), imputed),
            "imputed_sd": ((PATIENT, DAY, FEATURE), imputed_sd),
            "coverage": ((PATIENT, FEATURE), coverage),
            "systematic_missing": ((PATIENT, FEATURE), systematic),
            "exposure": ((PATIENT, DAY, INTERVENTION), exposure),
        },
        coords={
            PATIENT: np.array(ids, dtype=object),
            DAY: day_idx,
            FEATURE: np.array(names, dtype=object),
            "feature_category": (FEATURE, np.array(categories, dtype=object)),
            "feature_unit": (FEATURE, np.array(units, dtype=object)),
            INTERVENTION: np.array(treatments, dtype=object),
            "intervention_kind": (INTERVENTION, np.array(kinds, dtype=object)),
        },
        attrs={
            "panel_version": PANEL_VERSION,
            "horizon_days": horizon_days,
            "source": cohort.source,
            "imputation": "within-patient Gaussian AR(1) bridge; cohort mean/sd when "
                          "systematically missing",
        },
    )


def _daily_values(cohort: Cohort, periods: pd.DataFrame, ids: list[str], n_days: np.ndarray,
                  n_max: int) -> tuple[dict[str, np.ndarray], set[str]]:
    """Each variable's daily values, ``{name: (patient, day) array}``, and the names recorded.

    Aggregated :data:`CHUNK_PATIENTS` patients at a time, so that the copies a daily aggregate
    makes of the observations stay small for a cohort of millions of rows.
    """
    obs = cohort.observations
    rows = obs.groupby("patient_id", sort=False, observed=True).indices
    names = [str(v) for v in pd.unique(obs["variable"])]
    out = {name: np.full((len(ids), n_max), np.nan) for name in names}
    recorded: set[str] = set()
    for lo in range(0, len(ids), CHUNK_PATIENTS):
        chunk = ids[lo: lo + CHUNK_PATIENTS]
        idx = [rows[p] for p in chunk if p in rows]
        if not idx:
            continue
        sub = obs.iloc[np.sort(np.concatenate(idx))]
        daily = _aggregate_daily(sub, cohort.registry, periods.loc[chunk],
                                 n_days[lo: lo + len(chunk)])
        recorded.update(pd.unique(daily["variable"]))
        p = daily["patient_id"].map({k: i for i, k in enumerate(chunk)}).to_numpy(dtype=int)
        d = daily["day"].to_numpy(dtype=int)
        values = daily["value"].to_numpy(dtype=float)
        for name, where in daily.groupby("variable", sort=False).indices.items():
            out[str(name)][lo + p[where], d[where]] = values[where]
    return {k: v for k, v in out.items() if k in recorded}, recorded


def _aggregate_daily(obs: pd.DataFrame, registry: Registry, periods: pd.DataFrame,
                     n_days: np.ndarray) -> pd.DataFrame:
    """Observations → one value per (patient, variable, day) by the registry's aggregate rule.

    ``obs`` holds only the rows of the patients in ``periods`` (:func:`_daily_values`).
    """
    start = obs["patient_id"].map(periods["start"])
    day = (obs["time"].dt.normalize() - start).dt.days.to_numpy()
    length = obs["patient_id"].map(dict(zip(periods.index, n_days, strict=True))).to_numpy()
    keep = (day >= 0) & (day < length)
    obs = obs.loc[keep, ["patient_id", "time", "variable", "value"]].assign(day=day[keep])
    return aggregate(obs, registry, ["patient_id", "variable", "day"])


def _diary_entry_days(entries: np.ndarray, in_diary: np.ndarray) -> np.ndarray:
    """Days whose outcome is known from the diary (docs/SCHEMA.md).

    ``entries``: the daily ``diary_entry`` values (patient, day). For patients who log
    ``diary_entry``: the days with ``diary_entry`` = 1; for patients who do not: every diary
    day. (Attack days are added by :func:`_outcomes`.)
    """
    logs = ~np.all(np.isnan(entries), axis=1)
    return np.where(logs[:, None], entries == 1, in_diary) & in_diary


def _outcomes(cohort: Cohort, periods: pd.DataFrame, ids: list[str], n_max: int,
              in_diary: np.ndarray, entry: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n_pat = len(ids)
    onset_hit = np.zeros((n_pat, n_max), dtype=bool)
    cover_hit = np.zeros((n_pat, n_max), dtype=bool)
    att = cohort.attacks[cohort.attacks["patient_id"].isin(periods.index)]
    row = att["patient_id"].map({k: i for i, k in enumerate(ids)}).to_numpy()
    start = att["patient_id"].map(periods["start"])
    first = (att["onset"].dt.normalize() - start).dt.days.to_numpy()
    end = att["end"].fillna(att["onset"]).dt.normalize()
    last = (end - start).dt.days.to_numpy()
    for r, a, b in zip(row, first, last, strict=True):
        onset_hit[r, a] = True
        cover_hit[r, a: min(b, n_max - 1) + 1] = True
    cover_hit &= in_diary
    onset = np.where(onset_hit, 1.0, np.where(entry, 0.0, np.nan))
    headache = np.where(cover_hit, 1.0, np.where(entry, 0.0, np.nan))
    return onset, headache


def _acute_use(cohort: Cohort, periods: pd.DataFrame, ids: list[str], n_max: int
               ) -> np.ndarray | None:
    """The days of acute medication use: 1/0 per (patient, day), None if none is recorded.

    A day of use is the day of an attack row's ``acute_time``, else of its onset, when the row
    names an ``acute_medication``.
    """
    att = cohort.attacks[cohort.attacks["patient_id"].isin(periods.index)]
    if "acute_medication" not in att.columns:
        return None
    drug = att["acute_medication"].astype("string").str.strip()
    att = att[drug.notna() & (drug != "")]
    if att.empty:
        return None
    when = att["onset"]
    if "acute_time" in att.columns:
        when = att["acute_time"].where(att["acute_time"].notna(), when)
    day = (when.dt.normalize() - att["patient_id"].map(periods["start"])).dt.days.to_numpy()
    row = att["patient_id"].map({k: i for i, k in enumerate(ids)}).to_numpy()
    use = np.zeros((len(ids), n_max))
    keep = (day >= 0) & (day < n_max)
    use[row[keep], day[keep]] = 1.0
    return use


def _impute(value: np.ndarray, present: np.ndarray, systematic: np.ndarray, names: list[str],
            in_diary: np.ndarray, registry: Registry) -> tuple[np.ndarray, np.ndarray]:
    imputed = np.full_like(value, np.nan)
    sd = np.full_like(value, np.nan)
    for f, name in enumerate(names):
        if name in NOT_IMPUTED:
            imputed[:, :, f] = value[:, :, f]
            sd[:, :, f] = np.where(present[:, :, f], 0.0, np.nan)
            continue
        pooled = value[:, :, f][~systematic[:, f]]
        pooled = pooled[~np.isnan(pooled)]
        for p in range(value.shape[0]):
            days = in_diary[p]
            series = value[p, days, f]
            if systematic[p, f]:
                mean = np.where(np.isnan(series), pooled.mean() if pooled.size else np.nan, series)
                s = np.where(np.isnan(series), pooled.std() if pooled.size else np.nan, 0.0)
            else:
                mean, s = impute_series(series)
            imputed[p, days, f], sd[p, days, f] = mean, s
        lo, hi = _bounds(name, registry)
        imputed[:, :, f] = np.clip(imputed[:, :, f], lo, hi)
    return imputed, sd


def _bounds(name: str, registry: Registry) -> tuple[float, float]:
    _part, _, var = name.partition(".")
    if var in registry:
        return registry[var].min, registry[var].max
    if name == "temporal.weekend":
        return 0.0, 1.0
    return -np.inf, np.inf


def _unit(name: str, registry: Registry) -> str:
    var = name.partition(".")[2]
    if var in registry:
        return registry[var].unit
    return {"derived.pressure_change": "hPa", "derived.stress_letdown": "points (0–10 scale)",
            "derived.sleep_debt": "h", "derived.days_since_attack": "days",
            "derived.cycle_day": "day of cycle", "temporal.weekend": "0/1",
            "derived.yesterday_unrecorded": "0/1",
            "derived.acute_use_days": "days in 30"}.get(name, "")


def _exposures(cohort: Cohort, periods: pd.DataFrame, ids: list[str], n_max: int,
               n_span: np.ndarray) -> tuple[list[str], list[str], np.ndarray]:
    tr = cohort.treatments[cohort.treatments["patient_id"].isin(periods.index)]
    names = sorted(tr["name"].unique())
    kinds = [str(tr.loc[tr["name"] == n, "kind"].iloc[0]) for n in names]
    out = np.zeros((len(ids), n_max, len(names)))
    days = np.arange(n_max)
    for _, course in tr.iterrows():
        p = ids.index(course["patient_id"])
        origin = periods.at[course["patient_id"], "start"]
        s = (course["start"].normalize() - origin).days
        e = None if pd.isna(course["end"]) else (course["end"].normalize() - origin).days
        tau_on, tau_off = TIME_CONSTANTS[course["kind"]]
        k = names.index(course["name"])
        out[p, :, k] = np.maximum(out[p, :, k], exposure_profile(days, s, e, tau_on, tau_off))
    out[days[None, :] >= n_span[:, None]] = np.nan
    return names, kinds, out


def state_from_panel(panel: xr.Dataset, patient_id: str, day: int,
                     imputed: bool = False) -> PatientState:
    """The :class:`PatientState` of one patient on one day of a panel.

    Treatment exposures become ``treatment.exposure:<name>``; ``imputed=True`` takes imputed
    values for missing features instead of NaN.
    """
    sel = panel.sel({PATIENT: patient_id, DAY: day})
    values = sel["imputed" if imputed else "value"].to_numpy()
    names = [str(n) for n in panel[FEATURE].to_numpy()]
    names += [f"treatment.exposure:{n}" for n in panel[INTERVENTION].to_numpy()]
    return PatientState.from_feature_vector(
        [*values, *sel["exposure"].to_numpy()], names, patient_id=patient_id,
        date=pd.Timestamp(sel["date"].item()))
