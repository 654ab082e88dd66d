"""Shared test fixtures: the firmware on sys.path, the unix port, and the simulator.

The simulator fixture starts the real firmware build (build/UNIX_SIM, .mpy) under the
MicroPython unix port, on free ports of 127.0.0.1, and stops it after the test.
"""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "firmware"))
sys.path.insert(0, str(ROOT / "tools"))

import build  # noqa: E402
import sim as sim_tool  # noqa: E402
from simproc import Sim  # noqa: E402


@pytest.fixture(scope="session")
def sim_build():
    """build/UNIX_SIM, brought up to date once per test session."""
    out, _, _ = build.build("UNIX_SIM")
    return out


@pytest.fixture(scope="session")
def micropython():
    return sim_tool.micropython_command()


@pytest.fixture
def start_sim(sim_build, tmp_path):
    """Factory: start_sim(max_clients=2, debounce_ms=0, state_dir=...) -> Sim."""
    started = []

    def start(state_dir=None, **options):
        sim = Sim(state_dir or tmp_path / ("state%d" % len(started)), **options)
        started.append(sim)
        return sim.start()

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(start_sim):
    return start_sim()


def pytest_report_header(config):
    return "micropython: %s (CI=%s)" % (sim_tool.micropython_command(), os.environ.get("CI"))
