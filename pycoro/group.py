"""Waiting on several tasks: `wait` (as concurrent.futures.wait) and
`TaskGroup` (structured concurrency, as asyncio.TaskGroup / trio nurseries).

May call: pycoro.hub's public names and the package-internal interface of
pycoro._hub (_parking: Waiter, park, current_task, shared_methods, shared_function;
_scopes: interrupt, discard_pending, park_until; _task: the done-hook and
failure helpers; _multi.spawn_on).  Both work across the hubs of a
multi-hub run (under _parking.XLOCK then; done hooks run on the finished
task's hub, under that lock).
"""
from ._hub._errors import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION, Cancelled, check_timeout
from ._hub._multi import spawn_on
from ._hub._parking import Waiter, current_task, park, shared_function, shared_methods
from ._hub._run import spawn
from ._hub._scopes import discard_pending, interrupt, park_until
from ._hub._task import add_done_hook, failure, mark_retrieved, remove_done_hook

__all__ = ["TaskGroup", "wait"]


def _satisfied(done, pending, return_when):
    if not pending:
        return True
    if return_when == FIRST_COMPLETED:
        return bool(done)
    if return_when == FIRST_EXCEPTION:
        return any(failure(t) is not None for t in done)
    return False


@shared_function
def wait(tasks, timeout=None, return_when=ALL_COMPLETED):
    """Wait for `tasks`; return ``(done, pending)`` sets, like concurrent.futures.wait.

    On timeout returns what is done so far (no exception).
    """
    timeout = check_timeout(timeout)
    if return_when not in (ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION):
        raise ValueError(f"invalid return_when: {return_when!r}")
    tasks = set(tasks)
    done = {t for t in tasks if t.done()}
    pending = tasks - done
    if _satisfied(done, pending, return_when) or timeout == 0:
        return done, pending
    cur = current_task("wait()")
    if cur in pending:
        raise RuntimeError("a task cannot wait for itself")
    waiter = Waiter(cur)

    def on_done(t):  # runs synchronously when a task finishes
        pending.discard(t)
        done.add(t)
        if _satisfied(done, pending, return_when):
            waiter.wake()

    for t in pending:
        add_done_hook(t, on_done)
    try:
        park_until(cur, timeout)
    finally:
        for t in tasks:
            remove_done_hook(t, on_done)
    return set(done), set(pending)


@shared_methods("__enter__", "spawn", "spawn_on", "__exit__")
class TaskGroup:
    """``with TaskGroup() as tg: tg.spawn(fn, ...)``: the block waits for every
    child; the first child failure cancels the others (and the block's body,
    if still running), and all failures are raised as an ExceptionGroup."""

    def __init__(self):
        self._parent = None
        self._children = set()
        self._errors = []
        self._aborting = False
        self._exiting = False
        self._cancel_exc = None
        self._waiter = None  # the parent's Waiter while __exit__ waits for children

    def __repr__(self):
        return f"<pycoro.TaskGroup children={len(self._children)} errors={len(self._errors)}>"

    def __enter__(self):
        if self._parent is not None:
            raise RuntimeError("a TaskGroup cannot be entered twice")
        self._parent = current_task("TaskGroup")
        return self

    def spawn(self, fn, *args, **kwargs):
        self._check_open()
        return self._adopt(spawn(fn, *args, **kwargs))

    def spawn_on(self, where, fn, *args, **kwargs):
        """spawn() on another hub (as pycoro.spawn_on)."""
        self._check_open()
        return self._adopt(spawn_on(where, fn, *args, **kwargs))

    def _check_open(self):
        if self._parent is None:
            raise RuntimeError("TaskGroup.spawn() outside its `with` block")
        if self._exiting and not self._children:
            raise RuntimeError("this TaskGroup is finished")

    def _adopt(self, t):
        if self._aborting:  # it never runs
            interrupt(t, Cancelled("TaskGroup is cancelling"))
        self._children.add(t)
        add_done_hook(t, self._on_child_done)
        return t

    def _on_child_done(self, t):
        self._children.discard(t)
        exc = failure(t)
        if exc is not None:
            mark_retrieved(t)
            self._errors.append(exc)
            self._abort()
        if not self._children and self._waiter is not None:
            self._waiter.wake()

    def _abort(self):
        if self._aborting:
            return
        self._aborting = True
        for c in list(self._children):
            c.cancel("a sibling in the TaskGroup failed")
        if not self._exiting:  # the body is still running: interrupt it too
            self._cancel_exc = Cancelled("a task in the TaskGroup failed")
            interrupt(self._parent, self._cancel_exc)

    def __exit__(self, typ, exc, tb):
        self._exiting = True
        parent = self._parent
        ours = exc is not None and exc is self._cancel_exc
        cancelled_from_outside = isinstance(exc, Cancelled) and not ours
        if exc is not None and not ours:
            if not isinstance(exc, Cancelled):
                self._errors.append(exc)
            self._abort()
        # A cancel of ours that was never delivered must not leak past the block.
        if self._cancel_exc is not None:
            discard_pending(parent, self._cancel_exc)
        while self._children:
            self._waiter = Waiter(parent)
            try:
                park()
            except Cancelled:
                # Cancelled while waiting: cancel the children, keep waiting, re-raise after.
                cancelled_from_outside = True
                self._abort()
            finally:
                self._waiter = None
        errors = self._errors
        if errors:
            if exc is not None and exc in errors:
                errors = [e for e in errors if e is not exc] + [exc]
            if all(isinstance(e, Exception) for e in errors):
                raise ExceptionGroup("unhandled errors in a TaskGroup", errors)
            raise BaseExceptionGroup("unhandled errors in a TaskGroup", errors)
        if cancelled_from_outside:
            if exc is not None:
                return False
            raise Cancelled("cancelled while waiting for a TaskGroup")
        return ours  # swallow the cancel we sent the body
