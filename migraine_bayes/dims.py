"""Names of the dimensions shared by panels and posteriors (one place, no string typos)."""

PATIENT = "patient"
DAY = "day"
FEATURE = "feature"
INTERVENTION = "intervention"
CHAIN = "chain"
DRAW = "draw"
BASIS = "basis"  # HSGP basis functions of the latent state
OBS = "obs"  # flattened (patient, day) pairs with a known outcome
