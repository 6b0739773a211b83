"""Synchronization between tasks: the `threading` interfaces
(Event, Lock, RLock, Semaphore, BoundedSemaphore, Condition) and the
`queue.Queue` interface, each blocking call with `timeout=`.

All are FIFO and hand off directly to the longest waiter (no barging, no
lost wake-ups under cancellation: see `pycoro._waiters`).  They work between
the tasks of one hub, and between the hubs of a multi-hub run (their methods
then run under _parking.XLOCK, see `shared_methods`); to wake a task of an
unrelated thread's hub go through `hub.call_soon_threadsafe`.

May call: pycoro._waiters (WaitQueue, Waiter.wake) and the package-internal
interface of pycoro._hub (_errors, _parking.shared_methods, _scopes.shield)
-- no private hub names.
"""
from types import GenericAlias as _GenericAlias
import queue as _queue
from collections import deque

from ._pycoro import current as _current
from ._hub._errors import Timeout, check_timeout
from ._hub._parking import shared_methods
from ._hub._scopes import shield
from ._waiters import WaitQueue, check_thread, current_task

__all__ = ["BoundedSemaphore", "Condition", "Event", "Lock", "Queue", "RLock", "Semaphore"]


def _lock_timeout(blocking, timeout):
    """threading's (blocking, timeout) convention; -1 and None mean forever."""
    if not blocking:
        if timeout is not None and timeout != -1:
            raise ValueError("can't specify a timeout for a non-blocking call")
        return None
    if timeout is None or timeout == -1:
        return None
    return check_timeout(timeout)


class _Flagged:
    """One boolean (an Event's "set", a Lock's "locked") and the tasks that
    wait for it to change.  A subclass names its `_kind` and its `_states`
    (the repr's words for False and True)."""

    __slots__ = ("_flag", "_waiters")

    def __init__(self):
        self._flag = False
        self._waiters = WaitQueue()

    def __repr__(self):
        return f"<pycoro.{self._kind} {self._states[self._flag]}>"


@shared_methods("set", "clear", "wait")
class Event(_Flagged):
    """threading.Event for tasks: `wait()` returns True once set, False on timeout."""

    __slots__ = ()
    _kind, _states = "Event", ("unset", "set")

    def is_set(self):
        return self._flag

    def set(self):
        waiters = self._waiters
        w = waiters.peek()
        if w is not None:
            check_thread(w.task)  # before any change
        self._flag = True
        while (rec := waiters.pop()) is not None:
            rec.wake()

    def clear(self):
        self._flag = False

    def wait(self, timeout=None):
        timeout = check_timeout(timeout)
        if self._flag:
            return True
        cur = current_task("Event.wait()")
        return self._waiters.wait(cur, None, timeout) is not None


@shared_methods("acquire", "release", "__enter__", "__exit__", "_release_save", "_acquire_restore")
class Lock(_Flagged):
    """threading.Lock for tasks.  Any task may release it (as with threading)."""

    __slots__ = ()
    _kind, _states = "Lock", ("unlocked", "locked")

    def locked(self):
        return self._flag

    def acquire(self, blocking=True, timeout=-1):
        timeout = _lock_timeout(blocking, timeout)
        if not self._flag:
            self._flag = True
            return True
        return self._waiters.acquire(blocking, timeout, "Lock.acquire()")

    def release(self):
        if not self._flag:
            raise RuntimeError("release unlocked lock")
        rec = self._waiters.pop()
        if rec is None:
            self._flag = False
        else:
            rec.wake()  # stays locked: ownership passes to the waiter

    __enter__ = acquire

    def __exit__(self, *exc):
        self.release()

    # Condition support
    def _release_save(self):
        self.release()

    def _acquire_restore(self, state):
        self.acquire()

    def _is_owned(self):
        return self._flag


@shared_methods("acquire", "release", "__enter__", "__exit__", "_release_save", "_acquire_restore")
class RLock:
    """threading.RLock for tasks; the owner is the acquiring task (fiber)."""

    __slots__ = ("_owner", "_count", "_waiters")

    def __init__(self):
        self._owner = None
        self._count = 0
        self._waiters = WaitQueue()

    def __repr__(self):
        return f"<pycoro.RLock owner={self._owner!r} count={self._count}>"

    def acquire(self, blocking=True, timeout=-1):
        timeout = _lock_timeout(blocking, timeout)
        me = _current()
        if self._owner is me:
            self._count += 1
            return True
        if self._owner is None:
            self._owner = me
            self._count = 1
            return True
        return self._waiters.acquire(blocking, timeout, "RLock.acquire()")

    def release(self):
        if self._owner is not _current():
            raise RuntimeError("cannot release un-acquired lock")
        self._count -= 1
        if self._count == 0:
            self._hand_off()

    def _hand_off(self):
        rec = self._waiters.pop()
        if rec is None:
            self._owner = None
        else:
            self._owner = rec.task
            self._count = 1
            rec.wake()

    __enter__ = acquire

    def __exit__(self, *exc):
        self.release()

    def _release_save(self):
        if self._owner is not _current():
            raise RuntimeError("cannot release un-acquired lock")
        count = self._count
        self._count = 0
        self._hand_off()
        return count

    def _acquire_restore(self, count):
        self.acquire()
        self._count = count

    def _is_owned(self):
        return self._owner is _current()


@shared_methods("acquire", "__enter__", "release", "__exit__")
class Semaphore:
    """threading.Semaphore for tasks."""

    __slots__ = ("_value", "_waiters")

    def __init__(self, value=1):
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        self._value = value
        self._waiters = WaitQueue()

    def __repr__(self):
        return f"<pycoro.{type(self).__name__} value={self._value}>"

    def acquire(self, blocking=True, timeout=None):
        timeout = _lock_timeout(blocking, timeout)
        if self._value > 0:
            self._value -= 1
            return True
        return self._waiters.acquire(blocking, timeout, "Semaphore.acquire()")

    __enter__ = acquire

    def release(self, n=1):
        if n < 1:
            raise ValueError("n must be one or more")
        for _ in range(n):
            self._release1()

    def _release1(self):
        rec = self._waiters.pop()
        if rec is None:
            self._value += 1
        else:
            rec.wake()  # the unit goes straight to the waiter

    def __exit__(self, *exc):
        self.release()


@shared_methods("release")
class BoundedSemaphore(Semaphore):
    """A Semaphore that refuses to be released above its initial value."""

    __slots__ = ("_initial",)

    def __init__(self, value=1):
        super().__init__(value)
        self._initial = value

    def release(self, n=1):
        if n < 1:
            raise ValueError("n must be one or more")
        if self._value + n > self._initial:
            raise ValueError("Semaphore released too many times")
        for _ in range(n):
            self._release1()


@shared_methods("wait", "notify")
class Condition:
    """threading.Condition for tasks (default lock: an RLock)."""

    __slots__ = ("_lock", "_waiters")

    def __init__(self, lock=None):
        if lock is None:
            lock = RLock()
        self._lock = lock
        self._waiters = WaitQueue()

    def acquire(self, *args, **kwargs):
        return self._lock.acquire(*args, **kwargs)

    def release(self):
        return self._lock.release()

    def __repr__(self):
        return f"<pycoro.Condition {self._lock!r}>"

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *exc):
        return self._lock.__exit__(*exc)

    def wait(self, timeout=None):
        timeout = check_timeout(timeout)
        if not self._lock._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        cur = current_task("Condition.wait()")
        saved = self._lock._release_save()
        try:
            return self._waiters.wait(cur, None, timeout) is not None
        finally:
            # Like threading: the lock is always re-acquired, even when interrupted.
            with shield():
                self._lock._acquire_restore(saved)

    def wait_for(self, predicate, timeout=None):
        timeout = check_timeout(timeout)
        result = predicate()
        if result:
            return result
        if timeout is None:
            while not result:
                self.wait()
                result = predicate()
            return result
        from time import monotonic
        end = monotonic() + timeout
        while not result:
            left = end - monotonic()
            if left <= 0:
                break
            self.wait(left)
            result = predicate()
        return result

    def notify(self, n=1):
        if not self._lock._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        waiters = self._waiters
        for _ in range(n):
            rec = waiters.pop()
            if rec is None:
                break
            rec.wake()

    def notify_all(self):
        self.notify(1 << 62)


@shared_methods("put", "get", "task_done", "join")
class Queue:
    """queue.Queue for tasks: FIFO, `maxsize <= 0` means unbounded; raises
    `queue.Empty`/`queue.Full`.  Items go straight to a waiting getter."""

    __class_getitem__ = classmethod(_GenericAlias)

    def __init__(self, maxsize=0):
        self.maxsize = maxsize
        self._items = deque()
        self._getters = WaitQueue()
        self._putters = WaitQueue()
        self._unfinished = 0
        self._joiners = WaitQueue()

    def __repr__(self):
        return f"<pycoro.Queue size={len(self._items)} maxsize={self.maxsize}>"

    def qsize(self):
        return len(self._items)

    def empty(self):
        return not self._items

    def full(self):
        return 0 < self.maxsize <= len(self._items)

    def put(self, item, block=True, timeout=None):
        timeout = check_timeout(timeout)
        rec = self._getters.pop()
        if rec is not None:  # the queue is empty and somebody waits: hand it over
            self._unfinished += 1
            rec.wake(item)
            return
        if not (0 < self.maxsize <= len(self._items)):
            self._items.append(item)
            self._unfinished += 1
            return
        if not block:
            raise _queue.Full
        cur = current_task("Queue.put()")
        if self._putters.wait(cur, item, timeout) is None:
            raise _queue.Full
        # A getter made room and moved our item in for us.

    def put_nowait(self, item):
        self.put(item, block=False)

    def get(self, block=True, timeout=None):
        timeout = check_timeout(timeout)
        if self._items:
            item, rec = self._putters.take_refilling(self._items)
            if rec is not None:  # a waiting putter's item moved in
                self._unfinished += 1
                rec.wake()
            return item
        if not block:
            raise _queue.Empty
        cur = current_task("Queue.get()")
        rec = self._getters.wait(cur, None, timeout)
        if rec is None:
            raise _queue.Empty
        return rec.value

    def get_nowait(self):
        return self.get(block=False)

    def task_done(self):
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0:
            joiners = self._joiners
            while (rec := joiners.pop()) is not None:
                rec.wake()

    def join(self, timeout=None):
        """Block until every item put has been marked task_done().  Timeout -> pycoro.Timeout."""
        timeout = check_timeout(timeout)
        if self._unfinished == 0:
            return
        cur = current_task("Queue.join()")
        if self._joiners.wait(cur, None, timeout) is None:
            raise Timeout(f"queue not drained within {timeout}s")
