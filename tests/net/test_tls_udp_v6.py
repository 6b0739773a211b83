"""TLS (a certificate made in the test with the openssl CLI), UDP, IPv6."""
import fcntl
import hashlib
import shutil
import socket
import ssl
import struct
import subprocess
import termios

import pytest

import pycoro
from pycoro import net

from .conftest import echo_handler


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command-line tool is not installed (needed to make a test certificate)")
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
         "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True)
    return str(crt), str(key)


def _contexts(cert):
    crt, key = cert
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(crt, key)
    client = ssl.create_default_context(cafile=crt)
    return server, client


def test_tls_echo_server_and_client(cert, no_leaks):
    server_ctx, client_ctx = _contexts(cert)

    def main():
        with net.start_server(echo_handler, "127.0.0.1", 0, ssl=server_ctx) as srv:
            with net.connect_tcp("127.0.0.1", srv.port, ssl=client_ctx, server_hostname="localhost") as c:
                assert isinstance(c.socket, socket.socket) and c.ssl_object.version() is not None
                assert c.ssl_object.getpeercert()["subject"] == ((("commonName", "localhost"),),)
                payload = bytes(range(256)) * 1024   # several TLS records, both ways at once
                sender = pycoro.spawn(c.sendall, payload)
                assert c.readexactly(len(payload)) == payload
                sender.join()
                c.sendall(b"line\n")
                assert c.readline() == b"line\n"
                c.sendall(b"tail")
                c.shutdown_write()       # close_notify: the echo handler sees b"" and returns
                assert c.readexactly(4) == b"tail"
                assert c.recv() == b""   # its close (no close_notify back) is end of stream
            while srv.connections:
                pycoro.sleep(0.001)

    pycoro.run(main)


def _unread(sock):
    """Bytes waiting in the kernel's receive buffer of `sock`."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_tls_half_close_both_ways_with_data_in_flight(cert, version, no_leaks):
    # Each side half-closes while the other's data is already waiting in its
    # socket: nothing is lost (ssl's own unwrap() would fail here with
    # APPLICATION_DATA_AFTER_CLOSE_NOTIFY), and each reads b"" only after
    # all of the peer's data.
    server_ctx, client_ctx = _contexts(cert)
    for ctx in (server_ctx, client_ctx):
        ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, version)
    early = bytes(range(256)) * 200
    seen = []

    def handler(stream):
        got = bytearray(stream.recv())  # (the client's handshake is over: it has sent)
        stream.sendall(early)           # in flight when the client half-closes
        while chunk := stream.recv():
            got += chunk
        seen.append(bytes(got))
        stream.sendall(b"after eof: %d" % len(got))   # the server may still send
        stream.shutdown_write()
        stream.shutdown_write()         # idempotent
        assert stream.recv() == b""

    def main():
        with net.start_server(handler, "127.0.0.1", 0, ssl=server_ctx) as srv:
            with net.connect_tcp("127.0.0.1", srv.port, ssl=client_ctx, server_hostname="localhost") as c:
                assert c.ssl_object.version() == version.replace("_", ".")
                c.sendall(b"q" * 100_000)
                while _unread(c.socket) < len(early):   # until the server's data is here
                    pycoro.sleep(0.001)
                c.shutdown_write()
                with pytest.raises(ssl.SSLError):
                    c.sendall(b"too late")   # nothing may be sent after close_notify
                got = bytearray()
                while chunk := c.recv():
                    got += chunk
                assert bytes(got) == early + b"after eof: 100000"
                assert c.recv() == b""
            while srv.connections:
                pycoro.sleep(0.001)
        assert seen == [b"q" * 100_000]

    pycoro.run(main)


def test_tls_large_sendall_to_a_slow_reader_is_whole_and_flushed(cert, no_leaks):
    server_ctx, client_ctx = _contexts(cert)
    data = bytes(range(256)) * (32 * 1024)   # 8 MiB: the kernel buffers fill many times

    def handler(stream):
        h, n = hashlib.sha256(), 0
        while chunk := stream.recv():
            h.update(chunk)
            n += len(chunk)
            if n % (1 << 20) < 16384:
                pycoro.sleep(0.001)           # a slow reader: the writer parks
        stream.sendall(h.hexdigest().encode())

    def main():
        with net.start_server(handler, "127.0.0.1", 0, ssl=server_ctx) as srv:
            with net.connect_tcp("127.0.0.1", srv.port, ssl=client_ctx, server_hostname="localhost") as c:
                c.sendall(data)
                assert not c._sock.owes        # returned only once all is with the kernel
                c.shutdown_write()
                assert c.readexactly(64).decode() == hashlib.sha256(data).hexdigest()
            while srv.connections:
                pycoro.sleep(0.001)

    pycoro.run(main)


def test_tls_peer_closing_without_close_notify_is_end_of_stream(cert, no_leaks):
    server_ctx, client_ctx = _contexts(cert)

    def handler(stream):
        stream.sendall(b"bye")
        stream.socket.shutdown(socket.SHUT_RDWR)   # TCP FIN, no TLS alert

    def main():
        with net.start_server(handler, "127.0.0.1", 0, ssl=server_ctx) as srv:
            with net.connect_tcp("127.0.0.1", srv.port, ssl=client_ctx, server_hostname="localhost") as c:
                assert c.readexactly(3) == b"bye"
                assert c.recv() == b""
                buf = bytearray(8)
                assert c.recv_into(buf) == 0
            while srv.connections:
                pycoro.sleep(0.001)

    pycoro.run(main)


def test_tls_wrong_hostname_fails_cleanly_and_server_goes_on(cert, no_leaks):
    server_ctx, client_ctx = _contexts(cert)

    def main():
        with net.start_server(echo_handler, "127.0.0.1", 0, ssl=server_ctx) as srv:
            with pytest.raises(ssl.SSLCertVerificationError):
                net.connect_tcp("127.0.0.1", srv.port, ssl=client_ctx, server_hostname="not-the-name")
            with net.connect_tcp("127.0.0.1", srv.port, ssl=client_ctx, server_hostname="localhost") as c:
                c.sendall(b"hi")
                assert c.readexactly(2) == b"hi"
            while srv.connections:
                pycoro.sleep(0.001)

    pycoro.run(main)


def test_udp_echo_and_close_wakes(no_leaks):
    def main():
        with net.open_udp(("127.0.0.1", 0)) as server:
            addr = server.local_address

            def echo():
                while True:
                    data, peer = server.recvfrom()
                    server.sendto(data, peer)

            t = pycoro.spawn(echo)
            with net.open_udp(remote=addr) as client:
                for i in range(20):
                    client.send(b"dgram %d" % i)
                    assert client.recv() == b"dgram %d" % i
                with pytest.raises(pycoro.Timeout):
                    with pycoro.timeout(0.01):
                        client.recv()
            pycoro.sleep(0)
            server.close()                       # wakes the echo task parked in recvfrom
            with pytest.raises(net.StreamClosed):
                t.join()

    pycoro.run(main)


def _have_ipv6_loopback():
    if not socket.has_ipv6:
        return "Python was built without IPv6"
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError as e:
        return f"cannot bind ::1 ({e})"
    return None


@pytest.mark.skipif(_have_ipv6_loopback() is not None, reason=str(_have_ipv6_loopback()))
def test_ipv6_tcp_and_udp(no_leaks):
    def main():
        with net.start_server(echo_handler, "::1", 0) as srv:
            assert srv.sockets[0].family == socket.AF_INET6
            with net.connect_tcp("::1", srv.port) as c:
                assert c.socket.family == socket.AF_INET6
                c.sendall(b"six")
                assert c.readexactly(3) == b"six"
            srv.cancel_connections()
        with net.open_udp(("::1", 0)) as a, net.open_udp(("::1", 0)) as b:
            a.sendto(b"v6", b.local_address)
            data, peer = b.recvfrom()
            assert data == b"v6" and peer[:2] == a.local_address[:2]

    pycoro.run(main)


def test_dual_stack_server_on_every_address(no_leaks):
    def main():
        with net.start_server(echo_handler, None, 0) as srv:
            families = {s.family for s in srv.sockets}
            assert socket.AF_INET in families
            assert len({s.getsockname()[1] for s in srv.sockets}) == 1  # one port for all
            with net.connect_tcp("127.0.0.1", srv.port) as c:
                c.sendall(b"4")
                assert c.recv() == b"4"
            srv.cancel_connections()

    pycoro.run(main)
