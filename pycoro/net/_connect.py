"""Opening client connections: name resolution off the hub thread,
connect_tcp() and connect_unix().

Owns: `resolve()` (numeric addresses directly, names through
pycoro.to_thread(socket.getaddrinfo) so the hub never blocks on DNS),
the non-blocking connect (`connect_sock`: connect_ex, park until writable,
read SO_ERROR), and the two public connect functions.  Candidates are tried
in the order getaddrinfo gives; the first that connects wins.
May call: pycoro._hub (_io.wait_fd, _scopes.timeout, _threads.to_thread),
._stream, ._tls.
"""
import errno
import os
import socket as _socket

from .._hub._errors import Timeout, check_timeout
from .._hub._io import wait_fd
from .._hub._scopes import timeout as _timeout_scope
from .._hub._threads import to_thread
from .._hub._timers import sleep as _sleep
from ._stream import Stream, TLSSocket, _task


def _numeric(host):
    for fam in (_socket.AF_INET, _socket.AF_INET6):
        try:
            _socket.inet_pton(fam, host.split("%", 1)[0])
            return fam
        except (OSError, ValueError):
            pass
    return None


def resolve(host, port, family=0, type=_socket.SOCK_STREAM, flags=0):
    """getaddrinfo() without blocking the hub: numeric hosts are resolved in
    place (AI_NUMERICHOST), names in a worker thread."""
    if host is None or (isinstance(host, str) and _numeric(host)) or isinstance(host, bytes) and _numeric(host.decode()):
        return _socket.getaddrinfo(host, port, family, type, 0, flags | (_socket.AI_NUMERICHOST if host else 0))
    return to_thread(_socket.getaddrinfo, host, port, family, type, 0, flags)


def connect_sock(sock, addr):
    """Connect the non-blocking `sock` to `addr`, parking until it is done."""
    err = sock.connect_ex(addr)
    delay = 0.001
    while err == errno.EAGAIN and sock.family == _socket.AF_UNIX:
        # Linux: a full Unix listen backlog fails a non-blocking connect with
        # EAGAIN (nothing to wait for with poll): retry with a growing pause.
        _sleep(delay)
        delay = min(delay * 2, 0.05)
        err = sock.connect_ex(addr)
    if err in (errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY):
        wait_fd(_task("net.connect"), sock.fileno(), 1, None)
        err = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_ERROR)
    if err:
        raise OSError(err, f"connect to {addr!r}: {os.strerror(err)}")


def _tls_wrap(stream, ssl, server_side, server_hostname):
    stream._sock = TLSSocket(stream._raw, ssl, server_side, server_hostname)
    stream.do_handshake()


def connect_tcp(host, port, *, timeout=None, ssl=None, server_hostname=None, family=0, nodelay=True):
    """Open a TCP connection (IPv4 or IPv6); returns a Stream.

    `timeout` bounds the whole of it (resolution, connect, TLS handshake) and
    raises pycoro.Timeout.  With `ssl` (an ssl.SSLContext) the stream speaks
    TLS; `server_hostname` defaults to `host`."""
    timeout = check_timeout(timeout)
    cur = _task("net.connect_tcp()")
    scope = _timeout_scope(timeout)
    try:
        with scope:
            infos = resolve(host, port, family)
            errors = []
            for fam, typ, proto, _, addr in infos:
                sock = _socket.socket(fam, typ, proto)
                try:
                    sock.setblocking(False)
                    connect_sock(sock, addr)
                except OSError as e:
                    sock.close()
                    errors.append(e)
                    continue
                except BaseException:
                    sock.close()
                    raise
                break
            else:
                if len(errors) == 1:
                    raise errors[0]
                raise OSError(f"connect_tcp({host!r}, {port}): every address failed: {errors}")
            if nodelay:
                sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            stream = Stream(sock, cur._hub)
            if ssl is not None:
                try:
                    _tls_wrap(stream, ssl, False, server_hostname or host)
                except BaseException:
                    stream.close()
                    raise
            return stream
    except Timeout as e:
        if e.scope is scope:
            raise Timeout(f"connect_tcp({host!r}, {port}) timed out after {timeout}s", scope=scope) from None
        raise


def connect_unix(path, *, timeout=None):
    """Connect to a Unix stream socket at `path`; returns a Stream."""
    timeout = check_timeout(timeout)
    cur = _task("net.connect_unix()")
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        scope = _timeout_scope(timeout)
        try:
            with scope:
                connect_sock(sock, os.fspath(path))
        except Timeout as e:
            if e.scope is scope:
                raise Timeout(f"connect_unix({path!r}) timed out after {timeout}s", scope=scope) from None
            raise
    except BaseException:
        sock.close()
        raise
    return Stream(sock, cur._hub)
