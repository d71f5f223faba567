# The two commands: `make dev` and `make test`. Both set up everything they need first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt app/requirements.txt | cksum | cut -d' ' -f1)

STAGE  ?= dev

.PHONY: setup dev test bench synth clean

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

# Writes the cloud assembly to cdk.out/ with no AWS credentials (the pinned CDK CLI and
# `make deploy` are not in place yet: see README, Status).
synth: setup
	CDK_OUTDIR=cdk.out AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(PY) app.py -c stage=$(STAGE)

clean:
	rm -rf $(VENV) cdk.out chalice.out .pytest_cache
