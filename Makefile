# pinsock: `make sim` runs the simulated board, `make test` runs every test.
# Both build the environment they need in .venv/ from requirements.txt (pinned).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ENV_STAMP := $(VENV)/.installed
SYS_STAMP := $(VENV)/.system
BOARD ?= UNIX_SIM

.PHONY: all env sim test build bench clean

all: test

env: $(ENV_STAMP)

$(ENV_STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

# Debian packages for the browser and deploy tests (chromium, socat), where we can.
$(SYS_STAMP): tools/setup_system.sh $(ENV_STAMP)
	bash tools/setup_system.sh
	touch $@

sim: $(ENV_STAMP)
	$(PY) tools/sim.py

build: $(ENV_STAMP)
	$(PY) tools/build.py $(BOARD)

test: $(ENV_STAMP) $(SYS_STAMP)
	$(PY) -m pytest tests_host

bench: $(ENV_STAMP)
	$(PY) tools/bench_push.py

clean:
	rm -rf build .state .pytest_cache
