"""Plausibility of what the model will see, beyond single rows (docs/SCHEMA.md §1, "integrity").

Row rules (:mod:`migraine_bayes.cohort.schemas`) check one cell at a time; these rules check typed
tables as a whole, where silent damage hides: duplicate rows that would be summed, daily totals
beyond what a day holds, overlapping attacks, acute doses or prodromes far from their attack,
look-alike patient ids, and stray dates that would stretch a diary over decades. Every finding
is a :class:`~migraine_bayes.errors.Problem` naming file, row, column and rule.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd

from migraine_bayes.cohort.registry import Registry
from migraine_bayes.errors import Problem, ProblemLog

MAX_GAP_DAYS = 180  # a date this far from the rest of an undeclared diary is a stray
MAX_SILENT_DAYS = 14  # days in a row without a record, counted as kept without attack
PRODROME_MAX_H = 72  # premonitory symptoms start at most this long before the headache
ACUTE_BEFORE_H = 12  # an acute dose may precede the recorded onset by this much
ACUTE_AFTER_H = 72  # … and follow it by this much when the attack has no end

# characters that look like an ASCII hyphen, and letters that look like Latin ones
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d\u00ad"
_CONFUSABLE = str.maketrans({**{c: "-" for c in _DASHES},
                             "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x",
                             "у": "y", "і": "i", "ј": "j", "ѕ": "s", "ο": "o", "ν": "v",
                             "Α": "a", "Β": "b", "Ε": "e", "Κ": "k", "Μ": "m", "Ο": "o",
                             "Ρ": "p", "Τ": "t", "Χ": "x", "А": "a", "В": "b", "Е": "e",
                             "К": "k", "М": "m", "О": "o", "Р": "p", "С": "c", "Т": "t",
                             "Х": "x"})


def normalise_id(raw: str) -> str:
    """A patient id in Unicode NFKC (full-width digits, ligatures … folded)."""
    return unicodedata.normalize("NFKC", raw)


# ASCII look-alikes of Unicode TR39's confusables that ids mix up: O/0, l/1/I/|, rn/m, vv/w
_ASCII_CONFUSABLE = str.maketrans({"0": "o", "O": "o", "1": "l", "I": "l", "|": "l"})


def skeleton(pid: str) -> str:
    """What an id looks like (its skeleton, after Unicode TR39).

    Case-folded, dashes unified, look-alike letters and digits made one (``O``/``0``,
    ``l``/``1``/``I``, ``rn``/``m``, Greek and Cyrillic capitals), invisible characters dropped.
    """
    text = normalise_id(pid).translate(_CONFUSABLE).translate(_ASCII_CONFUSABLE).casefold()
    text = text.replace("rn", "m").replace("vv", "w")
    return "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Zs", "Cc"))


def _where(name: str) -> str:
    return "".join(c if c.isprintable() and c.isascii() else f"<U+{ord(c):04X}>" for c in name)


def id_problems(tables: dict[str, pd.DataFrame], names: dict[str, str]) -> list[Problem]:
    """Distinct ids that look alike (``P-01`` and ``P‐01``): reported, never merged or split."""
    first_row: dict[str, tuple[str, int]] = {}
    for stem, df in tables.items():
        if df.empty:
            continue
        for pid, idx in df.groupby("patient_id", sort=False).groups.items():
            first_row.setdefault(str(pid), (names.get(stem, stem), int(idx[0]) + 1))
    groups: dict[str, list[str]] = {}
    for pid in first_row:
        groups.setdefault(skeleton(pid), []).append(pid)
    problems = []
    for ids in groups.values():
        if len(ids) < 2:
            continue
        ids = sorted(ids, key=lambda p: (not p.isascii(), p))
        for other in ids[1:]:
            file, row = first_row[other]
            problems.append(Problem(
                file, f"patient id looks like '{_where(ids[0])}' (first in "
                f"{first_row[ids[0]][0]}, row {first_row[ids[0]][1]}) but differs in "
                f"'{_where(other)}': they would be two patients — write one id",
                row=row, column="patient_id", value=_where(other)))
    return problems


def _first_row(df: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Per row, the index of the first row (in ``df``'s order) with the same ``columns``."""
    rows = pd.Series(df.index, index=df.index)
    return rows.groupby([df[c] for c in columns], dropna=False, sort=False).transform("first")


def duplicate_rows(df: pd.DataFrame, file: str, columns: list[str], dedupe: bool,
                   log: ProblemLog, notices: list[str]) -> pd.DataFrame:
    """Exact duplicate rows: problems, or (``dedupe``) dropped with a count in ``notices``."""
    dup = df.duplicated(subset=columns, keep="first")
    if not dup.any():
        return df
    if dedupe:
        notices.append(f"{file}: dropped {int(dup.sum())} exact duplicate rows (--dedupe)")
        return df[~dup]
    first = _first_row(df, columns)
    for i in df.index[dup]:
        log.add(Problem(file, f"exact duplicate of row {int(first[i]) + 1} (would be counted "
                        "twice); remove it, or pass --dedupe to drop exact duplicates",
                        row=int(i) + 1), rule="exact duplicate row")
    return df


def observation_problems(obs: pd.DataFrame, registry: Registry, file: str,
                         log: ProblemLog) -> None:
    """Conflicting values at one time, and daily totals beyond the variable's daily range."""
    key = ["patient_id", "time", "variable", "source"]
    clash = obs.duplicated(subset=key, keep=False) & ~obs.duplicated(subset=[*key, "value"],
                                                                      keep=False)
    if clash.any():
        firsts = obs[clash].groupby(key, dropna=False, sort=False).head(1)
        for i in obs.index[clash].difference(firsts.index):
            log.add(Problem(file, "another row has a different value of this variable at the "
                            "same time from the same source; keep one",
                            row=int(i) + 1, column="value", value=f"{obs.at[i, 'value']:g}"),
                    rule="conflicting values at one time")
    _two_sources(obs, file, log)
    summed = [v.name for v in registry if v.aggregate == "sum"]
    sums = obs[obs["variable"].isin(summed)]
    if sums.empty:
        return
    day = sums["time"].dt.normalize()
    groups = sums.groupby([sums["patient_id"], day, sums["variable"]], sort=False)["value"]
    total, count = groups.transform("sum"), groups.transform("size")
    first = ~pd.DataFrame({"p": sums["patient_id"], "d": day, "v": sums["variable"]}
                          ).duplicated(keep="first")
    limit = sums["variable"].map({v.name: v.max for v in registry})
    for i in sums.index[(total > limit) & first]:
        var = registry[sums.at[i, "variable"]]
        log.add(Problem(file, f"the day's {count[i]} rows of '{var.name}' sum to "
                        f"{total[i]:g} {var.unit}, above its daily maximum {var.max:g} "
                        f"{var.unit} (duplicated or overlapping records?)",
                        row=int(i) + 1, column="value", value=f"{sums.at[i, 'value']:g}"),
                rule="daily total above the daily maximum")


def _two_sources(obs: pd.DataFrame, file: str, log: ProblemLog) -> None:
    """One variable of one patient-day from two sources (sleep from the diary and a wearable).

    Aggregated together they would be summed or averaged into a value neither recorded (two
    nights of sleep in one day); the cohort must keep one source per variable.
    """
    if "source" not in obs or obs["source"].isna().all():
        return
    rows = obs.dropna(subset=["source"])
    day = rows["time"].dt.normalize()
    sources = rows.groupby([rows["patient_id"], rows["variable"], day], sort=False)[
        "source"].transform("nunique")
    mixed = rows[sources > 1]
    if mixed.empty:
        return
    first = mixed.groupby([mixed["patient_id"], mixed["variable"]], sort=False).head(1)
    for i in first.index:
        names = sorted(map(str, rows.loc[(rows["patient_id"] == rows.at[i, "patient_id"])
                                         & (rows["variable"] == rows.at[i, "variable"])
                                         & (day == day[i]), "source"].unique()))
        log.add(Problem(file, f"'{rows.at[i, 'variable']}' of this patient comes from "
                        f"{len(names)} sources on one day ({', '.join(names)}): they would be "
                        "combined into a value neither recorded — keep one source per variable "
                        "(drop the other's rows, or give them another variable name)",
                        row=int(i) + 1, column="source", value=str(rows.at[i, "source"])),
                rule="one variable from two sources")


def attack_problems(att: pd.DataFrame, file: str, log: ProblemLog) -> None:
    """Attacks in one minute or overlapping, prodromes and acute doses far from their attack."""
    a = att.assign(_minute=att["onset"].dt.floor("min")).sort_values(["patient_id", "onset"])
    first = _first_row(a, ["patient_id", "_minute"])
    same = first != a.index
    for i in a.index[same]:
        log.add(Problem(file, f"a second attack in the same minute as row {int(first[i]) + 1}: "
                        "one attack recorded twice?", row=int(i) + 1, column="onset",
                        value=f"{a.at[i, 'onset']:%Y-%m-%dT%H:%M}"), rule="attack twice")
    a = a[~same]
    prev_end = a.groupby("patient_id")["end"].shift()
    prev_row = pd.Series(a.index, index=a.index).groupby(a["patient_id"]).shift()
    overlap = prev_end.notna() & (a["onset"] < prev_end)
    for i in a.index[overlap]:
        log.add(Problem(file, f"attack starts before the attack of row {int(prev_row[i]) + 1} "
                        f"ended ({prev_end[i]:%Y-%m-%dT%H:%M}): overlapping attacks",
                        row=int(i) + 1, column="onset",
                        value=f"{a.at[i, 'onset']:%Y-%m-%dT%H:%M}"), rule="overlapping attacks")
    early = att["onset"] - att["prodrome_onset"] > pd.Timedelta(hours=PRODROME_MAX_H)
    for i in att.index[early.fillna(False)]:
        log.add(Problem(file, f"prodrome_onset is more than {PRODROME_MAX_H} h before the "
                        "attack onset", row=int(i) + 1, column="prodrome_onset",
                        value=f"{att.at[i, 'prodrome_onset']:%Y-%m-%dT%H:%M}"),
                rule="prodrome too early")
    lo = att["prodrome_onset"].fillna(att["onset"] - pd.Timedelta(hours=ACUTE_BEFORE_H))
    lo = lo.where(lo < att["onset"], att["onset"] - pd.Timedelta(hours=ACUTE_BEFORE_H))
    hi = att["end"].fillna(att["onset"] + pd.Timedelta(hours=ACUTE_AFTER_H))
    bad = att["acute_time"].notna() & ((att["acute_time"] < lo) | (att["acute_time"] > hi))
    for i in att.index[bad]:
        log.add(Problem(file, "acute_time is outside its attack (from the prodrome, or "
                        f"{ACUTE_BEFORE_H} h before onset, to the end, or {ACUTE_AFTER_H} h "
                        "after onset)", row=int(i) + 1, column="acute_time",
                        value=f"{att.at[i, 'acute_time']:%Y-%m-%dT%H:%M}"),
                rule="acute_time outside its attack")


def stray_dates(obs: pd.DataFrame, att: pd.DataFrame, declared: set[str],
                names: dict[str, str], log: ProblemLog) -> None:
    """Rows more than :data:`MAX_GAP_DAYS` from the rest of a diary with no declared period.

    The smaller side of such a gap is reported: a stray date would stretch the diary over the
    gap and make almost every feature "systematically missing".
    """
    frames = [pd.DataFrame({"patient_id": obs["patient_id"], "t": obs["time"].dt.normalize(),
                            "file": names.get("observations", "observations"),
                            "row": obs.index + 1, "column": "time"}),
              pd.DataFrame({"patient_id": att["patient_id"], "t": att["onset"].dt.normalize(),
                            "file": names.get("attacks", "attacks"), "row": att.index + 1,
                            "column": "onset"})]
    rows = pd.concat(frames, ignore_index=True)
    rows = rows[~rows["patient_id"].isin(declared)]
    for pid, g in rows.groupby("patient_id", sort=False):
        days = np.sort(g["t"].unique())
        gaps = np.flatnonzero(np.diff(days) > np.timedelta64(MAX_GAP_DAYS, "D"))
        if not gaps.size:
            continue
        cuts = [days[0], *[days[k + 1] for k in gaps]]
        segment = np.searchsorted(np.asarray(cuts), g["t"].to_numpy(), side="right") - 1
        sizes = np.bincount(segment, minlength=len(cuts))
        main = int(np.argmax(sizes))
        for i in np.flatnonzero(segment != main):
            r = g.iloc[i]
            log.add(Problem(r["file"], f"date more than {MAX_GAP_DAYS} days from the rest of "
                            f"patient {pid}'s diary (a stray date?); declare diary_start/"
                            "diary_end in patients if the diary really spans it",
                            row=int(r["row"]), column=r["column"], value=f"{r['t']:%Y-%m-%d}"),
                    rule="stray date")


def outside_declared(obs: pd.DataFrame, periods: pd.DataFrame, file: str,
                     log: ProblemLog) -> None:
    """Observations outside their patient's declared diary period: listed, not dropped."""
    declared = periods[periods["declared"]]
    start = pd.Series(declared["start"].reindex(obs["patient_id"]).to_numpy(), index=obs.index)
    end = pd.Series(declared["end"].reindex(obs["patient_id"]).to_numpy(), index=obs.index)
    day = obs["time"].dt.normalize()
    for i in obs.index[start.notna() & ((day < start) | (day > end))]:
        log.add(Problem(file, f"observation outside the patient's declared diary period "
                        f"{start[i]:%Y-%m-%d}–{end[i]:%Y-%m-%d} (patients.diary_start/"
                        "diary_end)", row=int(i) + 1, column="time",
                        value=f"{obs.at[i, 'time']:%Y-%m-%dT%H:%M}"),
                rule="observation outside the declared diary period")


def record_days(obs: pd.DataFrame, att: pd.DataFrame, registry: Registry) -> pd.DataFrame:
    """Each patient's days with a record of the patient: ``patient_id, day, file, row, column``.

    A record is an attack (every day from onset to end) or an observation of a variable that is
    not environmental (weather reaches a diary whether or not the patient kept it). Rows are
    those of the tables given (1-based), first record of each day.
    """
    environmental = set(registry.names("environmental"))
    own = obs[~obs["variable"].isin(environmental)]
    frames = [pd.DataFrame({"patient_id": own["patient_id"].astype(str),
                            "day": own["time"].dt.normalize(), "file": "observations",
                            "row": own.index + 1, "column": "time"})]
    if len(att):
        start = att["onset"].dt.normalize()
        n = ((att["end"].fillna(att["onset"]).dt.normalize() - start).dt.days
             .clip(lower=0).fillna(0).astype(int).to_numpy() + 1)
        idx = np.repeat(np.arange(len(att)), n)
        offset = np.concatenate([np.arange(k) for k in n]) if len(n) else np.array([], int)
        frames.append(pd.DataFrame({
            "patient_id": att["patient_id"].astype(str).to_numpy()[idx],
            "day": start.to_numpy()[idx] + offset.astype("timedelta64[D]"),
            "file": "attacks", "row": att.index.to_numpy()[idx] + 1, "column": "onset"}))
    out = pd.concat(frames, ignore_index=True).dropna(subset=["day"])
    return out.sort_values(["patient_id", "day", "row"]).drop_duplicates(["patient_id", "day"])


def unkept_days(obs: pd.DataFrame, att: pd.DataFrame, periods: pd.DataFrame,
                patients: pd.DataFrame, registry: Registry, names: dict[str, str],
                log: ProblemLog) -> None:
    """Days a diary would count as kept although nothing says the patient kept them.

    docs/SCHEMA.md: a patient without ``diary_entry`` rows kept a complete diary, every day of
    the period known (attack-free unless an attack says otherwise). That holds only where the
    data or the declaration say so:

    - a patient with a declared period but no observation and no attack (nothing kept);
    - a declared period reaching more than :data:`MAX_GAP_DAYS` beyond the patient's data;
    - without ``diary_entry`` rows and without a declared period, more than
      :data:`MAX_SILENT_DAYS` days in a row with no record of the patient (an attack, or an
      observation that is not environmental) — each would be an invented attack-free day.
    """
    days = record_days(obs, att, registry)
    logs_entries = set(obs.loc[obs["variable"] == "diary_entry", "patient_id"].astype(str))
    pfile = names.get("patients", "patients")
    row_of = {str(pid): i + 1 for i, pid in patients["patient_id"].items()}
    any_rows = (set(obs["patient_id"].astype(str)) | set(att["patient_id"].astype(str)))
    span = days.groupby("patient_id")["day"].agg(["min", "max"])
    for pid, period in periods[periods["declared"]].iterrows():
        pid = str(pid)
        if pid not in any_rows:
            log.add(Problem(pfile, f"patient {pid} has a declared diary period but no "
                            "observation and no attack: nothing says a day of it was kept",
                            row=row_of.get(pid), column="patient_id", value=pid),
                    rule="patient without data")
            continue
        if pid not in span.index:
            continue
        for col, gap in (("diary_start", (span.at[pid, "min"] - period["start"]).days),
                         ("diary_end", (period["end"] - span.at[pid, "max"]).days)):
            if gap > MAX_GAP_DAYS:
                day = period["start"] if col == "diary_start" else period["end"]
                log.add(Problem(pfile, f"declared diary period reaches {gap} days beyond "
                                f"patient {pid}'s records (more than {MAX_GAP_DAYS}): days "
                                "without any record would count as kept without attack",
                                row=row_of.get(pid), column=col, value=f"{day:%Y-%m-%d}"),
                        rule="declared period far outside the data")
    undeclared = set(periods.index[~periods["declared"]].astype(str)) - logs_entries
    ofile = names.get("observations", "observations")
    for pid in sorted(undeclared):  # the diary's own ends: weather alone before or after
        start, end = periods.at[pid, "start"], periods.at[pid, "end"]
        if pid in span.index:
            edges = (("start", (span.at[pid, "min"] - start).days),
                     ("end", (end - span.at[pid, "max"]).days))
        else:
            edges = (("start", (end - start).days + 1),)
        mine = obs[obs["patient_id"].astype(str) == pid]
        for edge, silent_days in edges:
            if silent_days <= MAX_SILENT_DAYS or mine.empty:
                continue
            at = mine["time"].idxmin() if edge == "start" else mine["time"].idxmax()
            log.add(Problem(ofile, f"{silent_days} days at the {edge} of patient {pid}'s diary "
                            "hold no record of the patient (only environmental data), yet a "
                            "diary without diary_entry rows counts each as kept without attack "
                            f"(more than {MAX_SILENT_DAYS}); add diary_entry rows for the days "
                            "kept, or declare diary_start/diary_end in patients",
                            row=int(at) + 1, column="time",
                            value=f"{mine.at[at, 'time']:%Y-%m-%d}"),
                    rule="days without a record")
    for pid, g in days[days["patient_id"].isin(undeclared)].groupby("patient_id", sort=False):
        d = g["day"].to_numpy()
        silent = (np.diff(d) / np.timedelta64(1, "D")).astype(int) - 1
        for k in np.flatnonzero((silent > MAX_SILENT_DAYS) & (silent < MAX_GAP_DAYS)):
            r = g.iloc[k + 1]
            first, last = pd.Timestamp(d[k]) + pd.Timedelta(days=1), r["day"] - pd.Timedelta(days=1)
            log.add(Problem(names.get(r["file"], r["file"]),
                            f"{silent[k]} days in a row ({first:%Y-%m-%d} to {last:%Y-%m-%d}) "
                            "hold no record of "
                            f"patient {pid}, yet a diary without diary_entry rows counts each "
                            "as kept without attack (more than "
                            f"{MAX_SILENT_DAYS}); add diary_entry rows for the days kept, or "
                            "declare diary_start/diary_end in patients",
                            row=int(r["row"]), column=r["column"], value=f"{r['day']:%Y-%m-%d}"),
                    rule="days without a record")
