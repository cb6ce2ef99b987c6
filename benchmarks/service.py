"""Benchmark: the twin service on 127.0.0.1 (targets: median forecast ≤ 100 ms, ≥ 50 req/s).

A generated cohort (``--patients`` × 150 days) is fitted as one cohort twin (short chains: the
service's speed does not depend on the draws' quality), saved encrypted into a registry, and
served by ``migraine-twin serve`` with 1 and with 2 workers, measured side by side:

- **latency**: ``--requests`` sequential forecasts (one patient, horizon 1) of the loaded twin;
- **throughput**: 8 client threads asking forecasts of random patients for ``--seconds`` s;
- **concurrent posts**: ``--patients`` clients each posting the next day of its own patient and
  5 clients posting later days of one patient who logs ``diary_entry``, all at once; then
  every posted day must be in the twin, the twin's audit trail must hold one update per post
  and the service's trail one allowed request per post, both chains intact.

Writes ``reports/benchmarks/service.md`` and ``.json``.

    python benchmarks/service.py [--patients 20] [--requests 200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd

from migraine_bayes.model.inference import SamplerSettings
from migraine_bayes.service.users import FOLDER, UserStore
from migraine_bayes.store import atomic, audit, crypto
from migraine_bayes.synthetic.cohort import simulate_cohort
from migraine_bayes.twin.core import DigitalTwin

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "reports" / "benchmarks"
BIN = Path(sys.executable).parent


def start(registry: Path, key: str, port: int, workers: int) -> subprocess.Popen:
    proc = subprocess.Popen([str(BIN / "migraine-twin"), "serve", "--registry", str(registry),
                             "--port", str(port), "--workers", str(workers),
                             "--max-failures", "1000"],
                            env={**os.environ, crypto.KEY_ENV: key},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/openapi.json").status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def measure(url: str, token: str, patients: list[str], n: int, seconds: float) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
        c.get(f"/patients/{patients[0]}/forecast")  # load the twin
        lat = []
        for _ in range(n):
            t0 = time.perf_counter()
            assert c.get(f"/patients/{patients[0]}/forecast").status_code == 200
            lat.append(time.perf_counter() - t0)

    def client(seed: int) -> int:
        rng, done = random.Random(seed), 0
        end = time.perf_counter() + seconds
        with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
            while time.perf_counter() < end:
                assert c.get(f"/patients/{rng.choice(patients)}/forecast").status_code == 200
                done += 1
        return done

    with cf.ThreadPoolExecutor(8) as pool:
        t0 = time.perf_counter()
        total = sum(pool.map(client, range(8)))
        wall = time.perf_counter() - t0
    return {"median_ms": 1000 * statistics.median(lat),
            "p90_ms": 1000 * sorted(lat)[int(0.9 * len(lat))], "requests_per_s": total / wall}


def concurrent_posts(url: str, tokens: dict[str, str], patients: list[str], last: str,
                     registry: Path, key: bytes, busy: str) -> dict:
    """``busy`` gets 5 more days at once: a patient who logs ``diary_entry``, whose days may
    land in any order (a complete diary's day posted before the day before it is refused)."""
    day = pd.Timestamp(last) + pd.Timedelta(days=1)
    jobs = [(p, day) for p in patients]
    jobs += [(busy, day + pd.Timedelta(days=k)) for k in range(1, 6)]

    def post(job) -> int:
        pid, when = job
        body = {"observations": [{"time": f"{when:%Y-%m-%d}T09:00:00", "variable": "stress",
                                  "value": 4.0}]}
        with httpx.Client(base_url=url, timeout=600,
                          headers={"Authorization": f"Bearer {tokens[pid]}"}) as c:
            return c.post(f"/patients/{pid}/diary", json=body).status_code

    before = {"twin": 0, "service": 0}
    with crypto.using(key):
        twin_dir = registry / "cohort"
        before["twin"] = int((audit.events(twin_dir)["kind"] == "update").sum())
        trail = audit.events(registry / FOLDER)
        before["service"] = len(trail)
    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(len(jobs)) as pool:
        codes = list(pool.map(post, jobs))
    wall = time.perf_counter() - t0
    with crypto.using(key):
        twin = DigitalTwin.load(twin_dir)
        missing = []
        for pid, when in jobs:
            p = twin.panel.sel(patient=pid)
            dates = set(pd.to_datetime(p["date"].values[p["in_diary"].values]).normalize())
            if when.normalize() not in dates:
                missing.append((pid, str(when.date())))
        updates = int((audit.events(twin_dir)["kind"] == "update").sum()) - before["twin"]
        trail = audit.events(registry / FOLDER)
        new = [json.loads(d) for d in trail["detail"].iloc[before["service"]:]]
        logged = sum(d["path"].endswith("/diary") and d["status"] == 200 for d in new)
        intact = audit.verify(twin_dir).ok and audit.verify(registry / FOLDER).ok
    return {"posts": len(jobs), "ok": codes.count(200), "wall_s": wall,
            "days_missing": missing, "twin_update_events": updates,
            "service_audit_rows": logged, "chains_intact": intact}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    key_text = crypto.new_key()
    key = crypto.parse_key(key_text, "benchmark")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sc = simulate_cohort(args.patients, 150, seed=3)
        sc.write(tmp / "cohort-data")
        from migraine_bayes.cohort.io import load_cohort

        cohort = load_cohort(tmp / "cohort-data")
        t0 = time.perf_counter()
        twin = DigitalTwin.fit_cohort(cohort, settings=SamplerSettings(draws=250, tune=300,
                                                                       chains=2, seed=1))
        fit_s = time.perf_counter() - t0
        registry = tmp / "registry"
        registry.mkdir()
        patients = twin.patients
        with crypto.using(key):
            twin.save(registry / "cohort")
            store = UserStore(registry)
            tokens = {p: store.add(f"c{i}", "clinician", [p]) for i, p in enumerate(patients)}
            everyone = store.add("all", "clinician", patients)
        last = str(pd.Timestamp(cohort.diary_periods()["end"].max()).date())
        obs = cohort.observations
        loggers = set(obs.loc[obs["variable"] == "diary_entry", "patient_id"])
        busy = next((p for p in patients if p in loggers), patients[0])
        results = {}
        for workers, port in ((1, 18731), (2, 18732)):
            proc = start(registry, key_text, port, workers)
            try:
                results[f"{workers}_worker"] = measure(f"http://127.0.0.1:{port}", everyone,
                                                       patients, args.requests, args.seconds)
                if workers == 2:
                    results["posts"] = concurrent_posts(f"http://127.0.0.1:{port}", tokens,
                                                        patients, last, registry, key, busy)
            finally:
                proc.terminate()
                proc.wait(30)
    results |= {"patients": args.patients, "fit_s": fit_s, "cpus": os.cpu_count()}
    OUT.mkdir(parents=True, exist_ok=True)
    atomic.write_text(OUT / "service.json", json.dumps(results, indent=1, default=str))
    p = results["posts"]
    lines = ["# Twin service on 127.0.0.1", "",
             f"{args.patients} patients × 150 days, one encrypted cohort twin; "
             f"{os.cpu_count()} CPUs.", "",
             "| workers | median forecast latency | p90 | forecasts/s (8 clients) |",
             "|---|---|---|---|"]
    for w in ("1_worker", "2_worker"):
        r = results[w]
        lines.append(f"| {w[0]} | {r['median_ms']:.1f} ms | {r['p90_ms']:.1f} ms | "
                     f"{r['requests_per_s']:.1f} |")
    lines += ["", f"Concurrent posts: {p['posts']} ({args.patients} patients, 5 more for one "
              f"patient): {p['ok']} accepted in {p['wall_s']:.1f} s; days missing from the "
              f"twin: {len(p['days_missing'])}; update events in the twin's trail: "
              f"{p['twin_update_events']}; allowed diary requests in the service's trail: "
              f"{p['service_audit_rows']}; chains intact: {p['chains_intact']}."]
    atomic.write_text(OUT / "service.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    ok = (p["ok"] == p["posts"] and not p["days_missing"]
          and p["twin_update_events"] == p["posts"] == p["service_audit_rows"]
          and p["chains_intact"])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
