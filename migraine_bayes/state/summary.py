"""Per-patient summary of a panel: days, known days, attack rate and data coverage."""

from __future__ import annotations

import pandas as pd
import xarray as xr

DAYS_PER_MONTH = 30.44
WEARABLE = ("physiological.hrv_rmssd", "physiological.resting_hr")  # what a wristband adds


def wearable(panel: xr.Dataset) -> pd.Series:
    """Per patient (index ``patient_id``): has HRV or resting heart rate data (bool)."""
    features = [f for f in WEARABLE if f in set(panel["feature"].to_numpy())]
    has = ~panel["systematic_missing"].sel(feature=features).to_numpy()  # (patient, k)
    return pd.Series(has.any(axis=1), index=[str(p) for p in panel["patient"].to_numpy()],
                     name="wearable")


def summarise_panel(panel: xr.Dataset) -> pd.DataFrame:
    """One row per patient.

    Columns: ``diary_days``; ``known_days`` (outcome known); ``attacks`` (onsets recorded);
    ``attacks_per_month`` and ``headache_days_per_month`` (per 30.44 known days);
    ``coverage`` (mean fraction of diary days with a value, over features the patient has);
    ``wearable`` (has HRV or resting heart rate data); ``treatments`` (names with exposure).
    """
    known = panel["onset"].notnull()
    worn = wearable(panel)
    rows = []
    for pid in panel["patient"].to_numpy():
        p = panel.sel(patient=pid)
        kn = int(known.sel(patient=pid).sum())
        attacks = float(p["onset"].sum())
        hdays = float(p["headache_day"].sum())
        has = ~p["systematic_missing"]
        treated = [str(n) for n in panel["intervention"].to_numpy()
                   if float(p["exposure"].sel(intervention=n).max()) > 0]
        rows.append({
            "patient_id": str(pid),
            "diary_days": int(p["in_diary"].sum()),
            "known_days": kn,
            "attacks": int(attacks),
            "attacks_per_month": attacks / kn * DAYS_PER_MONTH if kn else float("nan"),
            "headache_days_per_month": hdays / kn * DAYS_PER_MONTH if kn else float("nan"),
            "coverage": float(p["coverage"].where(has).mean()),
            "wearable": bool(worn[str(pid)]),
            "treatments": ";".join(treated),
        })
    return pd.DataFrame(rows).set_index("patient_id")
