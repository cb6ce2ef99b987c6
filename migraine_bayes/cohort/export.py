"""Export a cohort for research: pseudonymised, k-anonymous, coarsened to the day.

:func:`pseudonymise` returns the cohort a researcher may receive and the mapping back, which is
written sealed and apart (:func:`export`). The shared cohort holds what a daily analysis needs
and no more:

- **ids**: ``p`` + 12 hex of a keyed hash (HMAC-SHA256 under a sub-key of the key) of the id —
  stable under one key, meaningless without it;
- **days, not times**: every date of a patient moved back by the same whole number of weeks
  (4–52, from a keyed hash of the id; never forward, so no day lands after today), then cut
  to the day: weekdays and day intervals are kept, calendar dates and times of day are not.
  Observations become one value per patient, variable and day (the registry's aggregate rule,
  :mod:`.daily`, as the model reads them); attacks one row per attack day; the times within an
  attack (prodrome, acute dose, postdrome) are dropped;
- **k-anonymous quasi-identifiers** (:func:`_k_anonymous`): what a clinic letter tells — the
  birth band, sex, diagnosis, drugs with their doses and the attack frequency class — is
  released for each patient at the first rung of :data:`LADDER` where at least
  :data:`K_ANONYMITY` patients share it; a patient whose frequency class alone is rarer is
  withheld, and a cohort of fewer patients is not exported;
- **rare values**: an acute drug, treatment name or frequency held by fewer than
  :data:`K_ANONYMITY` patients becomes ``other``, and its dose is withheld; each variable's
  daily values beyond the cohort's 1st/99th percentiles are top- and bottom-coded to them;
- **no free text**: ``observations.source`` (device names) dropped; declared variables renamed
  ``user_variable_1`` … with unit ``units`` and no description; any ``attacks.symptoms``
  entry that is not a registry symptom dropped.

What it does not protect against is measured in docs/SERVICE.md ("Pseudonymised export"):
whoever knows a patient's attack count or a stretch of attack days can find the diary again.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from migraine_bayes.cohort.daily import aggregate
from migraine_bayes.cohort.io import Cohort, load_cohort
from migraine_bayes.cohort.registry import Registry
from migraine_bayes.errors import InputDataError, Problem
from migraine_bayes.store import atomic, crypto
from migraine_bayes.store.targets import check_folder_target, check_output_file

K_ANONYMITY = 5  # every released combination or category is shared by this many patients
TOP_CODE = (0.01, 0.99)  # each variable's values are clipped to these cohort quantiles
SHIFT_WEEKS = (4, 52)
TIME_COLUMNS = {"observations": ("time",), "attacks": ("onset", "end"),
                "treatments": ("start", "end"), "patients": ("diary_start", "diary_end")}
WITHIN_ATTACK = ("prodrome_onset", "acute_time", "postdrome_end")  # dropped: times of day
RARE = {"attacks": (("acute_medication", "acute_dose_mg"),),
        "treatments": (("name", "dose_mg"), ("frequency", None))}
DRUGS = (("attacks", "acute_medication", "acute_dose_mg"), ("treatments", "name", "dose_mg"))
BIRTH_BAND = 10  # years: birth years are released as the first year of their band
WITHHELD = "withheld"  # a treatment's name where the patient's drugs are withheld
# the generalisation ladder, per patient: birth band, sex, diagnosis, drugs ("doses": names and
# doses, "names", None: withheld); the attack frequency class cannot be generalised
LADDER = ((True, True, True, "doses"), (True, True, True, "names"), (True, True, False, "names"),
          (True, True, False, None), (False, True, False, None), (False, False, False, None))
FREQUENCY = ((4, "low-frequency episodic"), (15, "high-frequency episodic"),
             (float("inf"), "chronic"))  # attack days per 30 diary days (ICHD-3 cut-offs)


def _weeks(pid: str, key: bytes) -> int:
    h = int(crypto.keyed_hash(pid, "export date shift", key, 8), 16)
    low, high = SHIFT_WEEKS
    return -(low + h % (high - low + 1))  # back in time: a shifted day has always happened


def pseudonymise(cohort: Cohort, key: bytes) -> tuple[Cohort, pd.DataFrame]:
    """The cohort pseudonymised (see the module doc) and its mapping.

    Returns
    -------
    (Cohort, DataFrame)
        The cohort to share and ``patient_id, pseudonym, shift_days`` (the mapping) of the
        patients released.
        ``cohort.notices`` says how the quasi-identifiers were generalised.

    Raises
    ------
    InputDataError
        A cohort of fewer than :data:`K_ANONYMITY` patients (no release of it is k-anonymous).
    """
    ids = sorted(set(cohort.patient_ids) | set(cohort.patients["patient_id"]))
    if len(ids) < K_ANONYMITY:
        raise InputDataError([Problem("patients", f"a pseudonymised export needs at least "
                                      f"{K_ANONYMITY} patients (k-anonymity); this cohort has "
                                      f"{len(ids)}: every patient would stand out")],
                             cohort.source)
    mapping = pd.DataFrame({"patient_id": ids,
                            "pseudonym": ["p" + crypto.keyed_hash(p, "export pseudonym", key,
                                                                  12) for p in ids],
                            "shift_days": [7 * _weeks(p, key) for p in ids]})
    alias = dict(zip(mapping["patient_id"], mapping["pseudonym"], strict=True))
    shift = dict(zip(mapping["patient_id"], mapping["shift_days"], strict=True))
    tables = {}
    for stem in ("observations", "attacks", "treatments", "patients"):
        df = getattr(cohort, stem).copy()
        days = pd.to_timedelta(df["patient_id"].map(shift).fillna(0).astype(int), unit="D")
        for col in TIME_COLUMNS[stem]:
            if col in df:
                df[col] = (pd.to_datetime(df[col]) + days.to_numpy()).dt.normalize()
        for col, dose in RARE.get(stem, ()):
            if col in df:
                df[col], rare = _coarsened(df, col)
                if dose is not None and dose in df:
                    df[dose] = df[dose].astype(float).mask(rare)
        df["patient_id"] = df["patient_id"].map(alias)
        tables[stem] = df
    registry, names = _coded_registry(cohort.registry)
    tables["observations"] = _daily(tables["observations"], cohort.registry, names)
    tables["attacks"] = _attack_days(tables["attacks"], cohort.registry)
    tables, level, dropped = _k_anonymous(tables)
    notices = [f"quasi-identifiers released as {level}"]
    if dropped:
        notices.append(f"{dropped} patient(s) withheld: their attack frequency class is held "
                       f"by fewer than {K_ANONYMITY} patients")
    shared = Cohort(tables["observations"], tables["attacks"], tables["treatments"],
                    tables["patients"], registry, "pseudonymised export", notices)
    released = set(shared.patient_ids) | set(shared.patients["patient_id"])
    return shared, mapping[mapping["pseudonym"].isin(released)].reset_index(drop=True)


def _coarsened(df: pd.DataFrame, col: str) -> tuple[pd.Series, pd.Series]:
    """Values held by fewer than :data:`K_ANONYMITY` patients become ``other`` (and where)."""
    holders = df.dropna(subset=[col]).groupby(col)["patient_id"].nunique()
    rare = df[col].isin(set(holders.index[holders < K_ANONYMITY])).fillna(False).astype(bool)
    return df[col].where(~rare, "other").astype(df[col].dtype), rare


def _coded_registry(registry: Registry) -> tuple[Registry, dict[str, str]]:
    """Declared variables renamed to codes, their units and descriptions dropped."""
    declared = registry.declared()
    names = {v.name: f"user_variable_{i}" for i, v in enumerate(declared, start=1)}
    return Registry([*Registry.builtin(), *(
        dataclasses.replace(v, name=names[v.name], unit="units", description="")
        for v in declared)]), names


def _daily(obs: pd.DataFrame, registry: Registry, names: dict[str, str]) -> pd.DataFrame:
    """One value per patient, variable and (shifted) day, top-coded; no source, coded names."""
    obs = obs.assign(day=obs["time"].dt.normalize())
    daily = aggregate(obs, registry, ["patient_id", "variable", "day"])
    daily = daily.rename(columns={"day": "time"}).sort_values(
        ["patient_id", "time", "variable"], ignore_index=True)
    daily["value"] = _top_coded(daily)
    daily["variable"] = daily["variable"].map(lambda v: names.get(v, v))
    daily["source"] = pd.NA
    return daily[["patient_id", "time", "variable", "value", "source"]]


def _attack_days(att: pd.DataFrame, registry: Registry) -> pd.DataFrame:
    """One row per patient and attack day (the first attack of the day), no times within it."""
    att = att.drop(columns=[c for c in WITHIN_ATTACK if c in att])
    att = att.sort_values(["patient_id", "onset"]).drop_duplicates(["patient_id", "onset"])
    if "symptoms" in att:
        known = set(registry.names("symptom"))
        att["symptoms"] = att["symptoms"].map(
            lambda s: s if not isinstance(s, str) else
            (";".join(x for x in s.split(";") if x.strip() in known) or pd.NA))
    return att.reset_index(drop=True)


def frequency_class(tables: dict[str, pd.DataFrame]) -> pd.Series:
    """Each patient's attack frequency class (:data:`FREQUENCY`) over their diary's days."""
    spans = pd.concat([tables["observations"][["patient_id", "time"]],
                       tables["attacks"][["patient_id", "onset"]].rename(
                           columns={"onset": "time"})])
    span = spans.groupby("patient_id")["time"].agg(["min", "max"])
    days = ((span["max"] - span["min"]).dt.days + 1).clip(lower=1)
    att = tables["attacks"]
    rate = (att["onset"].dt.normalize().groupby(att["patient_id"]).nunique()
            .reindex(span.index).fillna(0) * 30 / days)
    return rate.map(lambda r: next(name for limit, name in FREQUENCY if r < limit))


def _drug_profile(tables: dict[str, pd.DataFrame], doses: bool) -> pd.Series:
    parts = []
    for stem, name, dose in DRUGS:
        df = tables[stem]
        if name in df and len(df):
            d = df.dropna(subset=[name])
            mg = d[dose].astype(float) if dose in d and doses else pd.Series(np.nan, d.index)
            parts.append(pd.DataFrame({"patient_id": d["patient_id"], "drug": [
                f"{n}@{'' if pd.isna(m) else f'{m:g}'}" for n, m in zip(d[name], mg,
                                                                        strict=True)]}))
    if not parts:
        return pd.Series(dtype=object)
    both = pd.concat(parts)
    return both.groupby("patient_id")["drug"].agg(lambda v: "|".join(sorted(set(v))))


def _k_anonymous(tables: dict[str, pd.DataFrame]
                 ) -> tuple[dict[str, pd.DataFrame], str, int]:
    """Quasi-identifiers generalised until each patient's combination is held by k patients.

    The combination is the patient's birth band, sex, diagnosis, drugs (with their doses) and
    attack frequency class — what a clinic letter tells about a patient. Each patient is
    released at the first rung of :data:`LADDER` where at least :data:`K_ANONYMITY` patients of
    the cohort share the combination at that rung (so whatever a pseudonym shows, k patients
    agree with it); a patient whose frequency class alone is rarer is withheld. Returns the
    tables, the rungs used in words and the number of patients withheld.
    """
    pats = tables["patients"].set_index("patient_id")
    ids = sorted(set(tables["observations"]["patient_id"]) | set(tables["attacks"]["patient_id"])
                 | set(pats.index))
    freq = frequency_class(tables).reindex(ids)
    year = (pats["birth_year"] if "birth_year" in pats else pd.Series(dtype="Int64")).reindex(ids)
    rung = pd.Series(-1, index=ids)
    profiles = {level: _drug_profile(tables, level == "doses").reindex(ids)
                for level in ("doses", "names")}
    shown = {}
    for r, (band, sex, diagnosis, drugs) in enumerate(LADDER):
        q = pd.DataFrame({"frequency": freq}, index=ids)
        q["birth_year"] = (year // BIRTH_BAND * BIRTH_BAND).astype("Int64") if band else pd.NA
        q["sex"] = pats["sex"].reindex(ids) if sex and "sex" in pats else pd.NA
        q["diagnosis"] = (pats["diagnosis"].reindex(ids) if diagnosis and "diagnosis" in pats
                          else pd.NA)
        q["drugs"] = profiles[drugs] if drugs else pd.NA
        keys = pd.Series([tuple(None if pd.isna(v) else str(v) for v in row)
                          for row in q.itertuples(index=False)], index=q.index, dtype=object)
        ok = (keys.map(keys.value_counts()) >= K_ANONYMITY) & (rung < 0)
        rung[ok] = r
        shown[r] = q
    keep = set(rung.index[rung >= 0])
    out = {stem: df[df["patient_id"].isin(keep)].reset_index(drop=True)
           for stem, df in tables.items()}
    p = out["patients"]
    at = rung.reindex(p["patient_id"]).to_numpy()
    for col in ("birth_year", "sex", "diagnosis"):
        if col in p:
            values = [shown[r].at[pid, col] for pid, r in zip(p["patient_id"], at, strict=True)]
            dtype = ("Int64" if col == "birth_year" else
                     p[col].dtype if pd.api.types.is_string_dtype(p[col]) else object)
            p[col] = pd.Series(values, index=p.index, dtype=object).astype(dtype)
    for stem, name, dose in DRUGS:
        df = out[stem]
        if not len(df):
            continue
        level = rung.reindex(df["patient_id"]).map(lambda r: LADDER[r][3]).to_numpy()
        if dose in df:
            df[dose] = df[dose].astype(float).mask(level != "doses")
        if name in df:
            df[name] = df[name].astype(object).mask(pd.isna(level) | (level == None),  # noqa: E711
                                                    None if stem == "attacks" else WITHHELD)
            df[name] = df[name].astype(tables[stem][name].dtype)
    used = sorted(set(rung[rung >= 0]))
    words = [", ".join(w for w, on in ((f"{BIRTH_BAND}-year birth band", band), ("sex", sex),
                                         ("diagnosis", diagnosis),
                                         ({"doses": "drugs with doses", "names": "drug names"}
                                          .get(drugs, ""), drugs)) if on) or "nothing"
             for band, sex, diagnosis, drugs in (LADDER[r] for r in used)]
    counts = rung[rung >= 0].value_counts()
    level = "; ".join(f"{int(counts[r])} patient(s) with {w}" for r, w in zip(used, words,
                                                                            strict=True))
    return out, (level or "nothing") + " (and the attack frequency class)", len(ids) - len(keep)


def _top_coded(obs: pd.DataFrame) -> pd.Series:
    """Each variable's values clipped to its cohort 1st–99th percentiles."""
    lo_q, hi_q = TOP_CODE
    grouped = obs.groupby("variable")["value"]
    lo, hi = grouped.transform(lambda v: v.quantile(lo_q)), grouped.transform(
        lambda v: v.quantile(hi_q))
    return obs["value"].clip(lower=lo, upper=hi)


def mapping_path(out: str | os.PathLike) -> Path:
    """Where the mapping of an export to ``out`` goes by default: beside it, not inside."""
    out = Path(out)
    return out.with_name(f"{out.name}.mapping.sealed")


def export(cohort: str | os.PathLike, out: str | os.PathLike, pseudonymised: bool = False,
           mapping: str | os.PathLike | None = None, force: bool = False) -> dict:
    """Write ``cohort`` (validated) to ``out``: pseudonymised, or sealed with the key.

    ``pseudonymised``: the shared files are in clear but hold no id, real date, free text or
    rare value; the mapping (ids, shifts) is sealed to ``mapping`` (default
    :func:`mapping_path`). Needs a key. Without ``pseudonymised`` every file is sealed when a
    key is in use (a copy for the clinic's own systems), in clear otherwise.
    """
    key = crypto.active_key()
    if pseudonymised and key is None:
        raise crypto.EncryptionKeyError(
            f"--pseudonymise needs a key (set {crypto.KEY_ENV} or pass --key-file): the keyed "
            "hashes and the sealed mapping are made with it")
    check_folder_target(out, force)
    map_file = Path(mapping) if mapping is not None else mapping_path(out)
    if pseudonymised:
        check_output_file(map_file, force, inputs=[cohort])
    c = load_cohort(cohort)
    if not pseudonymised:
        c.write(out, observations_format="parquet", encrypt=key is not None)
        return {"out": Path(out), "patients": len(c.patient_ids), "sealed": key is not None,
                "mapping": None}
    shared, table = pseudonymise(c, key)
    withheld = len(set(c.patient_ids) | set(c.patients["patient_id"])) - len(table)
    shared.write(out, observations_format="parquet")
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    with atomic.atomic_path(map_file, mode=0o600) as tmp:
        tmp.write_bytes(crypto.seal(buffer.getvalue().encode("utf-8"), "export mapping"))
    atomic.write_text(Path(out) / "EXPORT.json", json.dumps({
        "pseudonymised": True, "patients": len(table), "k_anonymity": K_ANONYMITY,
        "birth_band_years": BIRTH_BAND,
        "quasi_identifiers": shared.notices[0].removeprefix("quasi-identifiers released as "),
        "withheld_patients": withheld,
        "resolution": "day", "top_code_quantiles": list(TOP_CODE),
        "date_shift_weeks": list(SHIFT_WEEKS),
        "key_id": crypto.key_id(key).hex()}, indent=1))
    return {"out": Path(out), "patients": len(table), "sealed": False, "mapping": map_file,
            "notices": shared.notices}


def read_mapping(path: str | os.PathLike) -> pd.DataFrame:
    """The sealed mapping of a pseudonymised export (needs the key it was made with)."""
    return pd.read_csv(io.BytesIO(crypto.read_bytes(path, "export mapping")), dtype=str)

