"""What a fitted posterior says.

Trigger sensitivity (:mod:`.sensitivity`), treatment effects (:mod:`.treatment_effects`),
population insights (:mod:`.insights`) and an AI partner's forecasts combined with the twin's
(:mod:`.partner`).
"""
