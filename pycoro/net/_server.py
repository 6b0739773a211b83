"""Serving connections: start_server(), start_unix_server() and `Server`.

Owns: the listening sockets, one accept task per listening socket, and one
handler task per connection (`handler(stream)`; the stream is closed when
the handler returns; an exception from the handler is logged and the server
goes on).  Accept failures for lack of fds or memory (EMFILE, ENFILE,
ENOBUFS, ENOMEM) are logged once and retried after a pause, so the server
serves again once fds are freed; per-connection errors (ECONNABORTED...)
are skipped.  `close()` stops accepting (the listening sockets are closed)
while open connections continue.
May call: pycoro._hub (spawn, sleep, Event-like parking), ._stream, ._connect.
"""
import errno
import logging
import os
import socket as _socket
import stat

from .._hub._io import wait_fd
from .._hub._parking import Waiter, park
from .._hub._run import spawn
from .._hub._timers import sleep
from ._connect import _tls_wrap, resolve
from ._stream import _ClosesOnExit, Stream, StreamClosed, _task

_log = logging.getLogger("pycoro.net")

_RESOURCE_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_RETRY_PAUSE = 0.05


class Server(_ClosesOnExit):
    """Listening sockets and the tasks serving them.  Made by start_server()."""

    def __init__(self, hub, sockets, handler, ssl, nodelay, unix_path=None):
        self._hub = hub
        self.sockets = list(sockets)
        self._handler = handler
        self._ssl = ssl
        self._nodelay = nodelay
        self._unix_path = unix_path
        self._closed = False
        self._closing_waiters = []
        self.connections = set()   # handler tasks still running
        self._accepters = [spawn(self._accept_loop, s) for s in self.sockets]
        for t in self._accepters:
            t.name = "pycoro.net accept"

    def __repr__(self):
        return f"<pycoro.net.Server {'closed' if self._closed else self.address!r} connections={len(self.connections)}>"

    @property
    def address(self):
        return self.sockets[0].getsockname() if self.sockets and not self._closed else None

    @property
    def port(self):
        """The port of the first listening socket (the one chosen for port=0)."""
        return self.sockets[0].getsockname()[1] if self.sockets and self._unix_path is None else None

    @property
    def closed(self):
        return self._closed

    def _accept_loop(self, lsock):
        fd = lsock.fileno()
        cur = _task("Server")
        reported = False
        accepted = 0
        handler_task = self._serve_one
        while True:
            try:
                conn, _ = lsock.accept()
            except BlockingIOError:
                try:
                    wait_fd(cur, fd, 0, None, True)
                except StreamClosed:
                    return
                continue
            except OSError as e:
                if self._closed:
                    return
                if e.errno in _RESOURCE_ERRNOS:
                    if not reported:
                        _log.error("pycoro.net: accept() failed (%s); retrying until resources are freed", e)
                        reported = True
                    sleep(_RETRY_PAUSE)
                    continue
                # the connection died in the backlog (ECONNABORTED, EPROTO...)
                continue
            reported = False
            spawn(handler_task, conn)
            accepted += 1
            if accepted % 64 == 0:
                sleep(0)  # a burst of connections must not hold the hub

    def _serve_one(self, conn):
        cur = _task("Server")
        self.connections.add(cur)
        try:
            try:
                stream = Stream(conn, self._hub)
            except BaseException:
                conn.close()
                raise
            with stream:
                if self._nodelay and conn.family != _socket.AF_UNIX:
                    try:
                        conn.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
                    except OSError:
                        pass
                if self._ssl is not None:
                    _tls_wrap(stream, self._ssl, True, None)
                self._handler(stream)
        except Exception:
            _log.exception("pycoro.net: connection handler %r raised", self._handler)
        finally:
            self.connections.discard(cur)

    def close(self):
        """Stop accepting.  Connections being served go on (cancel_connections()
        ends them)."""
        if self._closed:
            return
        self._closed = True
        poller = self._hub._poller
        for s in self.sockets:
            fd = s.fileno()
            if fd >= 0:
                poller.forget(fd, lambda: StreamClosed("server closed"))
            s.close()
        for t in self._accepters:
            t.cancel()
        if self._unix_path is not None:
            try:
                os.unlink(self._unix_path)
            except OSError:
                pass
        waiters, self._closing_waiters = self._closing_waiters, []
        for w in waiters:
            w.wake()

    def cancel_connections(self):
        for t in list(self.connections):
            t.cancel()

    def serve_forever(self):
        """Park until the server is closed (by another task, or a cancel)."""
        if self._closed:
            return
        w = Waiter(_task("Server.serve_forever()"))
        self._closing_waiters.append(w)
        try:
            park()
        finally:
            if w in self._closing_waiters:
                self._closing_waiters.remove(w)


def _listen(sock, backlog):
    sock.setblocking(False)
    sock.listen(backlog)


def start_server(handler, host=None, port=0, *, backlog=1024, reuse_port=False, ssl=None,
                 family=0, nodelay=True):
    """Listen on `host`:`port` (every local address when host is None or "";
    port 0 picks a free one, `.port` tells) and serve each connection by
    running `handler(stream)` in a task of its own; returns a Server."""
    cur = _task("net.start_server()")
    if not callable(handler):
        raise TypeError(f"start_server() needs a callable handler, got {type(handler).__name__}")
    infos = resolve(host or None, port, family, _socket.SOCK_STREAM, _socket.AI_PASSIVE)
    socks = []
    seen = set()
    try:
        for fam, typ, proto, _, addr in infos:
            if (fam, addr) in seen:
                continue
            seen.add((fam, addr))
            s = _socket.socket(fam, typ, proto)
            socks.append(s)
            s.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
            if reuse_port:
                s.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEPORT, 1)
            if fam == _socket.AF_INET6:
                s.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, 1)
            if port == 0 and len(socks) > 1:
                # every family on the port the first one got
                addr = (addr[0], socks[0].getsockname()[1]) + tuple(addr[2:])
            s.bind(addr)
            _listen(s, backlog)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return Server(cur._hub, socks, handler, ssl, nodelay)


def start_unix_server(handler, path, *, backlog=1024, ssl=None):
    """Listen on the Unix socket `path` (a stale socket file there is
    replaced; the file is removed by close()); returns a Server."""
    cur = _task("net.start_unix_server()")
    path = os.fspath(path)
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.bind(path)
        _listen(s, backlog)
    except BaseException:
        s.close()
        raise
    return Server(cur._hub, [s], handler, ssl, False, unix_path=path)
