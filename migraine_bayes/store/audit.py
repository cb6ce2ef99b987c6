"""Audit trail of a twin: forecasts, outcomes, updates — append-only and tamper-evident.

An SQLite database ``audit.sqlite`` inside the twin directory. Rows are only ever inserted
(triggers refuse UPDATE and DELETE). Every row carries ``seq`` (its place in one sequence over
all tables) and ``hash`` = SHA-256 of the previous row's hash and the row's own content — or an
HMAC-SHA256 keyed by ``MIGRAINE_BAYES_AUDIT_KEY`` when that is set at creation — so a row
inserted, changed or removed behind the tool's back breaks the chain at that row:
:func:`verify` (``migraine-twin audit verify``) finds the first broken one, and every
:meth:`~migraine_bayes.twin.core.DigitalTwin.load` runs it. Dropped triggers are reported, never
silently recreated. Patient ids are the cohort's pseudonymous ids; nothing else identifying is
stored.

A save and its audit rows commit together through a journal (``audit-journal.json``): the new
twin directory carries the rows it owes the audit trail; they are inserted in one transaction
right after the directory is in place (and on the next load if a crash came in between), and
the journal's id makes the replay idempotent.

With an encryption key (:mod:`migraine_bayes.store.crypto`) at its creation the database is
*sealed*: each row stores its values as one AES-GCM ciphertext (``sealed``) and a keyed
``lookup`` token (HMAC of the patient and date, or the journal id of an event) for the
queries that need equality; the hash chain then runs over those stored columns, so nothing in
the file shows a patient id, a date forecast or a value, and the chain can be verified
without the key. Rows are opened with the key to be read.

Tables: ``forecasts`` (twin version, patient, date forecast, last day of data used, a hash of
the data used, ``p_attack`` and its interval), ``outcomes`` (patient, date, outcome; the first
value recorded for a day wins) and ``events`` (fit, update, retrain, drift check, forecast
records refused … with JSON details).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import math
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from migraine_bayes.errors import MigraineBayesError
from migraine_bayes.store import atomic, crypto

FILE = "audit.sqlite"
JOURNAL = "audit-journal.json"
TWIN_FILES = ("twin.json", "posterior.nc")  # a save records the digests of these
FORMAT = "2"  # hash-chained rows
SEALED_FORMAT = "3"  # hash-chained rows, values sealed
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
SEALED_SCHEMA = "".join(f"""
CREATE TABLE {t} (
    id INTEGER PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, recorded_utc TEXT NOT NULL,
    lookup TEXT NOT NULL, sealed TEXT NOT NULL, hash TEXT NOT NULL
    {', UNIQUE (lookup)' if t == 'outcomes' else ''});""" for t in COLUMNS) + """
CREATE INDEX events_lookup ON events (lookup);
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
            _create(con, crypto.active_key())
        elif check:
            problems = _structure_problems(con)
            if problems:
                raise AuditError(f"audit trail {path}: " + "; ".join(problems))
        yield con
    finally:
        con.close()


def _create(con: sqlite3.Connection, key: bytes | None) -> None:
    """The tables, triggers and meta rows of a new database (sealed when ``key``)."""
    rows = {"format": SEALED_FORMAT if key else FORMAT, "keyed": "1" if _key() else "0"}
    if key is not None:
        rows["key_id"] = crypto.key_id(key).hex()
    con.executescript("BEGIN;" + (SEALED_SCHEMA if key else SCHEMA)
                      + "".join(TRIGGERS.values())
                      + "".join(f"INSERT INTO audit_meta VALUES ('{k}', '{v}');"
                                for k, v in rows.items()) + "COMMIT;")


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


def _sealed(con: sqlite3.Connection) -> bool:
    row = con.execute("SELECT value FROM audit_meta WHERE key = 'format'").fetchone()
    return bool(row and row[0] == SEALED_FORMAT)


def _stored(table: str, sealed: bool) -> tuple[str, ...]:
    """The columns a row's hash covers: its values, or (sealed) its lookup and ciphertext."""
    return ("lookup", "sealed") if sealed else COLUMNS[table]


def _lookup(table: str, values: Sequence[object]) -> str:
    """The keyed equality token of a sealed row (journal id of an event: not patient data)."""
    if table == "events":
        return str(json.loads(str(values[2])).get("journal") or "")
    what = "\0".join(str(v) for v in (values[:2] if table == "outcomes" else values[1:2]))
    return crypto.keyed_hash(what, "audit lookup", length=32)


def _encoded(table: str, values: Sequence[object], sealed: bool) -> tuple:
    """A row's values as stored (sealed: lookup token and ciphertext)."""
    if not sealed:
        return tuple(values)
    blob = crypto.seal(json.dumps(list(values)).encode("utf-8"), f"audit:{table}")
    return _lookup(table, values), base64.b64encode(blob).decode("ascii")


def _decoded(table: str, stored: Sequence[object], sealed: bool) -> list:
    if not sealed:
        return list(stored)
    blob = base64.b64decode(str(stored[1]))
    return json.loads(crypto.unseal(blob, f"audit:{table}", f"audit trail ({table})"))


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
    best = (0, GENESIS)
    for t in COLUMNS:  # max(seq) per table reads its unique index: no scan of the trail
        row = con.execute(f"SELECT seq, hash FROM {t} WHERE seq = (SELECT max(seq) FROM {t})"
                          ).fetchone()
        if row is not None and int(row[0]) > best[0]:
            best = (int(row[0]), str(row[1]))
    return best


def _signing_key(con: sqlite3.Connection) -> bytes | None:
    if not _keyed(con):
        return None
    key = _key()
    if key is None:
        raise AuditError(f"this audit trail is signed with a key: set {KEY_ENV} to write or "
                         "verify it")
    return key


def _append(con: sqlite3.Connection, table: str, rows: list[tuple],
            recorded: str | None = None) -> int:
    """Insert rows (values in :data:`COLUMNS` order) chained to the head; inside a transaction.

    ``recorded``: the rows' recording time (default now; a re-sealed trail keeps its own).
    """
    if not rows:
        return 0
    key = _signing_key(con)
    seq, prev = _head(con)
    now = recorded or _now()
    sealed = _sealed(con)  # once: a forecast table appends many rows
    cols = _stored(table, sealed)
    sql = (f"INSERT INTO {table} (seq, recorded_utc, {', '.join(cols)}, hash) VALUES "
           f"({', '.join('?' * (len(cols) + 3))})")
    for values in rows:
        seq += 1
        stored = _encoded(table, values, sealed)
        prev = _digest(prev, table, seq, now, stored, key)
        con.execute(sql, (seq, now, *stored, prev))
    return len(rows)


def head(twin_dir: str | Path) -> dict:
    """``{"entries": n, "hash": h}`` of the audit trail now (zero entries when there is none)."""
    if not (Path(twin_dir) / FILE).exists():
        return {"entries": 0, "hash": GENESIS}
    with connect(twin_dir) as con:
        seq, digest = _head(con)
    return {"entries": seq, "hash": digest}


def verify(twin_dir: str | Path, expected: dict | None = None,
           files: bool = False) -> Verification:
    """Recompute the chain of a twin's audit trail and report the first broken row.

    ``expected``: a head ``{"entries", "hash", "journal"}`` recorded in ``twin.json`` at the
    last save; the trail must still hold that entry unchanged and the rows of that save's
    journal (a truncated or rebuilt trail fails). ``files``: the twin's files must also be the
    ones the trail last recorded (:func:`files_problem`: no rollback, no substitution).
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
        journal_done = bool(expected and expected.get("journal")
                            and _journal_done(con, expected["journal"]))
        rows = []
        sealed = _sealed(con)
        for table in COLUMNS:
            cols = _stored(table, sealed)
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
    if files and not problems:
        problems += [p for p in [files_problem(twin_dir)] if p]
    return Verification(seen, prev, keyed, problems)


def files_problem(twin_dir: str | Path) -> str | None:
    """What is wrong when the twin's files are not the ones the trail last recorded."""
    recorded = last_files(twin_dir)
    if recorded is None:
        return None
    current = file_digests(twin_dir)
    changed = [name for name in TWIN_FILES if current[name] != recorded.get(name)]
    if not changed:
        return None
    return (f"{' and '.join(changed)} {'is' if len(changed) == 1 else 'are'} not the file(s) "
            "the audit trail last recorded — restored from an older copy, or replaced? A "
            "rolled-back twin forecasts from a state its updates have left: put back the files "
            "of its last save or refit the twin")


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


def _json(detail: object) -> str:
    """Strict JSON of an event's detail (a non-finite number is stored as null).

    SQLite's JSON functions refuse NaN, which a check with no day to test reports.
    """
    def clean(x: object) -> object:
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [clean(v) for v in x]
        return x

    return json.dumps(clean(detail), default=str, allow_nan=False)


def _journal_done(con: sqlite3.Connection, journal_id: str) -> bool:
    """Whether the rows of the journal ``journal_id`` are in the trail."""
    sql = ("SELECT 1 FROM events WHERE lookup = ?" if _sealed(con) else
           "SELECT 1 FROM events WHERE json_extract(detail, '$.journal') = ?")
    return con.execute(sql, (journal_id,)).fetchone() is not None


def _new_outcomes(con: sqlite3.Connection, rows: list[tuple[str, str, int]]) -> list[tuple]:
    if _sealed(con):  # a day is known by its lookup token
        def name(p: str, d: str) -> object:
            return _lookup("outcomes", (p, d))
        known = {r[0] for r in con.execute("SELECT lookup FROM outcomes")}
    else:
        def name(p: str, d: str) -> object:
            return (p, d)
        known = set(con.execute("SELECT patient_id, date FROM outcomes").fetchall())
    out, seen = [], set()
    for pid, date, y in rows:
        k = name(pid, date)
        if k not in known and k not in seen:
            seen.add(k)
            out.append((pid, date, int(y)))
    return out


def record_outcomes(twin_dir: str | Path, outcomes: pd.DataFrame) -> int:
    """Append known outcomes (``patient_id, date, outcome``); days already recorded are kept."""
    rows = [(str(r.patient_id), str(r.date), int(r.outcome))
            for r in outcomes.itertuples(index=False)]
    with connect(twin_dir) as con, _transaction(con):
        return _append(con, "outcomes", _new_outcomes(con, rows))


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes as stored (sealed or not)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_digests(twin_dir: str | Path) -> dict[str, str]:
    """The digests of a twin directory's :data:`TWIN_FILES` (what a save records)."""
    return {name: file_digest(Path(twin_dir) / name) for name in TWIN_FILES}


def last_files(twin_dir: str | Path) -> dict | None:
    """The twin files the trail last recorded (``{"twin.json": h, "posterior.nc": h}``).

    Every audited save — fit, update, retrain, a plain save of an audited twin, a key rotation
    — records the digests of the files it wrote (``files`` of its event). None when the trail
    records none (a twin saved without audit, or by an older version).
    """
    if not (Path(twin_dir) / FILE).exists():
        return None
    with connect(twin_dir) as con:
        ev = _table(con, "events")
    for detail in reversed(ev["detail"].tolist()):
        files = json.loads(detail).get("files")
        if files:
            return files
    return None


def record_event(twin_dir: str | Path, version: float, kind: str, detail: dict) -> None:
    """Append an event (``fit``, ``update``, ``retrain``, ``drift`` …) with JSON details."""
    with connect(twin_dir) as con, _transaction(con):
        _append(con, "events", [(float(version), kind, _json(detail))])


# ---------------------------------------------------------------- the journal
def journal(journal_id: str, events: list[tuple[float, str, dict]],
            outcomes: list[tuple[str, str, int]]) -> dict:
    """The audit rows a save owes, to be written into the new twin directory as :data:`JOURNAL`.

    The save adds the digests of the files it wrote to the events (``files``).
    """
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
    entry = json.loads(crypto.read_text(path))
    with connect(twin_dir) as con, _transaction(con):
        done = _journal_done(con, entry["id"])
        if not done:
            _append(con, "outcomes", _new_outcomes(con, [tuple(r) for r in entry["outcomes"]]))
            _append(con, "events", [(float(v), k, _json(d))
                                    for v, k, d in entry["events"]])
    path.unlink()
    return not done


# ---------------------------------------------------------------- reading
def _table(con: sqlite3.Connection, table: str) -> pd.DataFrame:
    """A table's rows, opened: ``id, seq, recorded_utc``, its :data:`COLUMNS` and ``hash``."""
    sealed = _sealed(con)
    cols = _stored(table, sealed)
    rows = [(*r[:3], *_decoded(table, r[3:-1], sealed), r[-1]) for r in con.execute(
        f"SELECT id, seq, recorded_utc, {', '.join(cols)}, hash FROM {table} ORDER BY seq")]
    return pd.DataFrame(rows, columns=["id", "seq", "recorded_utc", *COLUMNS[table], "hash"])


def prediction_outcomes(twin_dir: str | Path, start: str | None = None,
                        end: str | None = None) -> pd.DataFrame:
    """Forecasts joined with their outcomes (NaN while unknown) for dates in [start, end]."""
    with connect(twin_dir) as con:
        f, o = _table(con, "forecasts"), _table(con, "outcomes")
    if start is not None:
        f = f[f["date"] >= str(start)]
    if end is not None:
        f = f[f["date"] <= str(end)]
    out = f.merge(o[["patient_id", "date", "outcome"]], on=["patient_id", "date"], how="left")
    out = out.sort_values(["date", "patient_id", "id"], kind="stable")
    return out[["patient_id", "date", "issued_at", "twin_version", "data_hash", "p_attack",
                "p_low", "p_high", "outcome"]].reset_index(drop=True)


def events(twin_dir: str | Path) -> pd.DataFrame:
    """All recorded events, oldest first."""
    with connect(twin_dir) as con:
        return _table(con, "events")


# ---------------------------------------------------------------- a new key
def reseal(twin_dir: str | Path, old_key: bytes | None, new_key: bytes) -> dict:
    """Rewrite the audit trail under ``new_key`` (sealed), its chain verified first.

    The triggers forbid changing rows, so a new database is built beside the old one — every
    row opened with ``old_key`` (None: the trail was not sealed), sealed again with
    ``new_key``, chained anew with its original recording time — and replaces it atomically;
    a ``key_rotated`` event closing it records the old chain's length and head. The caller
    holds the twin's lock and then records the new head in ``twin.json``. Returns the new head.
    """
    path = Path(twin_dir) / FILE
    if not path.exists():
        return {"entries": 0, "hash": GENESIS}
    with crypto.using(old_key):
        check = verify(twin_dir)
        if not check.ok:
            raise AuditError(f"{Path(twin_dir).name}: the audit trail fails verification "
                             f"before the key change — {check.problems[0]}")
        with connect(twin_dir) as con:
            rows = sorted(((int(r["seq"]), t, r["recorded_utc"],
                            tuple(r[c] for c in COLUMNS[t]))
                           for t in COLUMNS for _, r in _table(con, t).iterrows()),
                          key=lambda r: r[0])
    with crypto.using(new_key):
        with atomic.atomic_path(path, mode=0o600) as tmp:
            con = sqlite3.connect(tmp, isolation_level=None)
            try:
                _create(con, new_key)
                with _transaction(con):
                    for _seq, table, recorded, values in rows:
                        _append(con, table, [_plain(table, values)], recorded)
                    _append(con, "events", [(0.0, "key_rotated", json.dumps(
                        {"entries_before": check.entries, "head_before": check.head,
                         "key_id": crypto.key_id(new_key).hex()}))])
            finally:
                con.close()
        return head(twin_dir)


def _plain(table: str, values: tuple) -> tuple:
    """Values read back from a table as the Python types :func:`_append` writes."""
    kinds = {"forecasts": (float, str, str, str, str, float, float, float),
             "outcomes": (str, str, int), "events": (float, str, str)}[table]
    return tuple(k(v) for k, v in zip(kinds, values, strict=True))
