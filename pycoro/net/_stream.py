"""A byte stream over a non-blocking socket (or pipe), as blocking-style calls
that park the calling task.

Owns: `Stream` (recv / recv_into / sendall / readline / readexactly /
shutdown_write / close), its errors (`StreamClosed`, `IncompleteRead`), the
TLS handshake and flush loops (the TLS session itself is ._tls.TLSSocket),
and `PipeEnd` (an fd with the socket methods a Stream uses, for subprocess
pipes).  Every operation first tries the system call and
parks only on EAGAIN (or ssl's WANT_READ/WANT_WRITE), through
pycoro._hub._io.wait_fd with a *kept* registration: the stream calls
`Poller.forget()` before it closes its fd, which wakes every task parked on
it with StreamClosed.  Interruptions (cancel, pycoro.timeout scopes) arrive
at those parks.
Every call takes `timeout=` (seconds) of its own, besides the scopes.
May call: pycoro._hub (_io.wait_fd, _parking, _scopes.timeout), ._tls, the
socket and ssl modules.
"""
import errno
import os
import socket as _socket
from threading import get_ident as _get_ident

from .._pycoro import current as _current
from .._hub._errors import Timeout, check_timeout, outside
from .._hub._io import wait_fd
from .._hub._parking import TaskBase
from .._hub._scopes import timeout as _timeout_scope
try:
    from ._tls import TLSSocket
except ImportError:  # Python built without ssl
    class TLSSocket:
        pass

try:
    import ssl as _ssl
    _WANT_READ = _ssl.SSLWantReadError
    _WANT_WRITE = _ssl.SSLWantWriteError
except ImportError:  # Python built without ssl
    _ssl = None

    class _WANT_READ(Exception):
        pass

    class _WANT_WRITE(Exception):
        pass

CHUNK = 65536


class StreamClosed(OSError):
    """The stream was closed: by this task earlier, or by another task while
    this one was waiting on it."""

    def __init__(self, msg="the stream is closed"):
        super().__init__(errno.EBADF, msg)


class IncompleteRead(EOFError):
    """readexactly() met end of file early.  `partial` holds what was read."""

    def __init__(self, partial, expected):
        self.partial = partial
        self.expected = expected
        super().__init__(f"end of stream after {len(partial)} of {expected} bytes")


def _woken_by_close():
    return StreamClosed("the stream was closed while this task waited on it")


class _ClosedSock:
    """Stands in for a closed stream's socket: every call raises StreamClosed
    (so the hot paths need no `closed` check)."""

    def _fail(self, *args, **kwargs):
        raise StreamClosed()

    recv = recv_into = send = shutdown = do_handshake = _fail

    def fileno(self):
        return -1


_CLOSED = _ClosedSock()


def _timed(method, what, timeout, *args):
    """`method(*args)` within `timeout` seconds, else pycoro.Timeout naming `what`."""
    timeout = check_timeout(timeout)
    scope = _timeout_scope(timeout)
    try:
        with scope:
            return method(*args)
    except Timeout as e:
        if e.scope is scope:
            raise Timeout(f"{what}() timed out after {timeout}s", scope=scope) from None
        raise


def _task(what):
    cur = _current()
    if not isinstance(cur, TaskBase):
        outside(what)
    return cur


class _ClosesOnExit:
    """Base of the objects that `with` closes: __enter__ returns the object,
    __exit__ calls its close() and lets the exception (if any) go on."""

    __slots__ = ()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Stream(_ClosesOnExit):
    """A connected byte stream.  Created by connect_tcp / connect_unix, by a
    server for each connection, or by pycoro.subprocess for pipes.

    A stream belongs to the hub (thread) it was made on.  One task may
    receive while another sends; two tasks receiving at once is an error.
    If an operation is interrupted (cancel, timeout) part of the data may
    have been transferred: the stream is then best closed.
    """

    # _short: the last recv() got fewer bytes than asked, so the kernel buffer
    # was drained and the next recv would almost surely fail with EAGAIN:
    # it parks on readiness first (the epoll registration is level-triggered
    # and kept, so data that came meanwhile is reported at the next poll).
    __slots__ = ("_sock", "_fd", "_hub", "_rbuf", "_raw", "_short", "__weakref__")

    def __init__(self, sock, hub=None):
        if hub is None:
            hub = _task("net.Stream()")._hub
        sock.setblocking(False)
        self._sock = sock
        self._raw = sock       # kept after close for .socket
        self._fd = sock.fileno()
        self._hub = hub
        self._rbuf = bytearray()
        self._short = False

    def __repr__(self):
        state = "closed" if self._sock is _CLOSED else f"fd={self._fd}"
        return f"<pycoro.net.Stream {state}>"

    @property
    def socket(self):
        """The underlying (non-blocking) socket object."""
        return self._raw

    @property
    def closed(self):
        return self._sock is _CLOSED

    def fileno(self):
        return self._sock.fileno()

    def _wait(self, idx):
        cur = _current()
        if not isinstance(cur, TaskBase):
            outside("net.Stream I/O")
        wait_fd(cur, self._fd, idx, None, True)

    # -- receiving -----------------------------------------------------------
    def _recv_raw(self, n):
        while True:
            sock = self._sock
            try:
                return sock.recv(n)
            except (BlockingIOError, _WANT_READ):
                self._wait(0)
            except _WANT_WRITE:
                self._wait(1)

    def recv(self, n=CHUNK, timeout=None):
        """Up to `n` bytes (at least 1); b"" at end of stream.  `timeout`
        (seconds, as for every call below): pycoro.Timeout if nothing came."""
        if timeout is not None:
            return _timed(self.recv, "Stream.recv", timeout, n)
        buf = self._rbuf
        if buf:
            data = bytes(buf[:n])
            del buf[:n]
            return data
        sock = self._sock
        if self._short and sock.__class__ is not TLSSocket:
            self._wait(0)
            sock = self._sock
        try:
            data = sock.recv(n)
            self._short = 0 < len(data) < n
            return data
        except (BlockingIOError, _WANT_READ):
            self._wait(0)
        except _WANT_WRITE:
            self._wait(1)
        return self._recv_raw(n)

    def recv_into(self, buffer, nbytes=0, timeout=None):
        """Receive into `buffer`; the number of bytes written (0 at end of stream)."""
        if timeout is not None:
            return _timed(self.recv_into, "Stream.recv_into", timeout, buffer, nbytes)
        buf = self._rbuf
        if buf:
            view = memoryview(buffer).cast("B")
            n = min(len(buf), nbytes or len(view))
            view[:n] = buf[:n]
            del buf[:n]
            return n
        while True:
            sock = self._sock
            try:
                return sock.recv_into(buffer, nbytes)
            except (BlockingIOError, _WANT_READ):
                self._wait(0)
            except _WANT_WRITE:
                self._wait(1)

    def readline(self, limit=CHUNK, timeout=None):
        """Bytes up to and including b"\\n"; at end of stream what is left
        (b"" if nothing).  ValueError if no newline within `limit` bytes.
        On a timeout what was read stays buffered for the next call."""
        if timeout is not None:
            return _timed(self.readline, "Stream.readline", timeout, limit)
        buf = self._rbuf
        start = 0
        while True:
            i = buf.find(b"\n", start)
            if i >= 0:
                if i + 1 > limit:
                    raise ValueError(f"line longer than {limit} bytes")
                line = bytes(buf[:i + 1])
                del buf[:i + 1]
                return line
            if len(buf) > limit:
                raise ValueError(f"no newline within {limit} bytes")
            start = len(buf)
            chunk = self._recv_raw(CHUNK)
            if not chunk:
                line = bytes(buf)
                buf.clear()
                return line
            buf += chunk

    def readexactly(self, n, timeout=None):
        """Exactly `n` bytes; IncompleteRead if the stream ends first.  On a
        timeout what was read stays buffered for the next call."""
        if timeout is not None:
            return _timed(self.readexactly, "Stream.readexactly", timeout, n)
        if n < 0:
            raise ValueError("readexactly() needs n >= 0")
        buf = self._rbuf
        while len(buf) < n:
            chunk = self._recv_raw(max(CHUNK, n - len(buf)) if n - len(buf) < (1 << 20) else 1 << 20)
            if not chunk:
                partial = bytes(buf)
                buf.clear()
                raise IncompleteRead(partial, n)
            buf += chunk
        data = bytes(buf[:n])
        del buf[:n]
        return data

    # -- sending -------------------------------------------------------------
    def sendall(self, data, timeout=None):
        """Send all of `data`, parking while the peer does not keep up (the
        kernel's socket buffer is the only buffer: memory stays bounded).
        `timeout` bounds the whole call; after a timeout part of `data` may
        have been sent."""
        if timeout is not None:
            return _timed(self.sendall, "Stream.sendall", timeout, data)
        sock = self._sock
        try:
            sent = sock.send(data)
        except (BlockingIOError, _WANT_WRITE):
            sent = 0
        except _WANT_READ:
            self._wait(0)
            sent = 0
        if sent == len(data):
            if sock.__class__ is TLSSocket and sock.owes:
                self._flush_tls(sock)
            return
        view = memoryview(data).cast("B")
        total = len(view)
        while sent < total:
            self._wait(1)
            sock = self._sock
            try:
                sent += sock.send(view[sent:])
            except (BlockingIOError, _WANT_WRITE):
                pass
            except _WANT_READ:
                self._wait(0)
        if sock.__class__ is TLSSocket and sock.owes:
            self._flush_tls(sock)

    send = sendall

    def shutdown_write(self):
        """Half-close: the peer reads end of stream; this side can still receive."""
        sock = self._sock
        if isinstance(sock, PipeEnd):
            self.close()  # a pipe's write end: closing it is the half-close
            return
        if sock.__class__ is TLSSocket:
            self._rbuf += sock.close_notify()
            self._flush_tls(sock)
            return
        try:
            sock.shutdown(_socket.SHUT_WR)
        except OSError as e:
            if e.errno != errno.ENOTCONN:  # the peer has gone: nothing to shut
                raise

    # -- TLS -------------------------------------------------------------------
    def _flush_tls(self, sock):
        """Wait until the TLS session's owed output is with the kernel."""
        while sock.owes:
            self._wait(1)
            try:
                self._sock.flush()
            except _WANT_WRITE:
                pass

    @property
    def ssl_object(self):
        """The ssl.SSLObject of a TLS stream (version(), getpeercert(),
        cipher()...), else None."""
        sock = self._sock
        return sock.obj if sock.__class__ is TLSSocket else None

    def do_handshake(self):
        while True:
            sock = self._sock
            try:
                sock.do_handshake()
                return
            except (BlockingIOError, _WANT_READ):
                self._wait(0)
            except _WANT_WRITE:
                self._wait(1)

    # -- closing ---------------------------------------------------------------
    def close(self):
        """Close the stream.  Tasks parked on it are woken with StreamClosed.
        Idempotent; never parks."""
        sock = self._sock
        if sock is _CLOSED:
            return
        self._sock = _CLOSED
        self._short = False  # a recv after close must fail, not wait on the fd
        self._rbuf = bytearray()
        fd = self._fd
        if fd >= 0:
            self._hub._poller.forget(fd, _woken_by_close)
        sock.close()

    def __del__(self):
        # An unclosed stream that is collected must still drop its kept
        # registration before the socket object closes the fd.  The
        # collector may run in another thread: then both steps go to the
        # hub's thread (the poller is not thread-safe).
        try:
            sock = self._sock
            if sock is _CLOSED:
                return
            hub = self._hub
            if hub._thread_id == _get_ident():
                self.close()
            else:
                self._sock = _CLOSED
                hub.call_soon_threadsafe(_forget_and_close, hub, self._fd, sock)
        except Exception:
            pass


def _forget_and_close(hub, fd, sock):
    hub._poller.forget(fd, _woken_by_close)
    sock.close()


class PipeEnd:
    """An fd (a pipe end) with the socket methods Stream uses."""

    __slots__ = ("_fd",)

    def __init__(self, fd):
        self._fd = fd

    def fileno(self):
        return self._fd

    def setblocking(self, flag):
        os.set_blocking(self._fd, flag)

    def recv(self, n):
        return os.read(self._fd, n)

    def recv_into(self, buffer, nbytes=0):
        view = memoryview(buffer).cast("B")
        return os.readv(self._fd, [view[:nbytes] if nbytes else view])

    def send(self, data):
        return os.write(self._fd, data)

    def shutdown(self, how):
        self.close()

    def close(self):
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)
