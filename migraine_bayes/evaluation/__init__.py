"""Validation of twins: simulation-based calibration and recovery of known truth.

(Forecast metrics live in :mod:`migraine_bayes.metrics`; backtests and baselines join here.)
"""

from .recovery import recovery_table, trigger_identification
from .sbc import SBCResult, run_sbc

__all__ = ["SBCResult", "recovery_table", "run_sbc", "trigger_identification"]
