"""Several hubs, one OS thread each: run(main, hubs=N), spawn_on(), hubs().

Owns: `Group` (the hubs of one multi-hub run, and what they share: the
count of idle hubs that decides a deadlock, the stop and deadlock flags, the
tasks a deadlock blocked, a worker hub's fatal error), the worker threads'
life (start, loop, end), `run` (the public one: `hubs=1` is _run's run,
unchanged), `spawn_on`, `hubs`.

Fibers cannot move between threads (a suspended fiber's saved stack holds
addresses inside its thread's stack), so a task stays on the hub it was
spawned on; what crosses hubs is wake-ups.  A task parked on hub A and
granted by an operation on hub B is made RUNNABLE by B (under
_parking.XLOCK) and appended to A's run queue; `Group.notify` then wakes
A's poller if A sleeps in it (its wake-up pipe), and only then: a busy hub
finds the task on its next turn.  Idle hubs block in their poller; none
busy-waits.

Deadlock: a hub with nothing it can wake itself for (no ready task, timer,
fd, hold or thread-safe callback) is *idle*.  Going idle and being pushed
work are both done under the group's lock, and a push makes its target
non-idle at once, so "every hub idle" means nothing is runnable or pending
anywhere: the last hub to go idle declares the deadlock and wakes the others;
each cancels its tasks, lets them unwind, and hub 0 raises Deadlock with
every hub's blocked tasks.

May call: every module of the package (it sits on top of _run).
"""
import os
import threading

from .._pycoro import current as _current
from . import _parking
from ._errors import Deadlock, outside
from ._parking import RUNNABLE
from ._run import Hub, _new_task, _tls, get_hub

__all__ = ["hubs", "run", "spawn_on"]


class Group:
    """The hubs of one multi-hub run.  Its lock (`_lock`, re-entrant: a
    signal handler may post from inside a section of the main thread) guards
    the hubs' `_sleeping`/`_idle`/`_incoming` fields and the counts here; it
    is never held while taking another lock."""

    def __init__(self, n):
        self.hubs = [None] * n
        self.stopping = False
        self.deadlocked = False
        self.blocked = []
        self.fatal = None      # a worker hub's task that raised KeyboardInterrupt/SystemExit
        self.error = None      # a worker hub's loop that failed
        self._lock = threading.RLock()
        self._nidle = 0        # hubs idle, finished ones included
        self._nfinished = 0    # worker hubs whose loop has ended

    # -- a hub about to block in its poller, and waking from it -------------
    def sleep_begin(self, hub, idle):
        """False if work arrived meanwhile (do not block) or a deadlock is
        declared now; else the hub is marked sleeping (and idle)."""
        with self._lock:
            if hub._ready or hub._threadsafe or self.deadlocked:
                return False
            hub._sleeping = True
            if idle:
                hub._idle = True
                self._nidle += 1
                if self._nidle == len(self.hubs):
                    self.deadlocked = True
                    hub._sleeping = False
                    wake = [h for h in self.hubs if h is not hub]
                else:
                    return True
            else:
                return True
        for h in wake:
            h._poller.wakeup()
        return False

    def sleep_end(self, hub):
        with self._lock:
            hub._sleeping = False
            if hub._idle:
                hub._idle = False
                self._nidle -= 1

    def notify(self, hub):
        """Work was pushed to `hub` (a task in `_ready`, a callback in
        `_threadsafe`: always something sleep_begin() sees): it is not idle
        any more; wake it if it sleeps."""
        with self._lock:
            if hub._idle:
                hub._idle = False
                self._nidle -= 1
            if not hub._sleeping:
                return
            hub._sleeping = False
        hub._poller.wakeup()

    # -- spawning across hubs -----------------------------------------------
    def incoming(self, hub):
        with self._lock:
            hub._incoming += 1

    def adopted(self, hub):
        with self._lock:
            hub._incoming -= 1

    def least_loaded(self):
        best = None
        for h in self.hubs:
            load = len(h._tasks) + h._incoming
            if best is None or load < best[0]:
                best = (load, h)
        return best[1]

    # -- the end ------------------------------------------------------------
    def stop(self, fatal):
        """main ended (or a task raised KeyboardInterrupt/SystemExit): every hub
        cancels its tasks and ends once they are done."""
        if fatal is not None and self.fatal is None:
            self.fatal = fatal
        if self.stopping:
            return
        self.stopping = True
        me = _tls.hub
        for h in self.hubs:
            if h is not me:
                h.call_soon_threadsafe(int)  # a pending item: it re-checks `stopping`

    def finished(self, hub):
        """A worker hub's loop ended: it stays idle for good; hub 0 is told
        (before this hub counts as idle, so no false deadlock)."""
        with self._lock:
            self._nfinished += 1
            self.hubs[0].call_soon_threadsafe(int)  # pending: it re-checks workers_done()
            if not hub._idle:
                hub._idle = True
                self._nidle += 1

    def workers_done(self):
        return self._nfinished == len(self.hubs) - 1


def _available_cores():
    count = getattr(os, "process_cpu_count", None)
    if count is not None:
        return count() or 1
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:
        return os.cpu_count() or 1


def _hub_count(hubs):
    if hubs == "auto":
        return _available_cores()
    if isinstance(hubs, bool) or not isinstance(hubs, int):
        raise TypeError(f"hubs must be an int >= 1 or 'auto', got {hubs!r}")
    if hubs < 1:
        raise ValueError(f"hubs must be >= 1, got {hubs}")
    return hubs


def run(main, *args, hubs=1, **kwargs):
    """Run `main(*args, **kwargs)` as a task until it finishes; return its
    result or raise its exception.

    Tasks still alive when `main` ends are cancelled and joined.  Raises
    `Deadlock` if every task blocks with nothing left to wake them.

    `hubs=N` (or "auto": one per available core) runs N hubs, each on its
    own OS thread (this one is hub 0 and runs `main`); `spawn_on` places
    tasks on the others, and tasks, channels and sync objects work across
    them.  The default, 1, runs this thread's hub alone.
    """
    n = _hub_count(hubs)
    hub0 = get_hub()
    if n == 1:
        return hub0.run(main, *args, **kwargs)
    if hub0._running:
        raise RuntimeError("pycoro.run() cannot be nested (a hub is already running on this thread)")
    if not callable(main):
        raise TypeError(f"run() needs a callable, got {type(main).__name__}")
    group = Group(n)
    group.hubs[0] = hub0
    threads = []
    _parking.enter_multi()
    try:
        hub0._group = group
        hub0._index = 0
        started = threading.Barrier(n)
        for i in range(1, n):
            th = threading.Thread(target=_worker, args=(group, i, started), name=f"pycoro-hub-{i}", daemon=True)
            th.start()
            threads.append(th)
        started.wait()
        try:
            result = hub0.run(main, *args, **kwargs)
        except Deadlock:
            _join(group, threads)
            raise Deadlock(group.blocked) from None
        except BaseException:
            _join(group, threads)
            _raise_failure(group)  # it caused what main raised (Cancelled)
            raise
        _join(group, threads)
        _raise_failure(group)
        return result
    finally:
        _join(group, threads)
        hub0._group = None
        _parking.exit_multi()


def _raise_failure(group):
    """Raise what ended the run on a worker hub: a task's KeyboardInterrupt or
    SystemExit, or a failure of the hub loop itself."""
    if group.fatal is not None:
        group.fatal._outcome.unwrap()
    if group.error is not None:
        raise group.error


def _join(group, threads):
    group.stop(None)
    for th in threads:
        while th.is_alive():
            th.join()


def _worker(group, index, started):
    hub = get_hub()
    hub._group = group
    hub._index = index
    hub._running = True
    hub._loop_fiber = _current()
    group.hubs[index] = hub
    try:
        started.wait()
        hub._loop()
    except Deadlock:
        pass
    except BaseException as e:  # noqa: B902 -- a broken hub loop: hub 0 re-raises it
        if group.error is None:
            group.error = e
        group.stop(None)
    finally:
        hub._abandon()
        hub._running = False
        hub._loop_fiber = None  # (its _group stays: late pushes to it are harmless)
        group.finished(hub)


def _current_group(what):
    hub = _tls.hub
    if hub is None or not hub._running:
        outside(what)
    return hub


def hubs():
    """The hubs of the running multi-hub run (hub 0 first), or [this
    thread's hub] when it runs alone."""
    hub = _current_group("hubs()")
    group = hub._group
    return [hub] if group is None else list(group.hubs)


def spawn_on(where, fn, *args, **kwargs):
    """Like `spawn`, on the hub `where`: an index into hubs(), a Hub, or
    "any" (the least loaded).  The task stays on that hub for its whole life."""
    here = _current_group("spawn_on()")
    group = here._group
    if where == "any":
        hub = here if group is None else group.least_loaded()
    elif isinstance(where, Hub):
        hub = where
        if hub is not here and (group is None or hub not in group.hubs):
            raise ValueError(f"{hub!r} is not a hub of this run")
    elif isinstance(where, int) and not isinstance(where, bool):
        n = 1 if group is None else len(group.hubs)
        if not 0 <= where < n:
            raise IndexError(f"no hub {where} (this run has {n})")
        hub = here if group is None else group.hubs[where]
    else:
        raise TypeError(f"spawn_on() needs a hub index, a Hub or 'any', got {where!r}")
    if hub is here:
        t = _new_task(hub, fn, args, kwargs, None, RUNNABLE)
        hub._ready.append(t)
        return t
    if group.stopping or not hub._running:
        raise RuntimeError(f"hub {hub._index} is shutting down")
    t = _new_task(hub, fn, args, kwargs, None, RUNNABLE, adopt=False)
    group.incoming(hub)
    hub.call_soon_threadsafe(hub._adopt, t)
    return t
