"""The parking primitive: every blocking operation of the hub is built on it.

Owns: a task's scheduling phase (RUNNABLE <-> PARKED -> DONE), the
run queue step "pick the next ready task and run it" (`run_next`, the only
place that resumes a task), and the primitive itself:

  park()                              suspend the current task until it is
                                      rescheduled; return the value / raise
                                      the exception it is rescheduled with
  reschedule(task, value, error)      make a PARKED task runnable again
                                      (RuntimeError for a task not parked)
  Waiter                              a small record a blocking operation
                                      leaves where its waker will find it

Interruptions (cancel, deadlines) are the one other way in: `_scopes` stores
a pending one in `task._next_error`; park() raises a pending interruption
instead of parking, and a task resumed while one is pending has it thrown
in at its suspension point (so a woken task still sees a cancel that
arrived before it ran; a Waiter's `granted` tells it its operation was done).

Threads: reschedule() only appends to the hub-owned run queue.  A later
multi-hub design makes it thread-safe by routing a reschedule from a foreign
thread through that hub's thread-safe queue and its poller's wake-up fd
(`Hub.call_soon_threadsafe`); callers keep the same interface.

May call: _errors, the Fiber core.  Knows the hub only as a `Scheduler`
(run queue, turn budget, loop fiber); the loop itself lives in _run.
"""
import enum
from threading import get_ident

from .._pycoro import Fiber, current as _current
from ._errors import outside


class Phase(enum.IntEnum):
    """A task's one state field.  A task is created RUNNABLE (spawn: at the
    back of the run queue) or PARKED (spawn_later: a timer reschedules it);
    "running" and "not started" are not phases: the fiber tells those."""
    RUNNABLE = 1   # in the run queue, or running
    PARKED = 2     # suspended until rescheduled or interrupted
    DONE = 3       # finished; the task's outcome is set


RUNNABLE, PARKED, DONE = Phase


class Scheduler:
    """What the parking layer needs of a hub: the run queue and its budget."""

    #: Loop turns (task switches) between two passes through the hub loop,
    #: which runs due timers, callbacks and polls fds without blocking.
    POLL_EVERY = 64

    __slots__ = ("_thread_id", "_ready", "_turns", "_loop_fiber")


class TaskBase(Fiber):
    """The scheduling half of a task (_task.Task adds the rest).

    `_next_value` / `_next_error`: what the task resumes with; `_next_error`
    also holds an interruption pending while the task is not parked.
    `_scopes`/`_deferred` belong to _scopes (its timeout/shield stack)."""

    __slots__ = ("_hub", "_phase", "_next_value", "_next_error", "_scopes", "_deferred")


def current_task(what):
    """The running task, or the outside() error naming `what`."""
    cur = _current()
    if not isinstance(cur, TaskBase):
        outside(what)
    return cur


def run_next(hub, from_loop=False):
    """Switch from the current fiber to the next ready task, or to the hub
    loop when the run queue is empty or the turn budget is spent.  Returns
    when the current fiber is resumed (or raises what is thrown into it).

    The value a task is rescheduled with stays in `_next_value` for its
    park() to read: passing it through switch() would cost every resume
    (sleep(0) included), not just the parks that expect a value."""
    n = hub._turns - 1
    ready = hub._ready
    if n and ready:
        if not from_loop and not ready[0].started:
            # A fiber starts with its starter's recursion depth (greenlet's
            # rule, csrc/binding/pystate.c): started from deep inside a
            # parked task, each generation of tasks would start deeper
            # (RecursionError in a long-running server).  Let the shallow
            # loop fiber start it.
            hub._loop_fiber.switch()
            return
        hub._turns = n
        nxt = ready.popleft()
        try:
            if nxt._next_error is None:
                nxt.switch()
            else:
                _throw_into(nxt)
        except MemoryError:
            _requeue_if_lost(ready, nxt)
            raise
    else:
        hub._loop_fiber.switch()


def _requeue_if_lost(ready, nxt):
    """The switch to `nxt` failed for lack of memory (nothing switched): put
    it back at the front, or it would stay RUNNABLE in no queue, never run
    again.  (A MemoryError thrown into us after `nxt` did run leaves `nxt`
    parked, done, running or queued: then this does nothing.)"""
    if nxt._phase is RUNNABLE and nxt is not _current() and not nxt.dead and nxt not in ready:
        ready.appendleft(nxt)


def _throw_into(nxt):
    """Resume `nxt` with its pending exception raised at its suspension point."""
    if not nxt.started:
        nxt.switch()  # the task body sees _next_error and ends cancelled
        return
    exc = nxt._next_error
    nxt._next_error = None
    nxt._next_value = None
    if nxt is _current():  # sleep(0) picked the yielding task itself
        raise exc
    nxt.throw(exc)


def park():
    """Suspend the current task until `reschedule`; return the value it was
    rescheduled with, or raise its error.  A pending interruption is raised
    at once instead of parking."""
    cur = _current()
    try:
        exc = cur._next_error
    except AttributeError:
        outside("park()")
    if exc is not None:
        cur._next_error = None
        raise exc
    cur._phase = PARKED
    run_next(cur._hub)
    value = cur._next_value
    if value is not None:
        cur._next_value = None
    return value


def reschedule(task, value=None, error=None):
    """Make the parked `task` runnable: its park() returns `value` (or raises
    `error`).  Raises RuntimeError if `task` is not parked."""
    if task._phase is not PARKED:
        raise RuntimeError(f"reschedule(): {task!r} is not parked")
    # The append first: it is the one step that allocates, and a MemoryError
    # after the phase changed would leave a RUNNABLE task in no queue (lost).
    task._hub._ready.append(task)
    task._phase = RUNNABLE
    task._next_value = value
    if error is not None:
        task._next_error = error


def check_thread(task):
    """Waking a task of another thread's hub is not allowed (yet: issue 17)."""
    if task._hub._thread_id != get_ident():
        raise RuntimeError(
            "pycoro sync objects are per-thread: wake another thread's tasks "
            "with hub.call_soon_threadsafe()"
        )


class Waiter:
    """A task waiting for something, as its waker sees it.

    The waker does the operation *for* the task (hands over a lock, stores
    an item in `value`) and calls `wake()`, so a woken task never retries.
    `task` is None once the waiter is finished (granted or abandoned);
    `group` links the waiters of one select() (the first granted wins)."""

    __slots__ = ("task", "value", "granted", "group")

    def __init__(self, task, value=None, group=None):
        self.task = task
        self.value = value
        self.granted = False
        self.group = group

    def wake(self, value=None):
        """Grant: record `value` and reschedule the task.  A task not parked
        here was interrupted after it began to wait and is about to resume
        with that interruption; it finds `granted` set and keeps the result."""
        t = self.task
        if t is None:
            return
        if t._phase is PARKED:  # reschedule(t, value), inlined: the hot path of every hand-off
            t._hub._ready.append(t)   # first: the step that can fail (see reschedule)
            t._phase = RUNNABLE
            t._next_value = value
        self.value = value
        self.granted = True
        self.task = None
