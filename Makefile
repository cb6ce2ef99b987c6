# The two commands: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench validate lint clean data docs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/migraine-twin demo

test: $(STAMP)
	bash .ci/install-chromium
	$(BIN)/ruff check migraine_bayes tests benchmarks
	$(BIN)/lint-imports
	PATH="$(CURDIR)/$(BIN):$$PATH" NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	$(BIN)/python -m pytest -q -m "not slow" -n auto --dist loadfile --durations=15

bench: $(STAMP)
	$(BIN)/python benchmarks/load_panel.py
	$(BIN)/python benchmarks/fit_speed.py
	$(BIN)/python benchmarks/selection_cost.py
	$(BIN)/python benchmarks/simulate_speed.py
	$(BIN)/python benchmarks/update_speed.py
	$(BIN)/python benchmarks/study_fit.py
	$(BIN)/python benchmarks/bad_file.py
	$(BIN)/python benchmarks/service.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/linkage.py
	$(BIN)/python benchmarks/help_speed.py
	$(BIN)/python benchmarks/wearable_memory.py
	$(BIN)/python benchmarks/design_speed.py

validate: $(STAMP)
	$(BIN)/python -m pytest -q -m slow
	$(BIN)/migraine-twin sbc --out reports/validation --replicates 200 --lags 1,2 --shapes learned --interactions
	$(BIN)/python -m migraine_bayes.evaluation.misspecification --out reports/validation --cohort synthetic=data/synthetic
	$(BIN)/python -m migraine_bayes.evaluation.trigger_study --out reports/validation
	$(BIN)/python -m migraine_bayes.evaluation.subgroup_study --out reports/validation --patients 60
	$(BIN)/python -m migraine_bayes.evaluation.monitor_study --out reports/validation
	$(BIN)/python -m migraine_bayes.evaluation.trial_study --out reports/validation
	$(BIN)/python -m migraine_bayes.evaluation.federation_study --out reports/validation

# the documentation site (docs/ → build/site/); a warning is an error. The CLI reference page
# runs the venv's `typer` to read the command line, hence the PATH.
docs: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lint: $(STAMP)
	$(BIN)/ruff check migraine_bayes tests benchmarks
	$(BIN)/lint-imports

# Regenerate the committed synthetic cohort and study (the exact commands that made them).
data: $(STAMP)
	$(BIN)/migraine-twin generate data/synthetic --patients 12 --days 365 --seed 20261125 --force
	$(BIN)/migraine-twin generate data/study --study --seed 20261126 --force

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
