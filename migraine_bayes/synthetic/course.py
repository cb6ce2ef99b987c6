"""How each synthetic attack unfolds, and how the patient responds to an acute drug.

The attack *onsets* come from :mod:`migraine_bayes.synthetic.cohort`; this module draws, from a
random stream of its own (so the onsets, triggers and diaries do not change with it), each patient's
true attack course and acute response and writes the attack rows. Per patient ``i``:

- prodrome (premonitory phase) lead time before the headache, hours:
  ``log h ~ N(m_i, 0.5)``, ``m_i ~ N(log 6, 0.4)`` (Giffin et al. 2003: mostly within 12 h);
- aura on an attack with probability ``p_i``, ``logit p_i ~ N(-1.2, 1.2)`` (about a third of
  migraine patients have aura, most of them not with every attack);
- headache duration, hours: ``log h ~ N(m_i, 0.6)``, ``m_i ~ N(log 14, 0.4)`` (ICHD-3: 4–72 h
  untreated); an attack lasting into the next one ends a minute before it;
- postdrome after the headache, hours: ``log h ~ N(m_i, 0.5)``, ``m_i ~ N(log 12, 0.4)``
  (Giffin et al., Neurology 2016: most postdromes last under a day);
- peak severity 1–3 (mild, moderate, severe) with probabilities ``~ Dirichlet(8 × (0.25,
  0.45, 0.30))``;
- per acute drug ``d``: pain-free at 2 h with ``logit q_id ~ N(logit q_d, 0.6)`` around the
  catalogue's published rate ``q_d``, and, once pain-free, a recurrence within 48 h with
  ``logit r_id ~ N(logit 0.3, 0.5)`` (Ferrari et al., Cephalalgia 1994: about 30% after oral
  sumatriptan); untreated attacks are pain-free at 2 h with probability 0.11.

70% of a treating patient's attacks are treated (0.2–2 h after onset); a third of treating
patients also try the other triptan from a day in the middle of the diary, on half of their
treated attacks from then on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit

ACUTE = {"sumatriptan": (100.0, 0.32), "rizatriptan": (10.0, 0.40)}  # dose, P(pain-free 2 h)
PAIN_FREE_UNTREATED = 0.11
RECURRENCE = 0.30
COURSE = {  # population truth: (mean, sd) of the patient-level parameter
    "prodrome_h": (np.log(6.0), 0.4, 0.5),  # mean and sd of log median, within-patient sd
    "headache_h": (np.log(14.0), 0.4, 0.6),
    "postdrome_h": (np.log(12.0), 0.4, 0.5),
    "aura_logit": (-1.2, 1.2),
    "pain_free_logit_sd": 0.6,
    "recurrence_logit": (logit(RECURRENCE), 0.5),
}
SEVERITY_SHARES = (0.25, 0.45, 0.30)
SEVERITY_CONCENTRATION = 8.0
TREATED_SHARE = 0.7
COLUMNS = ["patient_id", "onset", "end", "peak_severity", "aura", "prodrome_onset", "symptoms",
           "acute_medication", "acute_dose_mg", "acute_time", "pain_free_2h", "postdrome_end",
           "recurrence_48h"]


def draw_course(rng: np.random.Generator, acute_name: str, n_days: int) -> dict[str, Any]:
    """One patient's true course and acute-response parameters (``truth.json``'s ``course``).

    ``acute_name``: the patient's usual acute drug (or ``"none"``); ``n_days``: diary length,
    for the day a second drug is first tried.
    """
    out: dict[str, Any] = {}
    for phase in ("prodrome_h", "headache_h", "postdrome_h"):
        mu, sd, within = COURSE[phase]
        out[phase] = {"median": float(np.exp(rng.normal(mu, sd))), "log_sd": within}
    out["aura_probability"] = float(expit(rng.normal(*COURSE["aura_logit"])))
    out["severity_probabilities"] = rng.dirichlet(
        SEVERITY_CONCENTRATION * np.asarray(SEVERITY_SHARES)).tolist()
    drugs: dict[str, dict[str, Any]] = {}
    if acute_name != "none":
        names = [acute_name]
        second = rng.random() < 1 / 3
        if second:
            names.append(next(d for d in ACUTE if d != acute_name))
        for k, name in enumerate(names):
            q = expit(rng.normal(logit(ACUTE[name][1]), COURSE["pain_free_logit_sd"]))
            r = expit(rng.normal(*COURSE["recurrence_logit"]))
            drugs[name] = {"pain_free_2h": float(q), "recurrence_48h": float(r),
                           "from_day": 0 if k == 0 else int(rng.integers(n_days // 3,
                                                                        2 * n_days // 3))}
    out["acute"] = drugs
    return out


def attack_rows(rng: np.random.Generator, pid: str, dates: pd.DatetimeIndex, days: np.ndarray,
                has_prodrome: np.ndarray, symptoms: dict[str, np.ndarray], prodrome: np.ndarray,
                course: dict[str, Any], treated: np.ndarray | None = None) -> pd.DataFrame:
    """The ``attacks`` rows of the recorded onset ``days`` under the patient's ``course``.

    ``treated`` (per day, optional): which attacks were treated, when the onsets' generator
    decided it (medication overuse feeds back on the onsets); else 70% of them at random.
    """
    rows = []
    drugs = course["acute"]
    for t in days:
        hour = float(np.clip(rng.normal(8, 4), 0, 23.9))
        onset = dates[t] + pd.Timedelta(hours=round(hour, 2))
        duration = _hours(rng, course["headache_h"])
        end = onset + pd.Timedelta(hours=round(duration, 1))
        probs = np.asarray(course["severity_probabilities"])
        row = {"patient_id": pid, "onset": onset, "end": end,
               "peak_severity": int(rng.choice([1, 2, 3], p=probs / probs.sum())),
               "aura": bool(rng.random() < course["aura_probability"]),
               "prodrome_onset": pd.NaT, "symptoms": pd.NA, "acute_medication": pd.NA,
               "acute_dose_mg": np.nan, "acute_time": pd.NaT, "pain_free_2h": pd.NA,
               "postdrome_end": end + pd.Timedelta(hours=round(
                   _hours(rng, course["postdrome_h"]), 1)),
               "recurrence_48h": pd.NA}
        if has_prodrome[t]:
            lead = min(_hours(rng, course["prodrome_h"]), 71.0)
            row["prodrome_onset"] = onset - pd.Timedelta(hours=round(lead, 1))
            day = t - 1 if t > 0 and prodrome[t - 1] else t
            names = [s for s, v in symptoms.items() if v[day] == 1]
            row["symptoms"] = ";".join(names) if names else pd.NA
        available = [d for d, v in drugs.items() if v["from_day"] <= t]
        if available and (rng.random() < TREATED_SHARE if treated is None else treated[t]):
            drug = available[-1] if len(available) > 1 and rng.random() < 0.5 else available[0]
            row["acute_medication"] = drug
            row["acute_dose_mg"] = ACUTE[drug][0]
            row["acute_time"] = onset + pd.Timedelta(hours=round(rng.uniform(0.2, 2.0), 2))
            row["pain_free_2h"] = bool(rng.random() < drugs[drug]["pain_free_2h"])
            if row["pain_free_2h"]:
                row["recurrence_48h"] = bool(rng.random() < drugs[drug]["recurrence_48h"])
        else:
            row["pain_free_2h"] = bool(rng.random() < PAIN_FREE_UNTREATED)
        rows.append(row)
    df = pd.DataFrame(rows, columns=COLUMNS)
    for c in ("onset", "end", "prodrome_onset", "acute_time", "postdrome_end"):
        df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]").dt.round("s")
    # an attack (or its postdrome) lasting into the next one's onset ends a minute before it
    nxt = df["onset"].shift(-1) - pd.Timedelta(minutes=1)
    for c in ("end", "postdrome_end"):
        df[c] = df[c].where(~(df[c] > nxt), nxt)
    late = df["acute_time"] > df["end"]  # a trimmed attack keeps its dose inside it
    df.loc[late, "acute_time"] = df.loc[late, "end"]
    df["peak_severity"] = df["peak_severity"].astype("Int64")
    for c in ("aura", "pain_free_2h", "recurrence_48h"):
        df[c] = df[c].astype("boolean")
    return df


def _hours(rng: np.random.Generator, phase: dict[str, float]) -> float:
    return float(np.exp(rng.normal(np.log(phase["median"]), phase["log_sd"])))
