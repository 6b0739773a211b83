"""Opening client connections: name resolution off the hub thread,
connect_tcp() and connect_unix().

Owns: `resolve()` (numeric addresses directly, names through
pycoro.to_thread(socket.getaddrinfo) so the hub never blocks on DNS),
the non-blocking connect (`connect_sock`: connect_ex, park until writable,
read SO_ERROR), and the two public connect functions.  With several
addresses, connect_tcp tries them happy-eyeballs style (RFC 8305: families
interleaved, staggered attempts, first connected wins, `_connect_any`).
May call: pycoro._hub (_io.wait_fd, _parking.Waiter, _run.spawn,
_scopes.park_until/timeout, _threads.to_thread),
._stream, ._tls.
"""
import errno
import itertools
import os
import socket as _socket
from time import monotonic as _monotonic

from .._hub._errors import Timeout, check_timeout
from .._hub._io import wait_fd
from .._hub._parking import Waiter
from .._hub._run import spawn
from .._hub._scopes import park_until, timeout as _timeout_scope
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


#: RFC 8305's "Connection Attempt Delay": how long an attempt has alone
#: before the next address is tried alongside it.
ATTEMPT_DELAY = 0.25


def _interleave(infos):
    """The addresses with families alternating, the first one's first
    (RFC 8305 section 4): a dead IPv6 path costs one attempt delay, not one
    per IPv6 address."""
    by_family = {}
    for info in infos:
        by_family.setdefault(info[0], []).append(info)
    if len(by_family) < 2:
        return list(infos)
    out = []
    for group in itertools.zip_longest(*by_family.values()):
        out.extend(i for i in group if i is not None)
    return out


def _open_connected(info):
    fam, typ, proto, _, addr = info
    sock = _socket.socket(fam, typ, proto)
    try:
        sock.setblocking(False)
        connect_sock(sock, addr)
    except BaseException:
        sock.close()
        raise
    return sock


def _connect_any(cur, infos, host, port):
    """Connect to the first of `infos` that answers, happy-eyeballs style:
    each attempt runs in a task of its own; the next address starts when the
    previous attempts have all failed, or ATTEMPT_DELAY after the last one
    started; the first connected socket wins and the other attempts are
    cancelled (their sockets closed).  OSError if every address fails."""
    if len(infos) == 1:
        return _open_connected(infos[0])
    if not infos:
        raise OSError(f"connect_tcp({host!r}, {port}): no address")
    won = []
    errors = []
    pending = [0]      # attempts spawned and not finished
    waiting = [None]   # the caller's Waiter while it waits for an attempt

    def attempt(info):
        try:
            sock = _open_connected(info)
        except OSError as e:
            errors.append(e)
        else:
            if won:
                sock.close()   # another attempt won meanwhile
            else:
                won.append(sock)
        finally:
            pending[0] -= 1
            w = waiting[0]
            if w is not None:
                w.wake()

    def wait(timeout):
        """Park until an attempt finishes (True) or `timeout` passes (False)."""
        w = waiting[0] = Waiter(cur)
        try:
            return park_until(cur, timeout)
        finally:
            waiting[0] = None
            w.task = None

    tasks = []
    returned = None
    try:
        for i, info in enumerate(infos):
            pending[0] += 1
            t = spawn(attempt, info)
            t.name = "pycoro.net connect attempt"
            tasks.append(t)
            deadline = None if i == len(infos) - 1 else _monotonic() + ATTEMPT_DELAY
            # until one connects, all failed (the next starts at once), or
            # this one has had its delay alone
            while not won and pending[0]:
                left = None if deadline is None else deadline - _monotonic()
                if left is not None and left <= 0 or not wait(left):
                    break
            if won:
                returned = won[0]
                return returned
        _all_failed(host, port, errors)
    finally:
        for t in tasks:
            t.cancel()    # (False for those done; a cancelled attempt closes its socket)
        for sock in won:
            if sock is not returned:
                sock.close()   # connected as the caller was interrupted


def _all_failed(host, port, errors):
    if len(errors) == 1:
        raise errors[0]
    raise OSError(f"connect_tcp({host!r}, {port}): every address failed: {errors}")


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
            sock = _connect_any(cur, _interleave(infos), host, port)
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
