"""End-to-end: the command interface of the real firmware on the simulator, over
WebSocket and HTTP, and the command console (tools/console.py)."""

import json
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import sim as sim_tool
from conftest import ROOT
from simclient import free_port
from simproc import SIM_START_TIMEOUT_S, Sim

# Longest wait for a message that should come; a test never waits unbounded.
WAIT_S = 5
CONSOLE = str(ROOT / "tools" / "console.py")
ALL_OFF = ('{"dipSwitches":{"dip1":"Off","dip2":"Off","dip3":"Off","dip4":"Off",'
           '"dip5":"Off","dip6":"Off","dip7":"Off","dip8":"Off"}}')
# What a fresh simulator sends on connect: `seq` 0, no transition logged yet.
ALL_OFF_AT_BOOT = ALL_OFF[:-1] + ',"seq":0}'
MARKER = 15  # IO f: every session triggers on it; its update closes a batch of edges
# The unique id that names a simulator pinsock-c0de, as the docs and transcripts show
# (tools/sim.py gives it to the default state folder; every other folder derives its own).
SIM_UNIQUE_ID = sim_tool.DEFAULT_UNIQUE_ID


class Session:
    """One WebSocket client. Its connect-time switch report is kept in `report`."""

    opened = []  # closed after each test (close_sessions)

    def __init__(self, sim, path="/ws"):
        self.ws = connect(sim.ws_url(path), open_timeout=WAIT_S, close_timeout=1,
                          legacy=True)
        self.opened.append(self)
        self.report = self.recv()

    def recv(self, timeout=WAIT_S):
        # Switch reports carry the event log's `seq`; these tests are about commands,
        # so it is dropped here (the event log's own tests check it).
        return without_seq(self.ws.recv(timeout=timeout))

    def ask(self, message):
        """Send one message; return the next message received (its reply)."""
        self.ws.send(message)
        return self.recv()

    def close(self):
        self.ws.close()


@pytest.fixture(autouse=True)
def close_sessions():
    yield
    while Session.opened:
        Session.opened.pop().close()


def without_seq(text):
    return re.sub(r',"seq":\d+}$', "}", text) if text.startswith('{"dipSwitches"') else text


def http(sim, message, path="/action.cgi"):
    """GET /action.cgi?<message>, URL-encoded -> (status, Content-Type, body text)."""
    url = sim.base_url + path
    if message is not None:
        url += "?" + urllib.parse.quote(message, safe="=")
    try:
        with urllib.request.urlopen(url, timeout=WAIT_S) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


def wait_saved(sim, good, timeout=3):
    """settings.json once good(its content) holds: the device saves changes at its
    next housekeeping, within a second (logic/settings.py)."""
    path = sim.state_dir / "settings.json"
    deadline = time.monotonic() + timeout
    while True:
        try:
            saved = json.loads(path.read_text())
            if good(saved):
                return saved
        except (OSError, ValueError):
            saved = None
        assert time.monotonic() < deadline, saved
        time.sleep(0.05)


def http_ok(sim, message):
    status, content_type, body = http(sim, message)
    assert (status, content_type) == (200, "application/json"), (message, status, body)
    return body


def edges(sim, sessions, drives):
    """Drive `drives` ([(io, level)]) on the control port, then flip the marker IO.

    Edges are committed in the order they came, so once a session has the marker's
    update it has every update the drives caused. Returns, per session, the messages
    before the marker's update. Every session must have set tuvf=3.
    """
    for io, level in drives:
        assert sim.control("set %d %d" % (io, level)) == "ok"
    marker_level = 1 - int(sim.control("get %d" % MARKER))
    assert sim.control("set %d %d" % (MARKER, marker_level)) == "ok"
    marker = '{"u":{"v":{"f":"%d"}}}' % marker_level
    seen = []
    for session in sessions:
        got = []
        deadline = time.monotonic() + WAIT_S
        while True:
            text = session.recv(timeout=max(0.01, deadline - time.monotonic()))
            if text == marker:
                break
            got.append(text)
        seen.append(got)
    return seen


def update(io, level):
    return '{"u":{"v":{"%x":"%d"}}}' % (io, level)


# --- reads and writes, both channels ------------------------------------------------
READS = ["v3", "v9", "v", "d9", "d", "p0", "p9", "p", "tuv0", "tuv", "tu", "t", "sn", "sv",
         "sb", "sc", "va", "pf"]


def test_reads_answer_the_same_json_over_websocket_and_http(start_sim):
    sim = start_sim(debounce_ms=0, unique_id=SIM_UNIQUE_ID)
    s = Session(sim)
    assert s.report == ALL_OFF
    for command in READS:
        ws_reply = s.ask(command)
        assert http_ok(sim, command) == ws_reply, command
    assert s.ask("v3") == '{"v":{"3":"1"}}'
    assert s.ask("tuv0") == '{"t":{"u":{"v":{"0":"0"}}}}'
    assert s.ask("sn") == '{"s":{"n":"pinsock-c0de"}}'
    assert s.ask("sb") == '{"s":{"b":"UNIX_SIM"}}'
    system = json.loads(s.ask("s"))["s"]
    assert sorted(system) == sorted("nvbctm")
    assert system["c"] == "1" and int(system["t"]) >= 0 and int(system["m"]) > 0
    assert json.loads(s.ask("sm"))["s"]["m"].isdigit()


def test_each_state_folder_is_a_board_of_its_own_unless_told_its_id(start_sim):
    # The default name is pinsock- and the last 4 hex digits of the unique id, which
    # a simulator derives from its state folder, or takes from --unique-id.
    names = [Session(start_sim(debounce_ms=0)).ask("sn") for _ in range(2)]
    assert names[0] != names[1], names
    for name in names:
        assert re.fullmatch(r'\{"s":\{"n":"pinsock-[0-9a-f]{4}"\}\}', name), name
    told = start_sim(debounce_ms=0, unique_id="0123456789AB")
    assert Session(told).ask("sn") == '{"s":{"n":"pinsock-89ab"}}'


def test_netburner_path_speaks_the_same_commands(start_sim):
    sim = start_sim(debounce_ms=0)
    s = Session(sim, "/INDEX")
    assert s.report == ALL_OFF
    assert s.ask("v3") == '{"v":{"3":"1"}}'
    assert s.ask("x") == '{"e":{"c":"x","m":"unknown command"}}'


def test_writes_to_outputs_show_on_the_simulator_pins(start_sim):
    sim = start_sim(debounce_ms=0)
    s = Session(sim)
    assert s.ask("d9=1") == '{"d":{"9":"1"}}'
    assert s.ask("v9=1") == '{"v":{"9":"1"}}'
    assert sim.control("get 9") == "1"
    assert s.ask("v9=0") == '{"v":{"9":"0"}}'
    assert sim.control("get 9") == "0"
    # HTTP drives the same pins through the same engine.
    assert http_ok(sim, "v9=1") == '{"v":{"9":"1"}}'
    assert sim.control("get 9") == "1"
    assert s.ask("v9") == '{"v":{"9":"1"}}'
    assert http_ok(sim, "da=1") == '{"d":{"a":"1"}}'
    assert http_ok(sim, "va=1") == '{"v":{"a":"1"}}'
    assert sim.control("get 10") == "1"
    # An output turned back into an open input falls to 0.
    assert s.ask("d9=0") == '{"d":{"9":"0"}}'
    assert sim.control("get 9") == "0"
    # Pulls: an open input reads what its pull gives it.
    assert s.ask("p8=1") == '{"p":{"8":"1"}}'
    assert sim.control("get 8") == "1"
    assert s.ask("p8=2") == '{"p":{"8":"2"}}'
    assert sim.control("get 8") == "0"
    assert s.ask("v8") == '{"v":{"8":"0"}}'


def test_input_levels_follow_the_simulator_pins(start_sim):
    sim = start_sim(debounce_ms=0)
    s = Session(sim)
    s.ask("tuvf=3")
    edges(sim, [s], [(9, 1), (0, 0)])  # nothing to see: no triggers on 9 or 0
    assert s.ask("v9") == '{"v":{"9":"1"}}'
    assert s.ask("v0") == '{"v":{"0":"0"}}'
    assert http_ok(sim, "v9") == '{"v":{"9":"1"}}'


def test_http_details(start_sim):
    sim = start_sim(debounce_ms=0)
    # URL-encoding: %XX is a byte, + is a space.
    assert http_ok(sim, "sn=Kitchen light #2") == '{"s":{"n":"Kitchen light #2"}}'
    status, _, body = http(sim, None, "/action.cgi?sn=a+b%2Bc")
    assert (status, body) == (200, '{"s":{"n":"a b+c"}}')
    # No connection, no triggers: a trigger write is echoed and ends with the request.
    assert http_ok(sim, "tuv9=3") == '{"t":{"u":{"v":{"9":"3"}}}}'
    assert http_ok(sim, "tuv9") == '{"t":{"u":{"v":{"9":"0"}}}}'
    # HTTP requests are not WebSocket clients.
    assert http_ok(sim, "sc") == '{"s":{"c":"0"}}'
    s = Session(sim)
    assert http_ok(sim, "sc") == '{"s":{"c":"1"}}'
    assert s.ask("sn") == '{"s":{"n":"a b+c"}}'


# --- triggers ---------------------------------------------------------------------
@pytest.mark.parametrize("trigger, expected", [
    ("0", []),
    ("1", [update(9, 1)]),
    ("2", [update(9, 0)]),
    ("3", [update(9, 1), update(9, 0)]),
], ids=["off", "rising", "falling", "any"])
def test_trigger_edges(start_sim, trigger, expected):
    sim = start_sim(debounce_ms=0)
    s = Session(sim)
    assert s.ask("tuvf=3") == '{"t":{"u":{"v":{"f":"3"}}}}'
    assert s.ask("tuv9=" + trigger) == '{"t":{"u":{"v":{"9":"%s"}}}}' % trigger
    assert edges(sim, [s], [(9, 1), (9, 0)]) == [expected]
    # Twice, to see the trigger stays set.
    assert edges(sim, [s], [(9, 1), (9, 0)]) == [expected]


def test_switch_report_is_still_sent_with_and_without_a_trigger(start_sim):
    sim = start_sim(debounce_ms=0)
    s = Session(sim)
    s.ask("tuvf=3")
    on = ALL_OFF.replace('"dip1":"Off"', '"dip1":"On"')
    assert edges(sim, [s], [(0, 0), (0, 1)]) == [[on, ALL_OFF]]
    assert s.ask("tuv0=3") == '{"t":{"u":{"v":{"0":"3"}}}}'
    assert edges(sim, [s], [(0, 0), (0, 1)]) == [[on, update(0, 0), ALL_OFF, update(0, 1)]]


def test_a_write_updates_every_matching_client_the_writer_too(start_sim):
    sim = start_sim(debounce_ms=0, max_clients=2)
    a = Session(sim)
    b = Session(sim)
    a.ask("tuv9=1")
    b.ask("tuv9=3")
    assert a.ask("d9=1") == '{"d":{"9":"1"}}'
    a.ws.send("v9=1")
    # The update for the change goes out before the write's reply.
    assert [a.recv(), a.recv()] == [update(9, 1), '{"v":{"9":"1"}}']
    assert b.recv() == update(9, 1)
    assert http_ok(sim, "v9=0") == '{"v":{"9":"0"}}'
    assert b.recv() == update(9, 0)
    assert a.ask("v9") == '{"v":{"9":"0"}}'  # a's trigger is rising only: nothing before


def test_two_clients_with_different_triggers_get_exactly_their_own(start_sim):
    sim = start_sim(debounce_ms=0, max_clients=2)
    a = Session(sim)
    b = Session(sim)
    for s in (a, b):
        s.ask("tuvf=3")
    assert a.ask("tuv9=1") == '{"t":{"u":{"v":{"9":"1"}}}}'
    assert b.ask("tuv9=2") == '{"t":{"u":{"v":{"9":"2"}}}}'
    assert a.ask("tuva=3") == '{"t":{"u":{"v":{"a":"3"}}}}'
    assert edges(sim, [a, b], [(9, 1), (9, 0), (10, 1)]) == [
        [update(9, 1), update(10, 1)],
        [update(9, 0)],
    ]
    assert a.ask("tuv9") == '{"t":{"u":{"v":{"9":"1"}}}}'
    assert b.ask("tuv9") == '{"t":{"u":{"v":{"9":"2"}}}}'
    assert a.ask("sc") == '{"s":{"c":"2"}}'
    # Triggers end with the connection: a's successor starts with all of them off.
    a.close()
    a2 = Session(sim)
    assert a2.ask("tuv") == '{"t":{"u":{"v":{%s}}}}' % ",".join(
        '"%x":"0"' % io for io in range(16))
    a2.ask("tuvf=3")
    assert edges(sim, [a2, b], [(9, 1), (9, 0)]) == [[], [update(9, 0)]]


def test_a_third_client_replaces_the_oldest(start_sim):
    sim = start_sim(debounce_ms=0, max_clients=2)
    a = Session(sim)
    Session(sim)
    Session(sim)
    with pytest.raises(ConnectionClosed):
        a.recv()
    assert a.ws.close_code == 4001


# --- persistence --------------------------------------------------------------------
def test_settings_survive_a_restart(start_sim):
    sim = start_sim(debounce_ms=0)
    s = Session(sim)
    assert s.ask("d9=1") == '{"d":{"9":"1"}}'
    assert s.ask("v9=1") == '{"v":{"9":"1"}}'
    assert s.ask("p8=2") == '{"p":{"8":"2"}}'
    assert http_ok(sim, "pa=1") == '{"p":{"a":"1"}}'
    assert s.ask("sn=garage door") == '{"s":{"n":"garage door"}}'
    assert s.ask("tuv9=3") == '{"t":{"u":{"v":{"9":"3"}}}}'
    s.close()
    # Saved within a second of the first change, with every change up to then.
    settings = wait_saved(sim, lambda saved: saved["name"] == "garage door")
    assert (settings["dir"][9], settings["pull"][8], settings["pull"][10]) == (1, 2, 1)
    files = sorted(p.name for p in sim.state_dir.iterdir()
                   if p.name not in sim_tool.LOADER_FILES + (sim_tool.INSTALL_SLOT,))
    assert files == ["settings.json"]  # replaced atomically: no temporary file left
    sim.restart()
    s = Session(sim)
    assert s.ask("d9") == '{"d":{"9":"1"}}'
    assert s.ask("p8") == '{"p":{"8":"2"}}'
    assert http_ok(sim, "pa") == '{"p":{"a":"1"}}'
    assert http_ok(sim, "sn") == '{"s":{"n":"garage door"}}'
    assert s.ask("sn") == '{"s":{"n":"garage door"}}'
    # Not kept: output levels (outputs start low) and triggers.
    assert s.ask("v9") == '{"v":{"9":"0"}}'
    assert sim.control("get 9") == "0"
    assert sim.control("get 10") == "1"  # pulled up, as saved
    assert s.ask("tuv9") == '{"t":{"u":{"v":{"9":"0"}}}}'
    # And it survives another restart unchanged.
    s.close()
    sim.restart()
    assert http_ok(sim, "d9") == '{"d":{"9":"1"}}'


def test_a_corrupt_settings_file_boots_with_defaults_and_says_why(start_sim, tmp_path):
    state = tmp_path / "corrupt"
    state.mkdir()
    (state / "settings.json").write_text('{"name": "half a fi')
    sim = start_sim(state_dir=state, debounce_ms=0, unique_id=SIM_UNIQUE_ID)
    assert any("settings.json is not valid JSON, using defaults" in line
               for line in sim.output), sim.output
    assert http_ok(sim, "sn") == '{"s":{"n":"pinsock-c0de"}}'
    assert http_ok(sim, "d9") == '{"d":{"9":"0"}}'
    # The next write replaces the corrupt file with a good one.
    assert http_ok(sim, "d9=1") == '{"d":{"9":"1"}}'
    assert wait_saved(sim, lambda saved: saved["dir"][9] == 1)


def test_a_missing_settings_file_says_so(start_sim):
    sim = start_sim(debounce_ms=0)
    assert any("settings: no " in line and "using defaults" in line
               for line in sim.output), sim.output


# --- errors, over both channels ----------------------------------------------------
# (message, reason): every error of the protocol, on UNIX_SIM (16 IOs).
ERRORS = [
    ("x", "unknown command"),
    ("v10", "unknown command"),
    ("tuvg", "unknown command"),
    ("sx", "unknown command"),
    ("v=1", "cannot write a subtree"),
    ("tuv=3", "cannot write a subtree"),
    ("t=0", "cannot write a subtree"),
    ("s=x", "cannot write a subtree"),
    ("sv=1", "read-only"),
    ("sm=0", "read-only"),
    ("v9=1", "io is an input"),
    ("v0=0", "io is an input"),
    ("v9=2", "value out of range"),
    ("d9=2", "value out of range"),
    ("p9=3", "value out of range"),
    ("tuv9=4", "value out of range"),
    ("sn=", "value out of range"),
    ("sn=" + "n" * 33, "value out of range"),
    ("d0=1", "not supported by this io"),
    ("p0=2", "not supported by this io"),
    ("v" * 33, "command too long"),
    ("sn=" + "n" * 65, "value too long"),
    ("V9", "invalid character"),
    ("v 9", "invalid character"),
    ("v9!", "invalid character"),
    ("sn=caf\u00e9", "invalid character"),
    ("sn=a\x01b", "invalid character"),
    ("", "empty command"),
    ("=1", "empty command"),
]


def error(message, reason):
    command = message.split("=", 1)[0][:32]
    return json.dumps({"e": {"c": command, "m": reason}}, separators=(",", ":"),
                      ensure_ascii=False)


def test_every_error_over_websocket_keeps_the_connection_open(start_sim):
    sim = start_sim(debounce_ms=0, unique_id=SIM_UNIQUE_ID)
    s = Session(sim)
    for message, reason in ERRORS:
        assert s.ask(message) == error(message, reason), message
    assert s.ask("v9") == '{"v":{"9":"0"}}'
    assert s.ask("sn") == '{"s":{"n":"pinsock-c0de"}}'  # no error wrote anything


def test_every_error_over_http_answers_400_with_the_error_json(start_sim):
    sim = start_sim(debounce_ms=0, unique_id=SIM_UNIQUE_ID)
    for message, reason in ERRORS:
        assert http(sim, message) == (400, "application/json", error(message, reason)), message
    assert http(sim, None) == (400, "application/json", error("", "empty command"))
    assert http_ok(sim, "sn") == '{"s":{"n":"pinsock-c0de"}}'


class SmallBoardSim(Sim):
    """The simulator build with a board of 12 IOs (0-b): a copy of build/UNIX_SIM whose
    board.json lists fewer IOs."""

    ios = 12

    def __init__(self, build_dir, state_dir, **options):
        super().__init__(state_dir, **options)
        self.build_dir = build_dir

    def start(self):
        board_file = self.build_dir / "board.json"
        board = json.loads(board_file.read_text())
        board["ios"] = board["ios"][: self.ios]
        board["leds"] = [io for io in board.get("leds", []) if io < self.ios]
        board_file.write_text(json.dumps(board))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        args = ["--http-port", str(self.http_port), "--control-port", str(self.control_port),
                "--state-dir", str(self.state_dir)]
        for key, value in self.options.items():
            args += ["--" + key.replace("_", "-"), str(value)]
        cmd, env = sim_tool.sim_command(self.build_dir, args)
        self.proc = subprocess.Popen(cmd, cwd=self.build_dir, env=env, text=True, bufsize=1,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()
        ready = "serving on http://127.0.0.1:%d" % self.http_port
        deadline = time.monotonic() + SIM_START_TIMEOUT_S
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if self.lines.get(timeout=0.2).startswith(ready):
                    return self
            except queue.Empty:
                pass
        self.stop()
        raise AssertionError("simulator did not start:\n" + "".join(self.output))


@pytest.fixture
def small_board_sim(sim_build, tmp_path):
    build_dir = tmp_path / "build"
    shutil.copytree(sim_build, build_dir)
    sim = SmallBoardSim(build_dir, tmp_path / "state", debounce_ms=0)
    try:
        yield sim.start()
    finally:
        sim.stop()


NO_SUCH_IO = ["vc", "vf", "dc=1", "pc", "pf=0", "tuvc", "tuvc=3"]


def test_ios_the_board_does_not_have_over_both_channels(small_board_sim):
    sim = small_board_sim
    s = Session(sim)
    for message in NO_SUCH_IO:
        expected = error(message, "no such io")
        assert s.ask(message) == expected, message
        assert http(sim, message) == (400, "application/json", expected), message
    assert s.ask("vb") == '{"v":{"b":"0"}}'
    assert json.loads(s.ask("v"))["v"] == {"%x" % io: "1" if io < 8 else "0"
                                           for io in range(12)}
    assert http_ok(sim, "tuv") == '{"t":{"u":{"v":{%s}}}}' % ",".join(
        '"%x":"0"' % io for io in range(12))


# --- the console ------------------------------------------------------------------
def run_console(*args, stdin=None, timeout=30):
    return subprocess.run([sys.executable, CONSOLE, *args], capture_output=True, text=True,
                          input=stdin, timeout=timeout)


def test_console_one_shot_prints_each_reply_as_one_line(start_sim):
    sim = start_sim(debounce_ms=0)
    proc = run_console(sim.ws_url("/ws"), "v3", "d9=1", "v9=1", "x", "sn=my kitchen", "s")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:5] == [
        '{"v":{"3":"1"}}',
        '{"d":{"9":"1"}}',
        '{"v":{"9":"1"}}',
        '{"e":{"c":"x","m":"unknown command"}}',
        '{"s":{"n":"my kitchen"}}',
    ]
    assert len(lines) == 6 and json.loads(lines[5])["s"]["n"] == "my kitchen"
    assert sim.control("get 9") == "1"


def test_console_one_shot_leaves_out_what_is_not_a_reply(start_sim):
    sim = start_sim(debounce_ms=0)
    # The switch report on connect and the update of the write are not replies.
    proc = run_console(sim.ws_url("/ws"), "tuv9=3", "d9=1", "v9=1", "v9")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        '{"t":{"u":{"v":{"9":"3"}}}}', '{"d":{"9":"1"}}', '{"v":{"9":"1"}}',
        '{"v":{"9":"1"}}']


def test_console_one_shot_does_not_take_the_pages_session(start_sim):
    # max_clients 1 (UNIX_SIM's default): a console on the WebSocket would replace the
    # page. Commands without a trigger go over /action.cgi instead, and the page's
    # WebSocket stays connected all along.
    sim = start_sim(debounce_ms=0)
    page = Session(sim)
    proc = run_console(sim.ws_url("/ws"), "v3", "d9=1", "v9=1", "x", "sc",
                       "sn=a=b & c+d 100%", "sn", "")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        '{"v":{"3":"1"}}', '{"d":{"9":"1"}}', '{"v":{"9":"1"}}',
        '{"e":{"c":"x","m":"unknown command"}}',
        '{"s":{"c":"1"}}',  # the page alone: the console is no client
        '{"s":{"n":"a=b & c+d 100%"}}', '{"s":{"n":"a=b & c+d 100%"}}',
        '{"e":{"c":"","m":"empty command"}}']
    assert page.ask("v9") == '{"v":{"9":"1"}}'  # still connected, not replaced
    with pytest.raises(TimeoutError):
        page.ws.recv(timeout=0.3)  # and no close frame waiting for it


def test_console_one_shot_with_a_trigger_takes_a_websocket(start_sim):
    # Triggers belong to a connection: with one, the console opens the WebSocket (and,
    # the device being full, replaces the oldest client: docs/PROTOCOL.md, Console).
    sim = start_sim(debounce_ms=0)
    page = Session(sim)
    proc = run_console(sim.ws_url("/ws"), "tuv9=3", "tuv9", "sc")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ['{"t":{"u":{"v":{"9":"3"}}}}',
                                        '{"t":{"u":{"v":{"9":"3"}}}}', '{"s":{"c":"1"}}']
    with pytest.raises(ConnectionClosed):
        page.ask("v9")
    # --websocket: the same for commands that would go over HTTP.
    proc = run_console(sim.ws_url("/ws"), "sc", "--websocket")
    assert (proc.returncode, proc.stdout) == (0, '{"s":{"c":"1"}}\n'), proc.stderr


def test_console_takes_options_anywhere(start_sim):
    sim = start_sim(debounce_ms=0)
    for args in (["--timeout", "3", sim.ws_url("/ws"), "v3", "sb"],
                 [sim.ws_url("/ws"), "--timeout", "3", "v3", "sb"],
                 [sim.ws_url("/ws"), "v3", "--timeout", "3", "sb"],
                 [sim.ws_url("/ws"), "v3", "sb", "--timeout", "3"]):
        proc = run_console(*args)
        assert proc.returncode == 0, (args, proc.stderr)
        assert proc.stdout.splitlines() == ['{"v":{"3":"1"}}', '{"s":{"b":"UNIX_SIM"}}'], args


def test_console_on_the_pages_url_says_to_add_ws(start_sim):
    sim = start_sim(debounce_ms=0)
    base = "ws://127.0.0.1:%d" % sim.http_port
    for url in (base, base + "/"):
        proc = run_console(url, stdin="")  # interactive: the WebSocket
        assert proc.returncode == 1
        assert ("console: cannot connect to %s: %s is not the WebSocket (HTTP 200: a page"
                " answered); add /ws: %s/ws" % (url, url, base)) in proc.stderr, proc.stderr
    proc = run_console(base + "/nope", "tuv9=3")
    assert proc.returncode == 1
    assert "no WebSocket at /nope (HTTP 404); the device's is /ws: %s/ws" % base in proc.stderr


def test_console_cannot_connect_says_so_and_fails():
    proc = run_console("ws://127.0.0.1:%d/ws" % free_port(), "v3")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "console: cannot connect to ws://127.0.0.1:" in proc.stderr
    proc = run_console("http://127.0.0.1:1/", "v3")
    assert proc.returncode == 2
    assert "ws://" in proc.stderr


def test_console_interactive_prints_replies_and_updates(start_sim):
    sim = start_sim(debounce_ms=0)
    proc = subprocess.Popen([sys.executable, CONSOLE, sim.ws_url("/ws")], text=True,
                            bufsize=1, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.rstrip("\n")) for line in proc.stdout],
                     daemon=True).start()
    try:
        assert lines.get(timeout=WAIT_S) == ALL_OFF_AT_BOOT  # the report on connect
        proc.stdin.write("tuv9=3\n")
        proc.stdin.flush()
        assert lines.get(timeout=WAIT_S) == '{"t":{"u":{"v":{"9":"3"}}}}'
        assert sim.control("set 9 1") == "ok"
        assert lines.get(timeout=WAIT_S) == update(9, 1)
        proc.stdin.write("\nv9\nV9\n")  # a blank line is skipped
        proc.stdin.flush()
        assert lines.get(timeout=WAIT_S) == '{"v":{"9":"1"}}'
        assert lines.get(timeout=WAIT_S) == '{"e":{"c":"V9","m":"invalid character"}}'
        proc.stdin.close()  # end of input: the console ends
        assert proc.wait(timeout=WAIT_S) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=WAIT_S)


def test_console_interactive_answers_piped_commands_then_exits(start_sim):
    sim = start_sim(debounce_ms=0)
    proc = run_console(sim.ws_url("/ws"), stdin="d9=1\nv9=1\nsv=2\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        ALL_OFF_AT_BOOT, '{"d":{"9":"1"}}', '{"v":{"9":"1"}}', '{"e":{"c":"sv","m":"read-only"}}']


def test_console_interactive_says_when_it_is_replaced(start_sim):
    sim = start_sim(debounce_ms=0)  # one client at a time
    proc = subprocess.Popen([sys.executable, CONSOLE, sim.ws_url("/ws")], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline().rstrip("\n") == ALL_OFF_AT_BOOT
        Session(sim)  # takes the console's place
        assert proc.wait(timeout=WAIT_S) == 1
        assert "device closed the connection (4001: replaced)" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=WAIT_S)
