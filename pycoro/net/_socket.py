"""`pycoro.net.socket`: a cooperative drop-in for socket.socket, for
libraries that want a socket object.

Owns: the `socket` class, a subclass of the standard one whose fd is always
non-blocking at the OS level while the object keeps its own timeout
(`settimeout`: None blocks the *task*, 0 is non-blocking, a number raises
socket.timeout/TimeoutError after it).  Blocking calls try the system call
and park on EAGAIN.  Registrations are transient (the user may close or
detach the fd behind our back).  Outside a pycoro task the calls fall back to
plain blocking behaviour (a short poll loop is not needed: the standard
methods run with the fd made blocking for the call).
May call: pycoro._hub (_io.wait_fd, _parking), ._connect (connect_sock).
"""
import errno
import os
import socket as _std

from .._pycoro import current as _current
from .._hub._errors import Timeout
from .._hub._io import wait_fd
from .._hub._parking import TaskBase

__all__ = ["socket", "socketpair", "create_connection"]

_EAGAIN = (errno.EAGAIN, errno.EWOULDBLOCK)


def _closed_error():
    return OSError(errno.EBADF, "the socket was closed while this task waited on it")


class socket(_std.socket):
    __slots__ = ("_co_timeout",)

    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        super().__init__(family, type, proto, fileno)
        self._co_timeout = _std.getdefaulttimeout()
        super().setblocking(False)

    def __repr__(self):
        return super().__repr__().replace("<socket.socket", "<pycoro.net.socket", 1)

    # -- timeouts --------------------------------------------------------------
    def settimeout(self, value):
        if value is not None:
            value = float(value)
            if value < 0:
                raise ValueError("Timeout value out of range")
        self._co_timeout = value

    def gettimeout(self):
        return self._co_timeout

    def setblocking(self, flag):
        self._co_timeout = None if flag else 0.0

    @property
    def timeout(self):
        return self._co_timeout

    def _wait(self, idx):
        """Park until ready; a non-blocking socket raises at once instead."""
        t = self._co_timeout
        if t == 0.0:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        cur = _current()
        fd = self.fileno()
        if fd < 0:
            raise OSError(errno.EBADF, "Bad file descriptor")
        if not isinstance(cur, TaskBase):
            # No hub here: block the thread in poll().
            import select
            p = select.poll()
            p.register(fd, select.POLLIN if idx == 0 else select.POLLOUT)
            if not p.poll(None if t is None else t * 1000):
                raise TimeoutError("timed out")
            return
        try:
            wait_fd(cur, fd, idx, t)
        except Timeout as e:
            raise TimeoutError("timed out") from e

    def _retry(self, idx, fn, *args):
        while True:
            try:
                return fn(*args)
            except BlockingIOError:
                self._wait(idx)

    # -- the standard methods, parking -----------------------------------------
    def accept(self):
        fd, addr = self._retry(0, self._accept)
        sock = socket(self.family, self.type, self.proto, fileno=fd)
        return sock, addr

    def connect(self, address):
        err = super().connect_ex(address)
        if err == 0:
            return
        if err in (errno.EINPROGRESS, errno.EALREADY) or err in _EAGAIN:
            self._wait(1)
            err = self.getsockopt(_std.SOL_SOCKET, _std.SO_ERROR)
        if err:
            raise OSError(err, os.strerror(err))

    def connect_ex(self, address):
        try:
            self.connect(address)
        except BlockingIOError as e:
            return e.errno
        except OSError as e:
            return e.errno or errno.EIO
        return 0

    def recv(self, bufsize, flags=0):
        return self._retry(0, super().recv, bufsize, flags)

    def recv_into(self, buffer, nbytes=0, flags=0):
        return self._retry(0, super().recv_into, buffer, nbytes, flags)

    def recvfrom(self, bufsize, flags=0):
        return self._retry(0, super().recvfrom, bufsize, flags)

    def recvfrom_into(self, buffer, nbytes=0, flags=0):
        return self._retry(0, super().recvfrom_into, buffer, nbytes, flags)

    def send(self, data, flags=0):
        return self._retry(1, super().send, data, flags)

    def sendto(self, data, *args):
        return self._retry(1, super().sendto, data, *args)

    def sendall(self, data, flags=0):
        view = memoryview(data).cast("B")
        sent = 0
        while sent < len(view):
            sent += self.send(view[sent:], flags)

    def close(self):
        """Close; a task parked on this socket (of this thread's hub) is woken
        with an OSError instead of waiting forever."""
        fd = self.fileno()
        cur = _current()
        if fd >= 0 and isinstance(cur, TaskBase):
            cur._hub._poller.forget(fd, _closed_error)
        super().close()

    def dup(self):
        s = socket(self.family, self.type, self.proto, fileno=_std.dup(self.fileno()))
        s._co_timeout = self._co_timeout
        return s

    def makefile(self, *args, **kwargs):
        raise NotImplementedError("pycoro.net.socket.makefile(): use pycoro.net.Stream for buffered reads")


def socketpair(family=_std.AF_UNIX, type=_std.SOCK_STREAM, proto=0):
    a, b = _std.socketpair(family, type, proto)
    return (socket(a.family, a.type, a.proto, fileno=a.detach()),
            socket(b.family, b.type, b.proto, fileno=b.detach()))


def create_connection(address, timeout=None, source_address=None):
    """Like socket.create_connection, cooperatively (names resolved in a thread)."""
    from ._connect import resolve
    host, port = address
    errors = []
    for fam, typ, proto, _, addr in resolve(host, port):
        s = socket(fam, typ, proto)
        try:
            s.settimeout(timeout)
            if source_address:
                s.bind(source_address)
            s.connect(addr)
            return s
        except OSError as e:
            s.close()
            errors.append(e)
    raise errors[-1] if errors else OSError(f"getaddrinfo({host!r}) returned nothing")
