# certauth: developer entry points.
#
#   make test    install what is missing (venv, Python and npm packages, Debian's chromium, checkov's venv), then run pytest
#   make demo    make up, one onboarding end to end (python -m sandbox.demo), make down (always)
#   make lint    ruff
#   make bench   run the benchmarks in bench/
#   make test-azcli  Microsoft's Azure CLI against the simulator (opt-in: installs the CLI in .venv-azcli)
#   make clean   caches and sandbox state (distclean: also .venv and node_modules)
#
# Services the tests need (Azurite, the Azure simulator, the sandbox host) are started and stopped by
# pytest session fixtures (tests/conftest.py), so they stop at the end of the run whether the tests
# pass or fail: `make test` needs no separate up/down step and leaves nothing running.
#
# Dependencies are re-installed only when their lock/requirement files change (stamp files).

SHELL := /bin/bash
.DEFAULT_GOAL := test

VENV := .venv
PY := $(VENV)/bin/python
# Python 3.11 (the Functions runtime's version) when present, else python3.
BOOTSTRAP_PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV_STAMP := $(VENV)/.requirements.stamp
NODE_STAMP := node_modules/.package-lock.stamp
PYTEST_ARGS ?=

.PHONY: deps browser test lint bench up down demo clean distclean

deps: $(VENV_STAMP) $(NODE_STAMP)

$(PY):
	@test -n "$(BOOTSTRAP_PYTHON)" || { echo "make: python3.11 or python3 is needed" >&2; exit 1; }
	$(BOOTSTRAP_PYTHON) -m venv $(VENV)

$(VENV_STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --disable-pip-version-check --progress-bar off -r requirements-dev.txt
	$(PY) -m sandbox.faketime
	@touch $@

# npm ci wipes node_modules first, so the stamp inside it goes with it.
$(NODE_STAMP): package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# The progress page's tests drive Debian's Chromium through Playwright (browser downloads don't work offline):
# install the package when it is missing and apt-get is allowed (root, or sudo without a password); otherwise
# those tests skip and say why.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi; \
	  if [ "$$SUDO" != none ] && command -v apt-get >/dev/null; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    $$SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null \
	      || { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null; } \
	      || echo "make: could not install chromium: the browser tests will skip" >&2; \
	  else echo "make: $(CHROMIUM) is missing and apt-get is not allowed here: the browser tests will skip" >&2; fi; \
	fi

test: deps browser checkov-deps
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV_STAMP)
	$(PY) -m ruff check .

bench: deps
	$(PY) -m bench

# The offline world in the background: Azurite, sandbox.azure and sandbox.host serving function_app;
# .sandbox/endpoints.json says where everything is. `make down` stops exactly what `make up` started.
up: deps
	$(PY) -m sandbox.up up

down:
	@if [ -x $(PY) ]; then $(PY) -m sandbox.up down; fi

# The EXIT trap runs `make down` whatever happens (up failing half-way, the demo failing, Ctrl-C), and the
# recipe exits with the status of up or of the demo.  DEMO_ARGS: e.g. --mailbox x@y --timeout 60.
DEMO_ARGS ?=
demo:
	@trap '$(MAKE) --no-print-directory down' EXIT; \
	$(MAKE) --no-print-directory up && $(PY) -m sandbox.demo $(DEMO_ARGS)

# Microsoft's Azure CLI against the simulator (tests/azcli; opt-in, not part of `make test`): the CLI lives in
# its own venv, re-created only when the sha256 of requirements-azcli.txt changes (the stamp holds it), and
# reaches login.microsoftonline.com / graph.microsoft.com / <vault>.vault.azure.net through the loopback
# intercepting proxy (sandbox/intercept.py).
AZCLI_VENV := .venv-azcli
AZCLI_REQUIREMENTS := requirements-azcli.txt
AZCLI_STAMP := $(AZCLI_VENV)/.requirements.sha256
AZCLI_HASH = $(shell sha256sum $(AZCLI_REQUIREMENTS) | cut -d' ' -f1)

.PHONY: test-azcli azcli-deps
azcli-deps:
	@if [ "$$(cat $(AZCLI_STAMP) 2>/dev/null)" != "$(AZCLI_HASH)" ]; then \
		test -n "$(BOOTSTRAP_PYTHON)" || { echo "make: python3.11 or python3 is needed" >&2; exit 1; }; \
		rm -rf $(AZCLI_VENV) && $(BOOTSTRAP_PYTHON) -m venv $(AZCLI_VENV) && \
		$(AZCLI_VENV)/bin/python -m pip install --disable-pip-version-check --progress-bar off \
			-r $(AZCLI_REQUIREMENTS) && echo "$(AZCLI_HASH)" > $(AZCLI_STAMP); \
	fi

test-azcli: deps azcli-deps
	CERTAUTH_AZ_CLI=$(CURDIR)/$(AZCLI_VENV)/bin/az $(PY) -m pytest tests/azcli $(PYTEST_ARGS)

# checkov for the infrastructure checks (tests/infra/test_checkov.py, part of `make test`): its own venv, because
# it pins its own versions of common packages; re-created only when the sha256 of requirements-checkov.txt
# changes (the stamp inside the venv holds it), so a warm `make test` spends no time here.
CHECKOV_VENV := .venv-checkov
CHECKOV_REQUIREMENTS := requirements-checkov.txt
CHECKOV_STAMP := $(CHECKOV_VENV)/.requirements.sha256
CHECKOV_HASH = $(shell sha256sum $(CHECKOV_REQUIREMENTS) | cut -d' ' -f1)

.PHONY: checkov-deps
checkov-deps:
	@if [ "$$(cat $(CHECKOV_STAMP) 2>/dev/null)" != "$(CHECKOV_HASH)" ]; then \
		test -n "$(BOOTSTRAP_PYTHON)" || { echo "make: python3.11 or python3 is needed" >&2; exit 1; }; \
		rm -rf $(CHECKOV_VENV) && $(BOOTSTRAP_PYTHON) -m venv $(CHECKOV_VENV) && \
		$(CHECKOV_VENV)/bin/python -m pip install --disable-pip-version-check --progress-bar off -q \
			-r $(CHECKOV_REQUIREMENTS) && echo "$(CHECKOV_HASH)" > $(CHECKOV_STAMP); \
	fi

clean:
	rm -rf .pytest_cache .ruff_cache .sandbox
	find . \( -path ./.venv -o -path ./node_modules -o -path ./.git \) -prune -o \
		-name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) node_modules
