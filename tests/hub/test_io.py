"""fd readiness: wait_readable / wait_writable on non-blocking fds."""
import errno
import os
import resource
import socket

import pytest

import pycoro
from pycoro import Timeout

from .conftest import scaled


def recv_some(sock, n=65536):
    while True:
        try:
            return sock.recv(n)
        except BlockingIOError:
            pycoro.wait_readable(sock)


def send_all(sock, data):
    view = memoryview(data)
    while view:
        try:
            sent = sock.send(view)
        except BlockingIOError:
            pycoro.wait_writable(sock)
            continue
        view = view[sent:]


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = recv_some(sock, n - len(buf))
        if not chunk:
            raise ConnectionError("peer closed early")
        buf += chunk
    return bytes(buf)


@pytest.fixture
def enough_fds():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4096
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_tcp_echo_500_concurrent_connections(enough_fds):
    n_conn = 500  # the number; cheap enough under qemu too
    rounds = scaled(3, 1)
    served = []

    def handle(conn):
        with conn:
            while True:
                data = recv_some(conn)
                if not data:
                    served.append(1)
                    return
                send_all(conn, data)

    def server(listener, n):
        handlers = []
        while len(handlers) < n:
            try:
                conn, _ = listener.accept()
            except BlockingIOError:
                pycoro.wait_readable(listener)
                continue
            conn.setblocking(False)
            handlers.append(pycoro.spawn(handle, conn))
        for h in handlers:
            h.join()

    def client(port, i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        with s:
            err = s.connect_ex(("127.0.0.1", port))
            if err not in (0, errno.EINPROGRESS):
                raise OSError(err, os.strerror(err))
            pycoro.wait_writable(s)
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, os.strerror(err))
            for r in range(rounds):
                msg = (f"client {i} round {r} ".encode() * (1 + i % 7))
                send_all(s, msg)
                assert recv_exact(s, len(msg)) == msg
            s.shutdown(socket.SHUT_WR)
            assert recv_some(s) == b""
        return i

    def main():
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1024)
        listener.setblocking(False)
        with listener:
            port = listener.getsockname()[1]
            srv = pycoro.spawn(server, listener, n_conn)
            clients = [pycoro.spawn(client, port, i) for i in range(n_conn)]
            assert sorted(c.join() for c in clients) == list(range(n_conn))
            srv.join()

    pycoro.run(main)
    assert len(served) == n_conn
    hub = pycoro.get_hub()
    assert hub._nfd == 0 and len(hub._fd_waiters) == 0  # every registration was dropped


def test_pipe_readable_and_writable():
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    try:
        def main():
            log = []

            def reader():
                pycoro.wait_readable(r)
                log.append(os.read(r, 100))

            t = pycoro.spawn(reader)
            pycoro.sleep(0)
            assert t.state == "waiting"
            pycoro.wait_writable(w, timeout=1)
            os.write(w, b"ping")
            t.join()
            assert log == [b"ping"]
            # fill the pipe: a writer then waits until a reader drains it
            try:
                while True:
                    os.write(w, b"x" * 65536)
            except BlockingIOError:
                pass
            with pytest.raises(Timeout):
                pycoro.wait_writable(w, timeout=0.005)

            def drain():
                try:
                    while os.read(r, 65536):
                        pass
                except BlockingIOError:
                    pass

            pycoro.spawn(drain)
            pycoro.wait_writable(w, timeout=5)

        pycoro.run(main)
    finally:
        os.close(r)
        os.close(w)


def test_reader_and_writer_on_same_fd():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    with a, b:
        def main():
            def reader():
                pycoro.wait_readable(a)
                return a.recv(10)

            t = pycoro.spawn(reader)
            pycoro.sleep(0)
            pycoro.wait_writable(a)  # a has both a reader and a writer registered
            b.send(b"hi")
            assert t.join() == b"hi"
            dup = pycoro.spawn(pycoro.wait_readable, a)
            pycoro.sleep(0)
            with pytest.raises(RuntimeError, match="already"):
                pycoro.wait_readable(a)
            dup.cancel()
            with pytest.raises(ValueError):
                pycoro.wait_readable(-1)

        pycoro.run(main)


def test_io_wait_does_not_starve_and_is_not_starved():
    # While tasks keep yielding, a ready fd is still noticed (the hub polls
    # every POLL_EVERY turns), and vice versa.
    r, w = os.pipe()
    try:
        os.write(w, b"x")

        def main():
            stop = []
            turns = [0]

            def spinner():
                while not stop:
                    turns[0] += 1
                    pycoro.sleep(0)

            s = pycoro.spawn(spinner)
            pycoro.wait_readable(r)
            stop.append(1)
            s.join()
            return turns[0]

        assert 0 < pycoro.run(main) <= 2 * pycoro.Hub.POLL_EVERY
    finally:
        os.close(r)
        os.close(w)


def test_fd_the_selector_refuses_leaves_no_trace(tmp_path):
    path = tmp_path / "regular"
    path.write_bytes(b"data")
    with open(path, "rb") as f:
        def main():
            with pytest.raises(OSError):  # epoll refuses regular files (EPERM)
                pycoro.wait_readable(f)
            hub = pycoro.get_hub()
            assert hub._fd_waiters == {} and hub._nfd == 0

        pycoro.run(main)
