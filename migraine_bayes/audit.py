"""Audit trail of a twin: every forecast issued, every outcome, every update — append-only.

An SQLite database ``audit.sqlite`` inside the twin directory. Rows are only ever inserted
(triggers refuse UPDATE and DELETE); each write is one transaction, so a crash loses at most the
write in progress and never what was recorded before. Patient ids are the cohort's pseudonymous
ids; nothing else identifying is stored.

Tables: ``forecasts`` (twin version, patient, date forecast, last day of data used, a hash of the
data used, ``p_attack`` and its interval), ``outcomes`` (patient, date, outcome; the first value
recorded for a day wins) and ``events`` (fit, update, retrain, drift check — with details).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

FILE = "audit.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS forecasts (
    id INTEGER PRIMARY KEY, recorded_utc TEXT NOT NULL, twin_version REAL NOT NULL,
    patient_id TEXT NOT NULL, date TEXT NOT NULL, issued_at TEXT NOT NULL,
    data_hash TEXT NOT NULL, p_attack REAL NOT NULL, p_low REAL NOT NULL, p_high REAL NOT NULL);
CREATE TABLE IF NOT EXISTS outcomes (
    patient_id TEXT NOT NULL, date TEXT NOT NULL, outcome INTEGER NOT NULL,
    recorded_utc TEXT NOT NULL, PRIMARY KEY (patient_id, date));
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, recorded_utc TEXT NOT NULL, twin_version REAL NOT NULL,
    kind TEXT NOT NULL, detail TEXT NOT NULL);
"""
_APPEND_ONLY = [f"""
CREATE TRIGGER IF NOT EXISTS {t}_no_{op} BEFORE {op.upper()} ON {t}
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;"""
                for t in ("forecasts", "outcomes", "events") for op in ("update", "delete")]


@contextlib.contextmanager
def connect(twin_dir: str | Path) -> Iterator[sqlite3.Connection]:
    """Open (creating if needed) a twin's audit database; commits on success."""
    path = Path(twin_dir) / FILE
    con = sqlite3.connect(path, timeout=30.0)
    try:
        con.execute("PRAGMA synchronous=FULL")
        con.executescript(SCHEMA + "".join(_APPEND_ONLY))
        with con:
            yield con
    finally:
        con.close()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def data_hash(*arrays: np.ndarray) -> str:
    """Short SHA-256 of the arrays a forecast was computed from."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(np.nan_to_num(np.asarray(a, dtype=float))).tobytes())
    return h.hexdigest()[:16]


def record_forecasts(twin_dir: str | Path, table: pd.DataFrame, version: float,
                     hashes: dict[str, str]) -> int:
    """Append a forecast table (``patient_id, date, issued_at, p_attack, p_low, p_high``)."""
    now = _now()
    rows = [(now, float(version), str(r.patient_id), str(r.date), str(r.issued_at),
             hashes.get(str(r.patient_id), ""), float(r.p_attack), float(r.p_low),
             float(r.p_high)) for r in table.itertuples(index=False)]
    with connect(twin_dir) as con:
        con.executemany("INSERT INTO forecasts (recorded_utc, twin_version, patient_id, date, "
                        "issued_at, data_hash, p_attack, p_low, p_high) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


def record_outcomes(twin_dir: str | Path, outcomes: pd.DataFrame) -> int:
    """Append known outcomes (``patient_id, date, outcome``); days already recorded are kept."""
    now = _now()
    rows = [(str(r.patient_id), str(r.date), int(r.outcome), now)
            for r in outcomes.itertuples(index=False)]
    with connect(twin_dir) as con:
        before = con.total_changes
        con.executemany("INSERT OR IGNORE INTO outcomes VALUES (?, ?, ?, ?)", rows)
        return con.total_changes - before


def record_event(twin_dir: str | Path, version: float, kind: str, detail: dict) -> None:
    """Append an event (``fit``, ``update``, ``retrain``, ``drift``) with JSON details."""
    with connect(twin_dir) as con:
        con.execute("INSERT INTO events (recorded_utc, twin_version, kind, detail) VALUES "
                    "(?, ?, ?, ?)", (_now(), float(version), kind,
                                     json.dumps(detail, default=str)))


def prediction_outcomes(twin_dir: str | Path, start: str | None = None,
                        end: str | None = None) -> pd.DataFrame:
    """Forecasts joined with their outcomes (NaN while unknown) for dates in [start, end]."""
    query = ("SELECT f.patient_id, f.date, f.issued_at, f.twin_version, f.data_hash, "
             "f.p_attack, f.p_low, f.p_high, o.outcome FROM forecasts f LEFT JOIN outcomes o "
             "ON o.patient_id = f.patient_id AND o.date = f.date WHERE 1=1")
    args: list[str] = []
    if start is not None:
        query += " AND f.date >= ?"
        args.append(str(start))
    if end is not None:
        query += " AND f.date <= ?"
        args.append(str(end))
    with connect(twin_dir) as con:
        return pd.read_sql_query(query + " ORDER BY f.date, f.patient_id, f.id", con,
                                 params=args)


def events(twin_dir: str | Path) -> pd.DataFrame:
    """All recorded events, oldest first."""
    with connect(twin_dir) as con:
        return pd.read_sql_query("SELECT * FROM events ORDER BY id", con)
