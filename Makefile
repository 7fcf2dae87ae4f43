.PHONY: help install system-deps run test bench clean

VENV ?= .venv
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
# Debian packages the engine needs: the sandbox (bubblewrap, prlimit) and the interpreters it runs;
# chromium is for the browser test of the editor (playwright drives it, no browser download);
# postgresql is for the storage tests, which start their own server (tests/postgres.py), never the service
SYSTEM_PACKAGES ?= bubblewrap util-linux python3 nodejs g++ default-jdk-headless chromium postgresql
# a glob matches whatever major version Debian ships; unmatched, it stays literal and counts as missing
SYSTEM_COMMANDS ?= bwrap prlimit runuser /usr/bin/python3 /usr/bin/node /usr/bin/g++ /usr/bin/javac /usr/bin/chromium /usr/lib/postgresql/*/bin/initdb /usr/lib/postgresql/*/bin/pg_ctl

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

system-deps: ## install the Debian packages the sandbox and languages need (only what is missing)
	@missing=""; for c in $(SYSTEM_COMMANDS); do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages (missing:$$missing)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	fi

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

install: system-deps $(VENV)/.installed ## install everything the engine needs

run: install ## serve the engine on HOST:PORT (default 127.0.0.1:8000)
	HOST=$(HOST) PORT=$(PORT) $(VENV)/bin/gunicorn -c app/gunicorn_conf.py wsgi:app

test: install ## run the test suite
	$(VENV)/bin/python -m pytest -c tests/pytest.ini --rootdir . $(PYTEST_ARGS)

bench: install ## measure latency, throughput and overhead against their floors
	$(VENV)/bin/python -m bench

clean: ## remove the virtualenv and the local database
	rm -rf $(VENV) instance/engine.db*
