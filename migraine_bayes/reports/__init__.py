"""Reports: ArviZ/matplotlib figures and the self-contained HTML report of a twin."""

from migraine_bayes.reports.checks import PatientChecks, patient_checks
from migraine_bayes.reports.report import build_patient_report, build_report, figure_folder

__all__ = ["PatientChecks", "build_patient_report", "build_report", "figure_folder",
           "patient_checks"]
