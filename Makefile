# The two commands: `make dev` and `make test`. Both set up everything they need first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt app/requirements.txt | cksum | cut -d' ' -f1)

.PHONY: setup dev test bench clean

setup: $(STAMP)

$(STAMP): requirements.txt app/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

dev: setup
	$(PY) -m devstack

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) -m bench

clean:
	rm -rf $(VENV) cdk.out chalice.out .pytest_cache
