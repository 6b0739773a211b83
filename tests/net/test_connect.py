"""connect_tcp with several addresses (happy-eyeballs style): families
interleaved, fall-through on failure, a hung attempt overtaken after the
attempt delay, the caller's timeout bounding all of it, nothing left open."""
import socket

import pytest

import pycoro
from pycoro import net
from pycoro.net import _connect

from .conftest import echo_handler


def _info(host, port):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    return (fam, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))


@pytest.fixture
def blackhole():
    """A loopback port whose connects hang: a listener with a full accept
    queue (nobody accepts) drops new SYNs."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    port = lst.getsockname()[1]
    fillers = []
    for _ in range(4):
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(("127.0.0.1", port))
        fillers.append(f)
    yield port
    for f in fillers:
        f.close()
    lst.close()


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()   # nothing listens: connect is refused
    return port


def _resolving_to(monkeypatch, infos):
    monkeypatch.setattr(_connect, "resolve", lambda host, port, family=0: list(infos))


def _connects_past(monkeypatch, first_port):
    """A name resolving to `first_port` then to a live echo server connects
    to the server."""
    with net.start_server(echo_handler, "127.0.0.1", 0) as srv:
        _resolving_to(monkeypatch, [_info("127.0.0.1", first_port), _info("127.0.0.1", srv.port)])
        with net.connect_tcp("example.invalid", srv.port, timeout=30) as c:
            assert c.socket.getpeername()[1] == srv.port
            c.sendall(b"through")
            assert c.readexactly(7) == b"through"
        srv.cancel_connections()


def test_families_are_interleaved_first_family_first():
    infos = [_info("::1", 1), _info("::2", 2), _info("::3", 3), _info("127.0.0.1", 4), _info("127.0.0.2", 5)]
    order = [i[4][1] for i in _connect._interleave(infos)]
    assert order == [1, 4, 2, 5, 3]
    assert _connect._interleave(infos[:3]) == infos[:3]


def test_a_refused_address_falls_through_to_the_next_at_once(monkeypatch, no_leaks):
    # the delay is made far longer than the timeout: connecting in time
    # proves the next address started when the first failed, not after it
    monkeypatch.setattr(_connect, "ATTEMPT_DELAY", 3600)

    pycoro.run(lambda: _connects_past(monkeypatch, _closed_port()))


def test_a_hung_address_is_overtaken_after_the_attempt_delay(monkeypatch, blackhole, no_leaks):
    monkeypatch.setattr(_connect, "ATTEMPT_DELAY", 0.05)

    pycoro.run(lambda: _connects_past(monkeypatch, blackhole))
    # (the hung attempt was cancelled and its socket closed: no_leaks counts fds)


def test_the_timeout_bounds_every_attempt(monkeypatch, blackhole, no_leaks):
    monkeypatch.setattr(_connect, "ATTEMPT_DELAY", 0.01)

    def main():
        _resolving_to(monkeypatch, [_info("127.0.0.1", blackhole)] * 3)
        with pytest.raises(pycoro.Timeout, match="connect_tcp"):
            net.connect_tcp("example.invalid", 1, timeout=0.2)

    pycoro.run(main)


def test_every_address_refused_is_one_oserror_naming_each(monkeypatch, no_leaks):
    def main():
        ports = [_closed_port(), _closed_port()]
        _resolving_to(monkeypatch, [_info("127.0.0.1", p) for p in ports])
        with pytest.raises(OSError, match="every address failed") as e:
            net.connect_tcp("example.invalid", 1)
        assert str(e.value).count("Connection refused") == 2

    pycoro.run(main)


def test_cancelling_the_caller_cancels_every_attempt(monkeypatch, blackhole, no_leaks):
    monkeypatch.setattr(_connect, "ATTEMPT_DELAY", 0.01)

    def main():
        _resolving_to(monkeypatch, [_info("127.0.0.1", blackhole)] * 3)
        t = pycoro.spawn(net.connect_tcp, "example.invalid", 1)
        pycoro.sleep(0.1)          # all three attempts are parked by now
        assert t.state == "waiting"
        t.cancel()
        with pytest.raises(pycoro.Cancelled):
            t.join()

    pycoro.run(main)
