"""The twin service over real HTTP (issue 15): a uvicorn server on 127.0.0.1, httpx as client.

The registry holds two encrypted twins of the committed cohort; every case of the security
table is asserted, the API is fuzzed from its OpenAPI schema (schemathesis), concurrent diary
posts lose nothing, a restart in a new process finds everything, and the bytes on disk hold no
patient id and no raw value.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from migraine_bayes.service.users import FOLDER, UserStore
from migraine_bayes.store import audit, crypto
from migraine_bayes.twin.core import DigitalTwin

BIN = Path(sys.executable).parent
MAX_FAILURES = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(registry: Path, key: str, port: int) -> subprocess.Popen:
    env = {**os.environ, crypto.KEY_ENV: key}
    log = registry.parent / f"server-{port}-{time.monotonic_ns()}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(BIN / "migraine-twin"), "serve", "--registry",
                                 str(registry), "--port", str(port), "--max-failures",
                                 str(MAX_FAILURES)], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.3)
        if proc.poll() is not None:
            raise RuntimeError(log.read_text())
    proc.kill()
    raise RuntimeError("the server did not start")


@pytest.fixture(scope="module")
def service(committed_twins, tmp_path_factory):
    """A running server over a registry of two sealed twins; users of every kind."""
    registry = tmp_path_factory.mktemp("registry")
    key = crypto.new_key()
    with crypto.using(crypto.parse_key(key, "test")):
        committed_twins["syn125-001"].save(registry / "twin-a")
        committed_twins["syn125-002"].save(registry / "twin-b")
        store = UserStore(registry)
        tokens = {"alice": store.add("alice", "clinician", ["syn125-001"]),
                  "carol": store.add("carol", "clinician", ["syn125-002"]),
                  "bob": store.add("bob", "researcher"),
                  "root": store.add("root", "admin"),
                  "old": store.add("old", "clinician", ["syn125-001"]),
                  "gone": store.add("gone", "clinician", ["syn125-001"])}
    with sqlite3.connect(registry / FOLDER / "users.sqlite") as con:
        con.execute("UPDATE users SET expires_utc = '2020-01-01T00:00:00+00:00' "
                    "WHERE name = 'old'")
    store.revoke("gone")
    port = _free_port()
    proc = _start(registry, key, port)
    state = {"registry": registry, "key": key, "tokens": tokens, "port": port, "proc": proc,
             "url": f"http://127.0.0.1:{port}"}
    yield state
    state["proc"].terminate()
    state["proc"].wait(30)


class _client:
    """One request per call, each on its own closed connection."""

    def __init__(self, service, who: str | None = None, token: str | None = None) -> None:
        token = token if token is not None else (service["tokens"][who] if who else None)
        self.url = service["url"]
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def request(self, method: str, path: str, **kw) -> httpx.Response:
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=120) as c:
            return c.request(method, path, **kw)

    def get(self, path: str, **kw) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> httpx.Response:
        return self.request("POST", path, **kw)


DAY = {"observations": [{"time": "2026-01-06T08:00:00", "variable": "stress", "value": 4}]}
ENDPOINTS = [  # method, path, body, the role allowed
    ("GET", "/patients", None, "clinician"),
    ("GET", "/patients/syn125-001/forecast?horizon=2", None, "clinician"),
    ("POST", "/patients/syn125-001/simulate", {"scenarios": [
        {"name": "stress_reduction", "type": "behavioral",
         "params": {"behavior": "stress_reduction", "intensity": "moderate"}}],
        "draws": 200, "horizon": 14}, "clinician"),
    ("POST", "/patients/syn125-001/diary", DAY, "clinician"),
    ("POST", "/patients/syn125-001/overrides", {"scenario": "erenumab", "status": "excluded",
                                                "reason": "planned pregnancy"}, "clinician"),
    ("GET", "/patients/syn125-001/predictions", None, "clinician"),
    ("GET", "/fhir/RiskAssessment?patient=syn125-001", None, "clinician"),
    ("GET", "/cohort/calibration", None, "researcher"),
    ("GET", "/users", None, "admin"),
    ("POST", "/users", {"name": "dave", "role": "researcher"}, "admin"),
    ("POST", "/users/bob/revoke", {}, "admin"),
]
MALFORMED = {"/patients/syn125-001/simulate": {"scenarios": "none"},
             "/patients/syn125-001/diary": {"observations": [{"time": "2026-01-06",
                                                              "variable": "stres",
                                                              "value": "x"}]},
             "/patients/syn125-001/overrides": {"scenario": "x", "status": "maybe"},
             "/users": {"name": "no spaces allowed", "role": "king"}}
def body_of(method: str, path: str) -> bool:
    return method == "POST" and path in MALFORMED


OWNER = {"clinician": "alice", "researcher": "bob", "admin": "root"}


def _call(client: _client, method: str, path: str, body) -> httpx.Response:
    return client.request(method, path, json=body) if method == "POST" else client.get(path)


def test_security_table(service, capsys) -> None:
    """Endpoints × (no token, expired, revoked, wrong role, other's patient, malformed)."""
    rows, wrong = [], []
    for method, path, body, role in ENDPOINTS:
        other_role = "researcher" if role != "researcher" else "clinician"
        got = {
            "no token": _call(_client(service), method, path, body).status_code,
            "expired": _call(_client(service, "old"), method, path, body).status_code,
            "revoked": _call(_client(service, "gone"), method, path, body).status_code,
            "garbage": _call(_client(service, token="mbt.0.x"), method, path,
                             body).status_code,
            "wrong role": _call(_client(service, OWNER[other_role]), method, path,
                                body).status_code,
            "other's patient": (_call(_client(service, "carol"), method, path,
                                      body).status_code if "syn125-001" in path else None),
            "malformed": (_call(_client(service, OWNER[role]), method, path,
                                MALFORMED[path]).status_code if body_of(method, path) else None),
        }
        expect = {"no token": 401, "expired": 401, "revoked": 401, "garbage": 401,
                  "wrong role": 403, "other's patient": 403 if "syn125-001" in path else None,
                  "malformed": 422 if body_of(method, path) else None}
        rows.append((f"{method} {path.split('?')[0]}", got))
        wrong += [(method, path, k, v, expect[k]) for k, v in got.items() if v != expect[k]]
    with capsys.disabled():
        print("\n| endpoint | " + " | ".join(rows[0][1]) + " |")
        for name, got in rows:
            print(f"| {name} | " + " | ".join("—" if v is None else str(v)
                                             for v in got.values()) + " |")
    assert not wrong, wrong
    # the allowed role gets through
    ok = _client(service, "alice").get("/patients/syn125-001/forecast", params={"horizon": 3})
    assert ok.status_code == 200 and len(ok.json()) == 3
    assert {"p_attack", "p_low", "p_high", "top_factors"} <= set(ok.json()[0])
    bad = _client(service, "alice").post("/patients/syn125-001/diary", json=MALFORMED[
        "/patients/syn125-001/diary"]).json()
    assert any("body.observations, row 1, column 'variable'" in p for p in bad["problems"])
    assert any("column 'value'" in p for p in bad["problems"])  # every problem listed
    assert _client(service, "carol").get("/patients").json() == [
        {"patient_id": "syn125-002", "twin": "twin-b"}]
    res = _client(service, "bob").get("/cohort/calibration").json()
    assert "syn125" not in json.dumps(res)  # pseudonymised, cohort-level


def test_fuzzing_finds_no_server_error(service, tmp_path, capsys) -> None:
    """schemathesis from the OpenAPI schema, as a clinician and as an admin: no 5xx."""
    total = 0
    for who in ("alice", "root"):
        har = tmp_path / f"{who}.har"
        res = subprocess.run(
            [str(BIN / "st"), "run", f"{service['url']}/openapi.json", "--checks",
             "not_a_server_error", "-H", f"Authorization: Bearer {service['tokens'][who]}",
             "--max-examples", "2", "--seed", "15", "--workers", "1", "--phases",
             "coverage,fuzzing", "--report", "har", "--report-har-path", str(har)],
            capture_output=True, text=True, timeout=600)
        entries = json.loads(har.read_text())["log"]["entries"]
        statuses = [e["response"]["status"] for e in entries]
        assert res.returncode == 0, res.stdout[-3000:]
        assert not [s for s in statuses if s >= 500]
        total += len(entries)
    with capsys.disabled():
        print(f"\nfuzzed requests: {total}, server errors: 0")
    assert total > 100
    # the admin's fuzzing may have revoked anyone: fresh tokens for the tests that follow
    with crypto.using(crypto.parse_key(service["key"], "test")):
        store = UserStore(service["registry"])
        for name, pid in (("alice", "syn125-001"), ("carol", "syn125-002")):
            service["tokens"][name] = store.add(name, "clinician", [pid], replace=True)


def _post(service, who: str, patient: str, day: str, value: float,
          variable: str = "stress") -> int:
    body = {"observations": [{"time": f"{day}T09:00:00", "variable": variable,
                              "value": value}]}
    return _client(service, who).post(f"/patients/{patient}/diary", json=body).status_code


def test_concurrent_posts_lose_nothing(service) -> None:
    """Clients posting at once — three days of one patient, two values of one day of another —
    all land, audited. (syn125-002 logs diary_entry: days may land in any order. syn125-001
    keeps a complete diary: a day must not be posted before the one before it, which would
    count as kept without a record — so both posts are of its next day.)"""
    registry = service["registry"]
    before = audit.head(registry / FOLDER)["entries"]
    with crypto.using(crypto.parse_key(service["key"], "test")):
        seen = DigitalTwin.load(registry / "twin-a").panel.sel(patient="syn125-001")
    last = pd.Timestamp(seen["date"].values[seen["in_diary"].values][-1])
    next_day = f"{last + pd.Timedelta(days=1):%Y-%m-%d}"
    jobs = [("carol", "syn125-002", f"2026-01-{d:02d}", d - 5.0) for d in (7, 8, 9)]
    jobs += [("alice", "syn125-001", next_day, 6.0, v) for v in ("stress", "sleep_quality")]
    with cf.ThreadPoolExecutor(len(jobs)) as pool:
        codes = list(pool.map(lambda j: _post(service, *j), jobs))
    assert codes == [200] * len(jobs)
    with crypto.using(crypto.parse_key(service["key"], "test")):
        for name, pid, days in (("twin-a", "syn125-001", [next_day]),
                                ("twin-b", "syn125-002", [f"2026-01-{d:02d}" for d in (7, 8, 9)])):
            twin = DigitalTwin.load(registry / name)
            panel = twin.panel.sel(patient=pid)
            dates = [str(d)[:10] for d in panel["date"].values[panel["in_diary"].values]]
            assert all(d in dates for d in days)
            for feature in (("trigger.stress", "trigger.sleep_quality") if name == "twin-a"
                            else ("trigger.stress",)):
                values = panel["value"].sel(feature=feature).values
                for d in days:
                    want = 6.0 if name == "twin-a" else int(d[-2:]) - 5.0
                    assert values[dates.index(d)] == want, (pid, d, feature)
        service_trail = audit.events(registry / FOLDER)
        assert audit.verify(registry / FOLDER).ok
    posts = service_trail[service_trail["seq"] > before]
    details = [json.loads(d) for d in posts["detail"]]
    assert sum(d["path"].endswith("/diary") and d["status"] == 200 for d in details) == len(jobs)


def test_restart_finds_everything_and_nothing_is_in_clear(service) -> None:
    """A new server process: users, twins and audit rows intact; no id or value on disk."""
    registry = service["registry"]
    with crypto.using(crypto.parse_key(service["key"], "test")):
        heads = {p.name: audit.head(p)["entries"] for p in (registry / "twin-a",
                                                          registry / "twin-b",
                                                          registry / FOLDER)}
    service["proc"].terminate()
    service["proc"].wait(30)
    service["proc"] = _start(registry, service["key"], service["port"])
    alice = _client(service, "alice")
    assert alice.get("/patients").json()[0]["patient_id"] == "syn125-001"
    assert _client(service, "gone").get("/patients").status_code == 401
    table = alice.get("/patients/syn125-001/predictions").json()
    assert table and all(r["patient_id"] == "syn125-001" for r in table)
    with crypto.using(crypto.parse_key(service["key"], "test")):
        for name, n in heads.items():
            assert audit.head(registry / name)["entries"] >= n
            assert audit.verify(registry / name).ok
        DigitalTwin.load(registry / "twin-a")
    # the bytes on disk: no patient id, no forecast date, no forecast value
    needles = [b"syn125", b"2026-01-06", b"2025-06-01"]
    needles += [json.dumps(table[0]["p_attack"]).encode()[:10]]
    files = [p for p in registry.rglob("*") if p.is_file()]
    assert len(files) > 8
    leaks = [(str(p.relative_to(registry)), n) for p in files for n in needles
             if n in p.read_bytes()]
    assert not leaks, leaks
    # without the key nothing opens, and says so
    with pytest.raises(crypto.EncryptionKeyError, match="is encrypted"):
        DigitalTwin.load(registry / "twin-a")


def test_cohort_calibration_cannot_be_differenced(service) -> None:
    """The differencing attack: a researcher reads the cohort calibration, one patient's
    forecast is served and the day's outcome posted, the researcher reads again. A release
    recomputed per request changes by exactly that patient-day (its bin's count and rate, the
    patient's Brier score give the forecast and the outcome); a frozen release of closed months
    does not change at all."""
    bob, carol = _client(service, "bob"), _client(service, "carol")
    before = bob.get("/cohort/calibration").json()
    assert before["k"] >= 5 and before["months"]  # January 2026 is long closed
    forecast = carol.get("/patients/syn125-002/forecast").json()[0]
    day = forecast["date"]
    posted = carol.post("/patients/syn125-002/diary", json={
        "observations": [{"time": f"{day}T09:00:00", "variable": "stress", "value": 6}],
        "attacks": [{"onset": f"{day}T11:00:00"}]})
    assert posted.status_code == 200, posted.text
    with crypto.using(crypto.parse_key(service["key"], "test")):
        joined = audit.prediction_outcomes(service["registry"] / "twin-b")
    assert ((joined["date"] == day) & (joined["outcome"] == 1)).any()  # the attack is known
    after = bob.get("/cohort/calibration").json()
    assert after == before
    for month in after["months"]:  # no released cell rests on fewer than k patients
        assert "suppressed" in month or month["patients"] >= after["k"]


def test_a_fhir_client_reads_the_forecasts_as_risk_assessments(service) -> None:
    """Issue 35: an existing FHIR client (fhirpy, over HTTP, with the clinician's token) reads
    the forecast as RiskAssessment resources; each validates as FHIR (fhir.resources) and
    carries the forecast's probability, its interval, the day and the twin's version. (It runs
    before the throttling test, which locks alice out.)"""
    from fhir.resources.R4B.bundle import Bundle
    from fhirpy import SyncFHIRClient

    alice = f"Bearer {service['tokens']['alice']}"
    client = SyncFHIRClient(f"{service['url']}/fhir", authorization=alice)
    found = client.resources("RiskAssessment").search(patient="syn125-001").fetch()
    table = _client(service, "alice").get("/patients/syn125-001/forecast").json()
    assert len(found) == 1 and len(table) == 1
    risk = found[0].serialize()
    prediction = risk["prediction"][0]
    assert risk["subject"]["reference"] == "Patient/syn125-001"
    assert prediction["probabilityDecimal"] == pytest.approx(table[0]["p_attack"], abs=1e-6)
    interval = prediction["extension"][0]["valueRange"]
    assert interval["low"]["value"] <= prediction["probabilityDecimal"] <= interval["high"]["value"]
    assert prediction["whenPeriod"]["start"] == table[0]["date"][:10]
    assert risk["meta"]["tag"][0]["code"].startswith("twin-a@")
    raw = _client(service, "alice").get("/fhir/RiskAssessment",
                                        params={"patient": "Patient/syn125-001", "horizon": 3})
    assert raw.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate(raw.json())  # a FHIR model library accepts it
    assert bundle.type == "searchset" and len(bundle.entry) == 3
    # another clinician's patient: refused, as every endpoint
    carol = SyncFHIRClient(f"{service['url']}/fhir",
                           authorization=f"Bearer {service['tokens']['carol']}")
    with pytest.raises(Exception, match=r"403|not one of yours"):
        carol.resources("RiskAssessment").search(patient="syn125-001").fetch()


def test_failed_authentications_are_throttled(service) -> None:
    """Guesses at one token id lock that id out, and malformed tokens their address — but a
    valid token of another user from the same address still gets in (behind a proxy every
    user shares an address: ten bad tokens must not lock a clinic out)."""
    alice_id = service["tokens"]["alice"].split(".")[1]
    guess = _client(service, token=f"mbt.{alice_id}.not-her-secret")
    codes = [guess.get("/patients").status_code for _ in range(MAX_FAILURES + 1)]
    assert codes[0] == 401 and codes[-1] == 429
    assert _client(service, "alice").get("/patients").status_code == 429  # her id waits
    assert _client(service, "carol").get("/patients").status_code == 200  # same address
    junk = _client(service, token="garbage")
    codes = [junk.get("/patients").status_code for _ in range(MAX_FAILURES + 1)]
    assert codes[0] == 401 and codes[-1] == 429
    assert _client(service, "carol").get("/patients").status_code == 200
    assert _client(service, "bob").get("/cohort/calibration").status_code == 200


def test_the_client_address_is_read_from_trusted_proxies_only() -> None:
    from starlette.requests import Request

    from migraine_bayes.service.app import client_address, throttle_key

    def request(peer: str, forwarded: str | None) -> Request:
        headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
        return Request({"type": "http", "client": (peer, 1234), "headers": headers})

    trusted = frozenset({"10.0.0.2"})
    assert client_address(request("203.0.113.9", "1.2.3.4"), trusted) == "203.0.113.9"
    assert client_address(request("10.0.0.2", "1.2.3.4, 198.51.100.7"), trusted) == (
        "198.51.100.7")  # the right-most hop the proxy saw, not what the client wrote first
    assert client_address(request("10.0.0.2", None), trusted) == "10.0.0.2"
    assert throttle_key("mbt.0123456789abcdef.x", "1.2.3.4") == "id:0123456789abcdef"
    assert throttle_key("mbt.short.x", "1.2.3.4") == throttle_key(None, "1.2.3.4") == (
        "addr:1.2.3.4")

