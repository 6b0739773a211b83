"""The poller: kept registrations across waits, lazy narrowing, forget() on
close, fd numbers reused after close, the fallback backend."""
import socket

import pytest

import pycoro
from pycoro import net
from pycoro._hub import _io


class CountingBackend(_io._Backend):
    """The real backend, counting the registration calls it gets."""
    calls = None

    def __init__(self):
        super().__init__()
        self.calls = {"register": 0, "modify": 0, "unregister": 0}

    def register(self, fd, mask):
        self.calls["register"] += 1
        super().register(fd, mask)

    def modify(self, fd, mask):
        self.calls["modify"] += 1
        super().modify(fd, mask)

    def unregister(self, fd):
        self.calls["unregister"] += 1
        super().unregister(fd)


@pytest.fixture
def counting_hub():
    hub = pycoro.get_hub()
    old = hub._poller
    hub._poller = _io.Poller(CountingBackend)
    yield hub._poller._backend.calls
    hub._poller.close()
    hub._poller = old


def test_a_recv_loop_registers_once(counting_hub):
    def main():
        a, b = socket.socketpair()
        with net.Stream(a) as sa, b:
            for i in range(100):
                t = pycoro.spawn(sa.recv)
                pycoro.sleep(0)
                assert t.state == "waiting"
                b.send(b"%d" % i)
                assert t.join() == b"%d" % i
            # 1 for the wake-up pipe, 1 for the stream: none per wait
            assert counting_hub == {"register": 2, "modify": 0, "unregister": 0}
        assert counting_hub["unregister"] == 1  # close() dropped it

    pycoro.run(main)


def test_ping_pong_between_two_streams_registers_each_once(counting_hub):
    # Both sides park and wake each other: the loop polls again before a
    # task it woke has read, which must not unregister the fd every time.
    def main():
        a, b = socket.socketpair()
        with net.Stream(a) as sa, net.Stream(b) as sb:
            def echo():
                while True:
                    data = sb.recv()
                    if not data:
                        return
                    sb.sendall(data)

            t = pycoro.spawn(echo)
            for i in range(200):
                sa.sendall(b"%d" % i)
                assert sa.recv() == b"%d" % i
            sa.socket.shutdown(socket.SHUT_WR)
            t.join()
            assert counting_hub == {"register": 3, "modify": 0, "unregister": 0}

    pycoro.run(main)


def test_unwanted_readiness_narrows_the_registration_once(counting_hub):
    def main():
        a, b = socket.socketpair()
        with net.Stream(a) as sa, b:
            t = pycoro.spawn(sa.recv, 1)
            pycoro.sleep(0)
            b.send(b"xy")       # two bytes: one stays unread, nobody waits
            assert t.join() == b"x"
            for _ in range(5):
                pycoro.wait_writable(b)   # loops through poll(): a's readiness is unwanted
            fd = sa.fileno()
            st = pycoro.get_hub()._poller.waiters.get(fd)
            assert st is None or st[2] == 0   # dropped once, not reported forever
            assert sa.recv() == b"y"

    pycoro.run(main)


def test_fd_number_reused_after_close_is_registered_afresh():
    def main():
        a, b = socket.socketpair()
        sa = net.Stream(a)
        t = pycoro.spawn(sa.recv)
        pycoro.sleep(0)
        b.send(b"1")
        assert t.join() == b"1"
        fd = sa.fileno()
        sa.close()
        b.close()
        c, d = socket.socketpair()    # Linux hands out the lowest free numbers: the same ones
        assert fd in (c.fileno(), d.fileno())
        with net.Stream(c) as sc, d:
            t = pycoro.spawn(sc.recv)
            pycoro.sleep(0)
            d.send(b"2")
            assert t.join() == b"2"

    pycoro.run(main)


def test_pending_io_is_not_a_deadlock_but_nothing_at_all_is():
    def main():
        a, b = socket.socketpair()
        with a, b:
            a.setblocking(False)

            def late_writer():
                pycoro.sleep(0.01)
                b.send(b"!")

            pycoro.spawn(late_writer)
            pycoro.wait_readable(a)
        ev = pycoro.Event()
        ev.wait()

    with pytest.raises(pycoro.Deadlock):
        pycoro.run(main)


def test_selector_fallback_backend():
    hub = pycoro.get_hub()
    old = hub._poller
    hub._poller = _io.Poller(_io._SelectorBackend)
    try:
        def main():
            a, b = socket.socketpair()
            with net.Stream(a) as sa, net.Stream(b) as sb:
                sender = pycoro.spawn(sa.sendall, b"z" * (4 << 20))
                got = 0
                while got < (4 << 20):
                    got += len(sb.recv())
                sender.join()
                t = pycoro.spawn(sb.recv)
                pycoro.sleep(0)
                sb.close()
                with pytest.raises(net.StreamClosed):
                    t.join()

        pycoro.run(main)
    finally:
        hub._poller.close()
        hub._poller = old
