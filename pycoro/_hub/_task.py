"""Tasks: what a unit of work scheduled by the hub is.

Owns: `Task` (a Fiber subclass: its callable; its one outcome field, the
return value or an _outcome.Error; its joiners, done callbacks and name)
and what it offers: result/exception/join/cancel/callbacks (from any hub of
a multi-hub run: those run under _parking.XLOCK then), and the
package-internal helpers pycoro.group uses (`failure`, `mark_retrieved`,
`add_done_hook`, `remove_done_hook`).  A task's life on the hub (creation,
the body its fiber runs, completion) is _run's.
May call: _errors, _outcome, _parking, _scopes.  The hub is reached through
`task._hub` (`_callbacks`, `_thread_id`), never imported.
"""
from types import GenericAlias as _GenericAlias
from threading import get_ident as _get_ident

from .._pycoro import current as _current
from ._errors import Cancelled, Timeout, check_timeout
from ._outcome import Error
from ._parking import DONE, PARKED, TaskBase, Waiter, current_task, shared_methods
from ._scopes import interrupt, park_until


@shared_methods("result", "exception", "join", "add_done_callback", "remove_done_callback")
class Task(TaskBase):
    """A unit of work scheduled by the hub (a `Fiber` subclass).

    Created by `spawn`/`spawn_later`/`TaskGroup.spawn`, never directly.  Do not
    `switch()`/`throw()` a task yourself: the hub owns its scheduling.
    """

    __class_getitem__ = classmethod(_GenericAlias)

    __slots__ = ("_fn", "_args", "_kwargs", "_outcome", "_joiners", "_callbacks", "_name", "_id")

    # -- public API --------------------------------------------------------
    @property
    def name(self):
        name = self._name
        return name if name is not None else f"Task-{self._id}"

    @name.setter
    def name(self, value):
        self._name = str(value)

    def __repr__(self):
        return f"<pycoro.Task {self.name} {self.state}>"

    @property
    def state(self):
        """'pending' (not started), 'ready', 'running', 'waiting' or 'done'."""
        phase = self._phase
        if phase is DONE:
            return "done"
        if _current() is self:
            return "running"
        if phase is PARKED:
            return "waiting"
        return "ready" if self.started else "pending"

    def done(self):
        return self._phase is DONE

    def cancelled(self):
        return self._phase is DONE and type(self._outcome) is Error and self._outcome.cancelled

    def result(self):
        """The task's return value; re-raises its exception; InvalidStateError-like RuntimeError if not done."""
        if self._phase is not DONE:
            raise RuntimeError(f"{self.name} is not done")
        outcome = self._outcome
        if type(outcome) is Error:
            outcome.unwrap()
        return outcome

    def exception(self):
        """The task's exception (None if it returned); Cancelled is raised if it was cancelled."""
        if self._phase is not DONE:
            raise RuntimeError(f"{self.name} is not done")
        outcome = self._outcome
        if type(outcome) is not Error:
            return None
        outcome.retrieved()
        if outcome.cancelled:
            raise outcome.error
        return outcome.error

    def join(self, timeout=None):
        """Wait for the task to finish; return its result or re-raise its exception.

        On timeout raises `Timeout` (the task keeps running).  As in asyncio,
        joining a cancelled task raises `Cancelled` in the joiner.
        """
        if self._phase is DONE:
            outcome = self._outcome
            if type(outcome) is not Error:
                if timeout is not None:
                    check_timeout(timeout)
                return outcome
        timeout = check_timeout(timeout)
        if self._phase is not DONE:
            cur = current_task("Task.join()")
            if cur is self:
                raise RuntimeError(f"{self.name} cannot join itself")
            if cur._hub is not self._hub and (cur._hub._group is None or cur._hub._group is not self._hub._group):
                raise RuntimeError("cannot join a task of another thread's hub")
            joiners = self._joiners
            if joiners is None:
                joiners = self._joiners = []
            waiter = Waiter(cur)
            joiners.append(waiter)
            try:
                if not park_until(cur, timeout):
                    raise Timeout(f"{self.name} did not finish within {timeout}s")
            finally:
                if self._phase is not DONE:
                    joiners.remove(waiter)
        return self.result()

    def cancel(self, msg=None):
        """Request cancellation: `Cancelled(msg)` is raised at the task's suspension point.

        A task not yet started never runs.  Returns False if already done.
        """
        if self._phase is DONE:
            return False
        if self._hub._thread_id != _get_ident() and self._hub._group is None:
            raise RuntimeError("Task.cancel() from another thread: use hub.call_soon_threadsafe(task.cancel)")
        interrupt(self, Cancelled(msg) if msg is not None else Cancelled(), None)
        return True

    def add_done_callback(self, fn):
        """Call `fn(task)` from the hub loop once the task is done."""
        if self._phase is DONE:
            hub = self._hub
            if hub._thread_id == _get_ident():
                hub._callbacks.append((fn, self))
            else:  # a task of another hub of a multi-hub run: its loop calls it
                hub.call_soon_threadsafe(fn, self)
            return
        cbs = self._callbacks
        if cbs is None:
            cbs = self._callbacks = []
        cbs.append(fn)

    def remove_done_callback(self, fn):
        cbs = self._callbacks
        if not cbs:
            return 0
        n = len(cbs)
        cbs[:] = [c for c in cbs if c != fn]
        return n - len(cbs)


# -- package-internal interface for pycoro.group ----------------------------
def failure(t):
    """The exception a done task failed with (None if it returned or was cancelled)."""
    outcome = t._outcome
    if t._phase is DONE and type(outcome) is Error and not outcome.cancelled:
        return outcome.error
    return None


def mark_retrieved(t):
    """Somebody took charge of the task's exception: do not log it."""
    if t._phase is DONE and type(t._outcome) is Error:
        t._outcome.retrieved()


def add_done_hook(t, fn):
    """Call `fn(t)` synchronously, from the finishing task, once `t` is done."""
    if t._joiners is None:
        t._joiners = []
    t._joiners.append(fn)


def remove_done_hook(t, fn):
    joiners = t._joiners
    if joiners and fn in joiners:
        joiners.remove(fn)

