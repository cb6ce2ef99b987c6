"""The fitted configuration of a twin, as one typed, serialisable value with a hash.

Everything that fixes a twin's likelihood — the outcome, the model features (transforms and lags),
the interventions, the feature scaling and per-patient centres, the prior structure (and the
cohort's deviation prior) and the latent basis — read from ``twin.json`` once, in one place
(:attr:`migraine_bayes.twin.record.TwinRecord.spec`), instead of being decoded by hand wherever it
is needed. :meth:`ModelSpec.digest` is saved with the twin (``spec_hash``) and checked on load, so a
``twin.json`` edited by hand (a changed scaling, a dropped feature) is refused instead of silently
forecasting on another scale.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from migraine_bayes.model.features import FeatureOptions, FeatureSpec, LagStructure
from migraine_bayes.model.priors import PatientPrior

LATENT = "hsgp"  # the latent susceptibility's kind (one today)


@dataclass(frozen=True)
class ModelSpec:
    """A twin's model configuration (see the module text); built by :meth:`of`."""

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
    def of(cls, outcome: str, features: list[dict], interventions: list[str],
           scaling: dict[str, list[float]], centers: dict[str, dict[str, float]],
           hierarchical: bool, prior: dict | None, domain: dict, latent: str | None = None,
           deviations: str | None = None) -> ModelSpec:
        """The configuration from its saved (JSON) form, as ``twin.json`` holds it.

        Read by :attr:`migraine_bayes.twin.record.TwinRecord.spec`, the one reader of that file.
        """
        return cls(
            outcome=str(outcome),
            features=tuple(FeatureSpec(**f) for f in features),
            interventions=tuple(interventions),
            scaling=tuple((k, float(c), float(s)) for k, (c, s) in scaling.items()),
            centers=tuple((pid, tuple((f, float(v)) for f, v in c.items()))
                          for pid, c in centers.items()),
            hierarchical=bool(hierarchical),
            prior=None if prior is None else PatientPrior.from_dict(prior),
            domain=(float(domain["center"]), float(domain["half_width"]),
                    tuple(float(v) for v in domain["basis_offset"])),
            latent=str(latent or LATENT),
            deviations=str(deviations or "normal"))

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
