"""Validation of twins: simulation-based calibration and recovery of known truth.

(Forecast metrics live in :mod:`migraine_bayes.metrics`; backtests and baselines join here.)
"""

from .counterfactual import true_stop_rrr
from .recovery import identification_bound, recovery_table, trigger_identification
from .sbc import SBCResult, run_sbc

__all__ = ["SBCResult", "identification_bound", "recovery_table", "run_sbc",
           "trigger_identification", "true_stop_rrr"]
