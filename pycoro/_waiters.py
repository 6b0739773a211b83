"""FIFO wait queues with direct hand-off, shared by pycoro.sync and pycoro.channel.

A waiter is a record ``[task, value, granted]``.  Whoever makes progress for a
waiter (releases a lock, puts an item...) does the waiter's operation *for* it
(`grant`: hands over the lock, stores the item in ``rec[1]``), marks it granted
and wakes the task, so a woken task never has to retry and can't lose a race.
A waiter interrupted (cancelled, timed out) before it is granted marks its
record dead (``rec[0] = None``) and is skipped.  One interrupted *after* it was
granted keeps the result and gets the interruption at its next suspension
point (`hub._rearm`), so an operation never both happens and fails.
"""
from collections import deque
from threading import get_ident

from .hub import _current_task, _park_timeout, _rearm


class WaitQueue:
    __slots__ = ("_q", "_dead")

    def __init__(self):
        self._q = deque()
        self._dead = 0

    def wait(self, cur, value, timeout):
        """Park `cur` at the back; True once granted, False on its own timeout."""
        rec = [cur, value, False]
        self._q.append(rec)
        try:
            _park_timeout(cur, timeout)
        except BaseException as e:
            if rec[2]:
                _rearm(cur, e)
                return rec
            self._abandon(rec)
            raise
        if rec[2]:
            return rec
        self._abandon(rec)
        return None

    def _abandon(self, rec):
        rec[0] = None
        self._dead += 1
        q = self._q
        if self._dead > 32 and self._dead * 2 > len(q):
            live = [r for r in q if r[0] is not None]
            q.clear()
            q.extend(live)
            self._dead = 0

    def peek(self):
        """The first live record (not removed), or None."""
        q = self._q
        while q:
            rec = q[0]
            if rec[0] is not None:
                return rec
            q.popleft()
            if self._dead:
                self._dead -= 1
        return None

    def pop(self):
        """Remove and return the first live record, or None.  Raises (and
        changes nothing) if that waiter belongs to another thread's hub."""
        q = self._q
        while q:
            rec = q[0]
            if rec[0] is not None:
                check_thread(rec)
                return q.popleft()
            q.popleft()
            if self._dead:
                self._dead -= 1
        return None

    def forget(self, rec):
        """`rec` (shared with other queues by select()) is finished: count it dead here."""
        rec[0] = None
        self._abandon(rec)


def check_thread(rec):
    """Waking a task of another thread's hub is not allowed."""
    hub = rec[0]._hub
    if hub._thread_id != get_ident():
        raise RuntimeError(
            "pycoro sync objects are per-thread: wake another thread's tasks "
            "with hub.call_soon_threadsafe()"
        )
    return hub


def grant(rec, value=None):
    """Complete a waiter's operation (already done by the caller) and wake it.
    `rec` comes from `WaitQueue.pop`, which checked the thread."""
    hub = rec[0]._hub
    rec[1] = value
    rec[2] = True
    t = rec[0]
    rec[0] = None  # a granted record is no longer waiting
    hub._wake(t)


__all__ = ["WaitQueue", "check_thread", "grant", "_current_task"]
