"""A linkage attack on a pseudonymised export: who can be found again, against chance.

The attacker holds background knowledge about every real patient of the cohort and tries to
match each exported pseudonym back to one of them (docs/SCHEMA.md, "Export"):

- ``background``: what a clinic letter tells — birth year, sex, diagnosis, the acute drugs and
  preventives taken with their doses, the attack frequency class (low- or high-frequency
  episodic, chronic) and the hour at which attacks usually start;
- ``counts``: also the number of attacks in the diary, to the nearest five;
- ``dates``: also the dates of ``known_dates`` consecutive attacks (as an emergency
  department's records hold them) — the limit of any day-level export: whoever holds a stretch
  of a patient's attack days can find the diary again.

Each pseudonym's candidates are the real patients whose knowledge agrees with what the export
shows; the attacker picks one at random, so the expected number re-identified is the sum over
pseudonyms of 1 / (number of candidates) where the true patient is among them. Chance (a
random assignment) re-identifies one patient on average, whatever the cohort's size; a
k-anonymous release bounds the background attacker at one patient in k.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from migraine_bayes.cohort.export import BIRTH_BAND, WITHHELD, frequency_class
from migraine_bayes.cohort.io import Cohort

COUNT_ROUNDING = 5  # the attacker knows attack counts to the nearest five


@dataclass(frozen=True)
class LinkageResult:
    """Expected patients re-identified by the attacker, against chance (1.0) and the cohort."""

    attacker: str
    patients: int
    reidentified: float
    chance: float
    unique: int  # pseudonyms whose only candidate is the true patient

    @property
    def ratio(self) -> float:
        """Re-identified / chance."""
        return self.reidentified / self.chance


def _profile(cohort: Cohort) -> pd.DataFrame:
    pats = cohort.patients.set_index("patient_id")
    ids = sorted(set(cohort.patient_ids) | set(pats.index))
    out = pd.DataFrame(index=pd.Index(ids, name="patient_id"))
    for col in ("birth_year", "sex", "diagnosis"):
        out[col] = pats[col].reindex(ids) if col in pats else pd.NA
    att = cohort.attacks
    out["attacks"] = att.groupby("patient_id").size().reindex(ids).fillna(0).astype(int)
    out["frequency"] = frequency_class({"observations": cohort.observations,
                                        "attacks": att}).reindex(ids)
    hours = att["onset"].dt.hour + att["onset"].dt.minute / 60
    out["hour"] = hours.groupby(att["patient_id"]).median().reindex(ids)
    out["timed"] = (hours > 0).groupby(att["patient_id"]).any().reindex(ids).fillna(False)
    out["days"] = pd.Series({pid: np.sort(g.dt.normalize().unique())
                             for pid, g in att.groupby("patient_id")["onset"]}).reindex(ids)
    drugs = _doses(att, "acute_medication", "acute_dose_mg")
    preventive = _doses(cohort.treatments, "name", "dose_mg")
    out["drugs"] = [drugs.get(p, frozenset()) | preventive.get(p, frozenset()) for p in ids]
    return out


def _doses(df: pd.DataFrame, name: str, dose: str) -> dict[str, frozenset]:
    if name not in df or df.empty:
        return {}
    d = df.dropna(subset=[name])
    pairs = zip(d["patient_id"], d[name], d[dose] if dose in d else [np.nan] * len(d),
                strict=True)
    out: dict[str, set] = {}
    for pid, drug, mg in pairs:
        out.setdefault(pid, set()).add((str(drug), None if pd.isna(mg) else float(mg)))
    return {k: frozenset(v) for k, v in out.items()}


def _agrees(real: pd.Series, shown: pd.Series, band: int | None, attacker: str,
            known_dates: int) -> bool:
    if pd.notna(shown["birth_year"]):
        if pd.isna(real["birth_year"]) or not (
                shown["birth_year"] <= real["birth_year"] < shown["birth_year"] + (band or 1)):
            return False
    for col in ("sex", "diagnosis"):
        if pd.notna(shown[col]) and str(shown[col]) != str(real[col]):
            return False
    named = {(d, mg) for d, mg in shown["drugs"] if d not in ("other", WITHHELD)}
    if not all((d, mg) in real["drugs"] or (mg is None and any(d == r for r, _ in real["drugs"]))
               for d, mg in named):
        return False
    if any(d == "other" for d, _ in shown["drugs"]) and not (
            {r for r, _ in real["drugs"]} - {d for d, _ in named}):
        return False
    if shown["frequency"] != real["frequency"]:
        return False
    if attacker != "background" and (
            abs(shown["attacks"] - real["attacks"]) > COUNT_ROUNDING / 2 + 0.5):
        return False
    if shown["timed"] and pd.notna(real["hour"]) and abs(shown["hour"] - real["hour"]) > 0.5:
        return False
    if attacker == "dates":
        return _holds_stretch(real["days"], shown["days"], known_dates)
    return True


def _holds_stretch(real: object, shown: object, n: int) -> bool:
    """Whether a whole-week shift puts the first ``n`` known attack days in the export.

    The export shifts a patient's dates by whole weeks, so only those shifts are tried.
    """
    if not isinstance(real, np.ndarray) or len(real) < n:
        return True  # nothing known to match on
    if not isinstance(shown, np.ndarray) or not len(shown):
        return False
    known = real[:n]
    offsets = (shown - known[0]) / np.timedelta64(1, "D")
    shown_set = set(shown.astype("datetime64[D]").astype(int))
    steps = (known - known[0]) / np.timedelta64(1, "D")
    base = int(known[0].astype("datetime64[D]").astype(int))
    for off in offsets:
        if off % 7:
            continue
        if all(base + int(off) + int(s) in shown_set for s in steps):
            return True
    return False


def ids_replaced(cohort: Cohort, mapping: pd.DataFrame) -> Cohort:
    """The cohort with only its ids replaced by the mapping's pseudonyms.

    The reference the export is measured against; a patient the mapping lacks gets ``x`` + id.
    """
    alias = dict(zip(mapping["patient_id"], mapping["pseudonym"], strict=True))
    return dataclasses.replace(cohort, **{
        stem: getattr(cohort, stem).assign(patient_id=getattr(cohort, stem)["patient_id"].map(
            lambda p: alias.get(p, f"x{p}")))
        for stem in ("observations", "attacks", "treatments", "patients")})


def linkage_attack(original: Cohort, shared: Cohort, mapping: pd.DataFrame,
                   attacker: str = "background", band: int | None = BIRTH_BAND,
                   known_dates: int = 3) -> LinkageResult:
    """Run the attack (module doc) of ``original``'s patients on ``shared``.

    ``mapping``: ``patient_id, pseudonym`` (the truth the attacker lacks, to score it);
    ``band``: the width of the export's birth bands (None: birth year withheld).
    """
    real, shown = _profile(original), _profile(shared)
    if attacker not in ("background", "counts", "dates"):
        raise ValueError(f"attacker must be background, counts or dates, not {attacker!r}")
    truth = dict(zip(mapping["pseudonym"], mapping["patient_id"], strict=True))
    expected, unique = 0.0, 0
    for pseudonym, row in shown.iterrows():
        candidates = [pid for pid, r in real.iterrows()
                      if _agrees(r, row, band, attacker, known_dates)]
        if truth.get(pseudonym) in candidates:
            expected += 1.0 / len(candidates)
            unique += len(candidates) == 1
    return LinkageResult(attacker, len(shown), expected, 1.0, unique)
