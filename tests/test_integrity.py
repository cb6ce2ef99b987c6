"""Nothing silently wrong: hostile inputs, edited history, safe writes, one writer per twin,
kills at any point, a tamper-evident audit trail (issue "Nothing silently wrong")."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import sqlite3
import stat
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from typer.testing import CliRunner

from migraine_bayes import api
from migraine_bayes.cli import app
from migraine_bayes.cohort.io import load_cohort
from migraine_bayes.errors import InputDataError
from migraine_bayes.state import build_panel
from migraine_bayes.store import audit
from migraine_bayes.store.targets import TargetError
from migraine_bayes.twin.core import DigitalTwin
from migraine_bayes.twin.record import HistoryError, TwinError
from migraine_bayes.twin.store import twin_target

BAD = ROOT / "tests" / "data" / "bad"
sys.path.insert(0, str(BAD))
import make_corpus  # noqa: E402

CASES = sorted(p.name for p in BAD.iterdir() if p.is_dir())
runner = CliRunner()
quick = pytest.mark.filterwarnings("ignore::migraine_bayes.model.inference.InferenceWarning")


# ---------------------------------------------------------------- the bad-input corpus
def test_corpus_is_large_and_its_base_is_valid(tmp_path) -> None:
    assert len(CASES) >= 40
    make_corpus.write(tmp_path / "base", make_corpus.base())
    assert load_cohort(tmp_path / "base").patient_ids == ["P-01", "P-02"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_rejected_with_its_message(case) -> None:
    expected = (BAD / case / "expected.txt").read_text(encoding="utf-8").split("\n")
    with pytest.raises(InputDataError) as err:
        load_cohort(BAD / case)
    for fragment in filter(None, expected):
        assert fragment in str(err.value), f"{case}: {fragment!r} not in\n{err.value}"
    res = runner.invoke(app, ["validate-data", str(BAD / case)])
    assert res.exit_code == 2, res.output
    assert "internal error" not in res.output and "Traceback" not in res.output
    assert expected[0] in res.output


def test_dedupe_drops_exact_duplicates_and_says_so() -> None:
    c = load_cohort(BAD / "exact_duplicate_observation", dedupe=True)
    assert any("dropped 1 exact duplicate rows" in n for n in c.notices)
    panel = build_panel(c)
    raw = pd.read_csv(BAD / "exact_duplicate_observation" / "observations.csv")
    first = raw.iloc[4]
    day = (pd.Timestamp(first["time"]).normalize() - pd.Timestamp("2024-03-01")).days
    value = panel["value"].sel(patient=first["patient_id"], day=day,
                               feature=f"trigger.{first['variable']}").item()
    assert value == pytest.approx(float(first["value"]))  # counted once, not summed


def test_full_width_ids_are_normalised_into_one_patient(tmp_path) -> None:
    t = make_corpus.base()
    t["observations"].loc[:5, "patient_id"] = "\uff30-01"  # full-width P
    make_corpus.write(tmp_path / "c", t)
    c = load_cohort(tmp_path / "c")
    assert c.patient_ids == ["P-01", "P-02"]
    assert any("NFKC" in n for n in c.notices)


def test_days_that_have_not_happened_are_refused(tmp_path) -> None:
    """A diary, an attack or a declared period after today (beyond tomorrow by UTC) is refused."""
    soon = pd.Timestamp.now(tz="UTC").tz_localize(None).normalize() + pd.Timedelta(days=5)
    t = make_corpus.base()
    make_corpus.obs_row(t, "P-01", f"{soon:%Y-%m-%d}T20:00", "stress", 3)
    make_corpus.att_row(t, patient_id="P-02", onset=f"{soon:%Y-%m-%d}T10:00")
    t["patients"]["diary_end"] = ["", f"{soon:%Y-%m-%d}"]
    t["patients"]["diary_start"] = ["", "2024-03-01"]
    make_corpus.write(tmp_path / "c", t)
    with pytest.raises(InputDataError) as err:
        load_cohort(tmp_path / "c")
    text = str(err.value)
    for where in ("observations.csv, row 121 (line 122), column 'time'",
                  "attacks.csv, row 7 (line 8), column 'onset'",
                  "patients.csv, row 2 (line 3), column 'diary_end'"):
        assert where in text, text
    assert text.count("after today: a diary holds only days that have happened") >= 3
    t = make_corpus.base()  # tomorrow is a day lived east of UTC
    tomorrow = soon - pd.Timedelta(days=4)
    make_corpus.obs_row(t, "P-01", f"{tomorrow:%Y-%m-%d}T08:00+13:00", "stress", 3)
    t["patients"]["diary_start"] = ["2024-03-01", "2024-03-01"]
    t["patients"]["diary_end"] = [f"{tomorrow:%Y-%m-%d}", "2024-03-20"]
    t["observations"] = t["observations"][t["observations"]["time"] < "2024-03-05"]  # short
    make_corpus.write(tmp_path / "d", t)
    with pytest.raises(InputDataError) as err:  # …but the gap to it is not a kept diary
        load_cohort(tmp_path / "d")
    assert "after today" not in str(err.value)


def test_stray_date_is_not_fitted_silently(tmp_path) -> None:
    res = runner.invoke(app, ["fit", str(BAD / "stray_date_1900"), "--out",
                              str(tmp_path / "twin")])
    assert res.exit_code == 2 and "outside the plausible window" in res.output
    assert not (tmp_path / "twin").exists()


# ---------------------------------------------------------------- a small fitted twin
def _cohort_folder(folder: Path, days: int, drop_attacks: int = 0) -> Path:
    t = make_corpus.base()
    end = pd.Timestamp("2024-03-01") + pd.Timedelta(days=days)
    t["observations"] = t["observations"][pd.to_datetime(t["observations"]["time"]) < end]
    t["attacks"] = t["attacks"][pd.to_datetime(t["attacks"]["onset"]) < end].iloc[drop_attacks:]
    make_corpus.write(folder, t)
    return folder


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> dict:
    """A cohort twin of the corpus base fitted on 15 days; data folders of 15 and 20 days."""
    root = tmp_path_factory.mktemp("small")
    folders = {"d15": _cohort_folder(root / "d15", 15), "d20": _cohort_folder(root / "d20", 20),
               "edited": _cohort_folder(root / "edited", 20, drop_attacks=3)}
    import warnings

    from migraine_bayes.model.inference import InferenceWarning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InferenceWarning)
        api.fit(folders["d15"], root / "twin", draws=150, chains=2, seed=1, structure="fixed")
    return {"twin": root / "twin", **folders}


def copy(src: Path, dst: Path) -> Path:
    """A copy of a twin directory, audit trail included."""
    shutil.copytree(src, dst)
    return dst


def consistent(path: Path) -> tuple[int, int]:
    """(updates the twin records, update events its audit trail holds) after a load."""
    twin = DigitalTwin.load(path)  # replays a pending journal, verifies the chain
    events = audit.events(path)
    assert audit.verify(path, twin.meta.get("audit_head")).ok
    return (int((twin.meta.get("filter") or {}).get("updates", 0)),
            int((events["kind"] == "update").sum()))


def test_new_twin_is_private_and_fit_is_audited(small) -> None:
    twin = small["twin"]
    assert stat.S_IMODE(os.stat(twin).st_mode) == 0o700
    for name in ("posterior.nc", "twin.json", audit.FILE):
        assert stat.S_IMODE(os.stat(twin / name).st_mode) == 0o600, name
    events = audit.events(twin)
    assert list(events["kind"]) == ["fit"]
    assert not (twin / audit.JOURNAL).exists()  # applied right after the save
    res = runner.invoke(app, ["audit", "verify", str(twin)])
    assert res.exit_code == 0 and "hash chain intact" in res.output


def test_update_refuses_edited_history_unless_asked(small, tmp_path) -> None:
    path = copy(small["twin"], tmp_path / "twin")
    with pytest.raises(HistoryError, match=r"patient P-01, 2024-03-03: onset was 1, the new "
                                           r"data say 0"):
        api.update(path, small["edited"], retrain_when_due=False)
    res = runner.invoke(app, ["update", str(path), str(small["edited"]), "--no-retrain"])
    assert res.exit_code == 2 and "--rewrite-history" in res.output
    assert consistent(path) == (0, 0)  # nothing moved
    out = api.update(path, small["edited"], retrain_when_due=False, rewrite_history=True)
    assert [c["patient_id"] for c in out["history_rewritten"]] == ["P-01"]
    assert "the history the twin was fitted on was rewritten" in out["retrain_reasons"]
    detail = json.loads(audit.events(path)["detail"].iloc[-1])
    assert detail["history_rewritten"][0]["what"] == "onset"


def test_update_with_the_same_history_goes_through(small, tmp_path) -> None:
    path = copy(small["twin"], tmp_path / "twin")
    res = api.update(path, small["d20"], retrain_when_due=False)
    assert len(res["days"]) == 10 and res["history_rewritten"] == []
    assert consistent(path) == (1, 1)


def test_days_inserted_before_the_fit_get_the_true_reason(small, tmp_path) -> None:
    """Days before the twin's first day shift every position: the refusal says so, instead of
    naming an outcome that did not change."""
    path = copy(small["twin"], tmp_path / "twin")
    t = make_corpus.base()
    for day in ("2024-02-27", "2024-02-28", "2024-02-29"):
        make_corpus.obs_row(t, "P-01", f"{day}T20:00", "stress", 2)
    make_corpus.write(tmp_path / "earlier", t)
    res = runner.invoke(app, ["update", str(path), str(tmp_path / "earlier"), "--no-retrain"])
    assert res.exit_code == 2, res.output
    assert ("patient P-01: the new data's diary starts on 2024-02-27, 3 day(s) before the "
            "twin's (2024-03-01)") in res.output
    assert "was 1" not in res.output and "was 0" not in res.output
    assert consistent(path) == (0, 0)


def test_fit_never_replaces_another_twin_without_force(small, tmp_path) -> None:
    path = copy(small["twin"], tmp_path / "twin")
    res = runner.invoke(app, ["fit", str(small["d15"]), "--out", str(path), "--patients",
                              "P-01"])
    assert res.exit_code == 2 and "twin of 2 other patient(s)" in res.output
    assert res.output.count("--force") == 1
    # the same patients: a new version; other patients with force: the old twin set aside
    assert twin_target(path, ["P-01", "P-02"], force=False).version == 1.0
    assert twin_target(path, ["P-01"], force=True) is None
    aside = list(tmp_path.glob("twin.replaced-*"))
    assert len(aside) == 1 and (aside[0] / audit.FILE).exists() and not path.exists()
    DigitalTwin.load(aside[0]).save(path)
    assert audit.head(path)["entries"] == 0  # a fresh audit trail, not the old patients'


def test_non_empty_folders_and_cohort_files_are_not_overwritten(small, tmp_path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(TargetError, match="non-empty folder"):
        api.generate(folder, patients=2, days=30)
    res = runner.invoke(app, ["generate", str(folder), "--patients", "2", "--days", "30"])
    assert res.exit_code == 2 and (folder / "notes.txt").read_text() == "keep me"
    with pytest.raises(TargetError):
        twin_target(folder, ["P-01"], force=False)
    cohort = copy(small["d15"], tmp_path / "cohort")
    before = (cohort / "observations.csv").read_bytes()
    res = runner.invoke(app, ["forecast", str(small["twin"]), "--cohort", str(cohort),
                              "--out", str(cohort / "observations.csv")])
    assert res.exit_code == 2 and "a file of a cohort" in res.output
    assert (cohort / "observations.csv").read_bytes() == before
    res = runner.invoke(app, ["forecast", str(small["twin"]), "--out",
                              str(small["twin"] / "twin.json")])
    assert res.exit_code == 2 and "inside a twin directory" in res.output


def test_symlinked_twin_saves_again_and_again(small, tmp_path) -> None:
    real = copy(small["twin"], tmp_path / "real")
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    for _ in range(3):
        DigitalTwin.load(link).save(link)
    assert link.is_symlink() and (real / "twin.json").is_file()
    api.update(link, small["d20"], retrain_when_due=False)
    assert consistent(real) == (1, 1)


def test_saves_keep_modes_and_leave_no_temporaries(small, tmp_path, monkeypatch) -> None:
    path = copy(small["twin"], tmp_path / "twin")
    os.chmod(path, 0o750)
    for name in ("posterior.nc", "twin.json"):
        os.chmod(path / name, 0o640)
    twin = DigitalTwin.load(path)
    twin.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o750
    assert stat.S_IMODE(os.stat(path / "twin.json").st_mode) == 0o640
    os.chmod(path, 0o777)  # opened to everyone by hand: a save takes back what others had
    os.chmod(path / "twin.json", 0o666)
    twin.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o770
    assert stat.S_IMODE(os.stat(path / "twin.json").st_mode) == 0o660
    folder = tmp_path / "shared"  # an empty folder everyone may write: a new twin is private
    folder.mkdir()
    os.chmod(folder, 0o777)
    twin.save(folder)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    (tmp_path / ".twin.k1ll3d_x.tmp").mkdir()  # what a killed save leaves

    def broken(*_a, **_k):
        raise OSError("disk full")

    import migraine_bayes.twin.store as twin_module

    monkeypatch.setattr(twin_module, "write_netcdf", broken)  # the posterior's writer
    with pytest.raises(OSError, match="disk full"):
        twin.save(path)
    monkeypatch.undo()
    assert not list(tmp_path.glob(".twin.*.tmp"))
    assert DigitalTwin.load(path).meta["version"] == 1.0


def test_hand_edited_model_configuration_is_refused(small, tmp_path) -> None:
    path = copy(small["twin"], tmp_path / "twin")
    meta = json.loads((path / "twin.json").read_text())
    assert meta["spec_hash"] == DigitalTwin.load(path).spec.digest()
    name = next(iter(meta["scaling"]))
    meta["scaling"][name][1] *= 2  # a feature's scale doubled by hand
    (path / "twin.json").write_text(json.dumps(meta))
    with pytest.raises(TwinError, match="does not match its hash"):
        DigitalTwin.load(path)


# ---------------------------------------------------------------- a tamper-evident audit trail
def test_forged_insert_is_found_and_blocks_the_load(small, tmp_path) -> None:
    path = copy(small["twin"], tmp_path / "twin")
    api.forecast(path)
    with sqlite3.connect(path / audit.FILE) as con:
        con.execute("INSERT INTO events (seq, recorded_utc, twin_version, kind, detail, hash) "
                    "VALUES (99, '2024-01-01', 1.0, 'fit', '{}', 'abc')")
    check = audit.verify(path)
    assert not check.ok and "first broken row: table events" in check.problems[0]
    with pytest.raises(audit.AuditError, match="first broken row"):
        DigitalTwin.load(path)
    res = runner.invoke(app, ["audit", "verify", str(path)])
    assert res.exit_code == 1 and "first broken row" in res.output


def test_dropped_triggers_are_reported_not_recreated(small, tmp_path) -> None:
    path = copy(small["twin"], tmp_path / "twin")
    api.forecast(path)
    with sqlite3.connect(path / audit.FILE) as con:
        con.execute("DROP TRIGGER forecasts_no_update")
        con.execute("UPDATE forecasts SET p_attack = 0.01")
    check = audit.verify(path)
    assert "triggers removed" in check.problems[0]
    assert any("hash does not match" in p for p in check.problems)
    with pytest.raises(audit.AuditError):
        api.forecast(path)
    with sqlite3.connect(path / audit.FILE) as con:
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    assert "forecasts_no_update" not in names  # the tool did not paper over it


def test_truncated_trail_fails_against_the_twins_head(small, tmp_path) -> None:
    path = copy(small["twin"], tmp_path / "twin")
    api.update(path, small["d20"], retrain_when_due=False)
    with sqlite3.connect(path / audit.FILE) as con:  # remove the newest rows, restore triggers
        con.execute("DROP TRIGGER events_no_delete")
        con.execute("DROP TRIGGER outcomes_no_delete")
        top = con.execute("SELECT max(seq) FROM events").fetchone()[0]
        con.execute("DELETE FROM events WHERE seq = ?", (top,))
        con.execute("DELETE FROM outcomes WHERE seq > (SELECT max(seq) FROM events)")
        for name in ("events_no_delete", "outcomes_no_delete"):
            con.execute(audit.TRIGGERS[name])
    twin = json.loads((path / "twin.json").read_text())
    assert audit.verify(path).ok  # a clean prefix on its own …
    assert not audit.verify(path, twin["audit_head"]).ok  # … but not what the twin recorded


def test_keyed_trail_needs_its_key(tmp_path, monkeypatch) -> None:
    (tmp_path / "t").mkdir()
    monkeypatch.setenv(audit.KEY_ENV, "secret")
    audit.record_event(tmp_path / "t", 1.0, "fit", {"x": 1})
    assert audit.verify(tmp_path / "t").ok and audit.verify(tmp_path / "t").keyed
    monkeypatch.setenv(audit.KEY_ENV, "wrong")
    assert "hash does not match" in audit.verify(tmp_path / "t").problems[0]
    monkeypatch.delenv(audit.KEY_ENV)
    assert "set MIGRAINE_BAYES_AUDIT_KEY" in audit.verify(tmp_path / "t").problems[0]


# ---------------------------------------------------------------- one writer, kills
def _update(path: str, folder: str) -> None:
    api.update(path, folder, retrain_when_due=False)
    os._exit(0)


# Children fork from a single-threaded server that has imported the package, never from this
# process: a fork of a process whose thread pools have run (PyTensor, BLAS) can hang on a lock
# held at the fork, and a hung update looks to the kill test like a kill before the commit.
_CTX = multiprocessing.get_context("forkserver")
_CTX.set_forkserver_preload(["migraine_bayes.api"])


def _run(target, *args) -> multiprocessing.Process:
    proc = _CTX.Process(target=target, args=args)
    proc.start()
    return proc


def _timed_update(path: Path, folder: Path) -> float:
    """Seconds a whole update takes in a child, start to exit (checked to succeed)."""
    t0 = time.perf_counter()
    proc = _run(_update, str(path), str(folder))
    proc.join(300)
    assert proc.exitcode == 0 and consistent(path) == (1, 1)
    return time.perf_counter() - t0


def test_parallel_updates_equal_sequential_ones(small, tmp_path) -> None:
    n = 4
    seq = copy(small["twin"], tmp_path / "seq")
    for _ in range(n):
        api.update(seq, small["d20"], retrain_when_due=False)
    par = copy(small["twin"], tmp_path / "par")
    procs = [_run(_update, str(par), str(small["d20"])) for _ in range(n)]
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    assert consistent(par) == consistent(seq) == (n, n)
    a, b = DigitalTwin.load(seq).filter_state, DigitalTwin.load(par).filter_state
    np.testing.assert_array_equal(a.index, b.index)
    np.testing.assert_array_equal(a.offset, b.offset)
    np.testing.assert_array_equal(a.last_day, b.last_day)


def _die_after_rename(path: str, folder: str) -> None:
    """An update killed after the new twin is in place, before its audit rows are written."""
    real, calls = audit.apply_journal, [0]

    def dying(twin_dir):
        calls[0] += 1
        if calls[0] == 2:  # the first call replays an earlier crash's journal, if any
            os._exit(9)
        return real(twin_dir)

    audit.apply_journal = dying  # this (forked) process only
    api.update(path, folder, retrain_when_due=False)


def test_kill_between_save_and_audit_is_replayed(small, tmp_path) -> None:
    path = copy(small["twin"], tmp_path / "twin")
    proc = _run(_die_after_rename, str(path), str(small["d20"]))
    proc.join(300)
    assert proc.exitcode == 9 and (path / audit.JOURNAL).exists()
    assert consistent(path) == (1, 1)  # the journal was replayed by the load
    assert not (path / audit.JOURNAL).exists()


def test_random_kills_never_leave_twin_and_audit_inconsistent(small, tmp_path) -> None:
    rng = np.random.default_rng(11)
    duration = float(np.median([_timed_update(copy(small["twin"], tmp_path / f"whole{i}"),
                                              small["d20"]) for i in range(3)]))
    outcomes, trials = {0: 0, 1: 0}, 6

    def kill_after(seconds: float, name: str) -> None:
        path = copy(small["twin"], tmp_path / name)
        proc = _run(_update, str(path), str(small["d20"]))
        time.sleep(seconds)
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGKILL)
        proc.join(60)
        updates, events = consistent(path)
        assert updates == events, (name, updates, events)
        outcomes[updates] += 1
        res = api.update(path, small["d20"], retrain_when_due=False)  # and it carries on
        assert len(res["days"]) in (0, 10)
        assert consistent(path) == (updates + 1, events + 1)

    for trial in range(trials):  # kill times stratified over 0 .. 1.2 x a whole update
        kill_after((trial + rng.uniform()) / trials * 1.2 * duration, f"t{trial}")
    # another test process may slow the machine after the update was timed (make test runs
    # test files side by side): then kill later (or earlier) until a kill has landed on each
    # side of the commit, at most 6 more times
    for extra in range(6):
        if outcomes[0] and outcomes[1]:
            break
        later = outcomes[1] == 0
        kill_after(duration * (1.5 + extra) if later else duration * 0.05 / (1 + extra),
                   f"extra{extra}")
    assert outcomes[0] and outcomes[1], outcomes  # kills landed before and after the commit


def test_a_rolled_back_twin_is_refused(small, tmp_path) -> None:
    """The files of a twin before its update, copied back over it, still pass the hash chain
    (the trail holds the entries they point to): the trail's record of the files last saved
    catches them — on load, in ``audit verify`` and through the API. Sealed twins too, after
    a key rotation."""
    from migraine_bayes.service.rotation import rotate
    from migraine_bayes.store import crypto

    for sealed in (False, True):
        path = copy(small["twin"], tmp_path / f"twin{sealed}")
        key = crypto.parse_key(crypto.new_key(), "test") if sealed else None
        if sealed:
            rotate([path], None, key)
        with crypto.using(key):
            backup = copy(path, tmp_path / f"backup{sealed}")  # the twin before its update
            api.update(path, small["d20"], retrain_when_due=False)
            assert DigitalTwin.load(path).record.filter["updates"] == 1
            for name in ("twin.json", "posterior.nc"):
                shutil.copy2(backup / name, path / name)
            with pytest.raises(audit.AuditError, match=r"twin\.json and posterior\.nc are not "
                                                       r"the file\(s\) the audit trail last"):
                DigitalTwin.load(path)
            check = api.audit_verify(path)
            assert not check.ok and "restored from an older copy" in check.problems[0]
            with pytest.raises(audit.AuditError):
                api.forecast(path)
    # the files the trail last recorded, put back, load again
    path = copy(small["twin"], tmp_path / "restored")
    saved = copy(path, tmp_path / "saved")
    api.update(path, small["d20"], retrain_when_due=False)
    after = copy(path, tmp_path / "after")
    shutil.copy2(saved / "posterior.nc", path / "posterior.nc")
    with pytest.raises(audit.AuditError, match=r"posterior\.nc is not the file"):
        DigitalTwin.load(path)
    shutil.copy2(after / "posterior.nc", path / "posterior.nc")
    assert DigitalTwin.load(path).record.filter["updates"] == 1


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_a_diary_post_cannot_invent_days(small, tmp_path) -> None:
    """Posts to a patient without diary_entry rows (every day kept, docs/SCHEMA.md): a value
    dated days after the last one would make each day between a kept, attack-free day — refused
    (422) with the reason; a post of the next day, or of an attack alone, goes through; a day
    not yet lived is refused; a post past the twin's domain is a 409. No request leaves a twin
    that answers 500."""
    from fastapi.testclient import TestClient

    from migraine_bayes.service.app import create_app
    from migraine_bayes.service.users import UserStore

    registry = tmp_path / "registry"
    registry.mkdir()
    copy(small["twin"], registry / "twin")
    token = UserStore(registry).add("alice", "clinician", ["P-01"])
    client = TestClient(create_app(registry), raise_server_exceptions=False)
    headers = {"Authorization": f"Bearer {token}"}
    scenario = {"scenarios": [{"name": "calm", "type": "behavioral", "params": {
        "behavior": "stress_reduction", "intensity": "moderate"}}], "draws": 200, "horizon": 7}

    def post(body: dict) -> tuple[int, str]:
        res = client.post("/patients/P-01/diary", json=body, headers=headers)
        sim = client.post("/patients/P-01/simulate", json=scenario, headers=headers)
        fc = client.get("/patients/P-01/forecast?horizon=2", headers=headers)
        assert sim.status_code == 200 and fc.status_code == 200, (sim.text, fc.text)
        return res.status_code, res.text

    def stress(day: str) -> dict:
        return {"observations": [{"time": f"{day}T20:00", "variable": "stress", "value": 4}]}

    code, text = post(stress("2024-03-26"))  # the twin's diary ends 2024-03-15
    assert code == 422 and "would count 10 day(s) (2024-03-16 to 2024-03-25)" in text, text
    code, text = post(stress("2024-04-22"))
    assert code == 422 and "37 days in a row (2024-03-16 to 2024-04-21)" in text, text
    assert "body.observations, row 1, column 'time'" in text
    soon = pd.Timestamp.now(tz="UTC").tz_localize(None) + pd.Timedelta(days=3)
    code, text = post(stress(f"{soon:%Y-%m-%d}"))
    assert code == 422 and "after today" in text, text
    assert post(stress("2024-03-16"))[0] == 200
    code, text = post({"attacks": [{"onset": "2024-03-17T09:00", "end": "2024-03-17T15:00"}]})
    assert code == 200 and '"outcome":1.0' in text, text
    days = pd.date_range("2024-03-18", periods=500)
    code, text = post({"observations": [{"time": f"{d:%Y-%m-%d}T20:00", "variable": "stress",
                                         "value": 4} for d in days]})
    assert code == 409 and "latent-state domain" in text, text


def test_an_interrupted_registry_rotation_is_finished_by_running_it_again(small, tmp_path,
                                                                          monkeypatch) -> None:
    """Killed half-way through the second twin, a rotation of a registry (twins, the service's
    trail, users, released statistics) leaves files under two keys; running it again with the
    same keys finishes it, and everything opens with the new key alone."""
    from migraine_bayes.service import release, rotation
    from migraine_bayes.service.users import FOLDER, UserStore
    from migraine_bayes.store import crypto

    old, new = (crypto.parse_key(crypto.new_key(), "test") for _ in range(2))
    registry = tmp_path / "registry"
    registry.mkdir()
    for name in ("twin-a", "twin-b"):
        copy(small["twin"], registry / name)
    rotation.rotate([registry], None, old)
    with crypto.using(old):
        UserStore(registry).add("alice", "clinician", ["P-01"])
        audit.record_event(registry / FOLDER, 0.0, "request", {"status": 200})
        (registry / FOLDER / release.FILE).write_bytes(crypto.seal(b'{"2024-03": {}}',
                                                                   release.FILE))
    real, calls = rotation._reseal_file, []

    def dies_in_the_second_twin(*args):
        calls.append(args[0])
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real(*args)

    monkeypatch.setattr(rotation, "_reseal_file", dies_in_the_second_twin)
    with pytest.raises(KeyboardInterrupt):
        rotation.rotate([registry], old, new)
    monkeypatch.setattr(rotation, "_reseal_file", real)
    with crypto.using(new):
        with pytest.raises(crypto.EncryptionKeyError):  # half-way: twin-b still on the old key
            DigitalTwin.load(registry / "twin-b")
    rotation.rotate([registry], old, new)
    rotation.rotate([registry], old, new)  # and again: nothing left to do, nothing breaks
    with crypto.using(new):
        for name in ("twin-a", "twin-b"):
            twin = DigitalTwin.load(registry / name)
            assert audit.verify(registry / name, twin.record.audit_head).ok
        assert UserStore(registry).list()[0]["patients"] == 1
        assert audit.verify(registry / FOLDER).ok
        assert crypto.read_text(registry / FOLDER / release.FILE) == '{"2024-03": {}}'
    for f in [*registry.glob("twin-*/*.nc"), *registry.glob("twin-*/twin.json")]:
        assert rotation._sealed_with(f, new), f


# ---------------------------------------------------------------- a patient with one day
@quick
def test_one_day_patient_fits_or_is_told(tmp_path) -> None:
    t = make_corpus.base()
    make_corpus.obs_row(t, "P-03", "2024-03-05T07:00", "stress", 3)
    make_corpus.write(tmp_path / "c", t)
    twin = api.fit(tmp_path / "c", tmp_path / "twin", patients=["P-03"], draws=200, chains=2)
    assert "too few diary days" in twin.meta["validation"]["skipped"]
    # the default structure selection: no comparison on 1 day, and the record says why
    assert twin.meta["selection"]["reason"].startswith("not compared: 1 diary day(s)")
    table = api.forecast(tmp_path / "twin")
    assert len(table) == 1 and 0 < table["p_attack"].iloc[0] < 1


def test_an_event_with_a_nan_keeps_the_trail_queryable(tmp_path) -> None:
    """A monitor step's check with no day to test reports NaN: stored as null, the trail's
    JSON stays valid for SQLite (whose json_extract refused it: the next load failed)."""
    (tmp_path / "t").mkdir()
    audit.record_event(tmp_path / "t", 1.0, "monitor", {"checks": {"p1": {"threshold": float(
        "nan"), "statistic": float("inf"), "alarm": False}}})
    with audit.connect(tmp_path / "t") as con:
        assert not audit._journal_done(con, "no-such-journal")
        stored = con.execute("SELECT json_extract(detail, '$.checks.p1.threshold') IS NULL "
                             "FROM events WHERE kind = 'monitor'").fetchone()
    assert stored == (1,) and audit.verify(tmp_path / "t").ok
