# Transport: a small asyncio MQTT 3.1.1 client, the link to one broker. It keeps the
# connection up (connect with a will, keepalive, reconnect with backoff) and moves
# packets (mqttcodec.py encodes them); what is published and what a message means is
# its handler's business (transport/mqttsink.py, the device's MQTT sink). Loaded only
# when config.json has an `mqtt` block (boot/startup.py): without one, none of this
# is in the heap.
#
# The handler is told:
#   connected(link)                after every CONNACK: subscribe and publish it all
#   disconnected(link)             a connection ended or a try failed; last_error and
#                                  retry_at say why and when the next try is
#   message(topic, payload, retain)  an incoming PUBLISH (views of the receive buffer,
#                                  valid during the call only)
#   resend(ref)                    after a reconnect, for each QoS 1 publish given a
#                                  `ref` that the broker never acknowledged
#   tick(now)                      once a second while connected
#
# What it never does: touch Wi-Fi, reboot, or block the device. When the broker goes
# away it tries again after a full-jitter backoff (a random wait up to a ceiling that
# doubles from min_backoff_ms to max_backoff_ms), and when the broker keeps taking an
# accepted connection away (two devices with one client id kick each other off), it
# says so once and stays at the longest backoff until a connection lasts.
import asyncio
from array import array
from random import getrandbits

from ..compat import ticks_diff, ticks_ms
from . import mqttcodec as mc

_core = getattr(asyncio, "core", None)  # MicroPython's (not in the stubs; CPython: None)
_IOQueue = getattr(_core, "IOQueue", None)
_POLLIN = 1  # select.POLLIN, POLLOUT: the same numbers on every port
_POLLOUT = 4
# MicroPython's asyncio stream (reader and writer in one, over the socket `s`, with
# `out_buf`): the type checker's stubs describe CPython's, which is another thing.
_open_connection = getattr(asyncio, "open_connection")  # noqa: B009 (hides it from the stubs)

# Where a connection is.
_DOWN = 0
_CONNECTING = 1  # CONNECT sent, waiting for CONNACK
_UP = 2


class MqttLink:
    #: Longest incoming packet kept, in bytes (its remaining length). Longer ones (a
    #: huge message on a topic we subscribe to) are read past and dropped, and the log
    #: says so. The receive buffer is this big.
    max_packet_len = 512
    #: Outgoing packets built in the send buffer; a longer one (a long reply) is built
    #: in a buffer of its own.
    send_buffer_len = 384
    #: Bytes a slow broker may have waiting to be written before the connection is
    #: given up (and made again, which re-publishes everything).
    max_backlog = 4096
    #: QoS 1 publishes of events and replies tracked until acknowledged, to send them
    #: again after a reconnect. When more are unacknowledged, the oldest is no longer
    #: tracked (an event's seq still shows a subscriber the gap).
    max_inflight = 32
    #: A publish not acknowledged this long means the connection is dead: it is closed
    #: and made again, and what was not acknowledged is sent again.
    puback_timeout_ms = 10000
    #: How long to wait for the TCP (and TLS) connection and the CONNACK.
    connect_timeout_ms = 10000
    #: Reconnect backoff: the ceiling of the random wait starts here and doubles...
    min_backoff_ms = 1000
    #: ...up to this.
    max_backoff_ms = 60000
    #: The broker closing an accepted connection this many times, each within
    #: storm_window_ms of the one before, is a reconnect storm (a duplicate client id).
    storm_drops = 3
    storm_window_ms = 60000

    def __init__(self, host, port, client_id, handler, keepalive_s=30, will_topic=None,
                 will_message=b"", user="", password="", ssl=None, log=print):
        self.host = host
        self.port = port
        self.client_id = client_id
        self.handler = handler
        self.keepalive_ms = keepalive_s * 1000
        self.ssl = ssl
        self.log = log
        self._connect_packet = mc.connect(client_id, keepalive_s, True, will_topic,
                                          will_message, 1, True, user, password)
        self._buf = bytearray(self.send_buffer_len)
        self.packet = self._buf  # what begin() writes the head of a publish into
        self._rx = bytearray(self.max_packet_len + 5)  # a packet and its fixed header
        self._rx_view = memoryview(self._rx)
        self._rx_have = 0
        self._readable = Readable()
        self._skip = 0  # bytes of an over-long packet still to read past
        self._backlog = bytearray()
        self._writing = False  # a drain task runs: later packets wait in _backlog
        self.stream = None
        self.state = _DOWN
        self._packet_id = 0
        n = self.max_inflight
        self._flight_id = array("H", bytes(2 * n))  # 0: the slot is free
        self._flight_at = array("i", bytes(4 * n))
        self._flight_ref = [None] * n  # type: list
        self._flight_head = 0
        self._flight_count = 0
        self._last_sent = 0
        self._last_heard = 0
        self._last_acked = 0  # the packet id of the newest PUBACK
        self._connack = -1
        self._drops = 0
        self._dropped_at = 0
        self._storm = False
        self._logged_error = ""  # what the log said went wrong last
        #: What went wrong last ("" while connected), and ticks_ms() of the next try.
        self.last_error = ""
        self.retry_at = 0
        self.connects = 0  # CONNACKs accepted since boot

    @property
    def connected(self):
        return self.state == _UP

    # --- publishing ---------------------------------------------------------------
    def publish(self, topic, payload, retain=False, ref=None, qos=1):
        """Send PUBLISH now (or queued behind what the socket has not taken yet).
        `topic` is UTF-8 bytes, `payload` bytes or a view. With a `ref`, the publish is
        tracked until acknowledged and the handler's resend(ref) is called after a
        reconnect if it never was. False when not connected (nothing is sent)."""
        pos = self.begin(topic, len(payload), retain, ref, qos)
        if pos < 0:
            return False
        end = pos + len(payload)
        self.packet[pos:end] = payload
        self.end(end)
        return True

    def begin(self, topic, payload_len, retain=False, ref=None, qos=1):
        """A PUBLISH whose payload the caller writes itself, allocating nothing: its
        head is written to `packet`, and the position where the payload_len bytes of
        payload go is returned (-1 when not connected: nothing to write). Then end()."""
        if self.state != _UP:
            return -1
        pid = 0
        if qos:
            pid = self._next_id()
        if mc.publish_size(topic, payload_len, qos) > len(self._buf):
            self.packet = bytearray(mc.publish_size(topic, payload_len, qos))  # rare
        if ref is not None:
            self._track(pid, ref)
        return mc.publish_head_into(self.packet, topic, payload_len, qos, retain,
                                    ref is not None and self._resending, pid)

    def end(self, n):
        """Send the packet begin() started, now n bytes long."""
        self._send(self.packet, n)
        self.packet = self._buf

    _resending = False  # set while the handler resends: DUP on what it publishes

    def subscribe(self, topics):
        """SUBSCRIBE to [(topic filter, qos), ...]; the SUBACK is checked when it comes."""
        if self.state == _UP:
            packet = mc.subscribe(self._next_id(), topics)
            self._send(packet, len(packet))

    def _next_id(self):
        pid = self._packet_id % 0xFFFF + 1
        self._packet_id = pid
        return pid

    def _track(self, pid, ref):
        n = self.max_inflight
        if self._flight_count == n:  # the oldest is given up
            self._flight_ref[self._flight_head] = None
            self._flight_head = (self._flight_head + 1) % n
            self._flight_count -= 1
        i = (self._flight_head + self._flight_count) % n
        self._flight_id[i] = pid
        self._flight_at[i] = ticks_ms()
        self._flight_ref[i] = ref
        self._flight_count += 1

    def _acked(self, pid):
        n = self.max_inflight
        i = self._flight_head
        for _ in range(self._flight_count):
            if self._flight_id[i] == pid:
                self._flight_id[i] = 0
                self._flight_ref[i] = None
                break
            i = (i + 1) % n
        # Acknowledged ones at the head leave the ring.
        while self._flight_count and self._flight_id[self._flight_head] == 0:
            self._flight_head = (self._flight_head + 1) % n
            self._flight_count -= 1

    def _unacked(self):
        """The refs not acknowledged, oldest first; the ring is emptied."""
        n = self.max_inflight
        refs = []
        i = self._flight_head
        for _ in range(self._flight_count):
            if self._flight_id[i]:
                refs.append(self._flight_ref[i])
            self._flight_id[i] = 0
            self._flight_ref[i] = None
            i = (i + 1) % n
        self._flight_head = self._flight_count = 0
        return refs

    # --- writing ------------------------------------------------------------------
    def _send(self, data, n):
        """Write data[:n] (bytes or a buffer the caller reuses: what the socket does not
        take at once is copied)."""
        stream = self.stream
        if stream is None:
            return
        self._last_sent = ticks_ms()
        if not self._writing:
            try:
                k = stream.s.write(data, 0, n)  # non-blocking: what fits now
            except OSError as exc:
                self._fail("write: %r" % exc)
                return
            if k == n:
                return
            k = k or 0  # None: nothing was taken
            self._writing = True
            self._backlog.extend(memoryview(data)[k:n])
            asyncio.create_task(self._drain(stream))
            return
        # Behind what waits already, to keep the order.
        if len(self._backlog) + n > self.max_backlog:
            self._fail("the broker does not read (%d bytes waiting)" % self.max_backlog)
            return
        self._backlog.extend(memoryview(data)[:n])

    async def _drain(self, stream):
        # A task only while the socket is full: hands asyncio what waits, until none.
        try:
            while self._backlog and stream is self.stream:
                stream.out_buf = bytes(self._backlog)
                self._backlog = bytearray()
                await stream.drain()
        except Exception as exc:
            self._fail("write: %r" % exc)
        self._writing = False

    def _fail(self, why):
        """Give the connection up: the reader task wakes and the link reconnects."""
        stream = self.stream
        if stream is not None and self.state != _DOWN:
            self.last_error = why
            self.state = _DOWN
            self._readable.release()
            try:
                stream.s.close()  # wakes the reader blocked on it
            except Exception:
                pass

    # --- reading ------------------------------------------------------------------
    async def _fill(self, stream):
        """Wait until the socket can be read, then read what has arrived into the
        receive buffer (and handle it: _read); EOFError when the connection closed.
        A generator, so each call makes one: the session's loop awaits `_readable` and
        calls _read() itself, which makes nothing."""
        readable = self._readable
        readable.keep(stream.s)  # again: perhaps on a new event loop (disconnect)
        await readable  # pyright: ignore[reportGeneralTypeIssues] (an iterator will do)
        self._read(stream.s)

    def _read(self, sock):
        """Read what the socket has into the receive buffer and handle every whole
        packet (_process); EOFError when it has closed."""
        if self._skip:
            chunk = sock.read(min(self._skip, 256))
            if chunk is None:
                return
            if not chunk:
                raise EOFError
            self._skip -= len(chunk)
            return
        have = self._rx_have
        # Mostly the buffer is empty (every packet so far was whole): no view is needed.
        if have:
            k = sock.readinto(self._rx_view[have:])
        else:
            k = sock.readinto(self._rx)
        if k is None:  # TLS: a record not complete yet
            return
        if not k:
            raise EOFError
        self._rx_have = have + k
        self._last_heard = ticks_ms()
        self._process()

    def _process(self):
        """Handle every whole packet in the receive buffer, keep the start of the next."""
        rx = self._rx
        have = self._rx_have
        pos = 0
        while have - pos >= 2:
            n = 0
            shift = 0
            i = pos + 1
            while True:
                if i >= have:
                    n = -1  # the length is not all here yet
                    break
                byte = rx[i]
                i += 1
                n |= (byte & 0x7F) << shift
                if not byte & 0x80:
                    break
                shift += 7
                if shift > 21:
                    raise mc.MqttError("remaining length longer than 4 bytes")
            if n < 0:
                break
            if n > self.max_packet_len:
                self.log("mqtt: dropping a %d-byte packet (max_packet_len %d)"
                         % (n, self.max_packet_len))
                self._skip = n - (have - i)
                if self._skip < 0:  # all of it is here already
                    pos = i + n
                    self._skip = 0
                    continue
                pos = have
                break
            if have - i < n:
                break
            self._dispatch(rx[pos], i, n)
            pos = i + n
        if pos == have:  # mostly: every packet was whole (no view, no slice to make)
            self._rx_have = 0
        elif pos:
            rx[: have - pos] = self._rx_view[pos:have]
            self._rx_have = have - pos

    def _dispatch(self, first, start, n):
        rx = self._rx
        kind = first & 0xF0
        if self.state == _CONNECTING:
            if kind != mc.CONNACK:
                raise mc.MqttError("expected CONNACK, got 0x%02x" % first)
            self._connack = mc.parse_connack(self._rx_view[start : start + n])[1]
        elif kind == mc.PUBACK:
            if n != 2:
                raise mc.MqttError("PUBACK is 2 bytes")
            pid = (rx[start] << 8) | rx[start + 1]
            self._last_acked = pid
            self._acked(pid)
        elif kind == mc.PUBLISH:
            topic, payload, qos, retain, _, pid = mc.parse_publish(
                first, self._rx_view[start : start + n])
            if qos:  # acknowledged first: a handler that fails does not stop it
                self._send(mc.puback(pid), 4)
            try:
                self.handler.message(topic, payload, retain)
            except Exception as exc:  # a bug in the handler: logged, the link lives
                self.log("mqtt: error handling a message: %r" % exc)
        elif kind == mc.SUBACK:
            _, codes = mc.parse_suback(self._rx_view[start : start + n])
            if mc.SUBSCRIBE_FAILED in codes:
                self.log("mqtt: the broker refused a subscription (%r): commands may not"
                         " arrive" % codes)
        elif kind == mc.PINGRESP:
            pass
        else:
            raise mc.MqttError("unexpected packet 0x%02x" % first)

    # --- the connection -----------------------------------------------------------
    async def run(self):
        """The link's task: connect, serve, reconnect, for ever."""
        attempt = 0
        while True:
            accepted_at = None
            try:
                accepted_at = await self._session()
            except Exception as exc:  # OSError, EOFError, MqttError, a timeout
                if not self.last_error:
                    self.last_error = repr(exc)
            # Not in a `finally`: a KeyboardInterrupt passing through (Ctrl-C) must leave
            # the connection open for the goodbye (MqttSink.goodbye).
            self._close()
            if accepted_at is not None:
                attempt = 0
                self._dropped(accepted_at)
            ceiling = self.max_backoff_ms
            if not self._storm:
                ceiling = min(ceiling, self.min_backoff_ms << min(attempt, 16))
                attempt += 1
                wait = getrandbits(16) * ceiling >> 16  # full jitter: 0 .. ceiling
            else:  # stay at the longest backoff; jitter keeps two clones apart
                wait = ceiling // 2 + (getrandbits(16) * (ceiling // 2) >> 16)
            self.retry_at = ticks_ms() + wait
            self.handler.disconnected(self)
            if self.last_error != self._logged_error:  # each trouble once, not each try
                self._logged_error = self.last_error
                self.log("mqtt: %s; retrying in %d.%d s" % (self.last_error, wait // 1000,
                                                          wait % 1000 // 100))
            await asyncio.sleep_ms(wait)

    def _dropped(self, accepted_at):
        # An accepted connection ended. Short-lived ones in a row are a storm.
        now = ticks_ms()
        lasted = ticks_diff(now, accepted_at)
        if lasted >= self.storm_window_ms:
            self._drops = 0
            self._storm = False
            return
        if self._drops and ticks_diff(now, self._dropped_at) > self.storm_window_ms:
            self._drops = 0
        self._drops += 1
        self._dropped_at = now
        if self._drops >= self.storm_drops and not self._storm:
            self._storm = True
            self.log("mqtt: the broker closed the connection %d times within a minute:"
                     " is another device using the client id %r? Retrying every %d s"
                     % (self._drops, self.client_id, self.max_backoff_ms // 1000))

    async def _session(self):
        """One connection: returns ticks_ms() of the CONNACK once it has ended (None
        when it was never accepted)."""
        self.last_error = ""
        self._rx_have = 0
        self._skip = 0
        self._connack = -1
        stream = await asyncio.wait_for_ms(self._open(), self.connect_timeout_ms)
        self.stream = stream
        self.state = _CONNECTING
        self._writing = False
        self._backlog = bytearray()
        self._send(self._connect_packet, len(self._connect_packet))
        await asyncio.wait_for_ms(self._read_connack(stream), self.connect_timeout_ms)
        code = self._connack
        if code:
            self.last_error = "%s:%d refused the connection: %s" % (
                self.host, self.port, mc.REFUSED.get(code, "code %d" % code))
            return None
        self._logged_error = ""
        accepted_at = ticks_ms()
        self.state = _UP
        self.connects += 1
        self.log("mqtt: connected to %s:%d as %s" % (self.host, self.port, self.client_id))
        unacked = self._unacked()
        self.handler.connected(self)
        self._resending = True
        try:
            for ref in unacked:
                self.handler.resend(ref)
        finally:
            self._resending = False
        ticker = asyncio.create_task(self._tick())
        readable = self._readable
        sock = stream.s
        readable.keep(sock)
        try:
            while self.state == _UP:
                await readable  # pyright: ignore[reportGeneralTypeIssues]
                self._read(sock)
        except Exception as exc:
            if self.state == _UP:  # not given up on purpose (_fail says why)
                self.last_error = ("the broker closed the connection"
                                   if isinstance(exc, EOFError) else repr(exc))
        finally:
            ticker.cancel()
        return accepted_at

    async def _open(self):
        if self.ssl is None:
            return (await _open_connection(self.host, self.port))[0]
        return (await _open_connection(self.host, self.port, ssl=self.ssl,
                                       server_hostname=self.host))[0]

    async def _read_connack(self, stream):
        while self._connack < 0:
            await self._fill(stream)

    async def _tick(self):
        # Once a second: a PINGREQ when we have been quiet for half the keepalive,
        # and the connection given up when the broker has been silent for the whole
        # keepalive (it answers a PINGREQ at once) or a publish waits too long.
        keepalive = self.keepalive_ms
        while self.state == _UP:
            await asyncio.sleep_ms(1000)
            now = ticks_ms()
            self.handler.tick(now)
            if keepalive:
                if ticks_diff(now, self._last_heard) > keepalive:
                    self._fail("no answer from the broker for %d s" % (keepalive // 1000))
                    return
                if ticks_diff(now, self._last_sent) >= keepalive // 2:
                    self._send(mc.PINGREQ_PACKET, 2)
            if self._flight_count and ticks_diff(
                    now, self._flight_at[self._flight_head]) > self.puback_timeout_ms:
                self._fail("no PUBACK for %d s" % (self.puback_timeout_ms // 1000))
                return

    def _close(self):
        stream = self.stream
        self.stream = None
        self.state = _DOWN
        self._writing = False
        self._backlog = bytearray()
        if stream is not None:
            self._readable.release()
            try:
                stream.s.close()
            except Exception:
                pass

    async def disconnect(self, last=None):
        """Leave cleanly: publish `last` (topic, payload), retained (the `offline` the
        will would say), wait for its PUBACK, then DISCONNECT, so the broker does not
        send the will. (Closing before the PUBACK is written makes Mosquitto 2.0 drop
        the connection as if it had failed, DISCONNECT unread.) Runs when the firmware
        stops, perhaps on a new event loop: a drain task of the old one is gone, so what
        it had not written goes first."""
        stream = self.stream
        if self.state != _UP or stream is None:
            return
        pending = bytes(stream.out_buf) + bytes(self._backlog)
        self._backlog = bytearray()
        self._writing = True  # everything below waits in _backlog, in order
        pid = 0
        if last is not None:
            self.publish(last[0], last[1], True)
            pid = self._packet_id
        stream.out_buf = pending + bytes(self._backlog)
        self._backlog = bytearray()
        try:
            await stream.drain()
            while pid and self._last_acked != pid:
                await self._fill(stream)
            stream.out_buf = mc.DISCONNECT_PACKET
            await stream.drain()
        except Exception:
            pass
        self._close()


class Readable:
    """`await Readable()` (its .sock set) waits until the socket can be read, as
    asyncio's Stream.read does before each read, without the generator that every call
    of Stream.read makes (lifecycle.py's FlagWait does the same for a flag).

    It also keeps the socket registered with asyncio between waits. asyncio's IO queue
    makes a new entry (a list [reader, writer, socket]) and registers the socket with
    its poller (a new poll object) at every wait, and forgets both at every wake-up:
    about 100 bytes each time, and the broker's PUBACK for each publish wakes the
    reader, so each change published at QoS 1 cost that much. keep() puts two methods
    of this object on the IO queue in front of its own: a wake-up of the kept socket
    leaves its entry and registration in place, asking the poller for nothing, and the
    next wait (read, or the drain's write) fills the same entry again; every other
    socket goes through asyncio's own code. release() gives the entry back before the
    socket closes. Leans on asyncio's IOQueue (map, poller, _enqueue, _dequeue),
    unchanged from MicroPython 1.20 to 1.29."""

    def __init__(self):
        self.sock = None  # the kept socket
        self._key = None  # id(sock), the IO queue's key for it, made once
        self._queue = None  # the IO queue our methods are installed on
        self._waiting = False
        self._stop = StopIteration()

    def keep(self, sock):
        """Wait on `sock` from now on, keeping it registered (release() before it
        closes)."""
        if sock is not self.sock:
            self.sock = sock
            self._key = id(sock)  # (a long int on a 32-bit unix port: made once here)
        queue = _core._io_queue if _core is not None else None
        if queue is not None and queue is not self._queue:  # a new event loop's
            self._queue = queue
            queue._enqueue = self._enqueue
            queue._dequeue = self._dequeue

    def release(self):
        """Forget the kept socket; its entry goes now unless a task still waits on it
        (closing the socket wakes that task, and the entry goes then)."""
        sock, key = self.sock, self._key
        self.sock = self._key = None
        queue = self._queue
        if sock is None or queue is None or queue is not _core._io_queue:
            return
        entry = queue.map.get(key)
        if entry is not None and entry[0] is None and entry[1] is None:
            del queue.map[key]
            queue.poller.unregister(sock)

    def _enqueue(self, s, idx):  # IOQueue._enqueue, on the queue keep() installed on
        queue = self._queue
        if s is self.sock:
            entry = queue.map.get(self._key)
            if entry is not None and entry[0] is None and entry[1] is None:
                task = _core.cur_task
                entry[idx] = task
                queue.poller.modify(s, _POLLOUT if idx else _POLLIN)
                task.data = queue  # as asyncio's: a cancelled task leaves the queue
                return
        _IOQueue._enqueue(queue, s, idx)

    def _dequeue(self, s):  # IOQueue._dequeue: asyncio calls it when no task waits on s
        queue = self._queue
        if s is self.sock:
            entry = queue.map[self._key]
            if entry[0] is None and entry[1] is None:  # kept: nothing to poll for now
                queue.poller.modify(s, 0)
                return
        del queue.map[id(s)]
        queue.poller.unregister(s)

    def __iter__(self):  # what MicroPython's `await` calls
        self._waiting = False
        return self

    def __next__(self):
        if not self._waiting:
            self._waiting = True
            _core._io_queue.queue_read(self.sock)  # the task sleeps until it is readable
            return None
        self._waiting = False
        stop = self._stop
        stop.__traceback__ = None
        raise stop
