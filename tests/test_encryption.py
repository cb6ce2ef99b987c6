"""Encryption at rest, key rotation and the pseudonymised export (issue 15)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import COMMITTED
from typer.testing import CliRunner

from migraine_bayes.cli import app
from migraine_bayes.cohort.export import mapping_path, read_mapping
from migraine_bayes.cohort.io import load_cohort
from migraine_bayes.store import audit, crypto
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
    """Keyed ids, weekdays and intervals kept, dates moved, rare values coarsened, text gone."""
    key_file = tmp_path / "k"
    assert runner.invoke(app, ["keygen", str(key_file)]).exit_code == 0
    assert oct(key_file.stat().st_mode)[-3:] == "600"
    out = tmp_path / "shared"
    res = runner.invoke(app, ["--key-file", str(key_file), "export", str(COMMITTED), str(out),
                              "--pseudonymise"])
    assert res.exit_code == 0, res.output
    original, shared = load_cohort(COMMITTED), load_cohort(out)
    raw = b"".join(p.read_bytes() for p in out.iterdir())
    assert b"syn125" not in raw and b"wristband" not in raw
    crypto.use_key_file(key_file)
    try:
        mapping = read_mapping(mapping_path(out))
    finally:
        crypto.use_key_file(None)
    assert b"syn125" not in mapping_path(out).read_bytes()
    alias = dict(zip(mapping["patient_id"], mapping["pseudonym"], strict=True))
    shift = {p: pd.Timedelta(days=int(d)) for p, d in zip(mapping["patient_id"],
                                                           mapping["shift_days"], strict=True)}
    for pid in original.patient_ids:
        a = original.attacks[original.attacks["patient_id"] == pid]["onset"].reset_index(
            drop=True)
        b = shared.attacks[shared.attacks["patient_id"] == alias[pid]]["onset"].reset_index(
            drop=True)
        assert shift[pid] != pd.Timedelta(0) and shift[pid].days % 7 == 0
        pd.testing.assert_series_equal(b - shift[pid], a)  # intervals and times of day kept
        # no attack kept at its own time (another attack of the patient may fall on a shifted
        # one's time: date-only onsets at midnight, whole weeks apart — the key decides)
        assert (b.to_numpy() != a.to_numpy()).all()
        assert (b.dt.day_of_week.to_numpy() == a.dt.day_of_week.to_numpy()).all()
    assert shared.observations["source"].isna().all()
    assert (shared.patients["birth_year"] % 5 == 0).all()
    obs, sh = original.observations, shared.observations
    hrv = obs.loc[obs["variable"] == "hrv_rmssd", "value"]
    hrv_shared = sh.loc[sh["variable"] == "hrv_rmssd", "value"]
    assert hrv_shared.max() <= hrv.quantile(0.99) + 1e-9 < hrv.max()  # extremes top-coded
    assert np.isclose(hrv_shared.median(), hrv.median())
    # a second export under the same key gives the same pseudonyms (linkable by the holder)
    res = runner.invoke(app, ["--key-file", str(key_file), "export", str(COMMITTED),
                              str(tmp_path / "again"), "--pseudonymise"])
    assert res.exit_code == 0
    assert set(load_cohort(tmp_path / "again").patient_ids) == set(shared.patient_ids)


def test_plain_export_is_sealed_with_a_key(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(crypto.KEY_ENV, crypto.new_key())
    src = tmp_path / "cohort"
    shutil.copytree(COMMITTED, src)
    res = runner.invoke(app, ["export", str(src), str(tmp_path / "copy")])
    assert res.exit_code == 0 and "(encrypted)" in res.stdout
    assert all(crypto.is_sealed_file(p) for p in (tmp_path / "copy").iterdir())
    assert load_cohort(tmp_path / "copy").patient_ids == load_cohort(src).patient_ids
    monkeypatch.delenv(crypto.KEY_ENV)
    res = runner.invoke(app, ["validate-data", str(tmp_path / "copy")])
    assert res.exit_code == 2 and "is encrypted" in res.output
