"""Go-style channels between tasks, and `select` over them.

They work between the tasks of one hub and between the hubs of a multi-hub
run (then under _parking.XLOCK: `shared_methods` for the channels,
`shared_function` for select()).

May call: pycoro._waiters (WaitQueue, Waiter) and the parking primitive's
package-internal interface (pycoro._hub._parking's shared_methods / shared_function,
pycoro._hub._scopes.park_until / rearm).
"""
from collections import deque
from types import GenericAlias as _GenericAlias

from ._hub._errors import Timeout, check_timeout
from ._hub._parking import shared_function, shared_methods
from ._hub._scopes import park_until, rearm
from ._waiters import WaitQueue, Waiter, current_task

__all__ = ["Channel", "ChannelClosed", "select"]

_CLOSED = object()  # granted to waiters when the channel closes under them


class ChannelClosed(Exception):
    """Send on a closed channel, or receive from a closed and drained one."""

    def __init__(self, channel=None):
        super().__init__(f"{channel!r} is closed" if channel is not None else "channel is closed")
        self.channel = channel


def _complete(rec, value=None):
    """Grant a waiter; if it belongs to a select(), its other cases die."""
    siblings = rec.group
    if siblings is not None:
        for s in siblings:
            if s is not rec:
                s.task = None
    rec.wake(value)


@shared_methods("_try_send", "_try_recv", "send", "recv", "close")
class Channel:
    """A FIFO channel.  ``capacity=0``: every send waits for a receiver (rendezvous).

    Iterating receives until the channel is closed and drained.
    """

    __class_getitem__ = classmethod(_GenericAlias)

    __slots__ = ("capacity", "_buf", "_closed", "_recvq", "_sendq")

    def __init__(self, capacity=0):
        if not isinstance(capacity, int) or capacity < 0:
            raise ValueError(f"capacity must be an int >= 0, got {capacity!r}")
        self.capacity = capacity
        self._buf = deque()
        self._closed = False
        self._recvq = WaitQueue()
        self._sendq = WaitQueue()

    def __repr__(self):
        state = "closed" if self._closed else "open"
        return f"<pycoro.Channel {state} {len(self._buf)}/{self.capacity}>"

    def __len__(self):
        return len(self._buf)

    @property
    def closed(self):
        return self._closed

    # -- non-blocking halves (shared with select) ----------------------------
    def _try_send(self, value):
        """Send without blocking if possible: True if done."""
        if self._closed:
            raise ChannelClosed(self)
        rec = self._recvq.pop()
        if rec is not None:
            _complete(rec, value)
            return True
        buf = self._buf
        if len(buf) < self.capacity:
            buf.append(value)
            return True
        return False

    def _try_recv(self):
        """Receive without blocking if possible: (True, value) or (False, None)."""
        if self._buf:
            value, rec = self._sendq.take_refilling(self._buf)
            if rec is not None:  # a waiting sender's value moved in
                _complete(rec)
            return True, value
        rec = self._sendq.pop()
        if rec is not None:
            value = rec.value
            _complete(rec)
            return True, value
        if self._closed:
            raise ChannelClosed(self)
        return False, None

    # -- blocking API ---------------------------------------------------------
    def send(self, value, timeout=None):
        """Send `value`; waits for room (or, unbuffered, for a receiver).

        Raises ChannelClosed if the channel is (or gets) closed, Timeout on timeout.
        """
        timeout = check_timeout(timeout)
        if self._try_send(value):
            return
        cur = current_task("Channel.send()")
        rec = self._sendq.wait(cur, value, timeout)
        if rec is None:
            raise Timeout(f"send on {self!r} timed out after {timeout}s")
        if rec.value is _CLOSED:
            raise ChannelClosed(self)

    def recv(self, timeout=None):
        """Receive a value; raises ChannelClosed once closed and drained, Timeout on timeout."""
        timeout = check_timeout(timeout)
        ok, value = self._try_recv()
        if ok:
            return value
        cur = current_task("Channel.recv()")
        rec = self._recvq.wait(cur, None, timeout)
        if rec is None:
            raise Timeout(f"recv on {self!r} timed out after {timeout}s")
        value = rec.value
        if value is _CLOSED:
            raise ChannelClosed(self)
        return value

    def close(self):
        """Close: later sends raise ChannelClosed; buffered values can still be received.

        Waiting receivers and senders are woken with ChannelClosed.  Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        for q in (self._recvq, self._sendq):
            while (rec := q.pop()) is not None:
                _complete(rec, _CLOSED)

    def __iter__(self):
        while True:
            try:
                yield self.recv()
            except ChannelClosed:
                return


@shared_function
def select(recv=(), send=(), timeout=None):
    """Wait until one of the operations can proceed, perform exactly that one.

    `recv`: channels to receive from; `send`: (channel, value) pairs.  Returns
    ``(channel, value)`` (value is None for a send).  When several are ready at
    once the first listed wins (receives before sends).  A closed channel makes
    its case raise ChannelClosed.  On timeout raises Timeout.
    """
    timeout = check_timeout(timeout)
    recv = list(recv)
    send = [(ch, v) for ch, v in send]
    if not recv and not send:
        raise ValueError("select() needs at least one operation")
    for ch in recv:
        ok, value = ch._try_recv()
        if ok:
            return ch, value
    for ch, value in send:
        if ch._try_send(value):
            return ch, None
    cur = current_task("select()")
    if timeout == 0:
        raise Timeout("select(): no operation ready")
    siblings = []
    cases = []  # (rec, queue, channel)
    for ch in recv:
        rec = Waiter(cur, None, siblings)
        siblings.append(rec)
        cases.append((rec, ch._recvq, ch))
        ch._recvq.push(rec)
    for ch, value in send:
        rec = Waiter(cur, value, siblings)
        siblings.append(rec)
        cases.append((rec, ch._sendq, ch))
        ch._sendq.push(rec)
    winner = None
    try:
        woken = park_until(cur, timeout)
    except BaseException as e:
        winner = _winner(cases)
        if winner is None:
            raise
        rearm(cur, e)
    else:
        winner = _winner(cases)
        if not woken and winner is None:
            raise Timeout(f"select() timed out after {timeout}s")
    finally:
        for rec, q, _ in cases:
            if rec is not (winner[0] if winner else None):
                q.forget(rec)
    rec, q, ch = winner
    value = rec.value
    if value is _CLOSED:
        raise ChannelClosed(ch)
    return ch, (value if q is ch._recvq else None)


def _winner(cases):
    for case in cases:
        if case[0].granted:
            return case
    return None
