"""Cohort input: read, validate, import and export the tables a study holds.

The variable registry (:mod:`.registry`), value parsing (:mod:`.parsing`), table schemas
(:mod:`.schemas`), integrity rules (:mod:`.integrity`), the validated cohort reader
(:mod:`.io`), cutting a cohort at a day (:mod:`.truncate`) and pseudonymised export
(:mod:`.export`).
"""
