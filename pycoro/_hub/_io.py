"""Waiting for file descriptors: the hub's poller, and wait_readable() /
wait_writable() on top of it.

Owns: `Poller`, which maps each fd to at most one reading and one writing
Waiter, keeps the selector (epoll on Linux) registration in step with them,
and owns the wake-up pipe other threads write to (`wakeup()`).  The hub
loop asks it `poll(timeout)` for the waiters whose fd became ready; a
networking layer (pycoro.net, later) parks on the same interface: `add()`
a Waiter, park(), `discard()` it if the wait was interrupted.
May call: _errors, _parking, _scopes (a wait's own timeout).
"""
import os
import selectors

from ._errors import Timeout, check_timeout
from ._parking import Waiter, current_task
from ._scopes import park_until

_READ, _WRITE = 0, 1
_EVENTS = (selectors.EVENT_READ, selectors.EVENT_WRITE)


class Poller:
    __slots__ = ("_selector", "waiters", "count", "_wake_r", "_wake_w")

    def __init__(self):
        self._selector = selectors.DefaultSelector()
        self.waiters = {}  # fd -> [reading Waiter or None, writing Waiter or None]
        self.count = 0     # waiters registered
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)

    def add(self, fd, idx, waiter):
        """Register `waiter` for fd readiness (idx 0: readable, 1: writable)."""
        pair = self.waiters.get(fd)
        sel = self._selector
        if pair is None:
            # (register first: it raises for fds epoll refuses, e.g. regular files)
            sel.register(fd, _EVENTS[idx])
            pair = self.waiters[fd] = [None, None]
        else:
            if pair[idx] is not None:
                raise RuntimeError(f"fd {fd} already has a task waiting to {'read' if idx == 0 else 'write'}")
            sel.modify(fd, selectors.EVENT_READ | selectors.EVENT_WRITE)
        pair[idx] = waiter
        self.count += 1

    def discard(self, fd, idx, waiter):
        """Drop `waiter` if it is still registered (its wait was interrupted)."""
        pair = self.waiters.get(fd)
        if pair is not None and pair[idx] is waiter:
            self._drop(fd, pair, idx)

    def _drop(self, fd, pair, idx):
        pair[idx] = None
        self.count -= 1
        try:
            if pair[1 - idx] is None:
                del self.waiters[fd]
                self._selector.unregister(fd)
            else:
                self._selector.modify(fd, _EVENTS[1 - idx])
        except (KeyError, ValueError, OSError):
            pass  # the fd was closed under us

    def poll(self, timeout):
        """Wait up to `timeout` seconds (None: forever) for readiness or a
        wake-up; return the waiters whose fd is ready (already dropped)."""
        try:
            events = self._selector.select(timeout)
        except InterruptedError:
            return ()
        ready = []
        waiters = self.waiters
        for key, mask in events:
            fd = key.fd
            if fd == self._wake_r:
                self._drain_wakeups()
                continue
            pair = waiters.get(fd)
            if pair is None:
                continue
            if mask & selectors.EVENT_READ and pair[0] is not None:
                ready.append(pair[0])
                self._drop(fd, pair, 0)
            if mask & selectors.EVENT_WRITE and pair[1] is not None:
                ready.append(pair[1])
                self._drop(fd, pair, 1)
        return ready

    def _drain_wakeups(self):
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def wakeup(self):
        """Make a blocked poll() return soon; callable from any thread."""
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError):
            pass  # pipe full: the hub has wake-ups pending anyway

    def clear(self):
        """Forget every waiter (the hub is abandoning its tasks)."""
        for fd in list(self.waiters):
            try:
                self._selector.unregister(fd)
            except (KeyError, ValueError, OSError):
                pass
        self.waiters.clear()
        self.count = 0

    def close(self):
        if self._wake_r >= 0:
            self._selector.close()
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1


def _wait_fd(fd, idx, timeout, what):
    cur = current_task(what)
    timeout = check_timeout(timeout)
    if not isinstance(fd, int):
        fd = fd.fileno()
    if fd < 0:
        raise ValueError(f"invalid file descriptor {fd}")
    poller = cur._hub._poller
    waiter = Waiter(cur)
    poller.add(fd, idx, waiter)
    try:
        if not park_until(cur, timeout):
            raise Timeout(f"fd {fd} not {'readable' if idx == 0 else 'writable'} within {timeout}s")
    finally:
        poller.discard(fd, idx, waiter)


def wait_readable(fd, timeout=None):
    """Suspend the calling task until `fd` (an int or an object with fileno()) is readable."""
    return _wait_fd(fd, _READ, timeout, "wait_readable()")


def wait_writable(fd, timeout=None):
    """Suspend the calling task until `fd` is writable."""
    return _wait_fd(fd, _WRITE, timeout, "wait_writable()")
