"""The private helpers of greenlet._greenlet that greenlet's test base class
(greenlet/tests/__init__.py) imports, computed from pycoro's state.

Only for the greenlet-suite lane; not part of pycoro.compat's API.
"""
import gc
from itertools import compress

import pycoro


def _fiber_types(tp=pycoro.Fiber):
    yield tp
    for sub in type.__subclasses__(tp):
        yield from _fiber_types(sub)


def get_total_main_greenlets():
    """Main fibers still alive (one per thread that used pycoro, until the
    thread ends and the last reference to its main fiber goes).

    The GC objects are filtered by type in C (compress/map), so only the
    fibers among them reach Python code."""
    objs = gc.get_objects()
    is_fiber_type = frozenset(_fiber_types()).__contains__
    return sum(1 for o in compress(objs, map(is_fiber_type, map(type, objs))) if o.is_main)


def get_pending_cleanup_count():
    """greenlet queues the cleanup of a dead thread's greenlets for another
    thread.  pycoro has no such queue: when a thread ends its fibers can no
    longer run and are released with their last reference (a fiber dropped
    by another, live thread is unwound at that thread's next switch), so
    nothing is ever pending at process level."""
    return 0

