"""The twin service: a FastAPI application over a registry of twin directories.

Every endpoint needs ``Authorization: Bearer <token>`` (:mod:`.users`); the OpenAPI schema
(``/openapi.json``) is public. Every request — who, what, when, the status, allowed or
refused — is appended to the registry's audit trail (``.service/audit.sqlite``, the hash-chained
:mod:`migraine_bayes.store.audit`, sealed with the key when there is one). Failed authentications
are throttled per token id (a token whose id is malformed: per client address): after
``max_failures`` within ``window_s`` seconds that id (or address) gets 429 for ``lockout_s``
seconds, and no one else does. Behind a reverse proxy the client address is read from
``X-Forwarded-For`` only when the proxy is listed in ``MIGRAINE_BAYES_TRUSTED_PROXIES``.

Status codes: 401 no, expired, revoked or unknown token; 403 the wrong role or another
clinician's patient; 404 a patient of the caller that no twin of the registry holds; 409 a post
that would rewrite days the twin has seen, a twin whose diary is unreachable, or anything else
the twin refuses (:class:`~migraine_bayes.errors.MigraineBayesError`: never a 500); 422 a
malformed body, every problem listed as the CLI lists them (file — here ``body.<table>`` —,
row, column, rule); 429 throttled.
"""


import datetime as dt
import math
import os
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from migraine_bayes import __version__
from migraine_bayes.cohort.io import Cohort
from migraine_bayes.errors import InputDataError, MigraineBayesError
from migraine_bayes.living.transaction import update_saved
from migraine_bayes.service import release
from migraine_bayes.service import twins as diary
from migraine_bayes.service.twins import TwinRegistry
from migraine_bayes.service.users import FOLDER, User, UserError, UserStore
from migraine_bayes.store import audit, crypto
from migraine_bayes.store.locking import twin_lock
from migraine_bayes.twin.core import DigitalTwin
from migraine_bayes.twin.record import HORIZON_DAYS

REGISTRY_ENV = "MIGRAINE_BAYES_REGISTRY"  # the registry of app_from_env (uvicorn workers)
TRUSTED_ENV = "MIGRAINE_BAYES_TRUSTED_PROXIES"  # comma-separated addresses of reverse proxies
Cell = str | float | int | bool | None


# ---------------------------------------------------------------- bodies
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ObservationIn(_Body):
    """One measurement (docs/SCHEMA.md observations, without ``patient_id``)."""

    time: str = Field(max_length=64)
    variable: str = Field(max_length=64)
    value: Cell
    source: str | None = Field(default=None, max_length=64)


class AttackIn(_Body):
    """One attack (docs/SCHEMA.md attacks, without ``patient_id``)."""

    onset: str = Field(max_length=64)
    end: Cell = None
    peak_severity: Cell = None
    aura: Cell = None
    prodrome_onset: Cell = None
    symptoms: str | None = Field(default=None, max_length=500)
    acute_medication: str | None = Field(default=None, max_length=64)
    acute_dose_mg: Cell = None
    acute_time: Cell = None
    pain_free_2h: Cell = None
    postdrome_end: Cell = None
    recurrence_48h: Cell = None


class TreatmentIn(_Body):
    """One treatment course (docs/SCHEMA.md treatments, without ``patient_id``)."""

    kind: str = Field(max_length=32)
    name: str = Field(max_length=64)
    start: str = Field(max_length=64)
    end: Cell = None
    dose_mg: Cell = None
    frequency: str | None = Field(default=None, max_length=32)


class DiaryIn(_Body):
    """New diary days or outcomes of one patient: rows of the cohort tables."""

    observations: list[ObservationIn] = Field(default_factory=list, max_length=100_000)
    attacks: list[AttackIn] = Field(default_factory=list, max_length=10_000)
    treatments: list[TreatmentIn] = Field(default_factory=list, max_length=1_000)


class SimulateIn(_Body):
    """Scenarios (docs/SCHEMA.md scenarios file) and the simulation's settings."""

    scenarios: list[dict] = Field(min_length=1, max_length=50)
    horizon: int = Field(default=30, ge=1, le=HORIZON_DAYS)
    draws: int = Field(default=1000, ge=100, le=4000)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)


class OverrideIn(_Body):
    """A clinician's decision on a scenario for this patient (kept in the twin's audit trail).

    Later simulations of the patient carry it (``override`` of docs/SCHEMA.md scenarios).
    """

    scenario: str = Field(min_length=1, max_length=64)
    status: Literal["excluded", "preferred"]
    reason: str = Field(min_length=1, max_length=500)


class UserIn(_Body):
    """A new user (admins only); the response carries the token, once."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")
    role: Literal["clinician", "researcher", "admin"]
    patients: list[str] = Field(default_factory=list, max_length=10_000)
    days: int = Field(default=90, ge=1, le=3650)


# ---------------------------------------------------------------- helpers
class Throttle:
    """Failed authentications per key within a window; too many lock that key out.

    A key is a token id (``id:<token id>``: guesses at one user's secret) or, for tokens
    without a well-formed id, a client address (``addr:<address>``). A lock-out blocks only its
    key: a valid token of another user is never refused because someone near it failed.
    """

    MAX_KEYS = 100_000  # keys remembered at once; past it, keys with no recent failure go

    def __init__(self, max_failures: int, window_s: float, lockout_s: float) -> None:
        self.max_failures, self.window_s, self.lockout_s = max_failures, window_s, lockout_s
        self._fails: dict[str, deque[float]] = defaultdict(deque)
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def locked(self, key: str) -> float:
        """Seconds the key must still wait (0 when it may try)."""
        with self._lock:
            return max(0.0, self._until.get(key, 0.0) - time.monotonic())

    def fail(self, key: str) -> None:
        """Count a failure; lock the key out once it reaches the limit."""
        now = time.monotonic()
        with self._lock:
            if len(self._fails) >= self.MAX_KEYS:
                self._forget(now)
            fails = self._fails[key]
            fails.append(now)
            while fails and fails[0] < now - self.window_s:
                fails.popleft()
            if len(fails) >= self.max_failures:
                self._until[key] = now + self.lockout_s
                fails.clear()

    def _forget(self, now: float) -> None:
        """Drop keys without a failure in the window and lock-outs that have ended."""
        for key in [k for k, f in self._fails.items() if not f or f[-1] < now - self.window_s]:
            del self._fails[key]
        for key in [k for k, t in self._until.items() if t <= now]:
            del self._until[key]


def throttle_key(token: str | None, address: str) -> str:
    """The key a failed authentication counts against (see :class:`Throttle`)."""
    parts = (token or "").split(".")
    if len(parts) == 3 and parts[0] == "mbt" and re.fullmatch(r"[0-9a-f]{16}", parts[1]):
        return f"id:{parts[1]}"
    return f"addr:{address}"


def client_address(request: Request, trusted: frozenset[str]) -> str:
    """The caller's address: the peer's, or behind a trusted proxy its ``X-Forwarded-For``.

    Only a peer listed in ``trusted`` (``MIGRAINE_BAYES_TRUSTED_PROXIES``) may name the client:
    the right-most address of the header that is not itself a trusted proxy. Anyone else's
    header is ignored (it could name any address).
    """
    peer = request.client.host if request.client else "?"
    if peer not in trusted:
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")
            if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop
    return peer


def _json_value(v: object) -> object:
    """A table cell as JSON: dates as ISO text, NaN and infinities as null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dt.date | dt.datetime):
        return v.isoformat()
    if hasattr(v, "item"):  # numpy scalars
        return _json_value(v.item())
    return v


def _records(df) -> list[dict]:
    return [{k: _json_value(v) for k, v in row.items()} for row in df.to_dict("records")]


def _problem_text(error: dict) -> str:
    """A pydantic error in the CLI's words: where (body.table, row, column) and the rule."""
    loc = [str(x) for x in error.get("loc", ())]
    where = loc[0] if loc else "request"
    rest = loc[1:]
    if len(rest) >= 2 and rest[1].isdigit():  # body.<table>.<index>.<column>
        where = f"{loc[0]}.{rest[0]}, row {int(rest[1]) + 1}"
        if len(rest) > 2:
            where += f", column '{rest[2]}'"
    elif rest:
        where += ", field '" + ".".join(rest) + "'"
    return f"{where}: {error.get('msg', 'invalid')}"


# ---------------------------------------------------------------- the application
def create_app(registry: str | os.PathLike, max_failures: int = 10, window_s: float = 60.0,
               lockout_s: float = 60.0, trusted_proxies: frozenset[str] = frozenset()
               ) -> FastAPI:
    """The service of the twins in ``registry`` (see the module doc for the rules).

    ``trusted_proxies``: addresses of reverse proxies whose ``X-Forwarded-For`` names the
    client (:func:`client_address`).
    """
    root = Path(registry)
    twins = TwinRegistry(root)
    users = UserStore(root)
    service_dir = twins.root / FOLDER
    service_dir.mkdir(mode=0o700, exist_ok=True)
    throttle = Throttle(max_failures, window_s, lockout_s)
    bearer = HTTPBearer(auto_error=False, description="`mbt.…` token of `migraine-twin user "
                                                      "add`")
    app = FastAPI(title="migraine_bayes twin service", version=__version__,
                  description=__doc__.split("\n\n")[0], docs_url=None, redoc_url=None)

    def record(request: Request, status: int) -> None:
        user: User | None = getattr(request.state, "user", None)
        audit.record_event(service_dir, 0.0, "request", {
            "user": user.name if user else None, "role": user.role if user else None,
            "method": request.method, "path": request.url.path, "status": status,
            "allowed": status < 400, "client": client_address(request, trusted_proxies)})

    @app.middleware("http")
    async def audit_every_request(request: Request, call_next: Callable):
        request.state.user = None
        try:
            response = await call_next(request)
        except Exception:  # recorded, then the server's own 500
            await run_in_threadpool(record, request, 500)
            raise
        if request.url.path != "/openapi.json":
            await run_in_threadpool(record, request, response.status_code)
        return response

    @app.exception_handler(RequestValidationError)
    async def malformed(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={
            "detail": "invalid request", "problems": [_problem_text(e) for e in exc.errors()]})

    @app.exception_handler(InputDataError)
    async def invalid_data(_request: Request, exc: InputDataError) -> JSONResponse:
        return JSONResponse(status_code=422, content={
            "detail": f"invalid input data in {exc.source}",
            "problems": [str(p) for p in exc.problems]})

    @app.exception_handler(MigraineBayesError)
    async def refused(_request: Request, exc: MigraineBayesError) -> JSONResponse:
        """What the twin refuses (its state, its domain, its history): a conflict, never a 500."""
        return JSONResponse(status_code=409, content={"detail": str(exc)})

    def authenticated(request: Request, credentials: Annotated[
            HTTPAuthorizationCredentials | None, Depends(bearer)]) -> User:
        key = throttle_key(credentials.credentials if credentials else None,
                           client_address(request, trusted_proxies))
        wait = throttle.locked(key)
        if wait > 0:
            raise HTTPException(429, "too many failed authentications; try again later",
                                headers={"Retry-After": str(math.ceil(wait))})
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(401, "a bearer token is required",
                                headers={"WWW-Authenticate": "Bearer"})
        user = users.authenticate(credentials.credentials)
        if user is None:
            throttle.fail(key)
            raise HTTPException(401, "the token is invalid, expired or revoked",
                                headers={"WWW-Authenticate": "Bearer"})
        request.state.user = user
        return user

    Authed = Annotated[User, Depends(authenticated)]

    def need(user: User, *roles: str) -> None:
        if user.role not in roles:
            raise HTTPException(403, f"a {user.role} may not do this (needs: "
                                     f"{' or '.join(roles)})")

    def patient_twin(user: User, patient: str) -> Path:
        """The twin directory of one of the clinician's own patients."""
        need(user, "clinician")
        if patient not in user.patients:
            raise HTTPException(403, "this patient is not one of yours")
        path = twins.locate(patient)
        if path is None:
            raise HTTPException(404, "no twin of this registry holds this patient")
        return path

    # ------------------------------------------------------------ patients
    @app.get("/patients", summary="The caller's patients and the twin serving each")
    def list_patients(user: Authed) -> list[dict]:
        need(user, "clinician", "admin")
        held = twins.patients()
        mine = sorted(held) if user.role == "admin" else list(user.patients)
        return [{"patient_id": p, "twin": held[p].name if p in held else None} for p in mine]

    @app.get("/patients/{patient_id}/forecast",
             summary="The forecast table's rows (docs/SCHEMA.md) for the next days")
    def forecast(patient_id: str, user: Authed,
                 horizon: Annotated[int, Query(ge=1, le=HORIZON_DAYS)] = 1) -> list[dict]:
        path = patient_twin(user, patient_id)
        table, data_hash = twins.forecast(path, patient_id, horizon)
        with twin_lock(path):
            audit.record_forecasts(path, table, twins.record(path).version,
                                   {patient_id: data_hash})
        return _records(table)

    @app.post("/patients/{patient_id}/simulate",
              summary="Scenarios against no intervention (the simulate JSON of the CLI)")
    def simulate(patient_id: str, body: SimulateIn, user: Authed) -> dict:
        from migraine_bayes.interventions import compare, comparison_json, parse_scenarios

        path = patient_twin(user, patient_id)
        twin = twins.twin(path)
        kept = _overrides(path, patient_id)
        scenarios = [{**s, "override": kept[s.get("name")]} if s.get("name") in kept and
                     "override" not in s else s for s in body.scenarios]
        try:
            parsed = parse_scenarios(scenarios)
            result = compare(twin, parsed, body.horizon, body.draws, body.seed, [patient_id])
        except InputDataError:
            raise  # its own handler lists every problem
        except (ValueError, KeyError) as exc:
            raise HTTPException(422, f"scenarios: {exc}") from None
        return comparison_json(result, path.name, body.horizon, body.draws, body.seed)

    @app.post("/patients/{patient_id}/diary",
              summary="New diary days or outcomes; validated, then the twin is updated")
    def post_diary(patient_id: str, body: DiaryIn, user: Authed) -> dict:
        path = patient_twin(user, patient_id)
        rows = diary.new_rows(patient_id, body.model_dump(exclude_unset=False))
        if not any(len(df) for df in rows.values()):
            raise HTTPException(422, "the post holds no rows")
        diary.check_alone(rows)
        try:
            source = twins.source_frames(path)
        except MigraineBayesError as exc:
            raise HTTPException(409, str(exc)) from None
        posted: dict = {}

        def combined() -> Cohort:
            cohort, posted["store"] = diary.combined(source, diary.posted_frames(path), rows)
            posted["cohort"] = cohort
            return cohort

        def accept(_twin: DigitalTwin, table: pd.DataFrame) -> dict:
            unrecorded = diary.unrecorded_days(posted["cohort"], patient_id, table)
            if unrecorded:
                raise HTTPException(422, f"the post would count {len(unrecorded)} day(s) "
                                         f"({unrecorded[0]} to {unrecorded[-1]}) as diary days "
                                         "kept without attack, yet nothing of the patient is "
                                         "recorded on them; post each day the diary was kept "
                                         "(a diary_entry row marks a day with nothing else to "
                                         "record)")
            changes = table.attrs.get("history_changes", [])
            edits = [c for c in changes if c["was"] != "missing" or c["fitted"]]
            if edits:
                c = edits[0]
                raise HTTPException(409, f"the post changes {c['what']} of {c['date']}, a day "
                                         f"the twin has seen (was {c['was']}, now {c['now']}); "
                                         "only new days and late entries of missing values "
                                         "are accepted")
            diary.write_posted(path, posted["store"])
            return {"late_entries": changes}

        result = update_saved(path, combined, rewrite_history=True, retrain_when_due=False,
                              accept=accept, detail={"by": user.name, "via": "service"})
        table = result.days
        return {"patient_id": patient_id, "twin_version": result.twin.record.version,
                "days": _records(table[table["patient_id"] == patient_id]),
                "late_entries": len(result.history_rewritten),
                "retrain_reasons": result.retrain_reasons}

    @app.post("/patients/{patient_id}/overrides", status_code=201,
              summary="A clinician's override of a scenario for this patient")
    def post_override(patient_id: str, body: OverrideIn, user: Authed) -> dict:
        path = patient_twin(user, patient_id)
        entry = {"patient_id": patient_id, "scenario": body.scenario, "status": body.status,
                 "reason": body.reason, "by": user.name}
        with twin_lock(path):
            audit.record_event(path, twins.record(path).version, "override", entry)
        return {**entry, "recorded": True}

    @app.get("/patients/{patient_id}/predictions",
             summary="Forecasts against outcomes for dates in [start, end]")
    def predictions(patient_id: str, user: Authed,
                    start: Annotated[dt.date | None, Query()] = None,
                    end: Annotated[dt.date | None, Query()] = None) -> list[dict]:
        path = patient_twin(user, patient_id)
        table = audit.prediction_outcomes(path, str(start) if start else None,
                                          str(end) if end else None)
        return _records(table[table["patient_id"] == patient_id])

    @app.get("/fhir/RiskAssessment",
             summary="The forecast as FHIR R4 RiskAssessment resources (a searchset Bundle)")
    def fhir_risk_assessment(request: Request, user: Authed,
                             patient: Annotated[str, Query(description="Patient id, or "
                                                                       "Patient/id")],
                             horizon: Annotated[int, Query(ge=1, le=HORIZON_DAYS)] = 1
                             ) -> JSONResponse:
        from migraine_bayes.adapters.fhir import searchset
        from migraine_bayes.model.labels import feature_name

        pid = patient.removeprefix("Patient/")
        path = patient_twin(user, pid)
        table, data_hash = twins.forecast(path, pid, horizon)
        record = twins.record(path)
        with twin_lock(path):
            audit.record_forecasts(path, table, record.version, {pid: data_hash})
        bundle = searchset(table, path.name, record.version, record.outcome,
                           f"{str(request.base_url).rstrip('/')}/fhir",
                           lambda f: feature_name(f)[0])
        return JSONResponse(bundle, media_type="application/fhir+json")

    # ------------------------------------------------------------ research
    @app.get("/cohort/calibration",
             summary="Cohort calibration per closed month, frozen once released (k ≥ 5)")
    def calibration(user: Authed) -> dict:
        need(user, "researcher")
        return release.calibration(twins.twin_dirs(), twins.root / FOLDER,
                                   _pseudonym_secret(twins.root / FOLDER))

    # ------------------------------------------------------------ users
    @app.get("/users", summary="Every user (admins)")
    def list_users(user: Authed) -> list[dict]:
        need(user, "admin")
        return users.list()

    @app.post("/users", status_code=201, summary="Add a user (admins); the token is shown once")
    def add_user(body: UserIn, user: Authed) -> dict:
        need(user, "admin")
        try:
            token = users.add(body.name, body.role, body.patients, body.days)
        except UserError as exc:
            raise HTTPException(409 if "exists" in str(exc) else 422, str(exc)) from None
        return {"name": body.name, "role": body.role, "token": token}

    @app.post("/users/{name}/revoke", summary="Revoke a user's token (admins)")
    def revoke_user(name: str, user: Authed) -> dict:
        need(user, "admin")
        try:
            users.revoke(name)
        except UserError as exc:
            raise HTTPException(404, str(exc)) from None
        return {"name": name, "revoked": True}

    app.state.registry, app.state.users = twins, users
    return app


def _overrides(path: Path, patient: str) -> dict[str, dict]:
    """The patient's latest override per scenario, from the twin's audit trail."""
    import json

    kept: dict[str, dict] = {}
    events = audit.events(path)
    for detail in events.loc[events["kind"] == "override", "detail"]:
        d = json.loads(detail)
        if d.get("patient_id") == patient:
            kept[d["scenario"]] = {"status": d["status"], "reason": d["reason"], "by": d["by"]}
    return kept


def _pseudonym_secret(folder: Path) -> bytes:
    key = crypto.active_key()
    if key is not None:
        return key
    path = folder / "pseudonym.secret"
    if not path.exists():
        from migraine_bayes.store import atomic

        with atomic.atomic_path(path, mode=0o600) as tmp:
            tmp.write_bytes(os.urandom(32))
    return path.read_bytes()


def app_from_env() -> FastAPI:
    """The app of the registry in ``MIGRAINE_BAYES_REGISTRY`` (uvicorn's factory, workers)."""
    registry = os.environ.get(REGISTRY_ENV)
    if not registry:
        raise RuntimeError(f"{REGISTRY_ENV} is not set")
    trusted = frozenset(a.strip() for a in os.environ.get(TRUSTED_ENV, "").split(",")
                        if a.strip())
    return create_app(registry, max_failures=int(os.environ.get(
        "MIGRAINE_BAYES_MAX_FAILURES", "10")), trusted_proxies=trusted)
