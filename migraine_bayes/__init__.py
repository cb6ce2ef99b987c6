"""migraine_bayes: per-patient Bayesian digital twins of migraine.

Data flow (each module imports only from those above it)::

    registry -> io -> state -> synthetic -> model -> inference -> twin
             -> forecast -> interventions -> drift -> evaluation -> reports -> cli
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("migraine_bayes")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
