"""Timers: the hub's deadline heap, and sleep() on top of it.

Owns: `Timers`, a heap of entries ``[deadline, seq, callback]`` (callback
None once fired or cancelled; cancelled entries are deleted lazily and the
heap compacted when they are more than half of it), and `sleep()`.
May call: _errors, _parking (sleep parks the task and a Waiter wakes it).
"""
import heapq
import itertools
from time import monotonic as _monotonic

from .._pycoro import current as _current
from ._errors import check_timeout, outside
from ._parking import Waiter, park, run_next


class Timers(list):
    """The heap itself (a list, so that the loop's `if timers:` and len()
    stay C-level), with the operations on it."""

    __slots__ = ("_seq", "_ncancelled")

    def __init__(self):
        super().__init__()
        self._seq = itertools.count()
        self._ncancelled = 0

    def add(self, when, fn):
        """Call `fn()` from the hub loop once `when` (monotonic) has passed."""
        entry = [when, next(self._seq), fn]
        heapq.heappush(self, entry)
        return entry

    def cancel(self, entry):
        if entry[2] is not None:
            entry[2] = None
            self._ncancelled += 1
            heap = self
            if self._ncancelled > 256 and self._ncancelled * 2 > len(heap):
                heap[:] = [e for e in heap if e[2] is not None]
                heapq.heapify(heap)
                self._ncancelled = 0

    def run_due(self):
        heap = self
        now = _monotonic()
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            fn = entry[2]
            if fn is None:
                self._ncancelled -= 1
            else:
                entry[2] = None
                fn()

    def next_deadline(self):
        """The earliest live deadline, or None."""
        heap = self
        while heap and heap[0][2] is None:
            heapq.heappop(heap)
            self._ncancelled -= 1
        return heap[0][0] if heap else None

    def clear(self):
        super().clear()
        self._ncancelled = 0


def sleep(seconds=0):
    """Suspend the calling task for `seconds`.  ``sleep(0)`` moves it behind
    every task that is ready now."""
    cur = _current()
    try:
        hub = cur._hub
    except AttributeError:
        outside("sleep()")
    if seconds == 0:
        # Yield: back of the run queue (still RUNNABLE), then run the next
        # task; a pending interruption is thrown in when this one is picked.
        hub._ready.append(cur)
        run_next(hub)
        return
    seconds = check_timeout(seconds, "seconds")
    if seconds is None:
        raise ValueError("sleep() needs a finite number of seconds")
    timers = hub._timers
    entry = timers.add(_monotonic() + seconds, Waiter(cur).wake)
    try:
        park()
    finally:
        timers.cancel(entry)
