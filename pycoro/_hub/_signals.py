"""Signals: signal_receiver() delivers signals to a task, and Ctrl-C becomes
KeyboardInterrupt in the main task.

Owns: `SignalReceiver` (installs Python-level handlers for its signals while
it is open, queues what arrives, `receive()` parks until one is there) and
`install_sigint(hub)` (used by Hub.run).  A Python signal handler runs in
the main thread between two bytecodes, possibly in the middle of hub code,
so the handlers do nothing but `hub.call_soon_threadsafe(...)` (a deque
append and a write to the wake-up pipe); the work happens in the loop.  The
wake-up pipe is also made the interpreter's signal wake-up fd while a
receiver is open, so a signal delivered to another thread still interrupts
a poll() blocked in the main thread.  An open receiver holds the hub, so a
task waiting for a signal is not a Deadlock.
May call: _errors, _parking, _scopes (interrupt); the hub through
`task._hub` / the `hub` argument.
"""
import collections
import signal as _signal
import threading

from .._pycoro import current as _current
from ._parking import DONE, Waiter, current_task, park
from ._scopes import interrupt


def _in_main_thread():
    return threading.current_thread() is threading.main_thread()


def _set_wakeup(hub):
    """Point the interpreter's signal wake-up fd at the hub's pipe unless
    someone else set one; returns the previous one to restore, or None."""
    try:
        prev = _signal.set_wakeup_fd(hub._poller.wakeup_fd, warn_on_full_buffer=False)
    except (ValueError, OSError):
        return None
    if prev != -1:
        _signal.set_wakeup_fd(prev)  # not ours to take over
        return None
    return -1


class SignalReceiver:
    """``with signal_receiver(SIGTERM, SIGHUP) as rx: signum = rx.receive()``.

    Signals that arrive while nobody receives are queued (one entry per
    signal number and arrival, at most `maxlen` kept).  Iterating yields
    signal numbers forever."""

    def __init__(self, signals, maxlen=1024):
        if not signals:
            raise ValueError("signal_receiver() needs at least one signal")
        self._signals = [_signal.Signals(s) for s in signals]
        self._pending = collections.deque(maxlen=maxlen)
        self._waiter = None
        self._old = None
        self._hub = None
        self._wakeup_prev = None

    def __enter__(self):
        cur = current_task("signal_receiver()")
        if not _in_main_thread():
            raise RuntimeError("signal_receiver() only works in the main thread (Python runs signal handlers there)")
        if self._hub is not None:
            raise RuntimeError("a signal_receiver cannot be entered twice")
        hub = self._hub = cur._hub
        old = {}
        try:
            for s in self._signals:
                old[s] = _signal.signal(s, self._handler)
        except BaseException:
            for s, h in old.items():
                _signal.signal(s, h)
            raise
        self._old = old
        self._wakeup_prev = _set_wakeup(hub)
        hub._holds += 1
        return self

    def __exit__(self, *exc):
        hub = self._hub
        for s, h in self._old.items():
            _signal.signal(s, h)
        self._old = {}
        if self._wakeup_prev is not None:
            _signal.set_wakeup_fd(self._wakeup_prev)
            self._wakeup_prev = None
        hub._holds -= 1
        w, self._waiter = self._waiter, None
        if w is not None:
            w.task = None
        return False

    def _handler(self, signum, frame):
        self._hub.call_soon_threadsafe(self._deliver, signum)

    def _deliver(self, signum):
        w = self._waiter
        if w is not None and w.task is not None:
            self._waiter = None
            w.wake(signum)
        else:
            self._pending.append(signum)

    def receive(self):
        """The next signal number, parking until one arrives."""
        if self._old is None:
            raise RuntimeError("signal_receiver is not open (use it as a context manager)")
        if self._pending:
            return self._pending.popleft()
        if self._waiter is not None:
            raise RuntimeError("another task is already receiving from this signal_receiver")
        w = self._waiter = Waiter(current_task("SignalReceiver.receive()"))
        try:
            park()
        except BaseException:
            if w.granted:               # a signal was handed to us: keep it for the next receive
                self._pending.appendleft(w.value)
            raise
        finally:
            if self._waiter is w:
                self._waiter = None
        return w.value

    def __iter__(self):
        while True:
            yield self.receive()


def signal_receiver(*signals):
    """A context manager delivering the given signals to the task that
    calls `receive()` on it (main thread only)."""
    return SignalReceiver(signals)


def install_sigint(hub):
    """While `hub` runs in the main thread with Python's default SIGINT
    handler, Ctrl-C raises KeyboardInterrupt in the main task: at once if it
    is running, else at its suspension point (the loop interrupts it), so the
    other tasks are cancelled cleanly when it ends.  Returns an undo callable
    (None if nothing was installed)."""
    if not _in_main_thread():
        return None
    try:
        if _signal.getsignal(_signal.SIGINT) is not _signal.default_int_handler:
            return None
    except ValueError:
        return None

    def interrupt_main():
        main = hub._main
        if main is not None and main._phase is not DONE:
            interrupt(main, KeyboardInterrupt(), None)

    def on_sigint(signum, frame):
        main = hub._main
        if main is None or main._phase is DONE or _current() is main:
            raise KeyboardInterrupt
        hub.call_soon_threadsafe(interrupt_main)

    _signal.signal(_signal.SIGINT, on_sigint)
    prev_wakeup = _set_wakeup(hub)

    def undo():
        if _signal.getsignal(_signal.SIGINT) is on_sigint:
            _signal.signal(_signal.SIGINT, _signal.default_int_handler)
        if prev_wakeup is not None:
            _signal.set_wakeup_fd(prev_wakeup)

    return undo
