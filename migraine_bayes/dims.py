"""Names of the dimensions shared by panels and posteriors (one place, no string typos)."""

PATIENT = "patient"
DAY = "day"
FEATURE = "feature"
INTERVENTION = "intervention"
CHAIN = "chain"
DRAW = "draw"
