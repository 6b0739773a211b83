"""The hub: a thread's run loop, and the functions that start work on it.

Owns: `Hub` (the run queue it inherits from _parking.Scheduler, the live
tasks, done callbacks, thread-safe callbacks, the timer heap, the poller,
holds, shutdown and deadlock detection, and its side of a multi-hub run:
`_wake`, `_adopt`, the group checks in the loop -- the group itself is
_multi's), a task's life on the hub
(`_new_task`, the body its fiber runs, what happens when it ends), and
`get_hub`, `run`, `spawn`, `spawn_later`, `current_task`.  The loop resumes
tasks only through _parking.run_next.
May call: every other module of the package (top layer).
"""
import collections
import contextvars
import itertools
import logging
import threading
from time import monotonic as _monotonic

from .._pycoro import current as _current
from ._errors import Cancelled, Deadlock, check_timeout, outside
from ._io import Poller
from ._outcome import Error
from ._parking import DONE, PARKED, RUNNABLE, XLOCK, Scheduler, Waiter, run_next
from ._scopes import interrupt
from ._signals import install_sigint
from ._task import Task
from ._timers import Timers

_get_ident = threading.get_ident
_copy_context = contextvars.copy_context
_log = logging.getLogger("pycoro")
_task_ids = itertools.count(1)


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
        "_holds", "_poller", "_undo_sigint", "_index", "_sleeping", "_idle", "_incoming", "__weakref__",
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
        self._undo_sigint = None
        self._group = None      # a multi-hub run's _multi.Group, or None
        self._index = 0
        self._sleeping = False  # (group) blocked in poll(): a push must wake it
        self._idle = False      # (group) blocked with nothing to wake it but another hub
        self._incoming = 0      # (group) tasks spawned here from other hubs, not yet adopted

    def __repr__(self):
        return (f"<pycoro.Hub {self._index} thread={self._thread_id} tasks={len(self._tasks)} "
                f"running={self._running}>")

    @property
    def index(self):
        """This hub's index in pycoro.hubs() (0 for a hub running alone)."""
        return self._index

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
        self._wake()

    def _wake(self):
        """Something was queued for this hub from another thread: wake its poller
        (in a multi-hub run only if it sleeps there; the group counts it busy)."""
        group = self._group
        if group is None:
            self._poller.wakeup()
        else:
            group.notify(self)

    def _adopt(self, task):
        """(call_soon_threadsafe from _multi.spawn_on) a task another hub made for this one."""
        self._group.adopted(self)
        self._tasks[task] = True
        self._ready.append(task)

    def hold(self):
        """Context manager: while held, an idle hub waits for call_soon_threadsafe
        instead of raising Deadlock (use it when another thread will wake a task)."""
        return _Hold(self)

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
        run_next(self, True)

    def _loop(self):
        ready = self._ready
        main = self._main  # None on the other hubs of a multi-hub run
        poller = self._poller
        group = self._group
        shutting_down = False
        polled = False  # the last pass polled (blocking): no second poll before running what it woke
        while True:
            if self._callbacks or self._threadsafe:
                self._run_callbacks()
            if self._timers:
                self._timers.run_due()
            if self._fatal is not None and not shutting_down:
                shutting_down = True
                self._cancel_all()
                if group is not None:
                    group.stop(self._fatal)
            if group is not None:
                if group.deadlocked:
                    self._deadlock()
                if group.stopping and not shutting_down:
                    shutting_down = True
                    self._cancel_all()
                if main is None:
                    if shutting_down and not self._tasks:
                        return
            if main is None:
                pass
            elif main._phase is DONE:
                if not self._tasks and (group is None or group.workers_done()):
                    return
                if not shutting_down:
                    shutting_down = True
                    self._cancel_all()
                    if group is not None:
                        group.stop(None)
            if ready:
                if polled:
                    polled = False
                elif poller.count:
                    self._poll(0)
            else:
                deadline = self._timers.next_deadline()
                if deadline is None and not poller.count and not self._holds and not self._threadsafe:
                    if self._callbacks:
                        continue
                    if group is None:  # nothing can ever wake a task
                        self._deadlock()
                    idle = True  # only another hub can wake a task
                else:
                    idle = False
                if group is not None:
                    # Tell the group before blocking (nothing pushed meanwhile
                    # is missed; the last hub to go idle declares a deadlock).
                    if not group.sleep_begin(self, idle):
                        continue
                    try:
                        self._poll(None if deadline is None else max(0.0, deadline - _monotonic()))
                    finally:
                        group.sleep_end(self)
                    polled = True
                    continue
                if deadline is None:
                    self._poll(None)
                else:
                    self._poll(max(0.0, deadline - _monotonic()))
                polled = True
                continue
            self._run_one()

    def _deadlock(self):
        """Every task is blocked for good (on every hub, in a multi-hub run):
        cancel them, let them unwind, raise Deadlock."""
        blocked = list(self._tasks)
        if self._group is not None:
            self._group.blocked.extend(blocked)
        self._cancel_all()
        self._drain_after_deadlock()
        raise Deadlock(blocked)

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
        if self._undo_sigint is not None:   # an earlier run() could not undo it
            self._undo_sigint()
            self._undo_sigint = None
        self._abandon()  # whatever an earlier, failed run() left behind
        undo_sigint = install_sigint(self)  # Ctrl-C -> KeyboardInterrupt in the main task
        self._running = True
        self._loop_fiber = _current()
        self._fatal = None
        try:
            main_task = self._main = _new_task(self, main, args, kwargs, "main", RUNNABLE)
            self._ready.append(main_task)
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
            # The hub's own state first: undoing the SIGINT handler calls
            # into the signal module, which can raise MemoryError, and a hub
            # left marked running refuses every later run().
            self._running = False
            self._main = None
            self._loop_fiber = None
            if undo_sigint is not None:
                self._undo_sigint = undo_sigint     # until it has succeeded
                undo_sigint()
                self._undo_sigint = None
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
    t = _new_task(hub, fn, args, kwargs, None, RUNNABLE)
    hub._ready.append(t)
    return t


def spawn_later(seconds, fn, *args, **kwargs):
    """Like `spawn`, but the task becomes ready only after `seconds`."""
    seconds = check_timeout(seconds, "seconds")
    if seconds is None:
        raise ValueError("spawn_later() needs a finite delay")
    hub = _running_hub("spawn_later()")
    t = _new_task(hub, fn, args, kwargs, None, PARKED)  # the timer reschedules it
    hub._timers.add(_monotonic() + seconds, Waiter(t).wake)
    return t


# -- a task's life on the hub ---------------------------------------------------
def _new_task(hub, fn, args, kwargs, name, phase, adopt=True):
    """A live task of `hub` that will call fn(*args, **kwargs), starting in
    `phase` (RUNNABLE: the caller queues it; PARKED: a timer will).
    `adopt=False`: made on another thread, the hub registers it (`_adopt`)."""
    if not callable(fn):
        raise TypeError(f"spawn() needs a callable, got {type(fn).__name__}")
    t = Task(_task_entry, hub._loop_fiber)
    ctx = _copy_context()
    if len(ctx):  # an empty copy is what a new fiber starts with anyway
        t.context = ctx
    t._hub = hub
    t._fn = fn
    t._args = args
    t._kwargs = kwargs
    t._next_value = t._next_error = t._outcome = t._joiners = t._callbacks = None
    t._scopes = t._deferred = None
    t._name = name
    t._id = next(_task_ids)
    t._phase = phase
    if adopt:
        hub._tasks[t] = True
    return t


def _task_entry(*handed_off_by):
    """Every task fiber's `run`: a plain function, so that no bound method
    (which would keep the task alive from the C stack, out of the GC's
    sight) is held while the task is suspended.  Runs the task's callable,
    records its outcome, wakes its joiners and picks what runs next."""
    t = _current()
    hub = t._hub
    if handed_off_by:
        prev = handed_off_by[0]
        if isinstance(prev, Task):
            prev.parent = hub._loop_fiber  # see the hand-off below
    exc = t._next_error
    if exc is None:
        try:
            # Plain calls, not f(*a, **k): CPython 3.11 inlines them in the
            # same C frame, which keeps every task's saved stack ~500 B smaller.
            fn = t._fn
            args = t._args
            if t._kwargs:
                outcome = fn(*args, **t._kwargs)
            elif not args:
                outcome = fn()
            elif len(args) == 1:
                outcome = fn(args[0])
            elif len(args) == 2:
                outcome = fn(args[0], args[1])
            else:
                outcome = fn(*args)
        except BaseException as e:  # noqa: B902 -- a task's outcome, whatever it is
            outcome = Error(e, t.name)
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                hub._fatal = t
    else:  # cancelled before it ever ran
        outcome = Error(exc, None)
    t._next_error = t._next_value = None
    t._fn = t._args = t._kwargs = None
    locked = hub._group is not None  # joiners and hooks may be other hubs' (see _parking)
    if locked:
        XLOCK.acquire()
    try:
        t._outcome = outcome
        t._phase = DONE
        if hub._tasks.pop(t, None) is None:
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
            hub._callbacks.extend((fn, t) for fn in cbs)
    finally:
        if locked:
            XLOCK.release()
    if t is hub._main:
        hub._turns = 1  # return to the loop promptly
        return None
    # Hand off straight to the next task if it has not started yet: a dead
    # fiber switches to its parent, so make that the next task (it gets
    # this task as its run() argument and restores our parent).  Saves a
    # trip through the hub loop per task in spawn-heavy code.
    ready = hub._ready
    if ready:
        nxt = ready[0]
        if not nxt.started and hub._turns > 1:
            ready.popleft()
            hub._turns -= 1
            t.parent = nxt
            return t
    return None
