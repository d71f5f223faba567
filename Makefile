# The two commands: `make dev` and `make test`. Both set up everything they need first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt app/requirements.txt | cksum | cut -d' ' -f1)

STAGE  ?= dev

NODE   := node_modules/.installed
CDK    := CDK_DISABLE_VERSION_CHECK=1 npx --no-install cdk --app "$(PY) app.py"

.PHONY: setup dev test bench synth bootstrap deploy destroy clean

setup: $(STAMP)

# The CDK CLI pinned in package.json (the npm 'latest' tag refuses this assembly).
$(NODE): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

$(STAMP): requirements.txt app/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

dev: setup
	$(PY) -m devstack

test: setup $(NODE)
	$(PY) -m pytest

bench: setup
	$(PY) -m bench

# Writes the cloud assembly to cdk.out/ with no AWS credentials.
synth: setup $(NODE)
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(CDK) synth -c stage=$(STAGE) --quiet

# Once per account and region, with AWS credentials for it (see README).
bootstrap: setup $(NODE)
	$(CDK) bootstrap -c stage=$(STAGE)

# Needs AWS credentials for the target account and a bootstrapped environment (see README).
# The stack's outputs (API URL, API key id, ...) land in cdk-outputs-$(STAGE).json.
deploy: setup $(NODE)
	$(CDK) deploy -c stage=$(STAGE) --require-approval broadening --outputs-file cdk-outputs-$(STAGE).json

destroy: setup $(NODE)
	$(CDK) destroy -c stage=$(STAGE)

clean:
	rm -rf $(VENV) node_modules cdk.out chalice.out .pytest_cache cdk-outputs-*.json
