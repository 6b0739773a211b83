"""FIFO wait queues with direct hand-off, shared by pycoro.sync and pycoro.channel.

A queue holds `Waiter`s (pycoro._hub._parking).  Whoever makes progress for
a waiter (releases a lock, puts an item...) does the waiter's operation *for*
it and grants it (`w.wake(value)`, with the item as value; `w` comes from
`WaitQueue.pop`, which checked the thread), so a woken task
never has to retry and can't lose a race.  A waiter interrupted (cancelled,
timed out) before it is granted is abandoned (its `task` cleared) and
skipped.  One interrupted *after* it was granted keeps the result and gets
the interruption at its next suspension point (`rearm`), so an operation
never both happens and fails.

The queues are used inside the sync objects' methods only, so in a
multi-hub run they are guarded by the XLOCK those methods hold.

May call: pycoro._hub._parking (Waiter, park, check_thread) and _scopes
(park_until, rearm) -- the primitive's package-internal interface only.
"""
from collections import deque

from ._hub._parking import Waiter, check_thread, current_task, park
from ._hub._scopes import park_until, rearm

__all__ = ["WaitQueue", "Waiter", "check_thread", "current_task"]


class WaitQueue:
    __slots__ = ("_q", "_dead")

    def __init__(self):
        self._q = deque()
        self._dead = 0

    def wait(self, cur, value, timeout):
        """Park `cur` at the back; its Waiter once granted, None on its own timeout."""
        w = Waiter(cur, value)
        self._q.append(w)
        try:
            if timeout is None:
                park()
            else:
                park_until(cur, timeout)
        except BaseException as e:
            if w.granted:
                rearm(cur, e)
                return w
            self._abandon(w)
            raise
        if w.granted:
            return w
        self._abandon(w)
        return None

    def acquire(self, blocking, timeout, what):
        """The waiting part of a lock's or semaphore's acquire(): False at
        once if not `blocking`, else whether the current task (which `what`
        names in the error outside a task) was granted before `timeout`."""
        if not blocking:
            return False
        return self.wait(current_task(what), None, timeout) is not None

    def push(self, w):
        """Queue a waiter made by the caller (select() shares one task's waiters)."""
        self._q.append(w)

    def _abandon(self, w):
        w.task = None
        self._dead += 1
        q = self._q
        if self._dead > 32 and self._dead * 2 > len(q):
            live = [r for r in q if r.task is not None]
            q.clear()
            q.extend(live)
            self._dead = 0

    def peek(self):
        """The first live waiter (not removed), or None."""
        q = self._q
        while q:
            w = q[0]
            if w.task is not None:
                return w
            q.popleft()
            if self._dead:
                self._dead -= 1
        return None

    def pop(self):
        """Remove and return the first live waiter, or None.  Raises (and
        changes nothing) if that waiter belongs to another thread's hub."""
        q = self._q
        while q:
            w = q[0]
            if w.task is not None:
                check_thread(w.task)
                return q.popleft()
            q.popleft()
            if self._dead:
                self._dead -= 1
        return None

    def take_refilling(self, buf):
        """Take the first item of `buf` (a deque these waiters put into when
        it has room); if a waiter is waiting to put, move its value in behind.
        Returns (item, that waiter, for the caller to grant, or None)."""
        item = buf.popleft()
        w = self.pop()
        if w is not None:
            buf.append(w.value)
        return item, w

    def forget(self, w):
        """`w` (one of a select()'s waiters) is finished: count it dead here."""
        self._abandon(w)

