"""Names of the dimensions shared by panels and posteriors (one place, no string typos)."""

PATIENT = "patient"
DAY = "day"
FEATURE = "feature"
INTERVENTION = "intervention"
CHAIN = "chain"
DRAW = "draw"
BASIS = "basis"  # HSGP basis functions of the latent state
OBS = "obs"  # flattened (patient, day) pairs with a known outcome
TRIGGER = "trigger"  # a trigger with lagged copies: one effect spread over its lags
LAG = "lag"  # days of lag of a distributed-lag weight
EFFECT = "effect"  # features with an effect of their own (a trigger's lagged copies share it)
PAIR = "pair"  # an interaction of two same-day triggers: one population effect
