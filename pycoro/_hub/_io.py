"""Waiting for file descriptors: the hub's poller, and wait_readable() /
wait_writable() on top of it.

Owns: `Poller`, which maps each fd to at most one reading and one writing
Waiter, keeps the kernel registration (epoll on Linux, a `selectors`
fallback elsewhere) in step with them, and owns the wake-up pipe other
threads and signal handlers write to (`wakeup()`).  The hub loop asks it
`poll(timeout)` for the waiters whose fd became ready.

Two kinds of registration:
  * transient (wait_readable/wait_writable on a user's fd): the kernel
    registration lives only while a task waits, because the poller cannot
    know when the user closes the fd (a reused fd number would otherwise
    inherit a stale registration);
  * kept (`keep=True`, pycoro.net's streams, which call `forget()` before
    they close the fd): the registration stays across waits, so a recv loop
    costs no epoll_ctl at all.  Interest is widened when a task waits for a
    direction not yet registered, and narrowed lazily, only when the kernel
    reports readiness nobody waits for twice in a row (level-triggered, so
    nothing is lost; once is normal: the loop may poll again before a task
    it woke has read).
`forget(fd, make_exc)` wakes every task parked on the fd with an exception (a stream
being closed) and drops the registration.
May call: _errors, _parking, _scopes (a wait's own timeout).
"""
import os
import selectors

from ._errors import Timeout, check_timeout
from ._parking import Waiter, current_task
from ._scopes import park_until

_READ, _WRITE = 0, 1
_BITS = (1, 2)  # interest bits by direction (== selectors.EVENT_READ / EVENT_WRITE)

try:
    import select as _select
    _EPOLL = _select.epoll
except AttributeError:  # not Linux
    _EPOLL = None


class _EpollBackend:
    """epoll, driven directly (no selectors layer: fewer calls per wait)."""

    __slots__ = ("_ep",)
    _IN = _select.EPOLLIN if _EPOLL else 0
    _OUT = _select.EPOLLOUT if _EPOLL else 0
    # a hang-up or error must wake both directions (the reader sees EOF, the
    # writer its EPIPE/ECONNRESET)
    _R = (_select.EPOLLIN | _select.EPOLLPRI | _select.EPOLLERR | _select.EPOLLHUP | _select.EPOLLRDHUP) if _EPOLL else 0
    _W = (_select.EPOLLOUT | _select.EPOLLERR | _select.EPOLLHUP) if _EPOLL else 0

    def __init__(self):
        self._ep = _EPOLL()

    def _events(self, mask):
        return (self._IN if mask & 1 else 0) | (self._OUT if mask & 2 else 0)

    def register(self, fd, mask):
        self._ep.register(fd, self._events(mask))

    def modify(self, fd, mask):
        self._ep.modify(fd, self._events(mask))

    def unregister(self, fd):
        self._ep.unregister(fd)

    def poll(self, timeout):
        """[(fd, readiness bits)]."""
        r, w = self._R, self._W
        return [(fd, (ev & r and 1) | (ev & w and 2))
                for fd, ev in self._ep.poll(-1 if timeout is None else timeout)]

    def close(self):
        self._ep.close()


class _SelectorBackend:
    """The portable fallback (poll/kqueue/select through `selectors`)."""

    __slots__ = ("_sel",)

    def __init__(self):
        self._sel = selectors.DefaultSelector()

    def register(self, fd, mask):
        self._sel.register(fd, mask)

    def modify(self, fd, mask):
        self._sel.modify(fd, mask)

    def unregister(self, fd):
        self._sel.unregister(fd)

    def poll(self, timeout):
        return [(key.fd, mask) for key, mask in self._sel.select(timeout)]

    def close(self):
        self._sel.close()


_Backend = _EpollBackend if _EPOLL is not None else _SelectorBackend


class Poller:
    """fd -> [reading Waiter, writing Waiter, registered interest bits, kept,
    unwanted readiness already seen once]."""

    __slots__ = ("_backend", "waiters", "count", "_wake_r", "_wake_w")

    def __init__(self, backend=None):
        self._backend = (backend or _Backend)()
        self.waiters = {}  # fd -> [reader or None, writer or None, mask, keep, strike]
        self.count = 0     # waiters registered (what deadlock detection reads)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._backend.register(self._wake_r, 1)

    @property
    def wakeup_fd(self):
        """The write end of the wake-up pipe (signal.set_wakeup_fd uses it)."""
        return self._wake_w

    def add(self, fd, idx, waiter, keep=False):
        """Register `waiter` for fd readiness (idx 0: readable, 1: writable).
        `keep`: the caller will `forget()` the fd before closing it, so the
        kernel registration may outlive this wait."""
        st = self.waiters.get(fd)
        bit = _BITS[idx]
        if st is None:
            # (register first: it raises for fds epoll refuses, e.g. regular files)
            self._backend.register(fd, bit)
            st = self.waiters[fd] = [None, None, bit, keep, False]
        else:
            if st[idx] is not None:
                raise RuntimeError(f"fd {fd} already has a task waiting to {'read' if idx == 0 else 'write'}")
            mask = st[2]
            if not mask & bit:
                if mask:
                    self._backend.modify(fd, mask | bit)
                else:
                    self._backend.register(fd, bit)
                st[2] = mask | bit
            if keep:
                st[3] = True
            st[4] = False
        st[idx] = waiter
        self.count += 1

    def discard(self, fd, idx, waiter):
        """Drop `waiter` if it is still registered (its wait was interrupted)."""
        st = self.waiters.get(fd)
        if st is not None and st[idx] is waiter:
            self._drop(fd, st, idx)

    def _drop(self, fd, st, idx):
        st[idx] = None
        self.count -= 1
        if st[3]:
            return  # kept: narrowed lazily by poll()
        other = st[1 - idx]
        try:
            if other is None:
                del self.waiters[fd]
                self._backend.unregister(fd)
            else:
                st[2] = _BITS[1 - idx]
                self._backend.modify(fd, st[2])
        except (KeyError, ValueError, OSError):
            pass  # the fd was closed under us

    def forget(self, fd, make_exc=None):
        """The fd is about to be closed: wake its waiters, each with a fresh
        exception from `make_exc()` (their wait raises it; None: the wait
        just returns), and drop the registration.  Call before close()."""
        st = self.waiters.pop(fd, None)
        if st is None:
            return
        for idx in (0, 1):
            w = st[idx]
            if w is not None:
                st[idx] = None
                self.count -= 1
                w.wake(make_exc() if make_exc is not None else None)
        if st[2]:
            try:
                self._backend.unregister(fd)
            except (KeyError, ValueError, OSError):
                pass

    def poll(self, timeout):
        """Wait up to `timeout` seconds (None: forever) for readiness or a
        wake-up; return the waiters whose fd is ready (already dropped)."""
        try:
            events = self._backend.poll(timeout)
        except InterruptedError:
            return ()
        ready = []
        waiters = self.waiters
        wake_r = self._wake_r
        for fd, bits in events:
            st = waiters.get(fd)
            if st is None:
                if fd == wake_r:
                    self._drain_wakeups()
                continue
            if bits & 1:
                w = st[0]
                if w is not None:
                    ready.append(w)
                    if st[3]:   # kept: _drop() inlined (a stream's every wake-up)
                        st[0] = None
                        self.count -= 1
                    else:
                        self._drop(fd, st, 0)
                    bits &= ~1
            if bits & 2:
                w = st[1]
                if w is not None:
                    ready.append(w)
                    if st[3]:
                        st[1] = None
                        self.count -= 1
                    else:
                        self._drop(fd, st, 1)
                    bits &= ~2
            if st[3]:
                # Kept registration: readiness nobody waits for means this
                # direction is not wanted now; stop hearing about it.
                mask = st[2]
                spurious = mask & bits
                if spurious and not st[4]:
                    # Tolerate it once: the loop may poll again before the
                    # task it just woke has run and read (or waited) again.
                    st[4] = True
                elif spurious:
                    mask &= ~spurious
                    st[2] = mask
                    try:
                        if mask:
                            self._backend.modify(fd, mask)
                        else:
                            self._backend.unregister(fd)
                    except (KeyError, ValueError, OSError):
                        pass
                    if not mask and st[0] is None and st[1] is None:
                        del waiters[fd]
        return ready

    def _drain_wakeups(self):
        # One read empties the pipe but under a flood of wake-ups (hubs of a
        # multi-hub run wake each other once per hand-off): no exception then.
        try:
            while len(os.read(self._wake_r, 4096)) == 4096:
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
        for fd, st in list(self.waiters.items()):
            if st[2]:
                try:
                    self._backend.unregister(fd)
                except (KeyError, ValueError, OSError):
                    pass
        self.waiters.clear()
        self.count = 0

    def close(self):
        if self._wake_r >= 0:
            self._backend.close()
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1


def wait_fd(cur, fd, idx, timeout, keep=False):
    """Park task `cur` until `fd` is ready for direction `idx`.  Raises
    Timeout after `timeout` seconds (None: no limit), or the exception
    `forget()` woke the wait with (the fd is being closed)."""
    poller = cur._hub._poller
    waiter = Waiter(cur)
    poller.add(fd, idx, waiter, keep)
    try:
        if not park_until(cur, timeout):
            raise Timeout(f"fd {fd} not {'readable' if idx == 0 else 'writable'} within {timeout}s")
    finally:
        if waiter.task is not None:
            poller.discard(fd, idx, waiter)
    exc = waiter.value
    if exc is not None:
        raise exc


def _wait_fd(fd, idx, timeout, what):
    cur = current_task(what)
    timeout = check_timeout(timeout)
    if not isinstance(fd, int):
        fd = fd.fileno()
    if fd < 0:
        raise ValueError(f"invalid file descriptor {fd}")
    wait_fd(cur, fd, idx, timeout)


def wait_readable(fd, timeout=None):
    """Suspend the calling task until `fd` (an int or an object with fileno()) is readable."""
    return _wait_fd(fd, _READ, timeout, "wait_readable()")


def wait_writable(fd, timeout=None):
    """Suspend the calling task until `fd` is writable."""
    return _wait_fd(fd, _WRITE, timeout, "wait_writable()")
