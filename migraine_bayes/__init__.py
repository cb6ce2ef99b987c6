"""migraine_bayes: per-patient Bayesian digital twins of migraine.

The package's layers, bottom to top (a folder imports only from those below it; checked by
``lint-imports``, docs/architecture.md)::

    errors, dims, metrics, progress, lazy -> store -> cohort -> state -> model -> course
    -> twin, synthetic -> analysis, interventions -> living -> evaluation, reports
    -> api -> service -> cli

Start with :mod:`migraine_bayes.api` (one function per command) and
:class:`migraine_bayes.twin.DigitalTwin`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("migraine_bayes")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
