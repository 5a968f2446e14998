VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install lint site clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

site: $(STAMP)
	$(VENV)/bin/storyloop build

# The sample stories are dated November-December 2026: a wide grace period lets a newcomer watch
# the past ones arrive in var/outbox/ at once. A real site keeps the default (6 hours).
run: site
	$(VENV)/bin/storyloop run --grace-hours 87600

lint: $(STAMP)
	$(VENV)/bin/ruff check publisher channels tests benchmarks pelicanconf.py
	$(VENV)/bin/ruff format --check publisher channels tests benchmarks pelicanconf.py
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

test: lint
	$(VENV)/bin/pytest -n 2 -q -rfEs  # the name of every failure and error, the reason of every skip

clean:
	rm -rf output var .pytest_cache
