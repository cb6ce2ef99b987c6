"""Audit trail of a twin: forecasts, outcomes, updates — append-only and tamper-evident.

An SQLite database ``audit.sqlite`` inside the twin directory. Rows are only ever inserted
(triggers refuse UPDATE and DELETE). Every row carries ``seq`` (its place in one sequence over
all tables) and ``hash`` = SHA-256 of the previous row's hash and the row's own content — or an
HMAC-SHA256 keyed by ``MIGRAINE_BAYES_AUDIT_KEY`` when that is set at creation — so a row
inserted, changed or removed behind the tool's back breaks the chain at that row:
:func:`verify` (``migraine-twin audit verify``) finds the first broken one, and every
:meth:`~migraine_bayes.twin.DigitalTwin.load` runs it. Dropped triggers are reported, never
silently recreated. Patient ids are the cohort's pseudonymous ids; nothing else identifying is
stored.

A save and its audit rows commit together through a journal (``audit-journal.json``): the new
twin directory carries the rows it owes the audit trail; they are inserted in one transaction
right after the directory is in place (and on the next load if a crash came in between), and
the journal's id makes the replay idempotent.

Tables: ``forecasts`` (twin version, patient, date forecast, last day of data used, a hash of
the data used, ``p_attack`` and its interval), ``outcomes`` (patient, date, outcome; the first
value recorded for a day wins) and ``events`` (fit, update, retrain, drift check, forecast
records refused … with JSON details).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import MigraineBayesError

FILE = "audit.sqlite"
JOURNAL = "audit-journal.json"
FORMAT = "2"  # hash-chained rows
KEY_ENV = "MIGRAINE_BAYES_AUDIT_KEY"
GENESIS = "0" * 64

COLUMNS: dict[str, tuple[str, ...]] = {
    "forecasts": ("twin_version", "patient_id", "date", "issued_at", "data_hash", "p_attack",
                  "p_low", "p_high"),
    "outcomes": ("patient_id", "date", "outcome"),
    "events": ("twin_version", "kind", "detail"),
}
SCHEMA = """
CREATE TABLE forecasts (
    id INTEGER PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, recorded_utc TEXT NOT NULL,
    twin_version REAL NOT NULL, patient_id TEXT NOT NULL, date TEXT NOT NULL,
    issued_at TEXT NOT NULL, data_hash TEXT NOT NULL, p_attack REAL NOT NULL,
    p_low REAL NOT NULL, p_high REAL NOT NULL, hash TEXT NOT NULL);
CREATE TABLE outcomes (
    id INTEGER PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, recorded_utc TEXT NOT NULL,
    patient_id TEXT NOT NULL, date TEXT NOT NULL, outcome INTEGER NOT NULL,
    hash TEXT NOT NULL, UNIQUE (patient_id, date));
CREATE TABLE events (
    id INTEGER PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, recorded_utc TEXT NOT NULL,
    twin_version REAL NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_GUARDED = (*COLUMNS, "audit_meta")
TRIGGERS = {f"{t}_no_{op}": f"""
CREATE TRIGGER {t}_no_{op} BEFORE {op.upper()} ON {t}
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;"""
            for t in _GUARDED for op in ("update", "delete")}


class AuditError(MigraineBayesError):
    """The audit trail is missing its protections or fails verification."""


@dataclass
class Verification:
    """Result of :func:`verify`.

    ``entries``: rows in the chain; ``head``: the last row's hash; ``problems``: what is wrong,
    the first broken row first (empty when the trail is intact).
    """

    entries: int
    head: str
    keyed: bool
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the chain, the triggers and the expected head all hold."""
        return not self.problems


# ---------------------------------------------------------------- connecting
def _key() -> bytes | None:
    value = os.environ.get(KEY_ENV)
    return value.encode("utf-8") if value else None


@contextlib.contextmanager
def connect(twin_dir: str | Path, check: bool = True) -> Iterator[sqlite3.Connection]:
    """Open (creating if needed, mode 0600) a twin's audit database.

    ``check``: refuse a database whose append-only triggers were removed or that predates the
    hash chain (:class:`AuditError`). Transactions are explicit (:func:`_transaction`).
    """
    path = Path(twin_dir) / FILE
    con = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    try:
        con.execute("PRAGMA synchronous=FULL")
        if con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:  # new
            os.chmod(path, 0o600)
            con.executescript("BEGIN;" + SCHEMA + "".join(TRIGGERS.values())
                              + f"INSERT INTO audit_meta VALUES ('format', '{FORMAT}');"
                              + "INSERT INTO audit_meta VALUES ('keyed', "
                              + ("'1'" if _key() else "'0'") + ");COMMIT;")
        elif check:
            problems = _structure_problems(con)
            if problems:
                raise AuditError(f"audit trail {path}: " + "; ".join(problems))
        yield con
    finally:
        con.close()


@contextlib.contextmanager
def _transaction(con: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taken before reading the chain's head (no interleaving)."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _structure_problems(con: sqlite3.Connection) -> list[str]:
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "audit_meta" not in tables or "seq" not in {
            r[1] for r in con.execute("PRAGMA table_info(events)")}:
        return ["written by an older version without a hash chain (or not an audit "
                "database); it cannot be verified — keep it aside and refit the twin"]
    triggers = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    missing = sorted(set(TRIGGERS) - triggers)
    if missing:
        return [f"append-only triggers removed ({', '.join(missing)}): rows may have been "
                "altered outside the tool"]
    return []


def _keyed(con: sqlite3.Connection) -> bool:
    row = con.execute("SELECT value FROM audit_meta WHERE key = 'keyed'").fetchone()
    return bool(row and row[0] == "1")


# ---------------------------------------------------------------- the chain
def _digest(prev: str, table: str, seq: int, recorded: str, values: Sequence[object],
            key: bytes | None) -> str:
    payload = json.dumps([prev, table, seq, recorded, *values], separators=(",", ":"),
                         ensure_ascii=True).encode("utf-8")
    if key is not None:
        return hmac.new(key, payload, hashlib.sha256).hexdigest()
    return hashlib.sha256(payload).hexdigest()


def _head(con: sqlite3.Connection) -> tuple[int, str]:
    union = " UNION ALL ".join(f"SELECT seq, hash FROM {t}" for t in COLUMNS)
    row = con.execute(f"SELECT seq, hash FROM ({union}) ORDER BY seq DESC LIMIT 1").fetchone()
    return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))


def _signing_key(con: sqlite3.Connection) -> bytes | None:
    if not _keyed(con):
        return None
    key = _key()
    if key is None:
        raise AuditError(f"this audit trail is signed with a key: set {KEY_ENV} to write or "
                         "verify it")
    return key


def _append(con: sqlite3.Connection, table: str, rows: list[tuple]) -> int:
    """Insert rows (values in :data:`COLUMNS` order) chained to the head; inside a transaction."""
    if not rows:
        return 0
    key = _signing_key(con)
    seq, prev = _head(con)
    now = _now()
    cols = COLUMNS[table]
    sql = (f"INSERT INTO {table} (seq, recorded_utc, {', '.join(cols)}, hash) VALUES "
           f"({', '.join('?' * (len(cols) + 3))})")
    for values in rows:
        seq += 1
        prev = _digest(prev, table, seq, now, values, key)
        con.execute(sql, (seq, now, *values, prev))
    return len(rows)


def head(twin_dir: str | Path) -> dict:
    """``{"entries": n, "hash": h}`` of the audit trail now (zero entries when there is none)."""
    if not (Path(twin_dir) / FILE).exists():
        return {"entries": 0, "hash": GENESIS}
    with connect(twin_dir) as con:
        seq, digest = _head(con)
    return {"entries": seq, "hash": digest}


def verify(twin_dir: str | Path, expected: dict | None = None) -> Verification:
    """Recompute the chain of a twin's audit trail and report the first broken row.

    ``expected``: a head ``{"entries", "hash", "journal"}`` recorded in ``twin.json`` at the
    last save; the trail must still hold that entry unchanged and the rows of that save's
    journal (a truncated or rebuilt trail fails).
    """
    path = Path(twin_dir) / FILE
    if not path.exists():
        problems = ([f"{FILE} is missing but the twin recorded {expected['entries']} audit "
                     "entries"] if expected and expected.get("entries") else [])
        return Verification(0, GENESIS, False, problems)
    with connect(twin_dir, check=False) as con:
        problems = _structure_problems(con)
        if problems and "hash chain" in problems[0]:
            return Verification(0, GENESIS, False, problems)
        keyed = _keyed(con)
        key = _key() if keyed else None
        if keyed and key is None:
            return Verification(0, GENESIS, True, [f"signed with a key: set {KEY_ENV} to "
                                                   "verify it"])
        journal_done = bool(expected and expected.get("journal") and con.execute(
            "SELECT 1 FROM events WHERE json_extract(detail, '$.journal') = ?",
            (expected["journal"],)).fetchone())
        rows = []
        for table, cols in COLUMNS.items():
            for r in con.execute(f"SELECT id, seq, recorded_utc, {', '.join(cols)}, hash "
                                 f"FROM {table}"):
                rows.append((r[1], table, r[0], r[2], r[3:-1], r[-1]))
    rows.sort(key=lambda r: r[0])
    prev, seen = GENESIS, 0
    hashes = {}
    for seq, table, rowid, recorded, values, digest in rows:
        where = f"table {table}, row id {rowid}"
        if not isinstance(seq, int) or seq != seen + 1:
            problems.append(f"first broken row: {where}: sequence number {seq} where "
                            f"{seen + 1} was expected (a row was inserted or removed)")
            break
        if _digest(prev, table, seq, recorded, values, key) != digest:
            problems.append(f"first broken row: {where} (entry {seq}): its hash does not match "
                            "its content and the row before it")
            break
        prev, seen = digest, seq
        hashes[seq] = digest
    if expected and expected.get("entries") and not problems:
        n = int(expected["entries"])
        if hashes.get(n) != expected.get("hash"):
            problems.append(f"the twin recorded audit entry {n} (hash {expected['hash'][:12]}…), "
                            f"which the trail no longer holds: it has {seen} entries")
    if expected and expected.get("journal") and not journal_done and not problems and not (
            Path(twin_dir) / JOURNAL).exists():
        problems.append(f"the rows of the twin's last save (journal {expected['journal'][:12]}…) "
                        "are missing from the trail: it was truncated")
    return Verification(seen, prev, keyed, problems)


# ---------------------------------------------------------------- writing
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
    rows = [(float(version), str(r.patient_id), str(r.date), str(r.issued_at),
             hashes.get(str(r.patient_id), ""), float(r.p_attack), float(r.p_low),
             float(r.p_high)) for r in table.itertuples(index=False)]
    with connect(twin_dir) as con, _transaction(con):
        return _append(con, "forecasts", rows)


def _new_outcomes(con: sqlite3.Connection, rows: list[tuple[str, str, int]]) -> list[tuple]:
    known = {(p, d) for p, d in con.execute("SELECT patient_id, date FROM outcomes")}
    out, seen = [], set()
    for pid, date, y in rows:
        if (pid, date) not in known and (pid, date) not in seen:
            seen.add((pid, date))
            out.append((pid, date, int(y)))
    return out


def record_outcomes(twin_dir: str | Path, outcomes: pd.DataFrame) -> int:
    """Append known outcomes (``patient_id, date, outcome``); days already recorded are kept."""
    rows = [(str(r.patient_id), str(r.date), int(r.outcome))
            for r in outcomes.itertuples(index=False)]
    with connect(twin_dir) as con, _transaction(con):
        return _append(con, "outcomes", _new_outcomes(con, rows))


def record_event(twin_dir: str | Path, version: float, kind: str, detail: dict) -> None:
    """Append an event (``fit``, ``update``, ``retrain``, ``drift`` …) with JSON details."""
    with connect(twin_dir) as con, _transaction(con):
        _append(con, "events", [(float(version), kind, json.dumps(detail, default=str))])


# ---------------------------------------------------------------- the journal
def journal(journal_id: str, events: list[tuple[float, str, dict]],
            outcomes: list[tuple[str, str, int]]) -> dict:
    """The audit rows a save owes, to be written into the new twin directory as :data:`JOURNAL`."""
    return {"id": journal_id,
            "events": [[float(v), k, {**d, "journal": journal_id}] for v, k, d in events],
            "outcomes": [[str(p), str(d), int(y)] for p, d, y in outcomes]}


def apply_journal(twin_dir: str | Path) -> bool:
    """Insert a pending journal's rows (once: a replay of an applied journal only removes it).

    The caller holds the twin's lock. Returns True when rows were inserted.
    """
    path = Path(twin_dir) / JOURNAL
    if not path.is_file():
        return False
    entry = json.loads(path.read_text(encoding="utf-8"))
    with connect(twin_dir) as con, _transaction(con):
        done = con.execute("SELECT 1 FROM events WHERE json_extract(detail, '$.journal') = ?",
                           (entry["id"],)).fetchone()
        if not done:
            _append(con, "outcomes", _new_outcomes(con, [tuple(r) for r in entry["outcomes"]]))
            _append(con, "events", [(float(v), k, json.dumps(d, default=str))
                                    for v, k, d in entry["events"]])
    path.unlink()
    return not done


# ---------------------------------------------------------------- reading
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
        return pd.read_sql_query("SELECT * FROM events ORDER BY seq", con)
