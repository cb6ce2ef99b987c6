"""Generators of cohorts with known truth: diaries (:mod:`.cohort`), attack courses
(:mod:`.course`) and study-shaped cohorts of short, staggered diaries (:mod:`.study`)."""
