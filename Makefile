# Two commands on a fresh machine: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench clean system-packages

# uv installs the same requirements as pip in seconds rather than minutes (parallel downloads, no
# byte-compiling of the 6,000-module Azure SDK up front); pip does it where uv cannot be had.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip uv
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e '.[dev]' || $(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

demo: $(STAMP)
	$(VENV)/bin/spotkit demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# Debian's cloud-init validates the node images (`cloud-init schema`); systemd-analyze checks the units;
# mkfs.ext4 and curl run the disk and secrets boot scripts against local stand-ins; espeak-ng speaks
# the test speech; chattr (e2fsprogs) makes a store read-only for the outage test; headless chromium
# renders the HTML report; tmux is the terminal `spotkit fleet status --watch` is drawn in; sshd
# (openssh-server, with ssh and ssh-keygen) serves the `spotkit node exec|ssh` tests, each its own on loopback.
system-packages:
	@if ! command -v cloud-init >/dev/null 2>&1 || ! command -v systemd-analyze >/dev/null 2>&1 \
	    || ! command -v mkfs.ext4 >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1 \
	    || ! command -v espeak-ng >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1 \
	    || ! command -v tmux >/dev/null 2>&1 \
	    || ! PATH="$$PATH:/usr/sbin:/sbin" command -v sshd >/dev/null 2>&1 || ! command -v ssh-keygen >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      cloud-init systemd e2fsprogs curl espeak-ng chromium tmux openssh-server openssh-client >/dev/null; \
	  else echo "make test needs: apt-get install cloud-init systemd e2fsprogs curl espeak-ng chromium tmux" \
	    "openssh-server openssh-client"; exit 1; fi; \
	fi

# Two workers on the two cores CI has, stealing work from each other so the long tests (chaos, the stack
# under mocks) do not leave one idle at the end; `pytest -n 0` runs it serially.
unit: $(STAMP) node_modules/.installed system-packages
	$(PY) -m pytest -n 2 --dist worksteal

test: lint typecheck unit

bench: $(STAMP)
	bash bench/install-tools.sh
	$(PY) -m bench.pipeline
	$(PY) -m bench.pipeline --word-timestamps
	$(PY) -m bench.eviction
	$(PY) -m bench.policy
	$(PY) -m bench.gateway
	$(PY) -m bench.queue
	$(PY) -m bench.report
	$(PY) -m bench.submit

clean:
	rm -rf $(VENV) node_modules .spotkit-demo bench/.work
