"""The intervention catalogue: published prior effect sizes, one data file with citations.

``migraine_bayes/data/interventions.json`` holds, per preventive drug and dose, the log rate
ratio of attacks against placebo with its standard error and the between-patient spread; per
acute drug, pain-free-at-2-h rates (and, for ubrogepant, the PRODROME trial's prevention of the
headache when taken in the prodrome); per behavioural programme, the covariate it changes.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

CLASSES = ("preventive", "acute", "behavioral")


@cache
def catalogue() -> dict:
    """The parsed catalogue (cached; treat as read-only)."""
    text = resources.files("migraine_bayes").joinpath("data/interventions.json").read_text(
        encoding="utf-8")
    return json.loads(text)


def medication_class(name: str) -> str | None:
    """``preventive`` or ``acute`` for a catalogued drug, else None."""
    for cls in ("preventive", "acute"):
        if name in catalogue()[cls]:
            return cls
    return None


def medications() -> list[str]:
    """All catalogued drug names."""
    return sorted([*catalogue()["preventive"], *catalogue()["acute"]])


def behaviours() -> list[str]:
    """All catalogued behavioural programmes (plus the generic ``covariate``)."""
    return sorted([*catalogue()["behavioral"], "covariate"])
