"""HL7 FHIR R4: forecasts out as ``RiskAssessment`` resources.

A forecast row (docs/SCHEMA.md, "Forecasts") becomes one ``RiskAssessment``: the patient as
``subject``, the day the forecast was issued from as ``occurrenceDateTime``, the outcome and the
day it concerns in ``prediction`` (``probabilityDecimal``, the 90% credible interval as the
extension :data:`INTERVAL`, ``whenPeriod`` the forecast day, ``rationale`` in words), the top
factors in ``basis`` (references by display only: the contributions are not FHIR resources),
the model in ``method``, and the twin (name and version) in ``meta`` (``source`` and a
``tag``). A set of them is a ``searchset`` ``Bundle`` — what a FHIR server answers to
``GET RiskAssessment?patient=…`` — so an existing FHIR client reads them as it reads any
server's. The JSON is built here without a FHIR library; the tests validate it with one
(``fhir.resources``) and read it over HTTP with another (``fhirpy``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping

import pandas as pd

SYSTEM = "urn:migraine-bayes"
INTERVAL = f"{SYSTEM}:fhir:probability-interval-90"
OUTCOMES = {"onset": ("migraine attack onset", "a migraine attack starts on the day"),
            "headache_day": ("migraine headache day", "the day has migraine headache")}
METHOD = "migraine_bayes per-patient Bayesian digital twin (posterior predictive)"


def risk_assessment(row: Mapping, twin: str, version: str | float, outcome: str = "onset",
                    label: Callable[[str], str] | None = None) -> dict:
    """One forecast row as a FHIR R4 ``RiskAssessment`` (a JSON-ready dict).

    ``twin`` and ``version`` name the twin that issued it; ``outcome`` is its outcome
    (``onset`` or ``headache_day``); ``label`` gives a feature's human name for the basis
    (default: the name as it is).
    """
    label = label or str
    name, meaning = OUTCOMES.get(outcome, (outcome, outcome))
    day = str(pd.Timestamp(row["date"]).date())
    issued = str(pd.Timestamp(row["issued_at"]).date())
    pid = str(row["patient_id"])
    p, low, high = (float(row[k]) for k in ("p_attack", "p_low", "p_high"))
    key = f"{twin}|{version}|{pid}|{issued}|{day}|{outcome}"
    basis = []
    for part in str(row.get("top_factors") or "").split(";"):
        feature, sep, value = part.strip().rpartition(":")
        if sep and feature:
            basis.append({"display": f"{label(feature)}: {value} to the log-odds"})
    prediction = {
        "outcome": {"coding": [{"system": f"{SYSTEM}:outcome", "code": outcome,
                                "display": name}], "text": f"{name}: {meaning}"},
        "probabilityDecimal": round(p, 6),
        "whenPeriod": {"start": day, "end": day},
        "rationale": (f"{p:.1%} (90% credible interval {low:.1%} to {high:.1%}) that "
                      f"{meaning} on {day}, from the diary up to {issued}"),
        "extension": [{"url": INTERVAL, "valueRange": {
            "low": {"value": round(low, 6), "unit": "probability"},
            "high": {"value": round(high, 6), "unit": "probability"}}}],
    }
    resource = {
        "resourceType": "RiskAssessment",
        "id": hashlib.sha256(key.encode()).hexdigest()[:32],
        "meta": {"source": f"{SYSTEM}:twin:{twin}:v{version}",
                 "tag": [{"system": f"{SYSTEM}:twin", "code": f"{twin}@{version}",
                          "display": f"twin {twin}, version {version}"}]},
        "status": "final",
        "subject": {"reference": f"Patient/{pid}"},
        "occurrenceDateTime": issued,
        "method": {"text": METHOD},
        "code": {"text": f"risk of {name}"},
        "prediction": [prediction],
    }
    if basis:
        resource["basis"] = basis
    if "checks_ok" in row and not _true(row["checks_ok"]):
        resource["note"] = [{"text": "the twin's fit failed a convergence check: treat this "
                                     "probability with suspicion"}]
    return resource


def _true(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(value) and not (isinstance(value, float) and math.isnan(value))


def searchset(table: pd.DataFrame, twin: str, version: str | float, outcome: str = "onset",
              base: str | None = None, label: Callable[[str], str] | None = None) -> dict:
    """A forecast table as a FHIR ``Bundle`` of type ``searchset`` (one entry per row).

    ``base``: the server's base URL, for each entry's ``fullUrl`` (omitted without it).
    """
    entries = []
    for row in table.to_dict("records"):
        resource = risk_assessment(row, twin, version, outcome, label)
        entry = {"resource": resource, "search": {"mode": "match"}}
        if base:
            entry["fullUrl"] = f"{base.rstrip('/')}/RiskAssessment/{resource['id']}"
        entries.append(entry)
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries),
            "entry": entries}
