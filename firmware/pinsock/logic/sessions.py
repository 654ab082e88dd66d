# Who may use the device when config.json sets a password: login sessions, and the
# throttle that slows down guessing. Pure logic; transport/login_routes.py puts it on
# HTTP.
#
# A session is a random token the device hands out on a correct password, kept in a
# browser cookie. Tokens live only in RAM: a restart logs everyone out. The table is
# small and fixed; a new login takes a free or expired slot, else the least recently
# used one. Times are whole seconds from the caller (time.time() on the device), so a
# test can play the clock.
import asyncio
import os
from binascii import hexlify
from time import time

from ..compat import ticks_diff, ticks_ms

try:
    from asyncio import sleep_ms
except ImportError:  # CPython

    async def sleep_ms(ms):
        await asyncio.sleep(ms / 1000)


# Bytes of randomness in a token (os.urandom: the chip's hardware generator on ESP32
# and RP2040, the OS's on the unix port); sent as twice as many hex digits.
TOKEN_BYTES = 16


def now_s():
    """The clock sessions are timed by: whole seconds of the device's real-time clock."""
    return int(time())


def same_bytes(given, secret):
    """given == secret, in a time that depends only on len(given).

    Both are bytes. The loop always runs over all of `given` and never stops at the
    first difference, so the answer's timing does not say how much of a guess was
    right, nor how long the secret is."""
    diff = len(given) ^ len(secret)
    n = len(secret) or 1
    padded = secret or b"\0"
    for i in range(len(given)):
        diff |= given[i] ^ padded[i % n]
    return diff == 0


class Sessions:
    # Logged-in sessions held at once (browsers, consoles). A new login beyond this
    # ends the least recently used session.
    max_sessions = 4
    # A session unused for this long ends (each request made with it counts as use).
    idle_s = 24 * 3600
    # A session ends this long after its login, used or not.
    lifetime_s = 7 * 24 * 3600

    def __init__(self):
        n = self.max_sessions
        self._tokens = [b""] * n  # hex digits as bytes; b"" is a free slot
        self._created = [0] * n
        self._used = [0] * n
        # Which slot was used last: a counter, as many requests share one second.
        self._turn = [0] * n
        self._turns = 0

    def open(self, now):
        """A new session; returns its token (str) for the cookie."""
        slot = 0
        for i in range(self.max_sessions):
            if not self._tokens[i] or self._expired(i, now):
                slot = i
                break
            if self._turn[i] < self._turn[slot]:
                slot = i
        token = hexlify(os.urandom(TOKEN_BYTES))
        self._tokens[slot] = token
        self._created[slot] = now
        self._touch(slot, now)
        return token.decode()

    def valid(self, token, now):
        """True when `token` (the cookie's text, or None) is a live session; marks it used."""
        slot = self._find(token)
        if slot < 0:
            return False
        if self._expired(slot, now):
            self._tokens[slot] = b""
            return False
        self._touch(slot, now)
        return True

    def close(self, token):
        """Log out: the token stops working. False when it was no session."""
        slot = self._find(token)
        if slot >= 0:
            self._tokens[slot] = b""
        return slot >= 0

    def count(self):
        return sum(1 for t in self._tokens if t)

    def _touch(self, slot, now):
        self._used[slot] = now
        self._turns += 1
        self._turn[slot] = self._turns

    def _find(self, token):
        # Every slot is compared in full, whichever matches: the timing says nothing
        # about which slot or how much of a token was right.
        if not token or len(token) != 2 * TOKEN_BYTES:
            return -1
        given = token.encode()
        found = -1
        for i in range(self.max_sessions):
            held = self._tokens[i]
            if held and same_bytes(given, held):
                found = i
        return found

    def _expired(self, slot, now):
        # A clock that went backwards (the RTC set by hand or by NTP) ends sessions
        # too: better to log in again than to keep a session alive by mistake.
        return (now < self._created[slot] or now - self._used[slot] > self.idle_s
                or now - self._created[slot] > self.lifetime_s)


# What LoginThrottle.attempt answers.
RIGHT = 1
WRONG = 0
BUSY = -1


class LoginThrottle:
    """Checks passwords one at a time, and slows down wrong ones.

    After each wrong password no password is checked for first_delay_ms, doubling
    with every further wrong one in a row up to max_delay_ms; the wrong one's answer
    waits as long. So a guesser gets at most one guess per max_delay_ms however many
    connections it opens, while a right password is answered as soon as its turn
    comes, and resets the count. Nothing is permanent, and nothing is kept across a
    restart.

    The delay is the throttle's state (the time before which nothing is checked),
    not a coroutine that sleeps: an attempt that is cancelled or whose client goes
    away while it waits changes nothing, and its guess, once checked, counts once.

    At most max_waiting attempts wait for their turn; more are answered BUSY at once,
    unchecked, so that a flood of guesses cannot pile up connections on the device.
    An attempt therefore waits at most worst_wait_ms() to be checked.
    """

    #: The delay after the first wrong password in a row, in ms; it doubles with each
    #: further one up to max_delay_ms, which also bounds the guess rate.
    first_delay_ms = 1000
    max_delay_ms = 8000
    #: Attempts waiting for their turn (not yet checked); more are answered BUSY (429).
    max_waiting = 2

    def __init__(self, password):
        # None (LOCKED, boot/config_json.py): config.json was unreadable; no password is right.
        self._secret = None if password is None else password.encode()
        self._lock = asyncio.Lock()
        self.failures = 0  # wrong passwords in a row
        self.waiting = 0  # attempts waiting for their turn to be checked
        self._delay_from = 0  # ticks_ms() of the last wrong check
        self._delay_ms = 0  # no password is checked until _delay_from + this

    def delay_ms(self):
        """How long the answer to the current run of wrong passwords waits."""
        delay = self.first_delay_ms
        for _ in range(1, self.failures):
            if delay >= self.max_delay_ms:
                break
            delay *= 2
        return min(delay, self.max_delay_ms)

    def worst_wait_ms(self):
        """The longest an attempt that is not BUSY waits to be checked: the delay under
        way, then one wrong guess's delay for each attempt ahead of it."""
        return self.max_waiting * self.max_delay_ms

    def busy(self):
        """True when an attempt now would be answered BUSY."""
        return self.waiting >= self.max_waiting

    def wait_left_ms(self, now):
        """How long from `now` (ticks_ms) until a password may be checked."""
        left = self._delay_ms - ticks_diff(now, self._delay_from)
        # Past, or not yet: a delay is never longer than max_delay_ms, so a longer
        # wait can only be a ticks_ms wrap after a long quiet time.
        return left if 0 < left <= self.max_delay_ms else 0

    async def attempt(self, guess):
        """RIGHT, WRONG (answered after the delay) or BUSY for `guess` (bytes)."""
        if self.busy():
            return BUSY
        self.waiting += 1
        try:
            async with self._lock:  # in turn: each one waits for the delay it finds
                while True:
                    left = self.wait_left_ms(ticks_ms())
                    if not left:
                        break
                    await sleep_ms(left)
                secret = self._secret
                if secret is not None and same_bytes(guess, secret):
                    self.failures = 0
                    self._delay_ms = 0
                    return RIGHT
                self.failures += 1
                self._delay_from = ticks_ms()
                self._delay_ms = self.delay_ms()
        finally:
            self.waiting -= 1
        # The answer waits as long as the next check does (cancelling this changes
        # nothing: the delay is kept above).
        until, delay = self._delay_from, self._delay_ms
        while True:
            left = delay - ticks_diff(ticks_ms(), until)
            if left <= 0:
                return WRONG
            await sleep_ms(left)
