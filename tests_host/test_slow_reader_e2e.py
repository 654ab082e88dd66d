"""End-to-end: a client that never reads does not stall the others, does not grow the
device's memory, and is closed with 1013 once its outbox has stayed full for
`stuck_timeout_ms` (docs/PROTOCOL.md, Slow readers)."""

import json
import socket
import struct
import time
import urllib.request

from websockets.sync.client import connect

from simclient import open_websocket, split_frame

STUCK_TIMEOUT_MS = 500
# Flips at most; the never-reading client's socket buffers (the simulator's send
# buffer is a chip's, tcp_send_buffer in its board.json) and its outbox of 16 frames
# fill long before: it is let go after about 5,000.
MAX_TRANSITIONS = 20000
# Free heap while the slow client is stuck, and after, may be this much below the
# figure before it started. Its outbox holds at most Client.outbox_len (16) frames of
# about 150 bytes, plus the part of one frame its socket did not take (64-bit unix
# port: objects twice their size on a board), and one `heap` reading may count a
# dead connection's ~3 KiB the conservative collector kept (measured: up to 8.3 KiB
# below in all). A queue that grew with the transitions would need hundreds of KB.
HEAP_BOUND = 12288
HEAP_EVERY = 250  # transitions between two heap readings


def never_reading_client(sim):
    # The answer's head is read byte by byte: nothing after it is taken.
    return open_websocket(sim.http_port, timeout=5, rcvbuf=1024)


def read_to_close(sock):
    """Every server frame until the close frame: (texts, close code, close reason)."""
    data = b""
    texts = []
    while True:
        frame = split_frame(data)
        if frame is None:
            chunk = sock.recv(65536)
            assert chunk, "closed without a close frame after %d messages" % len(texts)
            data += chunk
            continue
        opcode, payload, data = frame
        if opcode == 8:
            return texts, struct.unpack("!H", payload[:2])[0], payload[2:].decode()
        if opcode == 1:
            texts.append(payload.decode())



def next_report(ws):
    while True:
        msg = json.loads(ws.recv(timeout=5))
        if "dipSwitches" in msg:
            return msg


def served_clients(sim):
    """`sc` over HTTP, which is not a client itself."""
    with urllib.request.urlopen(sim.base_url + "/action.cgi?sc", timeout=5) as r:
        return int(json.loads(r.read())["s"]["c"])


def free_heap(sim):
    return int(sim.control("heap").split()[0])


def test_never_reading_client_is_closed_1013_and_others_keep_up(start_sim):
    sim = start_sim(max_clients=3, debounce_ms=0, stuck_timeout_ms=STUCK_TIMEOUT_MS)
    with connect(sim.ws_url()) as a, connect(sim.ws_url()) as b:
        next_report(a)
        next_report(b)
        heap_before = free_heap(sim)
        slow = never_reading_client(sim)
        try:
            assert served_clients(sim) == 3
            ctl = socket.create_connection(("127.0.0.1", sim.control_port), timeout=5)
            ctl_in = ctl.makefile("rb")
            lowest = heap_before
            worst_ms = 0.0
            levels = [1] * 8  # DIP switches 1-8 start Off (high)
            transitions = 0
            closed_after = None
            while transitions < MAX_TRANSITIONS:
                io = transitions % 8
                level = levels[io] = 1 - levels[io]
                sent = time.perf_counter()
                ctl.sendall(b"set %d %d\n" % (io, level))
                assert ctl_in.readline() == b"ok\n"
                transitions += 1
                want = "On" if level == 0 else "Off"
                for ws in (a, b):  # every report reaches the readers, in order
                    report = next_report(ws)
                    assert report["seq"] == transitions, report
                    assert report["dipSwitches"]["dip%d" % (io + 1)] == want
                worst_ms = max(worst_ms, (time.perf_counter() - sent) * 1000)
                if transitions % HEAP_EVERY == 0:
                    lowest = min(lowest, free_heap(sim))
                    if served_clients(sim) == 2:  # the slow one has been let go
                        closed_after = transitions
                        break
            ctl.close()
            assert closed_after, "the client that never reads was still served after %d" \
                                 " transitions" % transitions
            # Reading now, it gets what was queued for it, then the close frame.
            texts, code, reason = read_to_close(slow)
        finally:
            slow.close()
        assert (code, reason) == (1013, "client too slow"), (code, reason)
        reports = [json.loads(t) for t in texts]
        assert reports and all("dipSwitches" in r for r in reports)
        seqs = [r["seq"] for r in reports]
        assert seqs == sorted(seqs) and len(seqs) < transitions  # dropped, never reordered
        # The two readers were never held up, and are still served.
        a.send("sc")
        assert json.loads(a.recv(timeout=5)) == {"s": {"c": "2"}}
        b.send("v0")
        assert json.loads(b.recv(timeout=5)) == {"v": {"0": str(levels[0])}}
    time.sleep(0.3)
    heap_after = free_heap(sim)
    print("\nslow reader: closed 1013 after %d transitions; it got %d of them (newest seq %d);"
          " worst flip-to-both-reports %.1f ms; free heap before %d, lowest while stuck %d"
          " (%+d), after %d (%+d)" % (closed_after, len(reports), seqs[-1], worst_ms,
                                     heap_before, lowest, lowest - heap_before, heap_after,
                                     heap_after - heap_before))
    assert heap_before - lowest <= HEAP_BOUND, (heap_before, lowest)
    assert heap_before - heap_after <= HEAP_BOUND, (heap_before, heap_after)
    assert sim.alive()
