"""Encryption at rest, key rotation and the pseudonymised export (issue 15)."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from conftest import COMMITTED
from typer.testing import CliRunner

from migraine_bayes.cli import app
from migraine_bayes.cohort.export import K_ANONYMITY, mapping_path, pseudonymise, read_mapping
from migraine_bayes.cohort.io import load_cohort
from migraine_bayes.errors import InputDataError
from migraine_bayes.evaluation.linkage import ids_replaced, linkage_attack
from migraine_bayes.store import audit, crypto
from migraine_bayes.synthetic.cohort import simulate_cohort
from migraine_bayes.twin.core import DigitalTwin

runner = CliRunner()


def test_sealing_is_authenticated_and_names_the_key() -> None:
    k1, k2 = crypto.parse_key(crypto.new_key(), "k1"), crypto.parse_key(crypto.new_key(), "k2")
    blob = crypto.seal(b"syn125-001,2025-01-06,1", "outcomes", k1)
    assert b"syn125" not in blob and crypto.unseal(blob, "outcomes", "x", k1).startswith(b"syn")
    with pytest.raises(crypto.EncryptionKeyError, match="another key"):
        crypto.unseal(blob, "outcomes", "x", k2)
    with pytest.raises(crypto.EncryptionKeyError, match="fails authentication"):
        crypto.unseal(blob, "twin.json", "x", k1)  # moved into another role
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(crypto.EncryptionKeyError, match="fails authentication"):
        crypto.unseal(tampered, "outcomes", "x", k1)
    with pytest.raises(crypto.EncryptionKeyError, match="32"):
        crypto.parse_key("c2hvcnQ=", "MIGRAINE_BAYES_KEY")


def test_sealed_twin_round_trip_and_rotation(committed_twins, tmp_path, monkeypatch) -> None:
    """A twin saved with a key: nothing in clear, loads the same, rotates to a new key."""
    old, new = crypto.new_key(), crypto.new_key()
    monkeypatch.setenv(crypto.KEY_ENV, old)
    twin = committed_twins["syn125-003"]
    path = tmp_path / "twin"
    twin.save(path)
    audit.record_outcomes(path, pd.DataFrame({"patient_id": ["syn125-003"],
                                              "date": ["2026-01-09"], "outcome": [1]}))
    forecast = twin.forecast(horizon=2)
    for f in (p for p in path.rglob("*") if p.is_file()):
        data = f.read_bytes()
        assert b"syn125" not in data and b"2026-01-09" not in data, f.name
    loaded = DigitalTwin.load(path)
    pd.testing.assert_frame_equal(loaded.forecast(horizon=2).drop(columns="top_factors"),
                                  forecast.drop(columns="top_factors"))
    assert audit.prediction_outcomes(path).empty and len(audit.events(path)) == 0
    # rotation: the CLI re-seals files and trail; the old key no longer opens it
    (tmp_path / "new.key").write_text(new)
    res = runner.invoke(app, ["rotate-key", str(path), "--new-key-file",
                              str(tmp_path / "new.key")])
    assert res.exit_code == 0, res.output
    with pytest.raises(crypto.EncryptionKeyError, match="another key"):
        DigitalTwin.load(path)
    monkeypatch.setenv(crypto.KEY_ENV, new)
    again = DigitalTwin.load(path)
    assert again.patients == ["syn125-003"] and audit.verify(path, again.meta["audit_head"]).ok
    assert audit.events(path)["kind"].tolist() == ["key_rotated"]
    monkeypatch.delenv(crypto.KEY_ENV)
    res = runner.invoke(app, ["forecast", str(path)])
    assert res.exit_code == 1 and "is encrypted: set MIGRAINE_BAYES_KEY" in res.output


def test_unencrypted_use_says_so(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(crypto.KEY_ENV, raising=False)
    res = runner.invoke(app, ["export", str(COMMITTED), str(tmp_path / "plain")])
    assert res.exit_code == 0, res.output
    assert "data are written unencrypted" in res.stderr and "not encrypted" in res.stdout
    res = runner.invoke(app, ["export", str(COMMITTED), str(tmp_path / "p"), "--pseudonymise"])
    assert res.exit_code == 1 and "--pseudonymise needs a key" in res.output
    res = runner.invoke(app, ["--key-file", str(tmp_path / "none.key"), "validate-data",
                              str(COMMITTED)])
    assert res.exit_code == 2 and "key file" in res.output


def test_pseudonymised_export(tmp_path, monkeypatch) -> None:
    """Keyed ids, days moved back by whole weeks, weekdays and day intervals kept, no time of
    day, k-anonymous quasi-identifiers, rare values coarsened, free text gone; it validates."""
    key_file = tmp_path / "k"
    assert runner.invoke(app, ["keygen", str(key_file)]).exit_code == 0
    assert oct(key_file.stat().st_mode)[-3:] == "600"
    out = tmp_path / "shared"
    res = runner.invoke(app, ["--key-file", str(key_file), "export", str(COMMITTED), str(out),
                              "--pseudonymise"])
    assert res.exit_code == 0, res.output
    assert "quasi-identifiers released as" in res.output
    original, shared = load_cohort(COMMITTED), load_cohort(out)
    raw = b"".join(p.read_bytes() for p in out.iterdir())
    assert b"syn125" not in raw and b"wristband" not in raw
    crypto.use_key_file(key_file)
    try:
        mapping = read_mapping(mapping_path(out))
    finally:
        crypto.use_key_file(None)
    assert b"syn125" not in mapping_path(out).read_bytes()
    assert set(mapping["pseudonym"]) == set(shared.patient_ids)
    info = json.loads((out / "EXPORT.json").read_text())
    assert info["patients"] == len(shared.patient_ids) and info["k_anonymity"] == K_ANONYMITY
    assert info["patients"] + info["withheld_patients"] == len(original.patient_ids)
    alias = dict(zip(mapping["patient_id"], mapping["pseudonym"], strict=True))
    shift = {p: pd.Timedelta(days=int(d)) for p, d in zip(mapping["patient_id"],
                                                           mapping["shift_days"], strict=True)}
    for pid in alias:
        a = original.attacks[original.attacks["patient_id"] == pid]["onset"].dt.normalize()
        b = shared.attacks[shared.attacks["patient_id"] == alias[pid]]["onset"]
        assert -364 <= shift[pid].days <= -28 and shift[pid].days % 7 == 0
        assert (b == b.dt.normalize()).all()  # days, no time of day
        assert list(b - shift[pid]) == sorted(set(a))  # one row per attack day, intervals kept
        assert (b.dt.day_of_week.to_numpy() == (b - shift[pid]).dt.day_of_week.to_numpy()).all()
    assert shared.observations["source"].isna().all()
    assert (shared.observations["time"] == shared.observations["time"].dt.normalize()).all()
    assert not shared.observations.duplicated(["patient_id", "time", "variable"]).any()
    for col in ("prodrome_onset", "acute_time", "postdrome_end"):
        assert shared.attacks[col].isna().all()
    obs, sh = original.observations, shared.observations
    hrv = obs.loc[obs["variable"] == "hrv_rmssd", "value"]
    hrv_shared = sh.loc[sh["variable"] == "hrv_rmssd", "value"]
    assert hrv_shared.max() <= hrv.max() and hrv_shared.min() >= hrv.min()
    # a second export under the same key gives the same pseudonyms (linkable by the holder)
    res = runner.invoke(app, ["--key-file", str(key_file), "export", str(COMMITTED),
                              str(tmp_path / "again"), "--pseudonymise"])
    assert res.exit_code == 0
    assert set(load_cohort(tmp_path / "again").patient_ids) == set(shared.patient_ids)


def test_the_linkage_attack_finds_no_one_beyond_k_anonymity() -> None:
    """The linkage attack (:mod:`migraine_bayes.evaluation.linkage`) on 40 generated patients:
    with ids merely replaced, a clinic letter's knowledge finds nearly everyone; on the export,
    no pseudonym has fewer than k candidates (expected re-identified ≤ patients / k), and a
    cohort of fewer than k patients is not exported at all."""
    cohort = simulate_cohort(40, 120, seed=11).cohort
    key = crypto.parse_key(crypto.new_key(), "test")
    shared, mapping = pseudonymise(cohort, key)
    naive = ids_replaced(cohort, mapping)
    before = linkage_attack(cohort, naive, mapping, "background", band=1)
    after = linkage_attack(cohort, shared, mapping, "background")
    assert before.reidentified >= 0.8 * before.patients, before
    assert after.unique == 0 and after.reidentified <= after.patients / K_ANONYMITY, after
    with pytest.raises(InputDataError, match="needs at least 5 patients"):
        pseudonymise(simulate_cohort(4, 30, seed=1).cohort, key)


def test_plain_export_is_sealed_with_a_key(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(crypto.KEY_ENV, crypto.new_key())
    src = tmp_path / "cohort"
    shutil.copytree(COMMITTED, src)
    res = runner.invoke(app, ["export", str(src), str(tmp_path / "copy")])
    assert res.exit_code == 0 and "(encrypted)" in res.stdout
    assert all(crypto.is_sealed_file(p) for p in (tmp_path / "copy").iterdir())
    assert load_cohort(tmp_path / "copy").patient_ids == load_cohort(src).patient_ids
    # a file in clear dropped into the sealed cohort (one more patient) is refused, not read
    planted = tmp_path / "planted"
    shutil.copytree(tmp_path / "copy", planted)
    (planted / "treatments.csv").write_text(
        "patient_id,kind,name,start\nsyn125-001,preventive,erenumab,2025-02-01\n")
    with pytest.raises(InputDataError, match=r"treatments\.csv: file in clear in a sealed "
                                             r"cohort"):
        load_cohort(planted)
    monkeypatch.delenv(crypto.KEY_ENV)
    res = runner.invoke(app, ["validate-data", str(tmp_path / "copy")])
    assert res.exit_code == 2 and "is encrypted" in res.output
