"""Key rotation: every sealed file and audit row of twins (and a registry) under a new key.

Each twin is rotated under its lock: its files (``twin.json``, ``posterior.nc``, kept versions,
posted diary) are opened with the old key (or read in clear) and sealed with the new one, each
written atomically; its audit trail is rebuilt sealed under the new key
(:func:`migraine_bayes.store.audit.reseal`) and the new head recorded in ``twin.json``; the
trail of an audited twin then records the resealed files' digests (the rollback check). A file,
trail or user field already sealed with the new key is left as it is, and a twin whose
``twin.json`` is already under it is read with it, so a rotation interrupted anywhere — in a
twin, between twins, in the registry's own files — is finished by running it again with the
same keys.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from migraine_bayes.service.release import FILE as RELEASES
from migraine_bayes.service.users import FILE, FOLDER, UserStore
from migraine_bayes.store import atomic, audit, crypto
from migraine_bayes.store.locking import real_path, twin_lock
from migraine_bayes.store.targets import is_twin
from migraine_bayes.twin.record import TwinRecord

SEALED_FILES = ("posterior.nc", "twin.json", "versions/*/posterior.nc", "versions/*/twin.json",
                "diary/*.parquet")


def twin_dirs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The twin directories named, or inside the registries named."""
    out = []
    for p in map(Path, paths):
        if is_twin(p):
            out.append(real_path(p))
        elif p.is_dir():
            out += [real_path(d) for d in sorted(p.iterdir())
                    if d.is_dir() and not d.name.startswith(".") and is_twin(d)]
        else:
            raise FileNotFoundError(f"{p} is neither a twin directory nor a registry")
    return out


def _reseal_file(path: Path, old: bytes | None, new: bytes) -> bool:
    data = path.read_bytes()
    if _under(data, new):
        return False  # done by an earlier, interrupted rotation
    plain = crypto.unseal(data, path.name, str(path), old) if crypto.is_sealed(data) else data
    with atomic.atomic_path(path) as tmp:
        tmp.write_bytes(crypto.seal(plain, path.name, new))
    return True


def _under(data: bytes, key: bytes) -> bool:
    """Whether ``data`` (a file, or its first bytes) is sealed with ``key``."""
    return crypto.is_sealed(data) and crypto.sealed_key_id(data) == crypto.key_id(key)


def _sealed_with(path: Path, key: bytes) -> bool:
    with open(path, "rb") as fh:
        return _under(fh.read(len(crypto.MAGIC) + crypto.KEY_ID_BYTES), key)


def rotate_twin(path: Path, old: bytes | None, new: bytes) -> dict:
    """Rotate one twin directory (see the module doc)."""
    with twin_lock(path):
        done = _sealed_with(path / "twin.json", new)  # an interrupted rotation got this far
        trail_done = _key_id_of_trail(path) == crypto.key_id(new).hex()
        with crypto.using(new if trail_done else old):
            audit.apply_journal(path)
        with crypto.using(new if done else old):
            record = TwinRecord.read(path)
        with crypto.using(new if trail_done else old):
            check = audit.verify(path, record.audit_head)
            if not check.ok and not trail_done:
                raise audit.AuditError(f"{path.name}: the audit trail fails verification — "
                                       f"{check.problems[0]}; nothing was rotated")
        files = sum(_reseal_file(f, old, new) for pattern in SEALED_FILES
                    for f in sorted(path.glob(pattern)) if f.name != "twin.json" or
                    f.parent != path)
        if _key_id_of_trail(path) != crypto.key_id(new).hex():
            head = audit.reseal(path, old, new)
            record = record.replace(audit_head={**head, "journal": None})
        with crypto.using(new):
            audited = audit.last_files(path) is not None
        with atomic.atomic_path(path / "twin.json") as tmp:
            tmp.write_bytes(crypto.seal(json.dumps(record.to_dict(), indent=1).encode("utf-8"),
                                        "twin.json", new))
        if audited:  # the trail learns the resealed files (else the next load sees a rollback)
            with crypto.using(new):
                digests = audit.file_digests(path)
                if audit.last_files(path) != digests:  # not yet recorded by an earlier run
                    audit.record_event(path, record.version, "files_resealed",
                                       {"files": digests})
        return {"path": path, "files": files + 1,
                "audit_entries": audit.head(path)["entries"] if (path / audit.FILE).exists()
                else 0, "key_id": crypto.key_id(new).hex()}


def _key_id_of_trail(path: Path) -> str | None:
    file = path / audit.FILE
    if not file.exists():
        return None
    with sqlite3.connect(file) as con:
        row = con.execute("SELECT value FROM audit_meta WHERE key = 'key_id'").fetchone()
    return row[0] if row else None


def rotate_registry(root: Path, old: bytes | None, new: bytes) -> None:
    """The service's own audit trail, released statistics and sealed user fields of a registry.

    Each part already under the new key (an interrupted rotation) is left as it is.
    """
    folder = root / FOLDER
    if (folder / audit.FILE).exists() and _key_id_of_trail(folder) != crypto.key_id(new).hex():
        audit.reseal(folder, old, new)
    if (folder / RELEASES).exists():
        _reseal_file(folder / RELEASES, old, new)
    if (folder / FILE).exists():
        with sqlite3.connect(folder / FILE) as con:
            for name, stored in con.execute("SELECT name, patients FROM users").fetchall():
                if UserStore.sealed_key_id(stored) == crypto.key_id(new):
                    continue  # rotated before an interruption
                with crypto.using(old):
                    patients = UserStore._open_patients(stored)
                with crypto.using(new):
                    con.execute("UPDATE users SET patients = ? WHERE name = ?",
                                (UserStore._seal_patients(patients), name))


def rotate(paths: Iterable[str | os.PathLike], old: bytes | None, new: bytes) -> list[dict]:
    """Rotate every twin named or inside the registries named; returns one result per twin."""
    paths = list(paths)
    results = [rotate_twin(p, old, new) for p in twin_dirs(paths)]
    for p in map(Path, paths):
        if not is_twin(p) and p.is_dir():
            rotate_registry(p, old, new)
    return results
