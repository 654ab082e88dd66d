# Login sessions and the login throttle (access.py). Runs on CPython and the unix port.
import asyncio

from pinsock.logic import sessions as access  # the module (its constants)
from pinsock.logic.sessions import BUSY, RIGHT, WRONG, LoginThrottle, Sessions, same_bytes
from pinsock.compat import ticks_diff, ticks_ms

HOUR = 3600


def is_hex(text):
    for ch in text:
        if ch not in "0123456789abcdef":
            return False
    return True


def test_a_token_is_random_hex_of_the_named_length():
    sessions = Sessions()
    a, b = sessions.open(1000), sessions.open(1000)
    assert len(a) == len(b) == 2 * access.TOKEN_BYTES == 32
    assert is_hex(a) and is_hex(b)
    assert a != b
    assert sessions.valid(a, 1001) and sessions.valid(b, 1001)


def test_forged_tokens_are_refused():
    sessions = Sessions()
    token = sessions.open(1000)
    flipped = ("0" if token[0] != "0" else "1") + token[1:]
    for forged in (None, "", flipped, token[:-1], token + "0", token.upper(), "é" * 32,
                   "0" * 32, token[:16] + "\0" * 16):
        assert not sessions.valid(forged, 1001), forged
    assert sessions.valid(token, 1001)


def test_logout_ends_only_that_session():
    sessions = Sessions()
    a, b = sessions.open(1000), sessions.open(1000)
    assert sessions.close(a)
    assert not sessions.valid(a, 1001)
    assert sessions.valid(b, 1001)
    assert not sessions.close(a)  # twice: nothing left to close
    assert not sessions.close("nonsense")
    assert sessions.count() == 1


def test_an_unused_session_ends_after_idle_s_and_any_after_lifetime_s():
    sessions = Sessions()
    assert (Sessions.idle_s, Sessions.lifetime_s) == (24 * HOUR, 7 * 24 * HOUR)
    idle = sessions.open(0)
    assert sessions.valid(idle, 24 * HOUR)  # exactly idle_s: still fine; now used again
    assert not sessions.valid(idle, 48 * HOUR + 1)
    assert not sessions.valid(idle, 48 * HOUR)  # gone for good, even back in time
    busy = sessions.open(0)
    t = 0
    while t + 12 * HOUR <= Sessions.lifetime_s:
        t += 12 * HOUR
        assert sessions.valid(busy, t), t
    assert not sessions.valid(busy, Sessions.lifetime_s + 1)


def test_a_clock_set_back_ends_sessions():
    sessions = Sessions()
    token = sessions.open(5000)
    assert not sessions.valid(token, 4999)


def test_a_full_table_ends_the_least_recently_used_session():
    sessions = Sessions()
    assert Sessions.max_sessions == 4
    tokens = [sessions.open(100 + i) for i in range(4)]
    assert sessions.valid(tokens[0], 200)  # the oldest login, but just used
    newest = sessions.open(201)
    assert not sessions.valid(tokens[1], 202)  # least recently used: ended
    for token in (tokens[0], tokens[2], tokens[3], newest):
        assert sessions.valid(token, 202)
    assert sessions.count() == 4


def test_an_expired_slot_is_reused_before_a_live_one():
    sessions = Sessions()
    old = sessions.open(0)
    live = [sessions.open(Sessions.idle_s) for _ in range(3)]
    sessions.open(Sessions.idle_s + 10)  # `old` idled out: its slot is taken
    for token in live:
        assert sessions.valid(token, Sessions.idle_s + 11)
    assert not sessions.valid(old, Sessions.idle_s + 11)


def test_same_bytes():
    assert same_bytes(b"secret", b"secret")
    assert not same_bytes(b"secreT", b"secret")
    assert not same_bytes(b"secret!", b"secret")
    assert not same_bytes(b"secre", b"secret")
    assert not same_bytes(b"", b"secret")
    assert not same_bytes(b"x", b"")
    assert same_bytes(b"", b"")
    # A guess that repeats the secret's prefix cyclically is still wrong.
    assert not same_bytes(b"abab", b"ab")


def test_delay_doubles_from_first_to_the_cap():
    throttle = LoginThrottle("pw")
    assert (throttle.first_delay_ms, throttle.max_delay_ms) == (1000, 8000)
    delays = []
    for failures in range(7):
        throttle.failures = failures
        delays.append(throttle.delay_ms())
    assert delays == [1000, 1000, 2000, 4000, 8000, 8000, 8000]
    throttle.failures = 10**6  # a long siege: still the cap, computed at once
    assert throttle.delay_ms() == 8000


def fast_throttle(password):
    throttle = LoginThrottle(password)
    throttle.first_delay_ms = 40
    throttle.max_delay_ms = 160
    return throttle


def test_wrong_password_answers_after_the_delay_and_right_one_resets():
    async def main():
        throttle = fast_throttle("open sesame")
        spent = []
        for _ in range(4):
            start = ticks_ms()
            assert await throttle.attempt(b"open sesam") == WRONG
            spent.append(ticks_diff(ticks_ms(), start))
        # Lower bounds only: each answer waited at least its delay.
        for took, least in zip(spent, (40, 80, 160, 160)):
            assert took >= least, spent
        assert throttle.failures == 4
        assert await throttle.attempt(b"open sesame") == RIGHT
        assert throttle.failures == 0
        assert throttle.waiting == 0

    asyncio.run(main())


def test_attempts_are_checked_one_at_a_time_and_a_flood_is_told_busy():
    async def main():
        throttle = fast_throttle("pw")
        assert LoginThrottle.max_waiting == 2
        order = []

        async def attempt(guess):
            answer = await throttle.attempt(guess)
            order.append((guess, answer))

        # a is checked at once, b and pw wait their turn: c and d are BUSY at once.
        tasks = [asyncio.create_task(attempt(g)) for g in (b"a", b"b", b"pw", b"c", b"d")]
        for task in tasks:
            await task
        assert (b"c", BUSY) in order and (b"d", BUSY) in order
        assert order.index((b"c", BUSY)) < order.index((b"a", WRONG))
        # The right password waited behind two wrong ones, then got in (b's answer
        # and pw's check come due at the same moment).
        assert order[-3] == (b"a", WRONG)
        assert sorted(order[-2:]) == [(b"b", WRONG), (b"pw", RIGHT)]
        assert throttle.failures == 0 and throttle.waiting == 0

    asyncio.run(main())


def test_a_cancelled_attempt_leaves_the_delay_in_full_and_counts_once():
    # The request deadline, or a client gone, cancels an attempt: the delay its wrong
    # guess started is the throttle's, not the attempt's, and holds for the next one.
    async def main():
        throttle = fast_throttle("pw")
        for _ in range(3):  # up to the 160 ms cap
            assert await throttle.attempt(b"x") == WRONG
        task = asyncio.create_task(throttle.attempt(b"y"))
        await asyncio.sleep(0.02)
        assert throttle.failures == 4  # y was checked at once (the delay had passed)
        task.cancel()  # while its answer waits
        start = ticks_ms()
        assert await throttle.attempt(b"pw") == RIGHT
        took = ticks_diff(ticks_ms(), start)
        assert took >= 160 - 20 - 5, took  # y's delay, served in full
        assert throttle.failures == 0 and throttle.waiting == 0
        # Cancelled while waiting its turn: it was never checked, nothing counts.
        wrong = asyncio.create_task(throttle.attempt(b"z"))
        await asyncio.sleep(0)  # z is checked: 40 ms of delay
        task = asyncio.create_task(throttle.attempt(b"w"))
        await asyncio.sleep(0.01)
        assert throttle.waiting == 1
        task.cancel()
        await asyncio.sleep(0.01)
        assert throttle.waiting == 0 and throttle.failures == 1
        start = ticks_ms()
        assert await throttle.attempt(b"pw") == RIGHT
        assert ticks_diff(ticks_ms(), start) >= 40 - 25  # z's delay still held
        assert await wrong == WRONG

    asyncio.run(main())


def test_an_attempt_that_is_not_busy_is_checked_within_the_worst_wait():
    async def main():
        throttle = fast_throttle("pw")
        for _ in range(5):
            assert await throttle.attempt(b"x") == WRONG
        assert throttle.worst_wait_ms() == 2 * 160
        # The worst case: a wrong guess just checked, one more waiting, then the owner.
        first = asyncio.create_task(throttle.attempt(b"a"))
        await asyncio.sleep(0)
        ahead = asyncio.create_task(throttle.attempt(b"b"))
        await asyncio.sleep(0)
        assert not throttle.busy()
        start = ticks_ms()
        assert await throttle.attempt(b"pw") == RIGHT
        took = ticks_diff(ticks_ms(), start)
        assert 2 * 160 - 30 <= took <= throttle.worst_wait_ms() + 60, took
        assert await first == WRONG and await ahead == WRONG

    asyncio.run(main())


def test_locked_config_refuses_every_password():
    async def main():
        throttle = fast_throttle(None)  # netconf.LOCKED
        for guess in (b"", b"None", b"pw"):
            assert await throttle.attempt(guess) == WRONG

    asyncio.run(main())


def test_least_recently_used_counts_uses_within_the_same_second():
    sessions = Sessions()
    tokens = [sessions.open(100) for _ in range(4)]
    assert sessions.valid(tokens[0], 100)
    sessions.open(100)
    assert not sessions.valid(tokens[1], 100)
    assert sessions.valid(tokens[0], 100) and sessions.valid(tokens[2], 100)
