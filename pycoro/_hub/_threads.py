"""Running blocking work in OS threads: to_thread() and its bounded pool.

Owns: `_Pool` (a process-wide pool of daemon worker threads, at most
`max_threads()` of them, idle workers exit after a while) and `to_thread()`.
The calling task parks on a Waiter; the worker hands the outcome back with
the hub's `call_soon_threadsafe` (whose wake-up pipe interrupts a blocked
poll), so the Waiter is only ever touched on the hub's thread.  While a call
is pending the hub is *held* (`hub._holds`), so an otherwise idle hub waits
for it instead of reporting Deadlock.  Cancelling the task abandons the
wait: a job not yet started is skipped, a running one finishes in its
thread and its outcome is dropped.
May call: _errors, _parking; the hub only through `task._hub`
(`_holds`, `call_soon_threadsafe`).
"""
import contextvars
import functools
import os
import queue
import threading

from ._parking import Waiter, current_task, park

_IDLE_SECONDS = 30.0


class _Job:
    # call: the function with its arguments, run in the caller's context
    __slots__ = ("call", "hub", "waiter", "abandoned")

    def __init__(self, call, hub, waiter):
        self.call = call
        self.hub = hub
        self.waiter = waiter
        self.abandoned = False

    def run(self):
        if self.abandoned:
            return
        try:
            outcome = (True, self.call())
        except BaseException as e:  # noqa: B902 -- handed back to the task as is
            outcome = (False, e)
        self.call = None   # the arguments are not kept alive by a finished job
        if not self.abandoned:
            self.hub.call_soon_threadsafe(_deliver, self.waiter, outcome)


def _deliver(waiter, outcome):
    waiter.wake(outcome)  # on the hub's thread; a no-op if the wait was abandoned


class _Pool:
    def __init__(self, limit):
        self.limit = limit
        self._jobs = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = set()
        self._idle = 0

    def submit(self, job):
        with self._lock:
            self._jobs.put(job)
            if self._idle < self._jobs.qsize() and len(self._threads) < self.limit:
                t = threading.Thread(target=self._work, name="pycoro-to_thread", daemon=True)
                self._threads.add(t)
                t.start()

    def _work(self):
        me = threading.current_thread()
        jobs = self._jobs
        while True:
            with self._lock:
                self._idle += 1
            try:
                job = jobs.get(timeout=_IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    self._idle -= 1
                    if jobs.empty():
                        self._threads.discard(me)
                        return
                continue
            with self._lock:
                self._idle -= 1
            job.run()
            job = None

    def nthreads(self):
        with self._lock:
            return len(self._threads)


_pool = _Pool(min(32, (os.cpu_count() or 1) + 4))


def max_threads(n=None):
    """The pool's bound (and, with `n`, set it: later calls use it)."""
    if n is not None:
        n = int(n)
        if n < 1:
            raise ValueError("max_threads must be >= 1")
        _pool.limit = n
    return _pool.limit


def to_thread(fn, *args, **kwargs):
    """Run `fn(*args, **kwargs)` in a worker thread; the calling task parks
    (others run) until it returns, then gets its result or its exception.
    The call runs in a copy of the task's contextvars context.  If the task
    is cancelled or times out meanwhile, the wait is abandoned: the
    interruption is raised at once and the call's outcome is dropped."""
    if not callable(fn):
        raise TypeError(f"to_thread() needs a callable, got {type(fn).__name__}")
    cur = current_task("to_thread()")
    hub = cur._hub
    waiter = Waiter(cur)
    job = _Job(functools.partial(contextvars.copy_context().run, fn, *args, **kwargs),
               hub, waiter)
    hub._holds += 1
    try:
        _pool.submit(job)
        park()
    except BaseException:
        job.abandoned = True
        waiter.task = None
        raise
    finally:
        hub._holds -= 1
    ok, value = waiter.value
    if ok:
        return value
    try:
        raise value
    finally:
        value = None
