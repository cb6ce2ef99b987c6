"""The service's twins: a registry folder of twin directories, and the diary each is kept on.

A patient is served by the twin directory of the registry that holds it. Loaded twins are
kept in memory and reloaded when their ``twin.json`` changes (a save replaces the directory,
so its inode changes): a forecast costs a forecast, not a load.

A twin updated through the service needs its diary: the cohort it was fitted on (the folder
``twin.json`` names as ``data_source``, read, never written) plus the rows posted since, kept
in the twin directory's ``diary/`` (Parquet, every cell as the text posted; sealed with the
key when there is one). A post is validated alone (its own rows) and then with the stored
diary, exactly as files are (:func:`migraine_bayes.cohort.io.cohort_from_frames`).
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pandas as pd

from migraine_bayes.cohort.integrity import record_days
from migraine_bayes.cohort.io import (
    _COLUMNS,
    Cohort,
    cohort_from_frames,
    load_cohort,
    text_frame,
)
from migraine_bayes.errors import InputDataError, Problem
from migraine_bayes.store import atomic, crypto
from migraine_bayes.store.locking import real_path
from migraine_bayes.store.targets import is_twin
from migraine_bayes.twin.core import DigitalTwin
from migraine_bayes.twin.forecasting import data_hashes
from migraine_bayes.twin.record import TwinError, TwinRecord

DIARY = "diary"
FORECASTS_KEPT = 1024
TABLES = ("observations", "attacks", "treatments")
_CROSS_FILE = ("has no diary period", "outside the patient's diary period")
_NO_ROWS = "file has a header but no data rows"


def _stamp(path: Path) -> tuple[int, int, int]:
    st = (path / "twin.json").stat()
    return st.st_ino, st.st_mtime_ns, st.st_size


class TwinRegistry:
    """The twin directories of ``root`` and the patients each holds (thread-safe)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = real_path(root)
        if not self.root.is_dir():
            raise TwinError(f"registry {root} is not a folder")
        self._metas: dict[Path, tuple[tuple, dict]] = {}
        self._twins: dict[Path, tuple[tuple, DigitalTwin]] = {}
        self._sources: dict[str, tuple[tuple, dict[str, pd.DataFrame]]] = {}
        self._forecasts: dict[tuple, tuple[pd.DataFrame, str]] = {}
        self._lock = threading.Lock()

    def twin_dirs(self) -> list[Path]:
        """Every twin directory directly inside the registry, by name."""
        return sorted(p for p in self.root.iterdir()
                      if p.is_dir() and not p.name.startswith(".") and is_twin(p))

    def record(self, path: Path) -> TwinRecord:
        """A twin's record (``twin.json``), re-read only when it changed."""
        stamp = _stamp(path)
        with self._lock:
            cached = self._metas.get(path)
        if cached is None or cached[0] != stamp:
            cached = (stamp, TwinRecord.read(path))
            with self._lock:
                self._metas[path] = cached
        return cached[1]

    def patients(self) -> dict[str, Path]:
        """Patient id → the twin directory that holds it (the first, by name)."""
        out: dict[str, Path] = {}
        for path in self.twin_dirs():
            for pid in self.record(path).patients:
                out.setdefault(str(pid), path)
        return out

    def locate(self, patient: str) -> Path | None:
        """The twin directory holding ``patient``, or None."""
        return self.patients().get(patient)

    def twin(self, path: Path) -> DigitalTwin:
        """The twin at ``path``, loaded once per version."""
        stamp = _stamp(path)
        with self._lock:
            cached = self._twins.get(path)
        if cached is None or cached[0] != stamp:
            cached = (stamp, DigitalTwin.load(path))
            with self._lock:
                self._twins[path] = cached
        return cached[1]

    def forecast(self, path: Path, patient: str, horizon: int) -> tuple[pd.DataFrame, str]:
        """One patient's forecast table from the twin at ``path``, and the audit's data hash.

        A forecast is a deterministic function of the twin's version (posterior, panel, filter
        state), so it is computed once per version, patient and horizon and then served from
        memory (at most :data:`FORECASTS_KEPT` tables; a new version of the twin starts afresh).
        """
        key = (path, _stamp(path), patient, horizon)
        with self._lock:
            cached = self._forecasts.get(key)
        if cached is None:
            twin = self.twin(path)
            panel = twin.panel.sel(patient=[patient])
            cached = (twin.forecast_panel(panel, horizon), data_hashes(panel)[patient])
            with self._lock:
                if len(self._forecasts) >= FORECASTS_KEPT:
                    self._forecasts.clear()
                self._forecasts[key] = cached
        return cached[0].copy(), cached[1]

    # ------------------------------------------------------------ the diary
    def source_frames(self, path: Path) -> dict[str, pd.DataFrame]:
        """The twin's patients' rows of the cohort it was fitted on, as text cells."""
        record = self.record(path)
        source = Path(str(record.data_source or ""))
        if not source.is_absolute():
            source = Path.cwd() / source
        if not source.is_dir():
            raise TwinError(f"the twin {path.name}'s diary (the cohort it was fitted on, "
                            f"{record.data_source!r}) is not reachable from the service")
        stamp = tuple(sorted((p.name, p.stat().st_mtime_ns) for p in source.iterdir()))
        key = str(source)
        with self._lock:
            cached = self._sources.get(key)
        if cached is None or cached[0] != stamp:
            cohort = load_cohort(source)
            cached = (stamp, {stem: _text_frame(getattr(cohort, stem), stem)
                              for stem in (*TABLES, "patients")})
            with self._lock:
                self._sources[key] = cached
        patients = set(record.patients)
        return {stem: df[df["patient_id"].isin(patients)].reset_index(drop=True)
                for stem, df in cached[1].items()}


def _text_frame(df: pd.DataFrame, stem: str) -> pd.DataFrame:
    """A typed table back as the text cells a file would hold (the columns of the schema)."""
    cols = [c for c in _COLUMNS[stem] if c in df.columns]
    out = text_frame(df[cols]).astype(object)
    return out.where(out.notna(), None).astype(object)


def posted_frames(path: Path) -> dict[str, pd.DataFrame]:
    """The rows posted to a twin so far (``diary/<table>.parquet``), as text cells."""
    out = {}
    for stem in TABLES:
        file = path / DIARY / f"{stem}.parquet"
        out[stem] = (pd.read_parquet(io.BytesIO(crypto.read_bytes(file))) if file.is_file()
                     else pd.DataFrame(columns=_COLUMNS[stem], dtype=object))
    return out


def write_posted(path: Path, frames: dict[str, pd.DataFrame]) -> None:
    """Store the posted rows (each file atomic, 0600, sealed when a key is in use)."""
    folder = path / DIARY
    folder.mkdir(mode=0o700, exist_ok=True)
    for stem, df in frames.items():
        buffer = io.BytesIO()
        df.astype(object).astype("string").to_parquet(buffer, index=False)
        with atomic.atomic_path(folder / f"{stem}.parquet", mode=0o600) as tmp:
            tmp.write_bytes(crypto.encode(buffer.getvalue(), f"{stem}.parquet"))


def new_rows(patient: str, body: dict[str, list[dict]]) -> dict[str, pd.DataFrame]:
    """A post's rows as text-cell tables of :data:`TABLES` (the patient id filled in)."""
    out = {}
    for stem in TABLES:
        rows = [{"patient_id": patient, **{k: _cell(v) for k, v in r.items()}}
                for r in body.get(stem) or []]
        out[stem] = pd.DataFrame(rows, columns=_COLUMNS[stem], dtype=object)
    return out


def _cell(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def check_alone(rows: dict[str, pd.DataFrame]) -> None:
    """Validate a post's own rows; problems name ``body.<table>`` and the row in the post.

    Rules linking them to the stored diary (diary periods) are left to :func:`combined`.
    """
    try:
        cohort_from_frames(rows["observations"], rows["attacks"], rows["treatments"])
    except InputDataError as exc:  # a post of attacks alone holds no observation: that is fine
        problems = [_renamed(p, 0) for p in exc.problems
                    if not any(s in p.rule for s in _CROSS_FILE)
                    and not (p.rule == _NO_ROWS and p.file == "observations")]
        if problems:
            raise InputDataError(problems, "the posted rows") from None


def combined(source: dict[str, pd.DataFrame], posted: dict[str, pd.DataFrame],
             rows: dict[str, pd.DataFrame]) -> tuple[Cohort, dict[str, pd.DataFrame]]:
    """The cohort of the stored diary plus the new rows, validated; and the new posted store.

    A problem in a new row names ``body.<table>`` and its row in the post; one in the stored
    diary names ``diary <table>``.
    """
    store = {stem: pd.concat([posted[stem], rows[stem]], ignore_index=True) for stem in TABLES}
    tables = {stem: pd.concat([source[stem], store[stem]], ignore_index=True)
              for stem in TABLES}
    before = {stem: len(source[stem]) + len(posted[stem]) for stem in TABLES}
    try:
        cohort = cohort_from_frames(tables["observations"], tables["attacks"],
                                    tables["treatments"], _extended(source["patients"], store))
    except InputDataError as exc:
        raise InputDataError([_renamed(p, before.get(p.file, 0)) for p in exc.problems],
                             "the stored diary with the posted rows") from None
    return cohort, store


def _extended(patients: pd.DataFrame, store: dict[str, pd.DataFrame]) -> pd.DataFrame | None:
    """The patients table with each declared diary end moved to the last day posted.

    Posting a day continues the diary to that day (a day that does not parse is left to the
    validation, which names it).
    """
    if patients.empty:
        return None
    out = patients.copy()
    times = pd.concat([store["observations"][["patient_id", "time"]].rename(
        columns={"time": "t"}), store["attacks"][["patient_id", "onset"]].rename(
        columns={"onset": "t"})])
    times["t"] = pd.to_datetime(times["t"], errors="coerce", format="ISO8601")
    last = times.dropna().groupby("patient_id")["t"].max().dt.normalize()
    if "diary_end" in out:
        end = pd.to_datetime(out["diary_end"], errors="coerce", format="ISO8601")
        new = out["patient_id"].map(last)
        later = new.notna() & end.notna() & (new > end)
        out.loc[later, "diary_end"] = new[later].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return out


def _renamed(p: Problem, before: int) -> Problem:
    """A problem of the combined tables, named by where its row came from."""
    if p.row is None or p.file not in TABLES:
        return p
    if p.row > before:
        return Problem(f"body.{p.file}", p.rule, p.row - before, p.column, p.value)
    return Problem(f"diary {p.file}", p.rule, p.row, p.column, p.value)


def unrecorded_days(cohort: Cohort, patient: str, days: pd.DataFrame) -> list[str]:
    """The new days a post would count as kept although nothing of the patient is on them.

    ``days``: the update's new days (:meth:`~migraine_bayes.twin.DigitalTwin.update`). A day
    with a known outcome must hold a record of the patient: an attack, a ``diary_entry`` or
    another observation that is not environmental. Otherwise a single late value would make
    every day since the last one a "kept, no attack" day (a complete diary, docs/SCHEMA.md).
    """
    mine = days[(days["patient_id"] == patient) & days["outcome"].notna()]
    if mine.empty:
        return []
    obs, att = cohort.observations, cohort.attacks
    kept = record_days(obs[obs["patient_id"] == patient], att[att["patient_id"] == patient],
                       cohort.registry)
    recorded = set(kept["day"].dt.date)
    return [str(d) for d in mine["date"] if d not in recorded]
