.PHONY: help install system-deps test-deps run test bench clean

VENV ?= .venv
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
# Debian packages the engine needs: the sandbox (bubblewrap, prlimit, and libseccomp's Python bindings
# for the system python3, which build the syscall filter at start-up) and the toolchains it runs
SYSTEM_PACKAGES ?= bubblewrap util-linux python3 python3-seccomp nodejs g++ default-jdk-headless \
	gcc golang-go rustc node-typescript ruby php-cli mono-mcs mono-runtime bash sqlite3
SYSTEM_COMMANDS ?= bwrap prlimit setpriv runuser /usr/bin/python3 /usr/lib/python3/dist-packages/seccomp.cpython-*.so \
	/usr/bin/node /usr/bin/g++ /usr/bin/javac \
	/usr/bin/gcc /usr/bin/go /usr/bin/rustc /usr/bin/tsc /usr/bin/ruby /usr/bin/php \
	/usr/bin/mcs /usr/bin/mono /usr/bin/bash /usr/bin/sqlite3
# and the tests: chromium for the editor's browser test (playwright drives it, no browser download),
# postgresql for the storage tests, which start their own server (tests/support/postgres.py), never the service;
# a glob matches whatever major version Debian ships; unmatched, it stays literal and counts as missing
TEST_PACKAGES ?= chromium postgresql
TEST_COMMANDS ?= /usr/bin/chromium /usr/lib/postgresql/*/bin/initdb /usr/lib/postgresql/*/bin/pg_ctl

# $(call apt_install,commands,packages): install the packages when one of the commands (or files) is missing
define apt_install
	@missing=""; for c in $(1); do command -v $$c >/dev/null 2>&1 || [ -f "$$c" ] || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages (missing:$$missing)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
	fi
endef

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

system-deps: ## install the Debian packages the sandbox and languages need (only what is missing)
	$(call apt_install,$(SYSTEM_COMMANDS),$(SYSTEM_PACKAGES))

test-deps: system-deps ## and the ones the tests need (Chromium, PostgreSQL)
	$(call apt_install,$(TEST_COMMANDS),$(TEST_PACKAGES))

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

install: system-deps $(VENV)/.installed ## install everything the engine needs

run: install ## serve the engine on HOST:PORT (default 127.0.0.1:8000)
	HOST=$(HOST) PORT=$(PORT) $(VENV)/bin/gunicorn -c app/gunicorn_conf.py wsgi:app

test: test-deps $(VENV)/.installed ## run the test suite
	$(VENV)/bin/python -m pytest -c tests/pytest.ini --rootdir . $(PYTEST_ARGS)

# the bench's PostgreSQL (two instances over one, and the autosave peer's) and npm (the peer's packages, bench/peer/)
bench: install ## measure latency, throughput, overhead and graded runs (50 cases per language) against their floors
	$(call apt_install,/usr/lib/postgresql/*/bin/initdb /usr/bin/npm,postgresql npm)
	$(VENV)/bin/python -m bench

clean: ## remove the virtualenv and the local database
	rm -rf $(VENV) instance/engine.db*
