"""Interruptions and the scopes that shape them: timeout(), move_on_after(),
shield(), and a blocking call's own `timeout=`.

Owns: a task's scope stack (`_scopes`) and the interruptions deferred by a
shield (`_deferred`); `interrupt()` (deliver an exception at a task's
suspension point: reschedule it with that error if it is parked, else leave
it pending for its next one), `rearm()`, `discard_pending()`, and
`park_until()` (park with an optional deadline of its own).
May call: _errors, _parking, and the hub's timer heap (`task._hub._timers`,
an _timers.Timers, reached through the task so this layer does not import
the hub).
"""
from threading import get_ident as _get_ident
from time import monotonic as _monotonic

from . import _parking
from ._errors import Cancelled, Timeout, check_timeout
from ._parking import PARKED, DONE, XLOCK, current_task, park, reschedule

__all__ = ["discard_pending", "interrupt", "move_on_after", "park_until", "rearm", "shield", "timeout"]


def interrupt(t, exc, scope=None):
    """Deliver `exc` to task `t` at its suspension point (or defer it under a
    shield entered after `scope`; after everything for a cancel).  A task of
    another hub (multi-hub run) gets it through its hub's loop."""
    if _parking._multi:
        hub = t._hub
        if hub._thread_id != _get_ident():
            if t._phase is not DONE:
                hub.call_soon_threadsafe(interrupt, t, exc, scope)
            return
        with XLOCK:
            _interrupt(t, exc, scope)
        return
    _interrupt(t, exc, scope)


def _interrupt(t, exc, scope):
    if t._phase is DONE:
        return
    scopes = t._scopes
    if scopes:
        start = 0 if scope is None else scopes.index(scope) + 1 if scope in scopes else len(scopes)
        for s in scopes[start:]:
            if s.shielded:
                if t._deferred is None:
                    t._deferred = []
                t._deferred.append(exc)
                return
    pending = t._next_error
    if pending is not None:
        # Keep the outermost: a cancel beats any deadline; an outer scope beats an inner one.
        if isinstance(pending, Cancelled) or pending is exc:
            return
        if scope is not None:
            pscope = getattr(pending, "scope", None)
            if scopes and pscope in scopes and scope in scopes and scopes.index(pscope) < scopes.index(scope):
                return
    if t._phase is PARKED:
        reschedule(t, error=exc)
    else:
        t._next_error = exc


def rearm(t, exc):
    """An operation completed although `exc` interrupted the wait: raise
    `exc` at the task's next suspension point instead (own timeouts are moot)."""
    if isinstance(exc, Timeout) and exc.scope is not None and not exc.scope._active:
        return
    if t._next_error is None:
        t._next_error = exc


def discard_pending(t, exc):
    """Drop `exc` if it is still pending on `t` (never delivered, now moot)."""
    if t._next_error is exc:
        t._next_error = None


class _Scope:
    """Base of timeout scopes and shields: an entry in a task's scope stack."""

    __slots__ = ("_task", "_active")
    shielded = False


class _DeadlineScope(_Scope):
    __slots__ = ("deadline", "seconds", "fired", "cancelled_caught", "_timer", "_silent")

    def __init__(self, seconds, silent):
        self.seconds = check_timeout(seconds, "seconds")
        self.deadline = None
        self.fired = False
        self.cancelled_caught = False
        self._silent = silent
        self._timer = None
        self._task = None
        self._active = False

    def __repr__(self):
        kind = "move_on_after" if self._silent else "timeout"
        return f"<pycoro.{kind}({self.seconds}) fired={self.fired}>"

    def __enter__(self):
        self._enter(current_task("timeout()/move_on_after()"))
        return self

    def _enter(self, cur):
        if self._active or self._task is not None:
            raise RuntimeError("a timeout scope cannot be entered twice")
        self._task = cur
        self._active = True
        scopes = cur._scopes
        if scopes is None:
            scopes = cur._scopes = []
        scopes.append(self)
        if self.seconds is not None:
            self.deadline = _monotonic() + self.seconds
            if self.seconds == 0:
                self._fire()  # already due: raised at the next suspension point
            else:
                self._timer = cur._hub._timers.add(self.deadline, self._fire)

    def _fire(self):
        self._timer = None
        self.fired = True
        if self._active:
            interrupt(self._task, Timeout(f"timed out after {self.seconds}s", scope=self), self)

    def _exit(self, cur):
        self._active = False
        if self._timer is not None:
            cur._hub._timers.cancel(self._timer)
            self._timer = None
        cur._scopes.remove(self)
        pending = cur._next_error
        if pending is not None and getattr(pending, "scope", None) is self:
            cur._next_error = None  # re-armed after the scope's last suspension: moot now
        if cur._deferred:
            cur._deferred = [e for e in cur._deferred if getattr(e, "scope", None) is not self]

    def __exit__(self, typ, exc, tb):
        self._exit(self._task)
        if exc is not None and isinstance(exc, Timeout) and exc.scope is self:
            self.cancelled_caught = True
            return self._silent
        return False


def timeout(seconds):
    """``with timeout(s):`` raises `Timeout` (a TimeoutError) at the deadline.

    The deadline fires once, at the task's suspension point (a task that never
    suspends cannot be interrupted); code that catches the Timeout inside the
    block and carries on is not interrupted again by the same scope.

    The exception's `.scope` is the scope that fired (nested scopes can tell
    which one did); `scope.fired` is True once its deadline passed.
    """
    return _DeadlineScope(seconds, silent=False)


def move_on_after(seconds):
    """``with move_on_after(s) as scope:`` leaves the block silently at the
    deadline; `scope.cancelled_caught` tells whether it did."""
    return _DeadlineScope(seconds, silent=True)


class shield(_Scope):
    """``with shield():`` defers cancellation and the deadlines of enclosing
    scopes until the block ends; they are raised when it does."""

    __slots__ = ()
    shielded = True

    def __init__(self):
        self._task = None
        self._active = False

    def __enter__(self):
        cur = current_task("shield()")
        self._task = cur
        self._active = True
        if cur._scopes is None:
            cur._scopes = []
        cur._scopes.append(self)
        return self

    def __exit__(self, typ, exc, tb):
        cur = self._task
        self._active = False
        cur._scopes.remove(self)
        deferred = cur._deferred
        if deferred:
            cur._deferred = None
            for e in deferred:
                interrupt(cur, e, getattr(e, "scope", None))
            # The block is over: deliver now rather than at the next suspension.
            pending = cur._next_error
            if pending is not None:
                cur._next_error = None
                raise pending
        return False


def park_until(cur, timeout):
    """Park the running task `cur` (already registered somewhere to be
    woken) for at most `timeout` seconds (None: no limit of its own).
    Returns True when rescheduled, False when its own timeout passed first."""
    if timeout is None:
        park()
        return True
    scope = _DeadlineScope.__new__(_DeadlineScope)
    scope.seconds = timeout
    scope.fired = scope.cancelled_caught = scope._silent = False
    scope._timer = scope._task = scope.deadline = None
    scope._active = False
    scope._enter(cur)
    try:
        park()
    except Timeout as e:
        if e.scope is scope:
            return False
        raise
    finally:
        scope._exit(cur)
    return True
