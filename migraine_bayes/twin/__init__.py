"""The fitted twin: :class:`DigitalTwin` and the parts it is made of.

:mod:`.record` (constants, errors, the typed reader of ``twin.json``), :mod:`.core` (the
dataclass), its seams :mod:`.fitting`, :mod:`.forecasting`, :mod:`.updating` and :mod:`.store`
(the twin directory), :mod:`.forecast` (posterior terms and summaries), :mod:`.filtering`
(particle filter), :mod:`.history` (has the past changed?), :mod:`.two_stage` and
:mod:`.cluster` (cohorts fitted patient by patient on Dask workers).
"""

from migraine_bayes.lazy import lazy_names

# loaded on first use (PEP 562): ``twin.record`` alone does not import PyMC
_HOME = {"DigitalTwin": "core", "fit_patients": "core", "HistoryError": "record",
         "TwinError": "record", "TwinVersionError": "record"}

__all__ = ["DigitalTwin", "HistoryError", "TwinError", "TwinVersionError", "fit_patients"]

__getattr__ = lazy_names(__name__, _HOME, globals())
