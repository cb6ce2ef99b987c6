"""Export a cohort for research: pseudonymised (keyed-hash ids, shifted dates, coarsened values).

:func:`pseudonymise` returns the cohort a researcher may receive and the mapping back, which is
written sealed and apart (:func:`export`):

- **ids**: ``p`` + 12 hex of a keyed hash (HMAC-SHA256 under a sub-key of the key) of the id —
  stable under one key, meaningless without it;
- **dates**: every time of a patient shifted by the same whole number of weeks (±4–52, from a
  keyed hash of the id): weekdays, times of day and every interval are kept, calendar dates
  are not;
- **rare values**: ``birth_year`` in 5-year bands; a category (sex, diagnosis, acute drug,
  treatment name, frequency) held by fewer than :data:`K_ANONYMITY` patients becomes
  ``other``; each variable's values beyond the cohort's 1st/99th percentiles are top- and
  bottom-coded to them;
- **free text dropped**: ``observations.source`` (device names), ``variables.description``,
  and any ``attacks.symptoms`` entry that is not a registry symptom.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from pathlib import Path

import pandas as pd

from migraine_bayes.cohort.io import Cohort, load_cohort
from migraine_bayes.cohort.registry import Registry
from migraine_bayes.store import atomic, crypto
from migraine_bayes.store.targets import check_folder_target, check_output_file

K_ANONYMITY = 3  # a category shared by fewer patients is coarsened to "other"
TOP_CODE = (0.01, 0.99)  # each variable's values are clipped to these cohort quantiles
SHIFT_WEEKS = (4, 52)
TIME_COLUMNS = {"observations": ("time",),
                "attacks": ("onset", "end", "prodrome_onset", "acute_time", "postdrome_end"),
                "treatments": ("start", "end"), "patients": ("diary_start", "diary_end")}
RARE = {"patients": ("sex", "diagnosis"), "attacks": ("acute_medication",),
        "treatments": ("name", "frequency")}


def _weeks(pid: str, key: bytes) -> int:
    h = int(crypto.keyed_hash(pid, "export date shift", key, 8), 16)
    low, high = SHIFT_WEEKS
    weeks = low + h % (high - low + 1)
    return weeks if (h >> 20) % 2 else -weeks


def pseudonymise(cohort: Cohort, key: bytes) -> tuple[Cohort, pd.DataFrame]:
    """The cohort pseudonymised (see the module doc) and its mapping.

    Returns
    -------
    (Cohort, DataFrame)
        The cohort to share and ``patient_id, pseudonym, shift_days`` (the mapping).
    """
    ids = sorted(set(cohort.patient_ids) | set(cohort.patients["patient_id"]))
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
                df[col] = df[col] + days.to_numpy()
        for col in RARE.get(stem, ()):
            if col in df:
                df[col] = _coarsened(df, col)
        df["patient_id"] = df["patient_id"].map(alias)
        tables[stem] = df
    obs = tables["observations"]
    obs["source"] = pd.NA
    obs["value"] = _top_coded(obs)
    if "birth_year" in tables["patients"]:
        year = tables["patients"]["birth_year"]
        tables["patients"]["birth_year"] = (year // 5 * 5).astype(year.dtype)
    if "symptoms" in tables["attacks"]:
        known = set(cohort.registry.names("symptom"))
        tables["attacks"]["symptoms"] = tables["attacks"]["symptoms"].map(
            lambda s: s if not isinstance(s, str) else
            (";".join(x for x in s.split(";") if x.strip() in known) or pd.NA))
    registry = Registry([*Registry.builtin(), *(
        dataclasses.replace(v, description="") for v in cohort.registry
        if v.name not in Registry.builtin())])
    shared = Cohort(tables["observations"], tables["attacks"], tables["treatments"],
                    tables["patients"], registry, "pseudonymised export")
    return shared, mapping


def _coarsened(df: pd.DataFrame, col: str) -> pd.Series:
    """Values held by fewer than :data:`K_ANONYMITY` patients become ``other``."""
    holders = df.dropna(subset=[col]).groupby(col)["patient_id"].nunique()
    rare = set(holders.index[holders < K_ANONYMITY])
    return df[col].map(lambda v: "other" if v in rare else v).astype(df[col].dtype)


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
    shared.write(out, observations_format="parquet")
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    with atomic.atomic_path(map_file, mode=0o600) as tmp:
        tmp.write_bytes(crypto.seal(buffer.getvalue().encode("utf-8"), "export mapping"))
    atomic.write_text(Path(out) / "EXPORT.json", json.dumps({
        "pseudonymised": True, "patients": len(table), "k_anonymity": K_ANONYMITY,
        "top_code_quantiles": list(TOP_CODE), "date_shift_weeks": list(SHIFT_WEEKS),
        "key_id": crypto.key_id(key).hex()}, indent=1))
    return {"out": Path(out), "patients": len(table), "sealed": False, "mapping": map_file}


def read_mapping(path: str | os.PathLike) -> pd.DataFrame:
    """The sealed mapping of a pseudonymised export (needs the key it was made with)."""
    return pd.read_csv(io.BytesIO(crypto.read_bytes(path, "export mapping")), dtype=str)

