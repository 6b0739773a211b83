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
from ._parking import Waiter, park, yield_now


class Timers:
    __slots__ = ("_heap", "_seq", "_ncancelled")

    def __init__(self):
        self._heap = []
        self._seq = itertools.count()
        self._ncancelled = 0

    def __len__(self):
        return len(self._heap)

    def __iter__(self):
        return iter(self._heap)

    def add(self, when, fn):
        """Call `fn()` from the hub loop once `when` (monotonic) has passed."""
        entry = [when, next(self._seq), fn]
        heapq.heappush(self._heap, entry)
        return entry

    def cancel(self, entry):
        if entry[2] is not None:
            entry[2] = None
            self._ncancelled += 1
            heap = self._heap
            if self._ncancelled > 256 and self._ncancelled * 2 > len(heap):
                heap[:] = [e for e in heap if e[2] is not None]
                heapq.heapify(heap)
                self._ncancelled = 0

    def run_due(self):
        heap = self._heap
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
        heap = self._heap
        while heap and heap[0][2] is None:
            heapq.heappop(heap)
            self._ncancelled -= 1
        return heap[0][0] if heap else None

    def clear(self):
        self._heap.clear()
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
        yield_now(cur)
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
