# The two commands: `make dev` and `make test`. Both set up everything they need first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt app/requirements.txt clients/python/pyproject.toml | cksum | cut -d' ' -f1)

STAGE  ?= dev

NODE   := node_modules/.installed
CDK    := CDK_DISABLE_VERSION_CHECK=1 npx --no-install cdk --app "$(PY) app.py"

.PHONY: setup dev test docs bench synth bootstrap preflight deploy smoke destroy clean key keys revoke-key

setup: $(STAMP)

# The CDK CLI pinned in package.json (the npm 'latest' tag refuses this assembly).
$(NODE): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# requirements.txt ends with the client (clients/python, editable), which puts the `sms` command in $(BIN).
$(STAMP): requirements.txt app/requirements.txt clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

# The local stack runs with the settings of cdk.json's stage STAGE (default dev), but for the local
# overrides devstack/stage.py lists.
dev: setup
	$(PY) -m devstack --stage $(STAGE) $(if $(filter 1 true yes,$(REQUIRE_KEYS)),--require-keys)

# The browser tests drive Debian's chromium (Playwright's own browser download cannot work here), and the
# country-code test reads Debian's iso-codes. Installed when missing, as root as CI runs; without them those
# tests fail in CI and skip elsewhere.
test: setup $(NODE)
	@{ command -v chromium && test -f /usr/share/iso-codes/json/iso_3166-1.json; } >/dev/null || \
	if [ "$$(id -u)" = 0 ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium iso-codes; \
	else echo "make test: no chromium or iso-codes, and installing them needs root (apt-get install chromium iso-codes)"; fi
	$(PY) -m pytest

bench: setup
	$(PY) -m bench

# The documentation site (docs/, mkdocs.yml) on http://127.0.0.1:8001 (make dev has 8000), rebuilt as pages change.
# make test builds it with --strict (tests/test_docs.py).
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve -a 127.0.0.1:8001

# Writes the cloud assembly to cdk.out/ with no AWS credentials.
synth: setup $(NODE)
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(CDK) synth -c stage=$(STAGE) --quiet

# Once per account and region, with AWS credentials for it (see docs/guides/deploy.md).
bootstrap: setup $(NODE)
	$(CDK) bootstrap -c stage=$(STAGE)

# Read-only checks of the account before the first deploy: region, origination identity, SMS sandbox,
# spend quotas, CDK bootstrap. Prints the fix for each failure (see docs/operations/preflight.md).
preflight: setup
	$(PY) -m ops.preflight --stage $(STAGE)

# Needs AWS credentials for the target account and a bootstrapped environment (see docs/guides/deploy.md).
# The stack's outputs (ApiUrl, KeysTableName, DashboardUrl, ...) land in cdk-outputs-$(STAGE).json.
deploy: setup $(NODE)
	$(CDK) deploy -c stage=$(STAGE) --require-approval broadening --outputs-file cdk-outputs-$(STAGE).json

# After `make deploy`: /health, SMS and MMS dry runs, the alarm's path to its topic. PAID=1 also sends one
# real SMS (charged) to AWS's success simulator number and waits for its receipt (see docs/operations/smoke.md).
smoke: setup
	$(PY) -m ops.smoke --stage $(STAGE) $(if $(PAID),--paid)

# A deployed stage's API keys, with your AWS credentials (IAM is the root of trust; see docs/guides/keys.md):
#   make key STAGE=dev NAME="first admin" SCOPES=keys:manage,messages:send [TEST=1]
#   make keys STAGE=dev
#   make revoke-key STAGE=dev ID=key_…
key: setup
	$(PY) -m ops.keys create --stage $(STAGE) --name "$(NAME)" --scopes "$(SCOPES)" $(if $(filter 1 true yes,$(TEST)),--test)

keys: setup
	$(PY) -m ops.keys list --stage $(STAGE)

revoke-key: setup
	$(PY) -m ops.keys revoke --stage $(STAGE) --id "$(ID)"

destroy: setup $(NODE)
	$(CDK) destroy -c stage=$(STAGE)

clean:
	rm -rf $(VENV) node_modules cdk.out chalice.out .pytest_cache cdk-outputs-*.json site
