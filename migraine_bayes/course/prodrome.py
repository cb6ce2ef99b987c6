""""Given tonight's prodrome": the panel with tonight's premonitory symptoms as reported.

Premonitory symptoms enter the attack model with a one-day lag (:mod:`migraine_bayes.model.
features`), so tomorrow's forecast reads tonight's symptoms. :func:`with_prodrome` sets them on
each patient's last diary day — the named symptoms present, every other symptom the panel
knows absent — and the twin's ordinary forecast then answers "how likely is a headache
tomorrow, given these symptoms tonight", with the course model's severity and duration.
"""

from __future__ import annotations

import xarray as xr

from migraine_bayes.dims import DAY, FEATURE, PATIENT
from migraine_bayes.errors import InputDataError, Problem

PREFIX = "symptom."


def with_prodrome(panel: xr.Dataset, symptoms: list[str]) -> xr.Dataset:
    """A copy of ``panel`` whose last diary day of every patient reports ``symptoms``.

    Raises ``InputDataError`` for a symptom the panel has no column for (naming the ones it
    has) and for a patient without a diary day.
    """
    names = [str(f) for f in panel[FEATURE].values]
    known = sorted(n[len(PREFIX):] for n in names if n.startswith(PREFIX))
    unknown = [s for s in symptoms if s not in known]
    if unknown:
        raise InputDataError([Problem("arguments", "not a premonitory symptom of these diaries "
                                      f"(they record {', '.join(known) or 'none'})", None,
                                      "prodrome", ",".join(unknown))])
    out = panel.copy(deep=True)
    days = panel["in_diary"].sum(DAY).values.astype(int) - 1
    for i, pid in enumerate(panel[PATIENT].values):
        if days[i] < 0:
            raise InputDataError([Problem("arguments", f"patient {pid} has no diary day yet: "
                                          "no evening to report a prodrome on", None,
                                          "prodrome")])
        for s in known:
            k = names.index(PREFIX + s)
            v = float(s in symptoms)
            for var, value in (("value", v), ("imputed", v), ("imputed_sd", 0.0),
                               ("present", True)):
                out[var].values[i, days[i], k] = value
    out.attrs["prodrome"] = ";".join(symptoms)
    return out

