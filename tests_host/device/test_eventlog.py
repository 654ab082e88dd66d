# The event log ring. Runs on CPython and the unix port.
import json

from pinsock.logic.eventlog import EventLog


def test_records_are_numbered_from_one():
    log = EventLog(4)
    assert log.since(0) == (0, 1, 0)  # empty: nothing lost, nothing to give
    assert log.append(3, 0, 100) == 1
    assert log.append(3, 1, 250) == 2
    assert json.loads(log.record(1)) == {"seq": 1, "t": 100, "io": "3", "v": "0"}
    assert json.loads(log.record(2)) == {"seq": 2, "t": 250, "io": "3", "v": "1"}
    assert log.since(0) == (0, 1, 2)
    assert log.since(1) == (0, 2, 2)
    assert log.since(2) == (0, 3, 2)  # up to date


def test_ring_keeps_newest_and_counts_what_was_lost():
    log = EventLog(4)
    for i in range(10):
        log.append(i % 16, i % 2, i * 10)
    # records 7..10 held; after since=2, records 3..6 are gone
    assert log.oldest() == 7
    assert log.since(2) == (4, 7, 10)
    assert log.since(6) == (0, 7, 10)
    assert log.since(0) == (6, 7, 10)
    assert json.loads(log.record(10)) == {"seq": 10, "t": 90, "io": "9", "v": "1"}


def test_large_times_and_hex_io():
    log = EventLog(2)
    log.append(15, 1, 3 * 2**31)  # > 24 days in ms: past a 32-bit int
    assert json.loads(log.record(1)) == {"seq": 1, "t": 3 * 2**31, "io": "f", "v": "1"}


def test_since_in_the_future_gives_nothing():
    log = EventLog(4)
    log.append(0, 0, 1)
    assert log.since(50) == (0, 51, 1)


def test_messages_start_with_the_gap():
    log = EventLog(3)
    for i in range(5):
        log.append(1, i % 2, i)
    texts = list(log.messages(0))
    assert texts[0] == '{"lost":2}'
    assert [json.loads(t)["seq"] for t in texts[1:]] == [3, 4, 5]
    assert list(log.messages(5)) == []
    assert [json.loads(t)["seq"] for t in log.messages(3)] == [4, 5]


def test_messages_report_records_overwritten_while_sending():
    log = EventLog(3)
    for i in range(3):
        log.append(2, i % 2, i)
    texts = []
    for text in log.messages(0):
        texts.append(text)
        if len(texts) == 1:  # a slow reader: four more transitions meanwhile
            for i in range(4):
                log.append(2, i % 2, 100 + i)
    # got record 1; records 2 and 3 were overwritten; 4.. are after the snapshot
    assert json.loads(texts[0])["seq"] == 1
    assert texts[1:] == ['{"lost":2}']
