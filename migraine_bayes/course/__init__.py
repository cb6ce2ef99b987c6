"""How a patient's attacks unfold and respond to acute drugs.

The symptom-progression and intervention-response parts of the twin: records, pooled
posteriors, predictions.
"""

from migraine_bayes.course.model import fit_course
from migraine_bayes.course.predict import acute_response, course_summary, next_attack, patient_draws
from migraine_bayes.course.records import PHASES, course_records

__all__ = ["PHASES", "acute_response", "course_records", "course_summary", "fit_course",
           "next_attack", "patient_draws"]
