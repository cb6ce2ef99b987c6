"""Validation of twins: simulation-based calibration and recovery of known truth.

Rolling-origin backtests with baselines and scores; forecast metrics themselves live in
:mod:`migraine_bayes.metrics`.
"""

from migraine_bayes.evaluation.backtest import (
           BacktestResult,
           backtest,
           ex_ante_panel,
           one_step_errors,
)
from migraine_bayes.evaluation.counterfactual import true_stop_rrr
from migraine_bayes.evaluation.recovery import (
           identification_bound,
           recovery_table,
           trigger_identification,
)
from migraine_bayes.evaluation.sbc import SBCResult, run_sbc

__all__ = ["BacktestResult", "SBCResult", "backtest", "ex_ante_panel", "identification_bound",
           "one_step_errors", "recovery_table", "run_sbc", "trigger_identification",
           "true_stop_rrr"]
