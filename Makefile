# PrintFlow developer commands. Every target sets up its own virtual environment first.
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: help setup demo test test-fast lint format typecheck cfn-lint build validate bench clean local

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# constraints.txt: the runtime versions the Lambda layer ships, tested here too
	$(PY) -m pip install --quiet -e ".[dev]" -c constraints.txt
	rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP) ## create .venv and install PrintFlow with its dev tools

demo: setup ## run the demo: orders through the whole flow on the embedded local stack
	$(PY) -m printflow_tools.demo

local: setup ## start the local stack (API on :3000, AWS endpoint on :4566) until Ctrl-C
	$(VENV)/bin/printflow local

test: setup ## everything CI runs: lint, types, template lint, unit/integration/e2e tests
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(MAKE) --no-print-directory typecheck
	$(VENV)/bin/cfn-lint template.yaml
	$(PY) -m pytest --cov --cov-report=term:skip-covered -p no:cacheprovider

test-fast: setup ## unit tests only
	$(PY) -m pytest tests/unit -q

lint: setup ## ruff lint and format check, cfn-lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/cfn-lint template.yaml

format: setup ## format the code with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: setup ## mypy (strict) over the library, the tools and each handler
	$(VENV)/bin/mypy
	@# every handler module is named app.py: check them one at a time
	@for handler in functions/*/app.py; do $(VENV)/bin/mypy $$handler || exit 1; done

cfn-lint: setup
	$(VENV)/bin/cfn-lint template.yaml

validate: setup ## sam validate --lint (needs the SAM CLI)
	sam validate --lint

build: ## sam build for the python3.12 arm64 runtime (needs the SAM CLI)
	sam build

bench: setup ## run every benchmark in bench/ (each prints its figures)
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean: ## remove the virtual environment and build output
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache demo-output
