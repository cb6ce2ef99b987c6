"""Reports: ArviZ/matplotlib figures and the self-contained HTML report of a twin."""

from .checks import PatientChecks, patient_checks
from .report import build_report

__all__ = ["PatientChecks", "build_report", "patient_checks"]
