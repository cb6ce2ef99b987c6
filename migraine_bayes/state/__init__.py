"""Patient state: `PatientState`, its feature vector, and the daily panel of a cohort.

- :mod:`.patient_state` — one patient on one day, parts and feature vector;
- :mod:`.panel` — cohort → ``xarray.Dataset`` (patient, day, feature);
- :mod:`.derived` — derived features (pressure change, stress let-down, sleep debt ...);
- :mod:`.imputation` — within-patient gap imputation with uncertainty;
- :mod:`.exposure` — treatment exposure profiles.
"""

from migraine_bayes.state.panel import OUTCOMES, build_panel, state_from_panel
from migraine_bayes.state.patient_state import PARTS, PatientState, split_feature
from migraine_bayes.state.summary import summarise_panel

__all__ = ["OUTCOMES", "PARTS", "PatientState", "build_panel", "split_feature",
           "state_from_panel", "summarise_panel"]

