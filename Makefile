# pinsock: `make sim` runs the simulated board, `make test` runs every test,
# `make build BOARD=RPI_PICO_W` assembles a board's flash in build/RPI_PICO_W/ and
# `make deploy BOARD=RPI_PICO_W PORT=/dev/ttyACM0` copies it onto the board,
# `make soak` runs the simulator long under several clients and 100000 switch flips,
# `make fleet` runs 8 simulated boards on a local MQTT broker and `make fleet-soak` soaks them.
# All build the environment they need in .venv/ from requirements.txt (pinned).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ENV_STAMP := $(VENV)/.installed
SYS_STAMP := $(VENV)/.system
BOARD ?= UNIX_SIM

.PHONY: all env sim test build deploy configure typecheck bench soak fleet fleet-soak clean \
	bundle ota

all: test

env: $(ENV_STAMP)

$(ENV_STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) tools/typecheck.py --install
	touch $@

# Debian packages for the browser, deploy and TLS tests (chromium, socat, openssl) and the
# 32-bit unix port (gcc-i686-linux-gnu, its libc), where we can.
$(SYS_STAMP): tools/setup_system.sh $(ENV_STAMP)
	bash tools/setup_system.sh
	touch $@

# UNIX32=1: on the 32-bit unix port, FROZEN=1: that with pinsock frozen in (make unix32);
# HTTP_PORT=, CONTROL_PORT=, HTTPS_PORT=: other ports, for two simulators side by side.
sim: $(ENV_STAMP)
	$(PY) tools/sim.py $(if $(UNIX32),--unix32) $(if $(FROZEN),--frozen) $(if $(HTTP_PORT),--http-port $(HTTP_PORT)) $(if $(CONTROL_PORT),--control-port $(CONTROL_PORT)) $(if $(HTTPS_PORT),--https-port $(HTTPS_PORT))

build: $(ENV_STAMP)
	$(PY) tools/build.py $(BOARD)

# Builds, then copies what changed to the board with mpremote and resets it.
# FROZEN=1: the board's MicroPython image has pinsock frozen in (boards/<BOARD>/manifest.py).
# PAGES=<dir>: the board's pages/ is made to hold exactly that folder's pages, served at /<name>.
deploy: $(ENV_STAMP)
	@if [ -z "$(PORT)" ]; then \
	  echo "usage: make deploy BOARD=<board> PORT=<serial port, e.g. /dev/ttyACM0>" >&2; \
	  exit 2; fi
	$(PY) tools/deploy.py $(BOARD) $(PORT) $(if $(FROZEN),--frozen) $(if $(PAGES),--pages $(PAGES))

# Updates over the network (docs/OTA.md). `make bundle BOARD=... [VERSION=...]
# [PASSWORD_FILE=...]` writes build/<BOARD>-<VERSION>.pinsock, its HMAC keyed from the
# device's password (PASSWORD_FILE, else config.json's); `make ota BOARD=... HOST=...`
# sends it (HOST: one URL or several, "http://a http://b", updated one after another).
bundle: $(ENV_STAMP)
	$(PY) tools/bundle.py $(BOARD) $(if $(VERSION),--version $(VERSION)) $(if $(PASSWORD_FILE),--password-file $(PASSWORD_FILE))

ota: bundle
	@if [ -z "$(HOST)" ]; then \
	  echo "usage: make ota BOARD=<board> HOST=<device URL, e.g. http://pinsock-c0de.local> [VERSION=...] [PASSWORD_FILE=...]" >&2; \
	  exit 2; fi
	$(PY) tools/ota.py $(HOST) build/$(BOARD)-$(or $(VERSION),$(shell sed -n 's/^VERSION = "\(.*\)"/\1/p' firmware/pinsock/__init__.py)).pinsock $(if $(PASSWORD_FILE),--password-file $(PASSWORD_FILE))

# Asks for Wi-Fi name, password and hostname; writes config.json (git-ignored), which
# `make deploy` copies onto a board and `make sim` into the simulator's .state/UNIX_SIM/.
configure: $(ENV_STAMP)
	$(PY) tools/configure.py

# The firmware against each real board's MicroPython stubs (also part of `make test`).
typecheck: $(ENV_STAMP)
	$(PY) tools/typecheck.py

test: $(ENV_STAMP) $(SYS_STAMP)
	$(PY) -m pytest tests_host

# Performance figures next to floors measured in the same run; writes docs/PERFORMANCE.md.
# QUICK=1 (or CI=true): a quick run that only checks the harness and writes no file.
bench: $(ENV_STAMP)
	$(PY) tools/bench.py $(if $(QUICK),--quick)

# tools/soak.py, long (`make test` runs it briefly): 4 clients and a slow reader,
# 100000 transitions (about 1-2 minutes); every view, the event log and the heap checked.
SOAK_TRANSITIONS ?= 100000
soak: $(ENV_STAMP)
	$(PY) tools/soak.py --transitions $(SOAK_TRANSITIONS) --clients 4 --slow

# MQTT fleet: Mosquitto on 127.0.0.1:$(FLEET_PORT) and 8 simulated boards pointed at it
# (state folders in .state/fleet/), watched live by tools/fleet.py; Ctrl-C stops them all.
FLEET_PORT ?= 1883
fleet: $(ENV_STAMP) $(SYS_STAMP)
	$(PY) tools/fleet_run.py --boards 8 --port $(FLEET_PORT)

# tools/fleet_soak.py, long (`make test` runs it briefly): 8 boards, the broker restarted
# twice, one board killed and started again; every transition accounted for.
FLEET_TRANSITIONS ?= 2000
fleet-soak: $(ENV_STAMP) $(SYS_STAMP)
	$(PY) tools/fleet_soak.py --boards 8 --transitions $(FLEET_TRANSITIONS)

# Chip fidelity, from MicroPython's own source (MICROPYTHON_SRC=<dir>, or the tarball in
# ../shared/micropython/): the 32-bit unix port (FROZEN=1: with pinsock frozen in through
# boards/UNIX_SIM/manifest.py), cached in build/unix32/ until its inputs change
# (tools/unix32.py); the real manifest tool over every board's manifest.
.PHONY: unix32 check-manifests
unix32: $(ENV_STAMP) $(SYS_STAMP)
	$(PY) tools/unix32.py $(if $(FROZEN),--frozen)

check-manifests: $(ENV_STAMP)
	$(PY) tools/check_manifests.py

# Optional: the device-logic tests on ports/qemu, a Cortex-M3 (tools/qemu_device.py; needs
# gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm).
.PHONY: qemu-device-tests
qemu-device-tests: $(ENV_STAMP)
	$(PY) tools/qemu_device.py

clean:
	rm -rf build .state .pytest_cache
