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

Several hubs (pycoro.run(..., hubs=N), one OS thread each): a task is
rescheduled by whoever grants it, from any hub.  While such a run is active
(`_multi`), the objects shared between hubs (sync objects, channels, tasks'
joiners and phases) are guarded by one process-wide re-entrant lock, `XLOCK`,
held only for short non-blocking sections: `shared_methods()` lists the
methods of a class that run under it, and `enter_multi()` swaps in locked
versions of them for the time of the run (so a single-hub program runs the
very same unlocked code as before, at no cost).  park() releases XLOCK
completely while the task is suspended and takes it back when it resumes, so
a blocking method can hold it from its check to its park.  A task's phase
changes only under XLOCK then, and a task of another hub is made runnable by
appending it to that hub's run queue (a deque: thread-safe: the hub's
inbox) and waking the hub's poller if it sleeps (`Scheduler._wake`), once
XLOCK is released: woken earlier, the hub would only block on the lock the
waker still holds.

May call: _errors, the Fiber core.  Knows the hub only as a `Scheduler`
(run queue, turn budget, loop fiber); the loop itself lives in _run.
"""
import enum
import functools
import threading
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
    """What the parking layer needs of a hub: the run queue and its budget,
    and (`_group`, None for a hub alone) whether it is one of several."""

    #: Loop turns (task switches) between two passes through the hub loop,
    #: which runs due timers, callbacks and polls fds without blocking.
    POLL_EVERY = 64

    __slots__ = ("_thread_id", "_ready", "_turns", "_loop_fiber", "_group")

    def _wake(self):
        """Something was queued for this hub from another thread: wake it."""
        raise NotImplementedError


class _SharedLock:
    """XLOCK: a re-entrant lock that also defers the wake-ups of other hubs
    (`defer_wake`) to its last release by the owning thread.

    `_depth` (its recursion depth) and `_wakes` (the hubs to wake) are
    touched only by the thread that holds the lock, so they need no lock of
    their own and no thread-local lookup: every shared method of a
    multi-hub run goes through acquire/release, and a threading.local
    lookup there cost more than the method (measured: same-hub Channel
    hand-offs 9x the CPU of a single-hub run)."""

    __slots__ = ("_rlock", "_depth", "_wakes")

    def __init__(self):
        self._rlock = threading.RLock()
        self._depth = 0
        self._wakes = []

    def acquire(self):
        self._rlock.acquire()
        self._depth += 1

    __enter__ = acquire

    def release(self):
        depth = self._depth - 1
        self._depth = depth
        if depth or not self._wakes:
            self._rlock.release()
            return
        wakes = self._wakes
        self._wakes = []
        self._rlock.release()
        for hub in wakes:
            hub._wake()

    def __exit__(self, *exc):
        self.release()

    def _is_owned(self):
        return self._rlock._is_owned()

    def _release_save(self):
        """Release completely (a task parks), for `_acquire_restore`."""
        depth, wakes = self._depth, self._wakes
        self._depth, self._wakes = 0, []
        state = self._rlock._release_save()
        for hub in wakes:
            hub._wake()
        return state, depth

    def _acquire_restore(self, saved):
        state, depth = saved
        self._rlock._acquire_restore(state)
        self._depth = depth

    def defer_wake(self, hub):
        if self._rlock._is_owned():
            self._wakes.append(hub)
        else:       # not under the lock: nothing to wait for
            hub._wake()


#: The lock of everything shared between hubs while a multi-hub run is
#: active (re-entrant: a locked method may call another).
XLOCK = _SharedLock()
_multi = False            # True while some multi-hub run is active
_multi_runs = 0
_multi_guard = threading.Lock()
_swaps = []               # (owner, name, locked version), filled by shared_methods()


def _locked(fn):
    acquire, release = XLOCK.acquire, XLOCK.release

    @functools.wraps(fn)
    def locked(*args, **kwargs):
        acquire()
        try:
            return fn(*args, **kwargs)
        finally:
            release()
    return locked


def shared_function(fn):
    """Function decorator: `fn` runs under XLOCK while a multi-hub run is
    active (a function cannot be swapped like a method: callers hold it)."""
    locked = _locked(fn)

    @functools.wraps(fn)
    def shared(*args, **kwargs):
        if _multi:
            return locked(*args, **kwargs)
        return fn(*args, **kwargs)
    return shared


def shared_methods(*names, **replacements):
    """Class decorator: while a multi-hub run is active, the methods `names`
    run under XLOCK, and each `name=function` of `replacements` replaces the
    method (a version that does its own locking)."""
    def decorate(cls):
        for name in names:
            _swaps.append((cls, name, cls.__dict__[name], _locked(cls.__dict__[name])))
        for name, fn in replacements.items():
            _swaps.append((cls, name, cls.__dict__[name], fn))
        return cls
    return decorate


def enter_multi():
    """A multi-hub run starts: swap in the locked methods (first run only)."""
    global _multi, _multi_runs
    with _multi_guard:
        _multi_runs += 1
        if _multi_runs == 1:
            _multi = True
            for cls, name, _plain, locked in _swaps:
                setattr(cls, name, locked)


def exit_multi():
    global _multi, _multi_runs
    with _multi_guard:
        _multi_runs -= 1
        if _multi_runs == 0:
            for cls, name, plain, _locked_fn in _swaps:
                setattr(cls, name, plain)
            _multi = False


def multi():
    """Whether a multi-hub run is active (shared objects take XLOCK)."""
    return _multi


def push(task):
    """`task` just became RUNNABLE (under XLOCK): queue it on its hub (a
    deque: safe from any thread; only its hub pops it), and if that is
    another thread's, wake it once XLOCK is released."""
    hub = task._hub
    hub._ready.append(task)
    if hub._thread_id != get_ident():
        XLOCK.defer_wake(hub)


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
    if _multi:
        _run_next_unlocked(cur._hub)
    else:
        run_next(cur._hub)
    value = cur._next_value
    if value is not None:
        cur._next_value = None
    return value


def _run_next_unlocked(hub):
    """run_next() with XLOCK released for as long as the task is suspended
    (the lock belongs to the thread, not to the task)."""
    saved = XLOCK._release_save() if XLOCK._is_owned() else None
    try:
        run_next(hub)
    finally:
        if saved is not None:
            XLOCK._acquire_restore(saved)


def reschedule(task, value=None, error=None):
    """Make the parked `task` runnable: its park() returns `value` (or raises
    `error`).  Raises RuntimeError if `task` is not parked."""
    if _multi:
        with XLOCK:
            if task._phase is not PARKED:
                raise RuntimeError(f"reschedule(): {task!r} is not parked")
            task._phase = RUNNABLE
            task._next_value = value
            if error is not None:
                task._next_error = error
            push(task)
        return
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
    """Waking a task of another thread's hub is allowed only between the hubs
    of one multi-hub run."""
    hub = task._hub
    if hub._thread_id != get_ident() and (hub._group is None or not _multi):
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

    def _wake_shared(self, value=None):
        """wake() while a multi-hub run is active: the task may be another hub's."""
        with XLOCK:
            t = self.task
            if t is None:
                return
            if t._phase is PARKED:
                t._phase = RUNNABLE
                t._next_value = value
                push(t)
            self.value = value
            self.granted = True
            self.task = None


shared_methods(wake=Waiter._wake_shared)(Waiter)
