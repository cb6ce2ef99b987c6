"""Reports: ArviZ/matplotlib figures and the self-contained HTML report of a twin."""

from .checks import PatientChecks, patient_checks
from .report import build_patient_report, build_report, figure_folder

__all__ = ["PatientChecks", "build_patient_report", "build_report", "figure_folder",
           "patient_checks"]
