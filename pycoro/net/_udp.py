"""Datagrams: open_udp() and `DatagramSocket`.

Owns: a non-blocking UDP socket with sendto / send / recvfrom / recv /
close, parking on EAGAIN with a kept poller registration (forgotten before
close, which wakes parked tasks with StreamClosed).
May call: pycoro._hub (_io.wait_fd), ._stream (errors), ._connect (resolve).
"""
import socket as _socket

from .._hub._io import wait_fd
from ._connect import resolve
from ._stream import _ClosesOnExit, StreamClosed, _task, _timed


class DatagramSocket(_ClosesOnExit):
    """A UDP socket whose calls park the task instead of blocking."""

    __slots__ = ("_sock", "_fd", "_hub", "__weakref__")

    def __init__(self, sock, hub):
        sock.setblocking(False)
        self._sock = sock
        self._fd = sock.fileno()
        self._hub = hub

    @property
    def socket(self):
        return self._sock

    @property
    def local_address(self):
        return self._sock.getsockname()

    def _wait(self, idx):
        if self._fd < 0:
            raise StreamClosed()
        wait_fd(_task("net.DatagramSocket"), self._fd, idx, None, True)

    def _call(self, idx, fn, *args):
        while True:
            if self._fd < 0:
                raise StreamClosed()
            try:
                return fn(*args)
            except BlockingIOError:
                self._wait(idx)

    def sendto(self, data, addr, timeout=None):
        if timeout is not None:
            return _timed(self.sendto, "DatagramSocket.sendto", timeout, data, addr)
        return self._call(1, self._sock.sendto, data, addr)

    def send(self, data, timeout=None):
        """Send to the `remote` address given to open_udp()."""
        if timeout is not None:
            return _timed(self.send, "DatagramSocket.send", timeout, data)
        return self._call(1, self._sock.send, data)

    def recvfrom(self, n=65536, timeout=None):
        """(datagram, sender address); `timeout` seconds: pycoro.Timeout."""
        if timeout is not None:
            return _timed(self.recvfrom, "DatagramSocket.recvfrom", timeout, n)
        return self._call(0, self._sock.recvfrom, n)

    def recv(self, n=65536, timeout=None):
        if timeout is not None:
            return _timed(self.recv, "DatagramSocket.recv", timeout, n)
        return self._call(0, self._sock.recv, n)

    def close(self):
        fd = self._fd
        if fd < 0:
            return
        self._fd = -1
        self._hub._poller.forget(fd, lambda: StreamClosed("the socket was closed while this task waited on it"))
        self._sock.close()


def open_udp(local=None, remote=None, *, family=0, reuse_port=False):
    """A UDP socket bound to `local` ((host, port); None: any port of the
    remote's family, or of IPv4) and, with `remote`, connected to it."""
    cur = _task("net.open_udp()")
    rinfo = linfo = None
    if remote is not None:
        rinfo = resolve(remote[0], remote[1], family, _socket.SOCK_DGRAM)[0]
        family = rinfo[0]
    if local is not None:
        linfo = resolve(local[0], local[1], family, _socket.SOCK_DGRAM, _socket.AI_PASSIVE)[0]
        family = linfo[0]
    sock = _socket.socket(family or _socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        if reuse_port:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEPORT, 1)
        if linfo is not None:
            sock.bind(linfo[4])
        if rinfo is not None:
            sock.connect(rinfo[4])  # UDP connect does not block
    except BaseException:
        sock.close()
        raise
    return DatagramSocket(sock, cur._hub)
