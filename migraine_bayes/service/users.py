"""Users of the twin service: roles, their patients, bearer tokens hashed with Argon2id.

A registry's users live in ``<registry>/.service/users.sqlite`` (0600). A token is
``mbt.<token id>.<secret>``: the id (16 hex) finds the row, the secret (32 random bytes,
urlsafe base64) is checked against its Argon2id hash (``argon2-cffi``'s defaults). The token is
printed once, at creation, and never stored. Tokens expire (``expires_utc``) and can be revoked.
A secret verified once is remembered in memory by its SHA-256 so that later requests cost a
dictionary lookup, not an Argon2 hash (~50 ms); expiry and revocation are read from the
database on every request. With an encryption key, a clinician's patient list is sealed.

Roles: ``clinician`` (forecasts, simulations, diary posts, overrides and prediction tables of
their own patients), ``researcher`` (pseudonymised cohort-level results only), ``admin``
(users; patient ids, no patient data).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from migraine_bayes.errors import MigraineBayesError
from migraine_bayes.store import crypto

ROLES = ("clinician", "researcher", "admin")
FOLDER = ".service"  # inside the registry: users, the service's audit trail
FILE = "users.sqlite"
DEFAULT_DAYS = 90  # a token's lifetime unless told otherwise
NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, patients TEXT NOT NULL,
    token_id TEXT NOT NULL UNIQUE, token_hash TEXT NOT NULL, created_utc TEXT NOT NULL,
    expires_utc TEXT NOT NULL, revoked_utc TEXT);
"""


class UserError(MigraineBayesError):
    """A user cannot be added or changed as asked."""


@dataclass(frozen=True)
class User:
    """An authenticated user: ``name``, ``role`` and (clinicians) their ``patients``."""

    name: str
    role: str
    patients: tuple[str, ...]
    expires_utc: str


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UserStore:
    """The users of one registry (thread-safe; each call opens its own connection)."""

    def __init__(self, registry: str | os.PathLike) -> None:
        self.folder = Path(registry) / FOLDER
        self.path = self.folder / FILE
        self._hasher = PasswordHasher()
        self._verified: dict[str, str] = {}  # sha256(token) -> name, after one Argon2 check
        self._lock = threading.Lock()
        self._ready = False  # the database and its table exist (checked once per store)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for one transaction: committed (or rolled back) and closed."""
        if not self._ready:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            new = not self.path.exists()
            with contextlib.closing(sqlite3.connect(self.path, timeout=30.0)) as con:
                if new:
                    os.chmod(self.path, 0o600)
                con.executescript(SCHEMA)
            self._ready = True
        with contextlib.closing(sqlite3.connect(self.path, timeout=30.0)) as con, con:
            yield con

    # ------------------------------------------------------------ managing
    def add(self, name: str, role: str, patients: list[str] | None = None,
            days: int = DEFAULT_DAYS, replace: bool = False) -> str:
        """Create (or with ``replace`` re-issue) a user; returns the token, shown once."""
        if not NAME.match(name):
            raise UserError(f"user name {name!r}: use 1–64 letters, digits and _.@-")
        if role not in ROLES:
            raise UserError(f"role {role!r}: must be one of {', '.join(ROLES)}")
        if days < 1:
            raise UserError(f"--days must be at least 1, got {days}")
        patients = sorted(set(patients or []))
        if role != "clinician" and patients:
            raise UserError(f"only clinicians have patients; {name!r} is a {role}")
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        now = _now()
        row = (name, role, self._seal_patients(patients), token_id,
               self._hasher.hash(secret), now.isoformat(timespec="seconds"),
               (now + dt.timedelta(days=days)).isoformat(timespec="seconds"), None)
        with self._connect() as con:
            exists = con.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone()
            if exists and not replace:
                raise UserError(f"user {name!r} exists; pass --replace to issue a new token "
                                "(the old one stops working)")
            con.execute("INSERT OR REPLACE INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
        return f"mbt.{token_id}.{secret}"

    def revoke(self, name: str) -> None:
        """Revoke a user's token (it fails from the next request on)."""
        with self._connect() as con:
            n = con.execute("UPDATE users SET revoked_utc = ? WHERE name = ? AND revoked_utc "
                            "IS NULL", (_now().isoformat(timespec="seconds"), name)).rowcount
        if n == 0:
            raise UserError(f"no active user {name!r}")

    def list(self) -> list[dict]:
        """Every user: name, role, number of patients, created, expires, revoked."""
        with self._connect() as con:
            rows = con.execute("SELECT name, role, patients, created_utc, expires_utc, "
                               "revoked_utc FROM users ORDER BY name").fetchall()
        return [{"name": r[0], "role": r[1], "patients": len(self._open_patients(r[2])),
                 "created_utc": r[3], "expires_utc": r[4], "revoked_utc": r[5]} for r in rows]

    # ------------------------------------------------------------ authenticating
    def authenticate(self, token: str) -> User | None:
        """The user of a valid, unexpired, unrevoked token; None for anything else."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != "mbt" or not re.fullmatch(r"[0-9a-f]{16}", parts[1]):
            return None
        with self._connect() as con:
            row = con.execute("SELECT name, role, patients, token_hash, expires_utc, "
                              "revoked_utc FROM users WHERE token_id = ?", (parts[1],)
                              ).fetchone()
        if row is None or row[5] is not None or dt.datetime.fromisoformat(row[4]) <= _now():
            return None
        digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
        with self._lock:
            known = self._verified.get(digest) == row[0]
        if not known:
            try:
                self._hasher.verify(row[3], parts[2])
            except (VerificationError, InvalidHashError):
                return None
            with self._lock:
                self._verified[digest] = row[0]
        return User(row[0], row[1], tuple(self._open_patients(row[2])), row[4])

    # ------------------------------------------------------------ sealing
    @staticmethod
    def sealed_key_id(stored: str) -> bytes | None:
        """The id of the key a stored patient list is sealed with (None: in clear)."""
        if not stored.startswith("sealed:"):
            return None
        return crypto.sealed_key_id(base64.b64decode(stored.removeprefix("sealed:")))

    @staticmethod
    def _seal_patients(patients: list[str]) -> str:
        text = json.dumps(patients).encode("utf-8")
        if crypto.active_key() is None:
            return text.decode("utf-8")
        return "sealed:" + base64.b64encode(crypto.seal(text, "users:patients")).decode("ascii")

    @staticmethod
    def _open_patients(stored: str) -> list[str]:
        if stored.startswith("sealed:"):
            blob = base64.b64decode(stored[len("sealed:"):])
            return json.loads(crypto.unseal(blob, "users:patients", "users.sqlite"))
        return json.loads(stored)
