"""One value per patient, variable and day, by the registry's aggregate rule (docs/SCHEMA.md).

The one place the rules ``mean``, ``sum``, ``max``, ``last`` and ``any`` are applied: the
daily panel (:mod:`migraine_bayes.state.panel`) and the pseudonymised export
(:mod:`migraine_bayes.cohort.export`) both aggregate through :func:`aggregate`.
"""

from __future__ import annotations

import pandas as pd

from migraine_bayes.cohort.registry import Registry


def aggregate(obs: pd.DataFrame, registry: Registry, keys: list[str]) -> pd.DataFrame:
    """``obs`` (with ``time``, ``variable``, ``value`` and ``keys``) → one row per ``keys``.

    ``keys`` must include ``variable`` and a day column; ``last`` takes the latest ``time``.
    Returns the ``keys`` and ``value`` columns.
    """
    rule = obs["variable"].map({v.name: v.aggregate for v in registry})
    parts = []
    for how in ("mean", "sum", "max"):
        sub = obs[rule == how]
        if len(sub):
            parts.append(sub.groupby(keys, sort=False)["value"].agg(how).reset_index())
    sub = obs[rule == "last"]
    if len(sub):
        parts.append(sub.sort_values("time").groupby(keys, sort=False)["value"].last()
                     .reset_index())
    sub = obs[rule == "any"]
    if len(sub):
        anyv = sub.assign(value=(sub["value"] > 0).astype(float))
        parts.append(anyv.groupby(keys, sort=False)["value"].max().reset_index())
    if not parts:
        return pd.DataFrame(columns=[*keys, "value"])
    return pd.concat(parts, ignore_index=True)
