"""pycoro.net.socket: the cooperative socket.socket subclass."""
import socket as std

import pytest

import pycoro
from pycoro import net


def test_cooperative_socket_methods(no_leaks):
    def main():
        lst = net.socket(std.AF_INET, std.SOCK_STREAM)
        assert isinstance(lst, std.socket) and lst.gettimeout() is None
        with lst:
            lst.bind(("127.0.0.1", 0))
            lst.listen(8)
            port = lst.getsockname()[1]

            def server():
                conn, _ = lst.accept()          # parks, does not block the hub
                assert isinstance(conn, net.socket)
                with conn:
                    data = b""
                    while len(data) < 5:
                        data += conn.recv(100)
                    conn.sendall(data.upper())

            t = pycoro.spawn(server)
            c = net.create_connection(("127.0.0.1", port))
            with c:
                c.sendall(b"hello")
                got = b""
                while len(got) < 5:
                    got += c.recv(100)
                assert got == b"HELLO"
                t.join()
        a, b = net.socketpair()
        with a, b:
            r = pycoro.spawn(a.recv, 10)
            pycoro.sleep(0)
            assert r.state == "waiting"
            b.send(b"pair")
            assert r.join() == b"pair"
            a.settimeout(0.01)
            with pytest.raises(TimeoutError):
                a.recv(1)
            a.settimeout(0)
            with pytest.raises(BlockingIOError):
                a.recv(1)

    pycoro.run(main)


def test_udp_with_socket_wrapper(no_leaks):
    def main():
        with net.socket(std.AF_INET, std.SOCK_DGRAM) as a, net.socket(std.AF_INET, std.SOCK_DGRAM) as b:
            a.bind(("127.0.0.1", 0))
            t = pycoro.spawn(a.recvfrom, 100)
            pycoro.sleep(0)
            b.sendto(b"d", a.getsockname())
            data, _ = t.join()
            assert data == b"d"

    pycoro.run(main)


def test_close_wakes_a_parked_task(no_leaks):
    def main():
        a, b = net.socketpair()
        with b:
            t = pycoro.spawn(a.recv, 10)
            pycoro.sleep(0)
            assert t.state == "waiting"
            a.close()
            with pytest.raises(OSError, match="closed while this task waited"):
                t.join()

    pycoro.run(main)
