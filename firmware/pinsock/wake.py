# Waiting for the scan task's wake flag without allocating (MicroPython's asyncio).
#
# `await flag.wait()` makes a new generator object on every wakeup: asyncio's
# Event.wait and ThreadSafeFlag.wait are generator functions. That is 96 bytes on the
# unix port for every switch change. FlagWait is made once and awaited again and
# again: its __next__ does what the body of the flag's own wait() does (asyncio's
# event.py), and like asyncio's SingletonGenerator (core.py, what sleep_ms returns)
# it ends each wait by raising one StopIteration made beforehand.
#
# It leans on asyncio's insides (core.cur_task, an Event's `waiting` queue, the IO
# queue a ThreadSafeFlag waits in), unchanged from MicroPython 1.20 to 1.29: the
# device tests run it on the unix port with both kinds of flag. (A ThreadSafeFlag's
# wait still allocates inside asyncio, its IO queue entry; an Event's allocates
# nothing.)
import asyncio

_core = getattr(asyncio, "core")  # noqa: B009 (MicroPython's; not in the stubs)


class FlagWait:
    """`await FlagWait(flag)` = `await flag.wait()` for an asyncio.Event or
    ThreadSafeFlag, allocating nothing itself. One waiting task at a time."""

    def __init__(self, flag):
        self.flag = flag
        self._is_event = isinstance(flag, asyncio.Event)
        self._waiting = False
        self._stop = StopIteration()

    def __iter__(self):  # what MicroPython's `await` calls
        self._waiting = False  # a wait given up (cancelled) does not carry over
        return self

    def __next__(self):
        flag = self.flag
        if not self._waiting and not flag.state:
            # Park the task where flag.set() finds it, and yield nothing: asyncio
            # leaves a task that yields None alone until something schedules it.
            self._waiting = True
            task = _core.cur_task
            if self._is_event:
                flag.waiting.push(task)
                task.data = flag.waiting
            else:
                _core._io_queue.queue_read(flag)
            return None
        self._waiting = False
        if not self._is_event:
            flag.state = 0  # a ThreadSafeFlag clears itself when a wait ends
        stop = self._stop
        stop.__traceback__ = None
        raise stop
