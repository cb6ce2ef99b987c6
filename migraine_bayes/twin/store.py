"""The twin directory: ``posterior.nc`` and ``twin.json``, saved atomically, loaded and checked."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Self

import arviz as az
import h5py
import numpy as np
import xarray as xr

from migraine_bayes.dims import FEATURE, INTERVENTION, PATIENT
from migraine_bayes.store import atomic, audit, crypto
from migraine_bayes.store.locking import real_path, twin_lock
from migraine_bayes.store.targets import TargetError, is_twin, set_aside
from migraine_bayes.twin.filtering import FilterState
from migraine_bayes.twin.record import TwinError, TwinRecord

VERSIONS = "versions"  # earlier versions kept inside a twin directory


class Storage:
    """Save and load of :class:`~migraine_bayes.twin.DigitalTwin` (a mixin)."""

    def save(self, path: str | os.PathLike, keep_previous: bool = False,
             journal: dict | None = None) -> Path:
        """Write ``posterior.nc`` and ``twin.json`` atomically (a crash leaves the old twin).

        Holds the twin's lock (:mod:`migraine_bayes.store.locking`). Everything else in an existing
        twin directory (the audit trail, kept versions) is kept, and so are its permissions; a
        new twin directory is 0700 and its files 0600. A symlinked ``path`` is written through
        to its target. ``keep_previous`` files the twin being replaced under
        ``versions/<its version>/``. ``journal`` (:func:`migraine_bayes.store.audit.journal`): audit
        rows committed with this save — written into the new directory and applied right after
        it is in place (or by the next load, after a crash).
        """
        path = real_path(path)
        groups = {"posterior": self.posterior.posterior,
                  "sample_stats": self.posterior.sample_stats,
                  "fit_data": _encode_panel(self.panel)}
        if self.filter_state is not None:
            groups["filter"] = self.filter_state.to_dataset()
        if self.course is not None:
            groups["course"] = self.course
        with twin_lock(path):
            _recover(path)
            _clean_stale(path)
            if path.is_dir():
                audit.apply_journal(path)  # rows a crashed save still owed, first
            if journal is None and audit.last_files(path) is not None:
                # an audited twin saved again by hand: the trail learns its new files too
                journal = audit.journal(uuid.uuid4().hex, [(self.record.version, "save", {})],
                                        [])
            self.record = self.record.replace(
                spec_hash=self.spec.digest(),
                audit_head={**audit.head(path), "journal": journal["id"] if journal else None})
            file_mode = atomic.final_mode(path / "twin.json", 0o600, 0o666)
            # a folder that holds no twin yet (an empty one the user made, even 0777) becomes a
            # private twin directory; an existing twin keeps its mode (less "others")
            with atomic.atomic_directory(path, mode=0o700, keep=is_twin(path)) as tmp:
                # sealed (AES-GCM) when a key is in use: migraine_bayes.store.crypto; else written
                # straight to the file (a cohort's posterior is not held twice in memory)
                if crypto.active_key() is None:
                    write_netcdf(tmp / "posterior.nc", groups)
                else:
                    (tmp / "posterior.nc").write_bytes(crypto.encode(netcdf_bytes(groups),
                                                                     "posterior.nc"))
                (tmp / "twin.json").write_bytes(crypto.encode(json.dumps(
                    self.record.to_dict(), indent=1, default=_json).encode("utf-8"), "twin.json"))
                if journal is not None:  # with the digests of the files it commits
                    files = audit.file_digests(tmp)
                    journal = {**journal, "events": [[v, k, {**d, "files": files}]
                                                     for v, k, d in journal["events"]]}
                    (tmp / audit.JOURNAL).write_bytes(crypto.encode(
                        json.dumps(journal).encode("utf-8"), audit.JOURNAL))
                for name in ("posterior.nc", "twin.json", audit.JOURNAL):
                    if (tmp / name).exists():
                        os.chmod(tmp / name, file_mode)
                        _fsync(tmp / name)
                _carry_over(path, tmp, exclude={"posterior.nc", "twin.json", audit.JOURNAL})
                if keep_previous and (path / "twin.json").is_file():
                    previous = TwinRecord.read(path)
                    kept = tmp / VERSIONS / str(previous.version)
                    (tmp / VERSIONS).mkdir(mode=0o700, exist_ok=True)  # private, like the twin
                    kept.mkdir(mode=0o700, exist_ok=True)
                    for name in ("posterior.nc", "twin.json"):
                        if not (kept / name).exists():
                            os.link(path / name, kept / name)
            audit.apply_journal(path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, version: float | str | None = None) -> Self:
        """Read a twin directory written by :meth:`save` (or a kept earlier ``version``).

        Finishes a save a crash interrupted (its journal of audit rows is replayed) and
        verifies the audit trail's hash chain against the head the twin recorded
        (:class:`~migraine_bayes.store.audit.AuditError` naming the first broken row).
        """
        root = path = real_path(path)
        interrupted = not root.exists() and root.with_name(f".{root.name}.old").is_dir()
        if (root / audit.JOURNAL).exists() or interrupted:
            with twin_lock(root):
                _recover(root)
                if root.is_dir():
                    audit.apply_journal(root)
        if version is not None:
            path = path / VERSIONS / str(float(version))
        meta_file = path / "twin.json"
        if path.is_file():
            raise TwinError(f"{path} is a file; a twin is the folder `fit --out` wrote (with "
                            "twin.json and posterior.nc): give that folder")
        if not meta_file.is_file() or not (path / "posterior.nc").is_file():
            raise TwinError(f"{path} is not a twin directory (needs twin.json and posterior.nc)")
        record = TwinRecord.read(path)
        if record.spec_hash is not None and record.spec.digest() != record.spec_hash:
            raise TwinError(f"{path}: the model configuration in twin.json does not match its "
                            "hash (spec_hash) — edited by hand? Restore it or refit the twin")
        if version is None:
            _check_files(root)
        root_record = record if version is None else TwinRecord.read(root)
        check = audit.verify(root, root_record.audit_head)
        if not check.ok:
            raise audit.AuditError(f"{root.name}: the audit trail fails verification — "
                                   f"{check.problems[0]} (`migraine-twin audit verify` lists "
                                   "what is wrong)")
        groups = netcdf_groups(crypto.read_bytes(path / "posterior.nc"))
        panel = _decode_panel(groups["fit_data"])
        posterior = az.InferenceData(posterior=groups["posterior"],
                                     sample_stats=groups["sample_stats"])
        state = FilterState.from_dataset(groups["filter"]) if "filter" in groups else None
        return cls(posterior, panel, record, state, groups.get("course"))


def _check_files(root: Path) -> None:
    """Refuse a twin whose files are not the ones its audit trail last recorded.

    An older copy of ``twin.json`` and ``posterior.nc`` put back over the twin (a rollback:
    its updates lost, its forecasts from an old state) passes the hash chain, since the trail
    still holds the entries the old copy points to — but the trail has recorded newer files
    since (:func:`migraine_bayes.store.audit.files_problem`). A save racing this read is ruled
    out by looking again under the twin's lock.
    """
    if audit.files_problem(root) is None:
        return
    with twin_lock(root):
        problem = audit.files_problem(root)
    if problem is not None:
        raise audit.AuditError(f"{root.name}: {problem}")


def netcdf_bytes(groups: dict[str, xr.Dataset]) -> bytes:
    """One netCDF4 (HDF5) file, in memory, holding each dataset as a group.

    Numeric variables are zlib-compressed (as ArviZ writes them); ``az.from_netcdf`` reads
    the plain file.
    """
    buffer = io.BytesIO()
    write_netcdf(buffer, groups)
    return buffer.getvalue()


def write_netcdf(target: Path | io.BytesIO, groups: dict[str, xr.Dataset]) -> None:
    """Write :func:`netcdf_bytes`'s file to ``target`` (a new file's path, or a buffer)."""
    import dask

    with h5py.File(target, "w"):
        pass
    # no file lock: without this, under a Dask client (a two-stage fit's driver or worker)
    # xarray asks the scheduler for a lock named after the buffer, which it cannot name
    with dask.config.set(scheduler="synchronous"):
        for name, ds in groups.items():
            encoding = {v: {"zlib": True} for v, x in ds.variables.items()
                        if x.dtype.kind in "biufc"}
            ds.to_netcdf(target, group=name, mode="a", engine="h5netcdf", encoding=encoding)


def netcdf_groups(data: bytes) -> dict[str, xr.Dataset]:
    """The groups of a netCDF4 file's bytes (:func:`netcdf_bytes`), loaded into memory."""
    with h5py.File(io.BytesIO(data), "r") as fh:
        names = [k for k in fh if isinstance(fh[k], h5py.Group)]
    out = {}
    for name in names:
        with xr.open_dataset(io.BytesIO(data), group=name, engine="h5netcdf") as ds:
            out[name] = ds.load()
    return out


def _carry_over(old: Path, new: Path, exclude: set[str]) -> None:
    """Hard-link the rest of the old twin directory (audit trail, kept versions) into the new.

    Done before the new directory takes the old one's place: nothing is copied, nothing lost.
    """
    if not old.is_dir():
        return
    for entry in old.iterdir():
        if entry.name in exclude:
            continue
        if entry.is_dir():
            shutil.copytree(entry, new / entry.name, copy_function=os.link)
        else:
            os.link(entry, new / entry.name)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _clean_stale(path: Path) -> None:
    """Remove temporaries a killed save left beside the twin (the caller holds the lock)."""
    own = re.compile(rf"^\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.tmp$")  # mkdtemp's names
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        if not own.match(stale.name):
            continue
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
    backup = path.with_name(f".{path.name}.old")
    if path.is_dir() and backup.is_dir():
        shutil.rmtree(backup, ignore_errors=True)


def _recover(path: Path) -> None:
    """Finish a save that crashed between its two renames: put the old twin back."""
    backup = path.with_name(f".{path.name}.old")
    if not path.exists() and backup.is_dir():
        os.replace(backup, path)


def _encode_panel(panel: xr.Dataset) -> xr.Dataset:
    """NetCDF has no bool: store bools as int8 (decoded by :func:`_decode_panel`)."""
    out = panel.copy()
    for name, var in panel.data_vars.items():
        if var.dtype == bool:
            out[name] = var.astype("int8")
            out[name].attrs["dtype"] = "bool"
    out.attrs = {k: (str(v) if not isinstance(v, (int, float)) else v)
                 for k, v in panel.attrs.items()}
    for coord in (PATIENT, FEATURE, INTERVENTION, "feature_category", "feature_unit",
                  "intervention_kind"):
        out[coord] = out[coord].astype(str)
    return out


def _decode_panel(ds: xr.Dataset) -> xr.Dataset:
    out = ds.copy()
    for name, var in ds.data_vars.items():
        if var.attrs.get("dtype") == "bool":
            out[name] = var.astype(bool)
            out[name].attrs = {}
    for coord in (PATIENT, FEATURE, INTERVENTION, "feature_category", "feature_unit",
                  "intervention_kind"):
        out[coord] = out[coord].astype(object)
    return out


def _json(obj: object) -> object:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "__dataclass_fields__"):
        return asdict(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def twin_target(out: str | os.PathLike, patients: Iterable[str], force: bool,
                aside: bool = True) -> TwinRecord | None:
    """Check ``out`` before a twin of ``patients`` is saved there.

    Returns the existing twin's record when ``out`` holds a twin of exactly these
    patients (the fit becomes its next version), else None (a new twin). ``out`` holding a twin
    of other patients, or a non-empty folder that is not a twin, is a :class:`TargetError`
    unless ``force``; then (with ``aside``) the old folder is renamed to
    ``<out>.replaced-<UTC time>`` — kept, never deleted.
    """
    path = real_path(out)
    if not path.exists():
        return None
    if not path.is_dir():
        raise TargetError(f"{out} is a file, not a twin directory")
    if is_twin(path):
        record = TwinRecord.read(path)
        if sorted(record.patients) == sorted(patients):
            return record
        what = f"the twin of {len(record.patients)} other patient(s)"
    elif any(path.iterdir()):
        what = "a non-empty folder that is not a twin"
    else:
        return None
    if not force:
        raise TargetError(f"{out} holds {what}; choose another --out, or pass --force to "
                          f"replace it (the old folder is kept as {path.name}.replaced-<time>)")
    if aside:
        set_aside(path)
    return None
