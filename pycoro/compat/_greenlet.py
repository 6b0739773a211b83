"""`greenlet._greenlet` on pycoro: the attributes greenlet 3's C module has.

`pycoro.compat.install()` registers this module as `greenlet._greenlet`.
Most names are those of `pycoro.compat.greenlet`; the rest describe
greenlet's deferred clean-up of ended threads, which pycoro does not defer:
a thread's main fiber and thread record are released as the thread ends
(and a fiber suspended there when its last reference goes), so there is
never a clean-up pending and none costs clock time.
"""
from .. import _pycoro
from .greenlet import (  # noqa: F401  (re-exported names)
    GREENLET_USE_CONTEXT_VARS,
    GREENLET_USE_GC,
    GREENLET_USE_STANDARD_THREADING,
    GREENLET_USE_TRACING,
    GreenletExit,
    _C_API,
    error,
    getcurrent,
    gettrace,
    greenlet,
    settrace,
)

#: C's CLOCKS_PER_SEC on POSIX (what greenlet reports; its unit for
#: get_clocks_used_doing_optional_cleanup).
CLOCKS_PER_SEC = 1000000

_optional_cleanup = True


def enable_optional_cleanup(enabled):
    """Accepted for greenlet compatibility; pycoro has no optional clean-up
    step to switch on or off."""
    global _optional_cleanup
    _optional_cleanup = bool(enabled)


def get_clocks_used_doing_optional_cleanup():
    """0: pycoro spends no time in an optional clean-up step."""
    return 0


def get_pending_cleanup_count():
    """0: ended threads are cleaned up as they end, nothing is deferred."""
    return 0


def get_total_main_greenlets():
    """Live main greenlets (one per thread that has used fibers)."""
    return _pycoro._counts()["main_fibers"]


def get_tstate_trash_delete_nesting():
    """0: pycoro defers deallocations through CPython's own trashcan, which
    is empty whenever Python code runs."""
    return 0


set_thread_local = _pycoro._set_thread_local
