"""The fitted configuration of a twin, as one typed, serialisable value with a hash.

Everything that fixes a twin's likelihood — the outcome, the model features (transforms and
lags), the interventions, the feature scaling and per-patient centres, the prior structure
(and the cohort's deviation prior) and the latent basis — read from ``twin.json`` once, in
one place (:meth:`ModelSpec.from_meta`), instead of being decoded by hand wherever it is
needed. :meth:`ModelSpec.digest` is saved with the twin (``spec_hash``) and checked on load,
so a ``twin.json`` edited by hand (a changed scaling, a dropped feature) is refused instead of
silently forecasting on another scale.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from .features import FeatureOptions, FeatureSpec, LagStructure
from .priors import PatientPrior

LATENT = "hsgp"  # the latent susceptibility's kind (one today)


@dataclass(frozen=True)
class ModelSpec:
    """A twin's model configuration (see the module text); built by :meth:`from_meta`."""

    outcome: str
    features: tuple[FeatureSpec, ...]
    interventions: tuple[str, ...]
    scaling: tuple[tuple[str, float, float], ...]  # (feature, center, scale)
    centers: tuple[tuple[str, tuple[tuple[str, float], ...]], ...]  # patient → feature → center
    hierarchical: bool
    prior: PatientPrior | None
    domain: tuple[float, float, tuple[float, ...]]  # center, half width, basis offset
    latent: str = LATENT
    deviations: str = "normal"  # cohort prior of patients' trigger deviations

    @classmethod
    def from_meta(cls, meta: dict) -> ModelSpec:
        """Read the configuration from a twin's ``twin.json`` content."""
        dom = meta["domain"]
        return cls(
            outcome=str(meta["outcome"]),
            features=tuple(FeatureSpec(**f) for f in meta["features"]),
            interventions=tuple(meta["interventions"]),
            scaling=tuple((k, float(c), float(s)) for k, (c, s) in meta["scaling"].items()),
            centers=tuple((pid, tuple((f, float(v)) for f, v in c.items()))
                          for pid, c in meta["centers"].items()),
            hierarchical=bool(meta["hierarchical"]),
            prior=None if meta.get("prior") is None else PatientPrior.from_dict(meta["prior"]),
            domain=(float(dom["center"]), float(dom["half_width"]),
                    tuple(float(v) for v in dom["basis_offset"])),
            latent=str(meta.get("latent", LATENT)),
            deviations=str(meta.get("deviations", "normal")))

    @property
    def feature_specs(self) -> list[FeatureSpec]:
        """The model features, in order."""
        return list(self.features)

    @property
    def lags(self) -> tuple[int, ...]:
        """The distributed lag's extra days (``()`` without one), as ``fit_cohort`` takes it."""
        return tuple(LagStructure.of([f.name for f in self.features]).lags[1:])

    @property
    def options(self) -> FeatureOptions:
        """Lags, shapes and interactions the features were built with (what a refit reuses)."""
        return FeatureOptions.of(list(self.features))

    @property
    def scaling_dict(self) -> dict[str, tuple[float, float]]:
        """Feature → (center, scale), as :func:`~.design.build_design` takes it."""
        return {k: (c, s) for k, c, s in self.scaling}

    @property
    def centers_dict(self) -> dict[str, dict[str, float]]:
        """Patient → feature → center, as :func:`~.design.build_design` takes it."""
        return {pid: dict(c) for pid, c in self.centers}

    @property
    def domain_arrays(self) -> tuple[float, float, np.ndarray]:
        """(center, half_width, basis_offset) of the latent basis."""
        center, half, offset = self.domain
        return center, half, np.asarray(offset)

    def digest(self) -> str:
        """SHA-256 of the configuration's canonical JSON (what ``spec_hash`` holds)."""
        payload = {
            "outcome": self.outcome, "features": [f.to_dict() for f in self.features],
            "interventions": list(self.interventions), "scaling": self.scaling,
            "centers": self.centers, "hierarchical": self.hierarchical,
            "prior": None if self.prior is None else self.prior.to_dict(),
            "domain": self.domain, "latent": self.latent}
        if self.deviations != "normal":  # absent for the default: older twins keep their hash
            payload["deviations"] = self.deviations
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=float)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
