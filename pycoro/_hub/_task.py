"""Tasks: what a unit of work scheduled by the hub is.

Owns: `Task` (a Fiber subclass: its callable; its one outcome field, the
return value or an _outcome.Error; its joiners, done callbacks and name),
the body every task fiber runs, and the package-internal helpers
pycoro.group uses (`failure`, `mark_retrieved`, `add_done_hook`,
`remove_done_hook`).
May call: _errors, _outcome, _parking, _scopes.  The hub is reached through
`task._hub` (`_task_finished`, `_callbacks`, `_loop_fiber`), never imported;
`_run` reads `_outcome`, `_joiners` and `_callbacks` when a task finishes.
"""
import itertools
from types import GenericAlias as _GenericAlias
from threading import get_ident as _get_ident

from .._pycoro import current as _current
from ._errors import Cancelled, Timeout, check_timeout
from ._outcome import Error
from ._parking import DONE, NEW, PARKED, TaskBase, Waiter, current_task
from ._scopes import interrupt, park_until

_task_ids = itertools.count(1)


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
            if cur._hub is not self._hub:
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
        if self._hub._thread_id != _get_ident():
            raise RuntimeError("Task.cancel() from another thread: use hub.call_soon_threadsafe(task.cancel)")
        interrupt(self, Cancelled(msg) if msg is not None else Cancelled(), None)
        return True

    def add_done_callback(self, fn):
        """Call `fn(task)` from the hub loop once the task is done."""
        if self._phase is DONE:
            self._hub._callbacks.append((fn, self))
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

    # -- fiber body (see _task_entry) --------------------------------------
    def _body(self, handed_off_by):
        hub = self._hub
        if handed_off_by:
            prev = handed_off_by[0]
            if isinstance(prev, Task):
                prev.parent = hub._loop_fiber  # see Hub._task_finished
        exc = self._next_error
        if exc is None:
            try:
                # Plain calls, not f(*a, **k): CPython 3.11 inlines them in the
                # same C frame, which keeps every task's saved stack ~500 B smaller.
                fn = self._fn
                args = self._args
                if self._kwargs:
                    outcome = fn(*args, **self._kwargs)
                elif not args:
                    outcome = fn()
                elif len(args) == 1:
                    outcome = fn(args[0])
                elif len(args) == 2:
                    outcome = fn(args[0], args[1])
                else:
                    outcome = fn(*args)
            except BaseException as e:  # noqa: B902 -- a task's outcome, whatever it is
                outcome = Error(e, self.name)
        else:  # cancelled before it ever ran
            outcome = Error(exc, None)
        self._next_error = self._next_value = None
        self._fn = self._args = self._kwargs = None
        self._outcome = outcome
        self._phase = DONE
        return hub._task_finished(self)


def _task_entry(*handed_off_by):
    """Every task fiber's `run`: a plain function, so that no bound method
    (which would keep the task alive from the C stack, out of the GC's
    sight) is held while the task is suspended."""
    return _current()._body(handed_off_by)


def new_task(hub, fn, args, kwargs, name=None):
    """A NEW task of `hub` that will call fn(*args, **kwargs)."""
    t = Task(_task_entry, hub._loop_fiber)
    t._hub = hub
    t._fn = fn
    t._args = args
    t._kwargs = kwargs
    t._next_value = t._next_error = t._outcome = t._joiners = t._callbacks = None
    t._scopes = t._deferred = None
    t._name = name
    t._id = next(_task_ids)
    t._phase = NEW
    return t


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

