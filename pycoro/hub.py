"""The hub: a round-robin scheduler for `Fiber`s, in plain Python.

One hub per thread (`get_hub()`).  `run(main)` runs `main` as a task and
drives the hub in the calling fiber until `main` finishes; every other task
still alive then is cancelled and joined.  Tasks are `Fiber` subclasses kept
in a FIFO run queue; a task that blocks switches *directly* to the next ready
task (one fiber switch per yield), and control passes through the hub loop
only when the run queue is empty or once every `Hub.POLL_EVERY` turns (so
timers, fd readiness and thread-safe callbacks are never starved).

Interruptions (`Task.cancel`, the deadline of a `timeout`/`move_on_after`
scope, a blocking call's own `timeout=`) are delivered with
``fiber.throw(exc)`` at the task's suspension point.  `shield()` defers them
until its block ends.  If an operation had already completed when the
interruption arrived (a lock was handed over, a queue item delivered), the
operation's result stands and the interruption is raised at the task's next
suspension point instead, so nothing is lost or done twice.

Blocking hub functions (`sleep`, `Task.join`, `wait`, the sync primitives,
channels, `wait_readable`...) must be called from a task, i.e. inside
`pycoro.run()`.  Called anywhere else they raise `RuntimeError` with a message
naming the function: the hub is never started implicitly, so a missing
`run()` is a visible bug rather than a hidden event loop.
"""
import collections
from types import GenericAlias as _GenericAlias
import contextvars
import heapq
import itertools
import logging
import math
import os
import selectors
import threading
import time

from ._pycoro import Fiber, FiberExit, current as _current

__all__ = [
    "ALL_COMPLETED",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "Cancelled",
    "Deadlock",
    "Hub",
    "Task",
    "Timeout",
    "current_task",
    "get_hub",
    "move_on_after",
    "run",
    "shield",
    "sleep",
    "spawn",
    "spawn_later",
    "timeout",
    "wait_readable",
    "wait_writable",
]

_monotonic = time.monotonic
_get_ident = threading.get_ident
_copy_context = contextvars.copy_context
_log = logging.getLogger("pycoro")

ALL_COMPLETED = "ALL_COMPLETED"
FIRST_COMPLETED = "FIRST_COMPLETED"
FIRST_EXCEPTION = "FIRST_EXCEPTION"


class Cancelled(BaseException):
    """Raised inside a task at its suspension point when it is cancelled."""


class Timeout(TimeoutError):
    """A deadline passed.  `scope` is the scope (or blocking call) that fired."""

    def __init__(self, *args, scope=None):
        super().__init__(*args)
        self.scope = scope


class Deadlock(RuntimeError):
    """Every task is blocked and nothing (timer, fd, other thread) can wake one.

    `tasks` lists the blocked tasks.
    """

    def __init__(self, tasks):
        self.tasks = list(tasks)
        names = ", ".join(t.name for t in self.tasks)
        super().__init__(f"deadlock: every task is blocked forever: {names}")


def _outside(what):
    raise RuntimeError(
        f"pycoro.{what} must be called from a task inside pycoro.run() "
        f"(no hub is running in this fiber)"
    ) from None


def _check_timeout(timeout, what="timeout"):
    """None/inf -> None; a finite number >= 0 -> float; else ValueError."""
    if timeout is None:
        return None
    try:
        if isinstance(timeout, (str, bytes, bytearray)):
            raise TypeError
        t = float(timeout)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a number or None, not {type(timeout).__name__}") from None
    if not t >= 0:  # negative or NaN
        raise ValueError(f"{what} must be >= 0 (got {timeout!r})")
    return None if t == math.inf else t


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


def _current_task(what):
    cur = _current()
    if not isinstance(cur, Task):
        _outside(what)
    return cur


class _Unretrieved:
    """Reports a task's exception when nobody retrieved it (like asyncio)."""

    __slots__ = ("name", "exc")

    def __init__(self, name, exc):
        self.name = name
        self.exc = exc

    def __del__(self):
        exc = self.exc
        if exc is not None:
            _log.error("pycoro: exception in %s was never retrieved", self.name,
                       exc_info=(type(exc), exc, exc.__traceback__))


_PENDING, _DONE = 0, 1
_task_ids = itertools.count(1)


class Task(Fiber):
    """A unit of work scheduled by the hub (a `Fiber` subclass).

    Created by `spawn`/`spawn_later`/`TaskGroup.spawn`, never directly.  Do not
    `switch()`/`throw()` a task yourself: the hub owns its scheduling.
    """

    __class_getitem__ = classmethod(_GenericAlias)

    __slots__ = (
        "_hub", "_fn", "_args", "_kwargs", "_exc", "_parked", "_state",
        "_result", "_exception", "_cancelled", "_joiners", "_callbacks",
        "_unretrieved", "_name", "_id", "_scopes", "_deferred",
    )

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
        if self._state == _DONE:
            return "done"
        if _current() is self:
            return "running"
        if not self.started:
            return "waiting" if self._parked else "pending"
        return "waiting" if self._parked else "ready"

    def done(self):
        return self._state == _DONE

    def _retrieved(self):
        u = self._unretrieved
        if u is not None:
            u.exc = None
            self._unretrieved = None

    def cancelled(self):
        return self._cancelled

    def result(self):
        """The task's return value; re-raises its exception; InvalidStateError-like RuntimeError if not done."""
        if self._state != _DONE:
            raise RuntimeError(f"{self.name} is not done")
        exc = self._exception
        if exc is not None:
            self._retrieved()
            raise exc
        return self._result

    def exception(self):
        """The task's exception (None if it returned); Cancelled is raised if it was cancelled."""
        if self._state != _DONE:
            raise RuntimeError(f"{self.name} is not done")
        self._retrieved()
        if self._cancelled:
            raise self._exception
        return self._exception

    def join(self, timeout=None):
        """Wait for the task to finish; return its result or re-raise its exception.

        On timeout raises `Timeout` (the task keeps running).  As in asyncio,
        joining a cancelled task raises `Cancelled` in the joiner.
        """
        if self._state == _DONE:
            exc = self._exception
            if exc is None:
                if timeout is not None:
                    _check_timeout(timeout)
                return self._result
        timeout = _check_timeout(timeout)
        if self._state != _DONE:
            cur = _current_task("Task.join()")
            if cur is self:
                raise RuntimeError(f"{self.name} cannot join itself")
            if cur._hub is not self._hub:
                raise RuntimeError("cannot join a task of another thread's hub")
            joiners = self._joiners
            if joiners is None:
                joiners = self._joiners = []
            joiners.append(cur)
            try:
                if not _park_timeout(cur, timeout):
                    raise Timeout(f"{self.name} did not finish within {timeout}s")
            finally:
                if self._state != _DONE:
                    joiners.remove(cur)
        return self.result()

    def cancel(self, msg=None):
        """Request cancellation: `Cancelled(msg)` is raised at the task's suspension point.

        A task not yet started never runs.  Returns False if already done.
        """
        if self._state == _DONE:
            return False
        hub = self._hub
        if hub._thread_id != _get_ident():
            raise RuntimeError("Task.cancel() from another thread: use hub.call_soon_threadsafe(task.cancel)")
        exc = Cancelled(msg) if msg is not None else Cancelled()
        hub._interrupt(self, exc, None)
        return True

    def add_done_callback(self, fn):
        """Call `fn(task)` from the hub loop once the task is done."""
        if self._state == _DONE:
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
        if handed_off_by:
            prev = handed_off_by[0]
            if isinstance(prev, Task):
                prev.parent = self._hub._loop_fiber  # see the end of run()
        exc = self._exc
        if exc is None:
            try:
                # Plain calls, not f(*a, **k): CPython 3.11 inlines them in the
                # same C frame, which keeps every task's saved stack ~500 B smaller.
                fn = self._fn
                args = self._args
                if self._kwargs:
                    self._result = fn(*args, **self._kwargs)
                elif not args:
                    self._result = fn()
                elif len(args) == 1:
                    self._result = fn(args[0])
                elif len(args) == 2:
                    self._result = fn(args[0], args[1])
                else:
                    self._result = fn(*args)
            except BaseException as e:  # noqa: B902 -- a task's outcome, whatever it is
                self._exception = e
                if isinstance(e, (Cancelled, FiberExit)):
                    self._cancelled = True
                else:
                    self._unretrieved = _Unretrieved(self.name, e)
                    if isinstance(e, (KeyboardInterrupt, SystemExit)):
                        self._hub._fatal = self
        else:  # cancelled before it ever ran
            self._exc = None
            self._exception = exc
            self._cancelled = True
        self._exc = None
        self._fn = self._args = self._kwargs = None
        self._state = _DONE
        hub = self._hub
        if hub._tasks.pop(self, None) is None:
            return  # unwound by FiberExit after its run() was abandoned
        joiners = self._joiners
        if joiners:
            for j in joiners:
                if isinstance(j, Task):
                    hub._wake(j)
                else:  # an internal synchronous hook (wait(), TaskGroup)
                    j(self)
        cbs = self._callbacks
        if cbs:
            self._callbacks = None
            hub._callbacks.extend((fn, self) for fn in cbs)
        if self is hub._main:
            hub._turns = 1  # return to the loop promptly
            return
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
                self.parent = nxt
                return self


def _task_entry(*handed_off_by):
    """Every task fiber's `run`: a plain function, so that no bound method
    (which would keep the task alive from the C stack, out of the GC's
    sight) is held while the task is suspended."""
    return _current()._body(handed_off_by)


class _Scope:
    """Base of timeout scopes and shields: an entry in a task's scope stack."""

    __slots__ = ("_task", "_active")
    shielded = False


class _DeadlineScope(_Scope):
    __slots__ = ("deadline", "seconds", "fired", "cancelled_caught", "_timer", "_silent")

    def __init__(self, seconds, silent):
        self.seconds = _check_timeout(seconds, "seconds")
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
        cur = _current_task("timeout()/move_on_after()")
        self._enter(cur)
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
                self._timer = cur._hub._add_timer(self.deadline, self._fire)

    def _fire(self):
        self._timer = None
        self.fired = True
        if self._active:
            exc = Timeout(f"timed out after {self.seconds}s", scope=self)
            self._task._hub._interrupt(self._task, exc, self)

    def _exit(self, cur):
        self._active = False
        if self._timer is not None:
            cur._hub._cancel_timer(self._timer)
            self._timer = None
        cur._scopes.remove(self)
        pending = cur._exc
        if pending is not None and getattr(pending, "scope", None) is self:
            cur._exc = None  # re-armed after the scope's last suspension: moot now
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
        cur = _current_task("shield()")
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
            hub = cur._hub
            for e in deferred:
                hub._interrupt(cur, e, getattr(e, "scope", None))
            # The block is over: deliver now rather than at the next suspension.
            pending = cur._exc
            if pending is not None:
                cur._exc = None
                raise pending
        return False


def _park_timeout(cur, timeout):
    """Park `cur` (already registered somewhere to be woken).  Returns True
    when woken, False when its own `timeout` passed first."""
    if timeout is None:
        cur._hub._park(cur)
        return True
    scope = _DeadlineScope.__new__(_DeadlineScope)
    scope.seconds = timeout
    scope.fired = scope.cancelled_caught = scope._silent = False
    scope._timer = scope._task = scope.deadline = None
    scope._active = False
    scope._enter(cur)
    try:
        cur._hub._park(cur)
    except Timeout as e:
        if e.scope is scope:
            return False
        raise
    finally:
        scope._exit(cur)
    return True


def _rearm(cur, exc):
    """An operation completed although `exc` interrupted the wait: raise
    `exc` at the task's next suspension point instead (own timeouts are moot)."""
    if isinstance(exc, Timeout) and exc.scope is not None and not exc.scope._active:
        return
    if cur._exc is None:
        cur._exc = exc


class Hub:
    """A thread's scheduler.  Obtain it with `get_hub()`."""

    #: Loop turns (task switches) between two passes through the hub loop,
    #: which runs due timers, callbacks and polls fds without blocking.
    POLL_EVERY = 64

    __slots__ = (
        "_thread_id", "_ready", "_timers", "_timer_seq", "_ncancelled", "_callbacks",
        "_threadsafe", "_tasks", "_turns", "_loop_fiber", "_main", "_fatal", "_running",
        "_holds", "_selector", "_fd_waiters", "_nfd", "_wake_r", "_wake_w", "__weakref__",
    )

    def __init__(self):
        self._thread_id = _get_ident()
        self._ready = collections.deque()
        self._timers = []
        self._timer_seq = itertools.count()
        self._ncancelled = 0
        self._callbacks = []
        self._threadsafe = collections.deque()
        self._tasks = {}
        self._turns = self.POLL_EVERY
        self._loop_fiber = None
        self._main = None
        self._fatal = None
        self._running = False
        self._holds = 0
        self._selector = selectors.DefaultSelector()
        self._fd_waiters = {}  # fd -> [reader task or None, writer task or None]
        self._nfd = 0
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)

    def __repr__(self):
        return f"<pycoro.Hub thread={self._thread_id} tasks={len(self._tasks)} running={self._running}>"

    # -- introspection -----------------------------------------------------
    def tasks(self):
        """A snapshot of the live tasks: list of (task, state, stack_saved_bytes)."""
        out = []
        for t in list(self._tasks):
            out.append((t, t.state, getattr(t, "stack_saved", 0)))
        return out

    # -- threads -----------------------------------------------------------
    def call_soon_threadsafe(self, fn, *args):
        """Run `fn(*args)` in this hub's loop; callable from any thread.  Wakes the hub."""
        if not callable(fn):
            raise TypeError(f"{fn!r} is not callable")
        self._threadsafe.append((fn, args))
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError):
            pass  # pipe full: the hub has wake-ups pending anyway

    def hold(self):
        """Context manager: while held, an idle hub waits for call_soon_threadsafe
        instead of raising Deadlock (use it when another thread will wake a task)."""
        return _Hold(self)

    # -- timers ------------------------------------------------------------
    def _add_timer(self, when, fn):
        entry = [when, next(self._timer_seq), fn]
        heapq.heappush(self._timers, entry)
        return entry

    def _cancel_timer(self, entry):
        if entry[2] is not None:
            entry[2] = None
            self._ncancelled += 1
            timers = self._timers
            if self._ncancelled > 256 and self._ncancelled * 2 > len(timers):
                timers[:] = [e for e in timers if e[2] is not None]
                heapq.heapify(timers)
                self._ncancelled = 0

    def _run_timers(self):
        timers = self._timers
        now = _monotonic()
        while timers and timers[0][0] <= now:
            entry = heapq.heappop(timers)
            fn = entry[2]
            if fn is None:
                self._ncancelled -= 1
            else:
                entry[2] = None
                fn()

    def _next_deadline(self):
        timers = self._timers
        while timers and timers[0][2] is None:
            heapq.heappop(timers)
            self._ncancelled -= 1
        return timers[0][0] if timers else None

    # -- scheduling core ---------------------------------------------------
    def _wake(self, t):
        """Make a parked task ready (no-op if it is not parked)."""
        if t._parked:
            t._parked = False
            self._ready.append(t)

    def _interrupt(self, t, exc, scope):
        """Deliver `exc` to task `t` at its suspension point (or defer it under a shield)."""
        if t._state == _DONE:
            return
        scopes = t._scopes
        if scopes:
            # Deferred if a shield was entered after `scope` (after everything for a cancel).
            start = 0 if scope is None else scopes.index(scope) + 1 if scope in scopes else len(scopes)
            for s in scopes[start:]:
                if s.shielded:
                    if t._deferred is None:
                        t._deferred = []
                    t._deferred.append(exc)
                    return
        pending = t._exc
        if pending is not None:
            # Keep the outermost: a cancel beats any deadline; an outer scope beats an inner one.
            if isinstance(pending, Cancelled) or pending is exc:
                return
            if scope is not None:
                pscope = getattr(pending, "scope", None)
                if scopes and pscope in scopes and scope in scopes and scopes.index(pscope) < scopes.index(scope):
                    return
        t._exc = exc
        if t._parked:
            t._parked = False
            self._ready.append(t)

    def _throw_into(self, nxt):
        """Resume `nxt`, which has an interruption pending."""
        if not nxt.started:
            nxt.switch()  # Task.run sees _exc and finishes as cancelled
            return
        exc = nxt._exc
        nxt._exc = None
        if nxt is _current():
            raise exc
        nxt.throw(exc)

    def _park(self, cur):
        """Suspend `cur` until something `_wake`s or `_interrupt`s it."""
        exc = cur._exc
        if exc is not None:
            cur._exc = None
            raise exc
        cur._parked = True
        n = self._turns - 1
        ready = self._ready
        if n and ready:
            self._turns = n
            nxt = ready.popleft()
            if nxt._exc is None:
                nxt.switch()
            else:
                self._throw_into(nxt)
        else:
            self._loop_fiber.switch()

    def _spawn(self, fn, args, kwargs, name=None):
        if not callable(fn):
            raise TypeError(f"spawn() needs a callable, got {type(fn).__name__}")
        t = Task(_task_entry, self._loop_fiber)
        ctx = _copy_context()
        if len(ctx):  # an empty copy is what a new fiber starts with anyway
            t.context = ctx
        t._hub = self
        t._fn = fn
        t._args = args
        t._kwargs = kwargs
        t._exc = t._result = t._exception = t._joiners = t._callbacks = None
        t._unretrieved = t._scopes = t._deferred = None
        t._name = name
        t._id = next(_task_ids)
        t._parked = t._cancelled = False
        t._state = _PENDING
        self._tasks[t] = True
        return t

    # -- fd readiness ------------------------------------------------------
    def _wait_fd(self, fd, idx, timeout, what):
        cur = _current()
        if not isinstance(cur, Task) or cur._hub is not self:
            _outside(what)
        timeout = _check_timeout(timeout)
        if not isinstance(fd, int):
            fd = fd.fileno()
        if fd < 0:
            raise ValueError(f"invalid file descriptor {fd}")
        waiters = self._fd_waiters.get(fd)
        sel = self._selector
        if waiters is None:
            # (register first: it raises for fds epoll refuses, e.g. regular files)
            sel.register(fd, selectors.EVENT_READ if idx == 0 else selectors.EVENT_WRITE)
            waiters = self._fd_waiters[fd] = [None, None]
        else:
            if waiters[idx] is not None:
                raise RuntimeError(f"fd {fd} already has a task waiting to {'read' if idx == 0 else 'write'}")
            sel.modify(fd, selectors.EVENT_READ | selectors.EVENT_WRITE)
        waiters[idx] = cur
        self._nfd += 1
        try:
            if not _park_timeout(cur, timeout):
                raise Timeout(f"fd {fd} not {'readable' if idx == 0 else 'writable'} within {timeout}s")
        finally:
            if waiters[idx] is cur:  # not consumed by the poller (interrupted)
                self._drop_fd_waiter(fd, waiters, idx)

    def _drop_fd_waiter(self, fd, waiters, idx):
        waiters[idx] = None
        self._nfd -= 1
        other = waiters[1 - idx]
        try:
            if other is None:
                del self._fd_waiters[fd]
                self._selector.unregister(fd)
            else:
                self._selector.modify(fd, selectors.EVENT_WRITE if idx == 0 else selectors.EVENT_READ)
        except (KeyError, ValueError, OSError):
            pass  # the fd was closed under us

    def _poll(self, timeout):
        try:
            events = self._selector.select(timeout)
        except InterruptedError:
            return
        fd_waiters = self._fd_waiters
        for key, mask in events:
            fd = key.fd
            if fd == self._wake_r:
                try:
                    while os.read(fd, 4096):
                        pass
                except BlockingIOError:
                    pass
                continue
            waiters = fd_waiters.get(fd)
            if waiters is None:
                continue
            if mask & selectors.EVENT_READ and waiters[0] is not None:
                t = waiters[0]
                self._drop_fd_waiter(fd, waiters, 0)
                self._wake(t)
            if mask & selectors.EVENT_WRITE and waiters[1] is not None:
                t = waiters[1]
                self._drop_fd_waiter(fd, waiters, 1)
                self._wake(t)

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

    def _loop(self):
        ready = self._ready
        main = self._main
        shutting_down = False
        while True:
            if self._callbacks or self._threadsafe:
                self._run_callbacks()
            if self._timers:
                self._run_timers()
            if self._fatal is not None and not shutting_down:
                shutting_down = True
                self._cancel_all()
            if main._state == _DONE:
                if not self._tasks:
                    return
                if not shutting_down:
                    shutting_down = True
                    self._cancel_all()
            if ready:
                if self._nfd:
                    self._poll(0)
            else:
                deadline = self._next_deadline()
                if deadline is None and not self._nfd and not self._holds and not self._threadsafe:
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
            self._turns = self.POLL_EVERY
            nxt = ready.popleft()
            if nxt._exc is None:
                nxt.switch()
            else:
                self._throw_into(nxt)

    def _drain_after_deadlock(self):
        """Let cancelled tasks unwind after a deadlock (bounded: they may block again)."""
        ready = self._ready
        while ready:
            self._turns = self.POLL_EVERY
            nxt = ready.popleft()
            if nxt._exc is None:
                nxt.switch()
            else:
                self._throw_into(nxt)
            if self._callbacks:
                self._run_callbacks()

    def _cancel_all(self):
        for t in list(self._tasks):
            if t._state != _DONE:
                self._interrupt(t, Cancelled("hub shutting down"), None)

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
            self._running = False
            self._main = None
            self._loop_fiber = None
        fatal = self._fatal
        if fatal is not None:
            self._fatal = None
            fatal._retrieved()
            raise fatal._exception
        return main_task.result()

    def close(self):
        """Release the hub's selector and wake-up pipe (done when it is collected)."""
        if self._running:
            raise RuntimeError("cannot close a running hub")
        if self._wake_r >= 0:
            self._selector.close()
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1

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
        self._ncancelled = 0
        self._callbacks = []
        for fd in list(self._fd_waiters):
            try:
                self._selector.unregister(fd)
            except (KeyError, ValueError, OSError):
                pass
        self._fd_waiters.clear()
        self._nfd = 0
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
        _outside(what)
    return hub


def spawn(fn, *args, **kwargs):
    """Schedule `fn(*args, **kwargs)` as a new task at the back of the run queue."""
    hub = _tls.hub
    if hub is None or not hub._running:
        _outside("spawn()")
    t = hub._spawn(fn, args, kwargs)
    hub._ready.append(t)
    return t


def spawn_later(seconds, fn, *args, **kwargs):
    """Like `spawn`, but the task becomes ready only after `seconds`."""
    seconds = _check_timeout(seconds, "seconds")
    if seconds is None:
        raise ValueError("spawn_later() needs a finite delay")
    hub = _running_hub("spawn_later()")
    t = hub._spawn(fn, args, kwargs)
    t._parked = True
    hub._add_timer(_monotonic() + seconds, lambda: hub._wake(t))
    return t


def sleep(seconds=0):
    """Suspend the calling task for `seconds`.  ``sleep(0)`` moves it behind
    every task that is ready now."""
    cur = _current()
    try:
        hub = cur._hub
    except AttributeError:
        _outside("sleep()")
    if seconds == 0:
        # (A pending interruption of `cur` itself is thrown when it is picked.)
        ready = hub._ready
        ready.append(cur)
        n = hub._turns - 1
        if n:
            hub._turns = n
            nxt = ready.popleft()
            if nxt._exc is None:
                nxt.switch()
            else:
                hub._throw_into(nxt)
        else:
            hub._loop_fiber.switch()
        return
    _sleep_for(hub, cur, seconds)


def _sleep_for(hub, cur, seconds):
    seconds = _check_timeout(seconds, "seconds")
    if seconds is None:
        raise ValueError("sleep() needs a finite number of seconds")
    entry = hub._add_timer(_monotonic() + seconds, lambda: hub._wake(cur))
    try:
        hub._park(cur)
    finally:
        hub._cancel_timer(entry)


def wait_readable(fd, timeout=None):
    """Suspend the calling task until `fd` (an int or an object with fileno()) is readable."""
    return _running_hub("wait_readable()")._wait_fd(fd, 0, timeout, "wait_readable()")


def wait_writable(fd, timeout=None):
    """Suspend the calling task until `fd` is writable."""
    return _running_hub("wait_writable()")._wait_fd(fd, 1, timeout, "wait_writable()")
