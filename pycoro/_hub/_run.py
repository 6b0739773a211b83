"""The hub: a thread's run loop, and the functions that start work on it.

Owns: `Hub` (the run queue it inherits from _parking.Scheduler, the live
tasks, done callbacks, thread-safe callbacks, the timer heap, the poller,
holds, shutdown and deadlock detection), `get_hub`, `run`, `spawn`,
`spawn_later`, `current_task`.  The loop resumes tasks only through
_parking.run_next.
May call: every other module of the package (top layer).
"""
import collections
import contextvars
import logging
import threading
from time import monotonic as _monotonic

from .._pycoro import current as _current
from ._errors import Cancelled, Deadlock, check_timeout, outside
from ._io import Poller
from ._outcome import Error
from ._parking import DONE, PARKED, Scheduler, Waiter, run_next, schedule_new
from ._scopes import interrupt
from ._task import Task, new_task
from ._timers import Timers

_get_ident = threading.get_ident
_copy_context = contextvars.copy_context
_log = logging.getLogger("pycoro")


class _TLS(threading.local):
    hub = None


_tls = _TLS()


def get_hub():
    """This thread's hub (created on first use; one per thread)."""
    hub = _tls.hub
    if hub is None:
        hub = _tls.hub = Hub()
    return hub


def current_task():
    """The task running now, or None outside any task."""
    cur = _current()
    return cur if isinstance(cur, Task) else None


class Hub(Scheduler):
    """A thread's scheduler.  Obtain it with `get_hub()`."""

    __slots__ = (
        "_timers", "_callbacks", "_threadsafe", "_tasks", "_main", "_fatal", "_running",
        "_holds", "_poller", "__weakref__",
    )

    def __init__(self):
        self._thread_id = _get_ident()
        self._ready = collections.deque()
        self._turns = self.POLL_EVERY
        self._loop_fiber = None
        self._timers = Timers()
        self._callbacks = []
        self._threadsafe = collections.deque()
        self._tasks = {}
        self._main = None
        self._fatal = None
        self._running = False
        self._holds = 0
        self._poller = Poller()

    def __repr__(self):
        return f"<pycoro.Hub thread={self._thread_id} tasks={len(self._tasks)} running={self._running}>"

    # fd waiting state, read by tests and diagnostics
    @property
    def _fd_waiters(self):
        return self._poller.waiters

    @property
    def _nfd(self):
        return self._poller.count

    # -- introspection -----------------------------------------------------
    def tasks(self):
        """A snapshot of the live tasks: list of (task, state, stack_saved_bytes)."""
        return [(t, t.state, getattr(t, "stack_saved", 0)) for t in list(self._tasks)]

    # -- threads -----------------------------------------------------------
    def call_soon_threadsafe(self, fn, *args):
        """Run `fn(*args)` in this hub's loop; callable from any thread.  Wakes the hub."""
        if not callable(fn):
            raise TypeError(f"{fn!r} is not callable")
        self._threadsafe.append((fn, args))
        self._poller.wakeup()

    def hold(self):
        """Context manager: while held, an idle hub waits for call_soon_threadsafe
        instead of raising Deadlock (use it when another thread will wake a task)."""
        return _Hold(self)

    # -- tasks -------------------------------------------------------------
    def _spawn(self, fn, args, kwargs, name=None):
        if not callable(fn):
            raise TypeError(f"spawn() needs a callable, got {type(fn).__name__}")
        t = new_task(self, fn, args, kwargs, name)
        ctx = _copy_context()
        if len(ctx):  # an empty copy is what a new fiber starts with anyway
            t.context = ctx
        self._tasks[t] = True
        return t

    def _task_finished(self, t):
        """Called by a task's body as it ends; returns what the dead fiber
        hands to its parent (itself when it hands off, see below)."""
        outcome = t._outcome
        if type(outcome) is Error and isinstance(outcome.error, (KeyboardInterrupt, SystemExit)):
            self._fatal = t
        if self._tasks.pop(t, None) is None:
            return None  # unwound by FiberExit after its run() was abandoned
        joiners = t._joiners
        if joiners:
            for j in joiners:
                if type(j) is Waiter:
                    j.wake()
                else:  # an internal synchronous hook (wait(), TaskGroup)
                    j(t)
        cbs = t._callbacks
        if cbs:
            t._callbacks = None
            self._callbacks.extend((fn, t) for fn in cbs)
        if t is self._main:
            self._turns = 1  # return to the loop promptly
            return None
        # Hand off straight to the next task if it has not started yet: a dead
        # fiber switches to its parent, so make that the next task (it gets
        # this task as its run() argument and restores our parent).  Saves a
        # trip through the hub loop per task in spawn-heavy code.
        ready = self._ready
        if ready:
            nxt = ready[0]
            if not nxt.started and self._turns > 1:
                ready.popleft()
                self._turns -= 1
                t.parent = nxt
                return t
        return None

    # -- the loop ----------------------------------------------------------
    def _run_callbacks(self):
        ts = self._threadsafe
        while ts:
            fn, args = ts.popleft()
            self._call(fn, args)
        cbs = self._callbacks
        while cbs:
            self._callbacks = []
            for fn, task in cbs:
                self._call(fn, (task,))
            cbs = self._callbacks

    def _call(self, fn, args):
        try:
            fn(*args)
        except Exception:
            _log.exception("pycoro: exception in hub callback %r", fn)

    def _poll(self, timeout):
        for waiter in self._poller.poll(timeout):
            waiter.wake()

    def _run_one(self):
        """From the loop fiber: run the next ready task with a fresh turn budget."""
        self._turns = self.POLL_EVERY + 1  # run_next spends one turn on this switch
        run_next(self)

    def _loop(self):
        ready = self._ready
        main = self._main
        poller = self._poller
        shutting_down = False
        while True:
            if self._callbacks or self._threadsafe:
                self._run_callbacks()
            if self._timers:
                self._timers.run_due()
            if self._fatal is not None and not shutting_down:
                shutting_down = True
                self._cancel_all()
            if main._phase is DONE:
                if not self._tasks:
                    return
                if not shutting_down:
                    shutting_down = True
                    self._cancel_all()
            if ready:
                if poller.count:
                    self._poll(0)
            else:
                deadline = self._timers.next_deadline()
                if deadline is None and not poller.count and not self._holds and not self._threadsafe:
                    if self._callbacks:
                        continue
                    # Nothing can ever wake a task.
                    blocked = list(self._tasks)
                    self._cancel_all()
                    self._drain_after_deadlock()
                    raise Deadlock(blocked)
                if deadline is None:
                    self._poll(None)
                else:
                    self._poll(max(0.0, deadline - _monotonic()))
                continue
            self._run_one()

    def _drain_after_deadlock(self):
        """Let cancelled tasks unwind after a deadlock (bounded: they may block again)."""
        ready = self._ready
        while ready:
            self._run_one()
            if self._callbacks:
                self._run_callbacks()

    def _cancel_all(self):
        for t in list(self._tasks):
            if t._phase is not DONE:
                interrupt(t, Cancelled("hub shutting down"), None)

    def run(self, main, *args, **kwargs):
        if self._thread_id != _get_ident():
            raise RuntimeError("a hub can only run on its own thread")
        if self._running:
            raise RuntimeError("pycoro.run() cannot be nested (a hub is already running on this thread)")
        if not callable(main):
            raise TypeError(f"run() needs a callable, got {type(main).__name__}")
        self._running = True
        self._loop_fiber = _current()
        self._fatal = None
        self._abandon()  # whatever an earlier, failed run() left behind
        try:
            main_task = self._main = self._spawn(main, args, kwargs, "main")
            schedule_new(main_task)
            self._loop()
        except Deadlock:
            self._abandon()
            raise
        except BaseException:
            # The loop itself failed (e.g. KeyboardInterrupt while it waited
            # in select()): unwind the tasks before propagating.
            try:
                self._cancel_all()
                self._drain_after_deadlock()
            finally:
                self._abandon()
            raise
        finally:
            self._running = False
            self._main = None
            self._loop_fiber = None
        fatal = self._fatal
        if fatal is not None:
            self._fatal = None
            fatal._outcome.unwrap()  # an Error: raises
        return main_task.result()

    def close(self):
        """Release the hub's selector and wake-up pipe (done when it is collected)."""
        if self._running:
            raise RuntimeError("cannot close a running hub")
        self._poller.close()

    def __del__(self):
        try:
            if not self._running:
                self.close()
        except (AttributeError, OSError):
            pass

    def _abandon(self):
        """run() is failing (Deadlock, KeyboardInterrupt in the loop): drop the
        remaining tasks' scheduling state; their fibers get FiberExit when collected."""
        self._ready.clear()
        self._timers.clear()
        self._callbacks = []
        self._poller.clear()
        self._tasks.clear()


class _Hold:
    __slots__ = ("_hub",)

    def __init__(self, hub):
        self._hub = hub

    def __enter__(self):
        self._hub._holds += 1
        return self._hub

    def __exit__(self, *exc):
        self._hub._holds -= 1
        if self._hub._holds == 0:
            self._hub.call_soon_threadsafe(int)  # re-evaluate an idle hub
        return False


def run(main, *args, **kwargs):
    """Run `main(*args, **kwargs)` as a task on this thread's hub until it
    finishes; return its result or raise its exception.

    Tasks still alive when `main` ends are cancelled and joined.  Raises
    `Deadlock` if every task blocks with nothing left to wake them.
    """
    return get_hub().run(main, *args, **kwargs)


def _running_hub(what):
    hub = _tls.hub
    if hub is None or not hub._running:
        outside(what)
    return hub


def spawn(fn, *args, **kwargs):
    """Schedule `fn(*args, **kwargs)` as a new task at the back of the run queue."""
    hub = _tls.hub
    if hub is None or not hub._running:
        outside("spawn()")
    t = hub._spawn(fn, args, kwargs)
    schedule_new(t)
    return t


def spawn_later(seconds, fn, *args, **kwargs):
    """Like `spawn`, but the task becomes ready only after `seconds`."""
    seconds = check_timeout(seconds, "seconds")
    if seconds is None:
        raise ValueError("spawn_later() needs a finite delay")
    hub = _running_hub("spawn_later()")
    t = hub._spawn(fn, args, kwargs)
    t._phase = PARKED  # parked before its first run; the timer reschedules it
    hub._timers.add(_monotonic() + seconds, Waiter(t).wake)
    return t
