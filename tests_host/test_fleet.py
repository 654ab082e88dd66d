"""tools/fleet.py: the table from messages (pure, no broker), then the tool itself
against a real Mosquitto and real simulators (tools/fleet_run.py's FleetRun, which
starts them with tools/mqttbroker.py's Broker), and `make fleet`'s tools/fleet_run.py
stopping everything it started.

The end-to-end tests need mosquitto (tools/setup_system.sh installs it): without it
they skip, saying why; with CI=true they fail instead.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import fleet
from fleet_run import FleetRun, node_id
from simclient import free_port, http_get
from simproc import ROOT
from mqttbroker import mosquitto_command

FLEET = [sys.executable, str(ROOT / "tools" / "fleet.py")]
BOARDS = 3
RUN_TIMEOUT_S = 30  # a fleet.py run: its own waits are a few seconds at most


def needs_mosquitto():
    if mosquitto_command() is None:
        reason = ("mosquitto is not installed (the fleet tests start a broker;"
                  " `bash tools/setup_system.sh` installs it)")
        if os.environ.get("CI") == "true":
            pytest.fail(reason + "; on CI this is a failure")
        pytest.skip(reason)


# --- the table, from messages -----------------------------------------------------------
def dips(*on):
    return {"dip%d" % n: "On" if n in on else "Off" for n in range(1, 9)}


def test_the_table_is_built_from_status_state_io_and_the_s_reply():
    f = fleet.Fleet()
    take = f.take
    assert take("pinsock/pinsock-b002/status", b"online") == "pinsock-b002"
    take("pinsock/pinsock-b002/state", json.dumps({"dipSwitches": dips(1, 8), "seq": 7}))
    for h in "0123456789abcdef":
        take("pinsock/pinsock-b002/io/" + h, "0" if h in "07" else "1")
    take("pinsock/pinsock-b002/reply", '{"s":{"n":"kitchen","v":"0.1.0","b":"UNIX_SIM",'
         '"c":"0","t":"5","m":"1000"}}')
    take("pinsock/pinsock-a001/status", "offline")
    take("pinsock/pinsock-a001/io/3", "1")
    # Not a board's, or not sense: nothing.
    assert take("pinsock/all/cmd", "v") is None
    assert take("pinsock/pinsock-a001/status", "maybe") is None
    assert take("pinsock/pinsock-a001/state", "{not json") is None
    assert take("pinsock/pinsock-a001/io/z", "1") is None
    assert take("other/pinsock-a001/status", "online") is None
    assert fleet.table(f) == [
        "NODE          STATUS   NAME     VERSION  BOARD     DIP 1-8   IO 0-f            SEQ",
        "pinsock-a001  offline  ?        ?        ?                   ...1",
        "pinsock-b002  online   kitchen  0.1.0    UNIX_SIM  X------X  0111111011111111  7",
        "2 boards, 1 online (DIP: X On, - Off)",
    ]
    assert f.online() == ["pinsock-b002"] and f.unnamed() == []
    take("pinsock/pinsock-b002/event", '{"seq":8,"t":100,"io":"9","v":"0"}')
    assert f.boards["pinsock-b002"].seq == 8


def test_a_retained_discovery_message_names_the_board_and_another_prefix_works():
    f = fleet.Fleet(prefix="site/a", discovery_prefix="ha")
    f.take("site/a/pinsock-c0de/status", "online")
    assert f.unnamed() == ["pinsock-c0de"]
    f.take("ha/device/pinsock-c0de/config", json.dumps({
        "dev": {"ids": "pinsock-c0de", "name": "hall", "mf": "pinsock", "mdl": "RPI_PICO_W",
                "sw": "0.1.0"}}))
    f.take("ha/device/lamp/config", json.dumps({"dev": {"name": "lamp", "mf": "other"}}))
    board = f.boards["pinsock-c0de"]
    assert (board.name, board.version, board.model) == ("hall", "0.1.0", "RPI_PICO_W")
    assert f.unnamed() == [] and "lamp" not in f.boards
    assert "site/a/+/status" in f.topics() and "ha/device/+/config" in f.topics()


def test_replies_and_the_boards_that_gave_none():
    assert fleet.reply_lines({"pinsock-b": '{"v":{"3":"1"}}', "pinsock-a": '{"v":{"3":"0"}}'},
                             ["pinsock-a", "pinsock-b", "pinsock-c"]) == [
        'pinsock-a {"v":{"3":"0"}}', 'pinsock-b {"v":{"3":"1"}}', "pinsock-c no reply"]


def test_the_broker_argument():
    assert fleet.parse_broker("10.0.0.5") == ("10.0.0.5", 1883)
    assert fleet.parse_broker("127.0.0.1:1884") == ("127.0.0.1", 1884)
    with pytest.raises(ValueError):
        fleet.parse_broker("host:port")


# --- the tool against a broker and boards ----------------------------------------------------
@pytest.fixture
def fleet_run(sim_build, tmp_path):
    needs_mosquitto()
    run = FleetRun(tmp_path / "fleet", boards=BOARDS, debounce_ms=0).start()
    yield run
    run.stop()


def kill_group(proc):
    """SIGKILL to the process group of `proc` (started with start_new_session), gone."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def kill_later(proc, seconds=RUN_TIMEOUT_S, kill=None):
    """A timer that kills `proc` (or calls `kill`) after `seconds`: a read of its output
    cannot hang."""
    timer = threading.Timer(seconds, kill or proc.kill)
    timer.daemon = True
    timer.start()
    return timer


def fleet_tool(run, *args):
    proc = subprocess.run(FLEET + ["--broker", "127.0.0.1:%d" % run.broker.port, *args],
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    return proc.returncode, proc.stdout.splitlines(), proc.stderr


def rows_of(lines):
    """{node: {column: text}} of the tool's table."""
    header = lines[0]
    starts = [header.index(column) for column in fleet.COLUMNS] + [None]
    out = {}
    for line in lines[1:-1]:
        cells = [line[a:b].strip() for a, b in zip(starts, starts[1:])]
        out[cells[0]] = dict(zip(fleet.COLUMNS, cells))
    return out


def test_the_list_finds_every_board_with_its_switches_name_and_version(fleet_run):
    run = fleet_run
    sims = run.sims
    assert sims[0].control("set 0 0") == "ok"  # board 1: DIP 1 On
    assert sims[1].control("set 2 0") == "ok" and sims[1].control("set 7 0") == "ok"
    assert sims[2].control("set 9 1") == "ok"  # board 3: GPIO 9 high, no DIP
    _, _, body = http_get(sims[0].http_port, "/action.cgi?sv")
    version = json.loads(body)["s"]["v"]
    time.sleep(0.3)  # the changes reach the broker
    code, lines, err = fleet_tool(run)
    assert code == 0, err
    assert lines[-1] == "3 boards, 3 online (DIP: X On, - Off)"
    rows = rows_of(lines)
    assert sorted(rows) == [node_id(n) for n in (1, 2, 3)] == run.nodes
    want = {node_id(1): ("X-------", "0111111100000000", "1"),
            node_id(2): ("--X----X", "1101111000000000", "2"),
            node_id(3): ("--------", "1111111101000000", "0")}
    for node, (dip, io, seq) in want.items():
        row = rows[node]
        assert (row["STATUS"], row["NAME"], row["VERSION"], row["BOARD"]) == (
            "online", node, version, "UNIX_SIM"), row
        assert (row["DIP 1-8"], row["IO 0-f"]) == (dip, io), row
        # The state's seq: the last DIP change's (GPIO 9 sends no state).
        assert row["SEQ"] == seq, row
    # Name and version are not retained: asking nothing, the tool does not know them.
    code, lines, _ = fleet_tool(run, "--retained-only")
    assert code == 0 and {r["VERSION"] for r in rows_of(lines).values()} == {"?"}
    # A killed board: offline (its will), and the others are still listed.
    sims[2].proc.send_signal(signal.SIGKILL)
    sims[2].proc.wait(timeout=5)
    deadline = time.monotonic() + 10
    while True:
        code, lines, _ = fleet_tool(run, "--retained-only")
        if rows_of(lines)[node_id(3)]["STATUS"] == "offline":
            break
        assert time.monotonic() < deadline, lines
        time.sleep(0.2)
    assert lines[-1] == "3 boards, 2 online (DIP: X On, - Off)"


def test_a_command_to_one_board_and_to_all_prints_each_reply(fleet_run):
    run = fleet_run
    assert run.sims[1].control("set 3 0") == "ok"
    code, lines, err = fleet_tool(run, "--cmd", "v3", "--node", node_id(2))
    assert code == 0, err
    assert lines == ['%s {"v":{"3":"0"}}' % node_id(2)]
    code, lines, err = fleet_tool(run, "--cmd", "v3", "--all")
    assert code == 0, err
    assert lines == ['%s {"v":{"3":"%s"}}' % (node_id(n), "0" if n == 2 else "1")
                     for n in (1, 2, 3)]
    # A board that is not there: no reply, said so, exit 1 (after --timeout).
    started = time.monotonic()
    code, lines, _ = fleet_tool(run, "--cmd", "v3", "--node", "pinsock-0000", "--timeout", "1")
    assert code == 1 and lines == ["pinsock-0000 no reply"]
    assert time.monotonic() - started < 10


def test_watch_redraws_on_a_change_and_ctrl_c_ends_it(fleet_run):
    run = fleet_run
    proc = subprocess.Popen(FLEET + ["--broker", "127.0.0.1:%d" % run.broker.port, "--watch"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    timer = kill_later(proc)
    try:
        def next_table():
            lines = []
            while True:
                line = proc.stdout.readline()
                assert line, "fleet.py --watch ended: %r" % lines
                if line == "\n" and lines:
                    return lines
                lines.append(line.rstrip("\n"))

        deadline = time.monotonic() + 15
        while rows_of(next_table()).get(node_id(1), {}).get("NAME") != node_id(1):
            assert time.monotonic() < deadline
        assert run.sims[0].control("set 4 0") == "ok"  # DIP 5 On
        while rows_of(next_table())[node_id(1)]["DIP 1-8"] != "----X---":
            assert time.monotonic() < deadline
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 0
        assert "Traceback" not in proc.stdout.read()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def descendants(pid):
    """Every process below `pid` (ps)."""
    found = []
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                              text=True).stdout.split()
    for child in children:
        found += [int(child)] + descendants(int(child))
    return found


def test_make_fleet_stops_every_process_it_started(sim_build, tmp_path):
    needs_mosquitto()
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "fleet_run.py"), "--boards",
                             "2", "--port", str(port), "--folder", str(tmp_path / "fleet")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # what a failure leaves is killed with it
    timer = kill_later(proc, kill=lambda: kill_group(proc))
    try:
        output = []
        deadline = time.monotonic() + 30
        while not any(line.startswith("2 boards, 2 online") for line in output):
            line = proc.stdout.readline()
            assert line and time.monotonic() < deadline, "".join(output)
            output.append(line)
        started = descendants(proc.pid)
        assert len(started) >= 3, started  # mosquitto and two boards
        proc.send_signal(signal.SIGINT)  # Ctrl-C, to the tool alone (a terminal sends it
        rest = proc.communicate(timeout=20)[0]  # to all of them: that is easier)
        assert proc.returncode == 0, rest
        assert "fleet: stopped the broker and 2 boards" in rest
        assert "Traceback" not in "".join(output) + rest
        left = [pid for pid in started if os.path.exists("/proc/%d" % pid)
                and "zombie" not in open("/proc/%d/status" % pid).read()]
        assert left == [], subprocess.run(["ps", "-f", "-p", ",".join(map(str, left))],
                                          capture_output=True, text=True).stdout
    finally:
        timer.cancel()
        kill_group(proc)
        proc.wait()
