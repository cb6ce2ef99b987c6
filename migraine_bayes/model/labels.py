"""Human names and units for what people read: model features, treatments, table headers.

Reports, figures, the CSVs meant for people and the command line's summaries say "Sleep debt
(h)", "Pressure fall (hPa, 24 h)" or "Fatigue the day before", never ``derived.sleep_debt``,
``derived.pressure_fall`` or ``symptom.fatigue@lag1``. A registry variable's name and unit come
from :mod:`migraine_bayes.cohort.registry` (a declared variable's from its ``variables`` row);
the derived and calendar features' from :data:`DERIVED_LABELS`; a lag, a learned shape's hinge
and an interaction are spelled out from the feature's name.

Effects are reported per standard deviation on the model's scale; :func:`natural_step` gives
the step in natural units a reader thinks in (per hour of sleep, per 10 hPa, per 5 days of
acute medication) at which :mod:`migraine_bayes.analysis.sensitivity` also states them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from migraine_bayes.cohort.registry import Registry
from migraine_bayes.model.features import INTERACTION, KNOT

# panel features that are not registry variables: (name, unit)
DERIVED_LABELS: dict[str, tuple[str, str]] = {
    "derived.pressure_change": ("Pressure change", "hPa, 24 h"),
    "derived.pressure_fall": ("Pressure fall", "hPa, 24 h"),
    "derived.stress_letdown": ("Stress let-down", "points on 0–10, from the day before"),
    "derived.sleep_debt": ("Sleep debt", "h below usual"),
    "derived.days_since_attack": ("Days since the last attack", "days"),
    "derived.cycle_day": ("Day of the menstrual cycle", "day"),
    "derived.acute_use_days": ("Acute medication days", "days in the previous 30"),
    "derived.yesterday_unrecorded": ("No diary the day before", "yes/no"),
    "temporal.weekend": ("Weekend", "yes/no"),
    "trigger.alcohol_5plus": ("Heavy drinking (≥ 5 drinks)", "yes/no"),
}
# registry variables' display names (the registry's own names are identifiers)
VARIABLE_LABELS: dict[str, str] = {
    "hrv_rmssd": "Heart-rate variability (RMSSD)", "resting_hr": "Resting heart rate",
    "eda": "Electrodermal activity", "skin_temp": "Skin temperature", "steps": "Steps",
    "sleep_duration": "Sleep duration", "sleep_quality": "Sleep quality", "stress": "Stress",
    "alcohol": "Alcohol", "caffeine": "Caffeine", "skipped_meal": "Skipped meal",
    "menstruation": "Menstruation", "screen_time": "Screen time",
    "pressure": "Barometric pressure", "temperature": "Outdoor temperature",
    "humidity": "Humidity", "pm25": "Fine particles (PM2.5)", "light_exposure": "Light exposure",
    "noise": "Noise", "diary_entry": "Diary kept", "yawning": "Yawning",
    "neck_stiffness": "Neck stiffness", "fatigue": "Fatigue", "mood_change": "Mood change",
    "food_craving": "Food craving", "photophobia": "Light sensitivity",
    # declared by the wearable and FHIR importers (migraine_bayes.adapters.wearable)
    "heart_rate": "Heart rate", "hrv_sdnn": "Nocturnal heart-rate variability (SDNN)",
}
# natural steps by unit: (size, words); a unit not listed steps by 1 of itself
_STEPS: dict[str, tuple[float, str]] = {
    "hPa": (10.0, "10 hPa"), "hPa, 24 h": (10.0, "10 hPa"), "h": (1.0, "1 h"),
    "h below usual": (1.0, "1 h"), "count": (1000.0, "1,000 steps"), "mg": (100.0, "100 mg"),
    "%": (10.0, "10 points of %"), "lux": (1000.0, "1,000 lux"), "ms": (10.0, "10 ms"),
    "bpm": (5.0, "5 bpm"), "µg/m³": (10.0, "10 µg/m³"), "dB(A)": (10.0, "10 dB(A)"),
    "°C": (5.0, "5 °C"), "days in the previous 30": (5.0, "5 days"),
    "0–10": (1.0, "1 point"), "points on 0–10, from the day before": (1.0, "1 point"),
    "standard drinks": (1.0, "1 drink"), "µS": (1.0, "1 µS"),
}
_BINARY_UNITS = ("0/1", "yes/no")


@functools.cache
def _builtin() -> Registry:
    """The built-in registry, built once (labels are asked for per feature and patient)."""
    return Registry.builtin()


def _humanise(identifier: str) -> str:
    text = identifier.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _base(source: str, registry: Registry, units: Mapping[str, str]) -> tuple[str, str]:
    """Name and unit of a panel feature ``<part>.<variable>`` (or a derived/calendar one)."""
    if source in DERIVED_LABELS:
        return DERIVED_LABELS[source]
    var = source.partition(".")[2] or source
    if var in registry:
        v = registry[var]
        name = VARIABLE_LABELS.get(var) or _humanise(v.description or var)
        return name, ("yes/no" if v.unit == "0/1" else v.unit)
    return _humanise(var), units.get(source, "")


def feature_name(feature: str, registry: Registry | None = None,
                 units: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The display name and unit of a model (or panel) feature name.

    >>> feature_name("symptom.fatigue@lag1")
    ('Fatigue the day before', 'yes/no')
    >>> feature_name("derived.sleep_debt@over1.5")
    ('Sleep debt beyond 1.5 h (slope change)', 'h below usual')
    """
    registry = registry or _builtin()
    units = units or {}
    if INTERACTION in feature:
        a, b = feature.split(INTERACTION, 1)
        na, _ = feature_name(a, registry, units)
        nb, _ = feature_name(b, registry, units)
        return f"{na} and {nb[:1].lower() + nb[1:]} both high the same day", "yes/no"
    lag = 0
    m = re.search(r"@lag(\d+)$", feature)
    if m:
        lag, feature = int(m.group(1)), feature[:m.start()]
    knot = None
    if KNOT in feature:
        feature, _, knot = feature.partition(KNOT)
    name, unit = _base(feature, registry, units)
    if knot is not None:
        short = unit.split(",")[0].split(" ")[0]
        name = f"{name} beyond {knot} {short} (slope change)".replace("  ", " ")
    if lag == 1:
        name = f"{name} the day before"
    elif lag > 1:
        name = f"{name} {lag} days before"
    return name, unit


def feature_label(feature: str, registry: Registry | None = None,
                  units: Mapping[str, str] | None = None) -> str:
    """``"Name (unit)"`` of a feature, e.g. ``"Sleep debt (h below usual)"``; 0/1 without unit.

    >>> feature_label("derived.pressure_fall")
    'Pressure fall (hPa, 24 h)'
    >>> feature_label("trigger.skipped_meal")
    'Skipped meal'
    """
    name, unit = feature_name(feature, registry, units)
    if not unit or unit in _BINARY_UNITS or KNOT in feature:  # a hinge names its unit
        return name
    return f"{name} ({unit})"


def natural_step(feature: str, registry: Registry | None = None,
                 units: Mapping[str, str] | None = None) -> tuple[float, str] | None:
    """The step in natural units at which an effect is also stated, e.g. ``(10.0, "10 hPa")``.

    None for a 0/1 feature (its effect is that of presence).
    """
    if INTERACTION in feature:
        return None
    _name, unit = feature_name(feature, registry, units)
    if unit in _BINARY_UNITS:
        return None
    return _STEPS.get(unit, (1.0, f"1 {unit}".strip()))


def treatment_label(name: str) -> str:
    """A treatment's display name: ``stress_management`` → ``Stress management``."""
    return _humanise(str(name))


# the backtest's models, as a table or a legend names them
MODEL_NAMES: dict[str, str] = {
    "twin": "Twin", "twin+partner": "Twin with the partner model",
    "running_logistic": "Logistic, refitted as days come", "running_rate": "Recent attack rate",
    "logistic": "Per-patient logistic", "boosting": "Gradient boosting",
    "base_rate": "Own base rate", "oracle": "Oracle (true probability)",
    "oracle_filtered": "Oracle, filtered state", "oracle_hazard": "Oracle, hazard only",
}


def model_label(model: str) -> str:
    """A backtest model's display name, e.g. "Per-patient logistic" for ``logistic``."""
    return MODEL_NAMES.get(str(model), str(model))


# table headers: machine column → header people read
HEADERS: dict[str, str] = {
    "patient_id": "Patient", "feature": "Factor", "source": "Measured as",
    "odds_ratio": "Odds ratio", "p_positive": "P(raises risk)", "coverage": "Days measured",
    "evidence": "Evidence", "auc": "AUC", "brier": "Brier score", "ece": "Calibration error",
    "citl": "Calibration in the large", "cal_slope": "Calibration slope",
    "sensitivity": "Sensitivity", "specificity": "Specificity", "ppv": "PPV", "npv": "NPV",
    "model": "Model", "days": "Days", "attacks": "Attacks", "patients": "Patients",
    "intervention": "Treatment", "treatment": "Treatment", "name": "Name", "kind": "Kind",
    "subgroup": "Subgroup", "level": "Level", "threshold": "Threshold",
    "net_benefit": "Net benefit", "lag": "Lag (days)", "weight": "Weight",
    "scenario": "Scenario", "log_loss": "Log loss", "rrr": "Attacks fall by",
    "natural_step": "Per", "auc_within": "AUC within patients", "log_score": "Log score",
    "or_natural": "Odds ratio", "rate_ratio": "Rate ratio",
    "p_benefit": "P(benefit)", "rate_before": "Attacks / 28 days before",
    "rate_after": "Attacks / 28 days after", "start": "Start", "diary start": "Diary start",
}

_FEATURE_TOKEN = re.compile(
    r"\b(?:physiological|trigger|environmental|symptom|derived|temporal)\.[A-Za-z0-9_]+"
    r"(?:@over[0-9.]*[0-9]|@lag\d+)*"
    r"(?::(?:physiological|trigger|environmental|symptom|derived|temporal)\.[A-Za-z0-9_]+"
    r"(?:@over[0-9.]*[0-9]|@lag\d+)*)?")


def humanise_text(text: str, registry: Registry | None = None) -> str:
    """Every feature identifier in ``text`` replaced by its label.

    >>> humanise_text("derived.sleep_debt: log OR +0.30 per step")
    'Sleep debt (h below usual): log OR +0.30 per step'
    """
    return _FEATURE_TOKEN.sub(lambda m: feature_label(m.group(0), registry), text)
