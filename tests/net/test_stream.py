"""pycoro.net streams over TCP and Unix sockets: data, EOF, half-close,
errors, closing, timeouts, cancellation, back-pressure."""
import socket
import struct

import pytest

import pycoro
from pycoro import net

from .conftest import echo_handler


def run(fn):
    return pycoro.run(fn)


def test_tcp_echo_readline_readexactly(no_leaks):
    def main():
        with net.start_server(echo_handler, "127.0.0.1", 0) as srv:
            assert srv.port > 0 and srv.sockets[0].getsockname()[1] == srv.port
            with net.connect_tcp("127.0.0.1", srv.port) as c:
                assert isinstance(c.socket, socket.socket)
                c.sendall(b"one\ntwo\nthree")
                assert c.readline() == b"one\n"
                assert c.readexactly(4) == b"two\n"
                assert c.readexactly(5) == b"three"
                buf = bytearray(10)
                c.sendall(b"abc")
                assert c.recv_into(buf) == 3 and buf[:3] == b"abc"
                c.sendall(b"tail")
                c.shutdown_write()              # half-close: we still receive
                got = b""
                while True:
                    chunk = c.recv()
                    if not chunk:
                        break
                    got += chunk
                assert got == b"tail"
                assert c.recv() == b""
            srv.cancel_connections()

    run(main)


def test_names_are_resolved_and_connect_refused_is_oserror(no_leaks):
    def main():
        with net.start_server(echo_handler, "127.0.0.1", 0) as srv:
            with net.connect_tcp("localhost", srv.port, family=socket.AF_INET) as c:
                c.sendall(b"x")
                assert c.recv() == b"x"
            port = srv.port
            srv.cancel_connections()
        with pytest.raises(ConnectionRefusedError):
            net.connect_tcp("127.0.0.1", port)

    run(main)


def test_readexactly_early_eof_and_readline_at_eof(no_leaks):
    def handler(s):
        s.sendall(b"partial line")

    def main():
        with net.start_server(handler, "127.0.0.1", 0) as srv:
            with net.connect_tcp("127.0.0.1", srv.port) as c:
                with pytest.raises(net.IncompleteRead) as ei:
                    c.readexactly(100)
                assert ei.value.partial == b"partial line" and ei.value.expected == 100
                assert isinstance(ei.value, EOFError)
                assert c.readline() == b""
            with net.connect_tcp("127.0.0.1", srv.port) as c:
                assert c.readline() == b"partial line"  # EOF ends the last line

    run(main)


def test_unix_echo(tmp_path, no_leaks):
    path = str(tmp_path / "echo.sock")

    def main():
        with net.start_unix_server(echo_handler, path) as srv:
            assert srv.port is None
            with net.connect_unix(path) as c:
                c.sendall(b"unix!")
                assert c.readexactly(5) == b"unix!"
            srv.cancel_connections()

    run(main)
    import os
    assert not os.path.exists(path)  # close() removed the socket file


def test_close_wakes_every_parked_task(no_leaks):
    def main():
        a, b = socket.socketpair()
        sa = net.Stream(a)
        with b:
            b.setblocking(False)
            # fill the send direction so a writer parks too
            big = b"x" * (8 << 20)
            reader = pycoro.spawn(sa.recv)
            writer = pycoro.spawn(sa.sendall, big)
            pycoro.sleep(0)
            pycoro.sleep(0)
            assert reader.state == "waiting" and writer.state == "waiting"
            sa.close()
            with pytest.raises(net.StreamClosed, match="closed while this task waited"):
                reader.join()
            with pytest.raises(net.StreamClosed):
                writer.join()
            with pytest.raises(net.StreamClosed):
                sa.recv()
            with pytest.raises(net.StreamClosed):
                sa.sendall(b"y")
            sa.close()  # idempotent
            assert sa.closed

    run(main)


def test_recv_and_send_timeouts_and_connect_timeout(no_leaks):
    def main():
        a, b = socket.socketpair()
        with net.Stream(a) as sa, b:
            with pytest.raises(pycoro.Timeout):
                with pycoro.timeout(0.01):
                    sa.recv()
            with pycoro.move_on_after(0.01) as scope:
                sa.sendall(b"z" * (16 << 20))   # nobody reads b: parks, then times out
            assert scope.cancelled_caught
            # the stream is still usable for reading afterwards
            b.sendall(b"still here")
            assert sa.recv() == b"still here"
        # connect timeout: a listener whose backlog is full does not answer the SYN
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(0)
        fillers = []
        with lst:
            port = lst.getsockname()[1]
            try:
                with pytest.raises(pycoro.Timeout, match="connect_tcp"):
                    for _ in range(8):  # once the accept queue is full, a connect hangs
                        fillers.append(net.connect_tcp("127.0.0.1", port, timeout=0.2))
            finally:
                for f in fillers:
                    f.close()

    run(main)


def test_per_call_timeouts_on_recv_send_readline_readexactly_and_udp(no_leaks):
    def main():
        a, b = socket.socketpair()
        with net.Stream(a) as sa, b:
            for call in (lambda: sa.recv(timeout=0.01), lambda: sa.recv_into(bytearray(4), timeout=0.01)):
                with pytest.raises(pycoro.Timeout, match=r"Stream\.recv"):
                    call()
            b.sendall(b"par")
            with pytest.raises(pycoro.Timeout, match=r"Stream\.readline\(\) timed out after 0\.01s"):
                sa.readline(timeout=0.01)
            b.sendall(b"tial\nxy")
            assert sa.readline(timeout=5) == b"partial\n"     # what was read before stays
            with pytest.raises(pycoro.Timeout, match=r"Stream\.readexactly"):
                sa.readexactly(4, timeout=0.01)
            b.sendall(b"zw")
            assert sa.readexactly(4, timeout=5) == b"xyzw"
            with pytest.raises(pycoro.Timeout, match=r"Stream\.sendall"):
                sa.sendall(b"s" * (16 << 20), timeout=0.01)   # nobody reads b
            # an enclosing scope that expires first is not the call's own timeout
            with pycoro.move_on_after(0.01) as scope:
                sa.recv(timeout=60)
            assert scope.cancelled_caught
        with net.open_udp(local=("127.0.0.1", 0)) as u:
            with pytest.raises(pycoro.Timeout, match=r"DatagramSocket\.recvfrom"):
                u.recvfrom(timeout=0.01)
            u.sendto(b"dgram", u.local_address, timeout=5)
            assert u.recvfrom(timeout=5)[0] == b"dgram"

    run(main)


def test_cancel_in_the_middle_of_sendall(no_leaks):
    def main():
        a, b = socket.socketpair()
        with net.Stream(a) as sa, b:
            b.setblocking(False)
            t = pycoro.spawn(sa.sendall, b"q" * (32 << 20))
            received = 0
            while received < (1 << 20):     # the sender has made progress...
                pycoro.wait_readable(b)
                received += len(b.recv(1 << 16))
            t.cancel()                       # ...and is parked again: cancel it
            with pytest.raises(pycoro.Cancelled):
                t.join()
            assert received < (32 << 20)
            assert pycoro.get_hub()._nfd == 0  # its wait was withdrawn
            sa.sendall(b"after")             # the stream still works for a new call

    run(main)


def test_slow_reader_back_pressure_keeps_memory_bounded(no_leaks):
    # The writer pushes chunks while the reader does not read: sendall must
    # park once the kernel buffers are full, so what was "sent" stays
    # bounded by the socket buffers, not by what the writer offers.
    chunk = b"m" * 65536

    def main():
        a, b = socket.socketpair()
        with net.Stream(a) as sa, net.Stream(b) as sb:
            accepted = [0]

            def writer():
                while True:
                    sa.sendall(chunk)
                    accepted[0] += len(chunk)

            w = pycoro.spawn(writer)
            for _ in range(50):
                pycoro.sleep(0)
            assert w.state == "waiting"
            stuck_at = accepted[0]
            limit = (a.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
                     + b.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) + len(chunk))
            assert 0 < stuck_at <= 4 * limit
            # reading lets the writer go on
            got = 0
            while got < 4 * stuck_at + len(chunk):
                got += len(sb.recv())
            assert accepted[0] > stuck_at
            w.cancel()
            with pytest.raises(pycoro.Cancelled):
                w.join()

    run(main)


def test_rst_mid_stream_is_an_oserror_for_the_handler_and_server_goes_on(no_leaks, caplog):
    outcomes = []

    def handler(s):
        try:
            while True:
                data = s.recv()
                if not data:
                    outcomes.append("eof")
                    return
                s.sendall(data)
        except ConnectionError as e:
            outcomes.append(type(e).__name__)

    def main():
        with net.start_server(handler, "127.0.0.1", 0) as srv:
            c = net.connect_tcp("127.0.0.1", srv.port)
            c.sendall(b"abc")
            assert c.readexactly(3) == b"abc"
            c.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.sendall(b"unread by the server")
            c.close()                        # RST
            while not outcomes:
                pycoro.sleep(0.001)
            with net.connect_tcp("127.0.0.1", srv.port) as c2:  # still serving
                c2.sendall(b"ok")
                assert c2.readexactly(2) == b"ok"
            srv.cancel_connections()
        assert outcomes[0] in ("ConnectionResetError", "eof")

    run(main)


def test_handler_raising_is_logged_and_server_goes_on(no_leaks, caplog):
    def handler(s):
        line = s.readline()
        if line == b"boom\n":
            raise ValueError("handler exploded")
        s.sendall(line)

    def main():
        with net.start_server(handler, "127.0.0.1", 0) as srv:
            with net.connect_tcp("127.0.0.1", srv.port) as c:
                c.sendall(b"boom\n")
                assert c.recv() == b""   # the handler's stream was closed
            with net.connect_tcp("127.0.0.1", srv.port) as c:
                c.sendall(b"fine\n")
                assert c.readline() == b"fine\n"
            while srv.connections:
                pycoro.sleep(0.001)

    with caplog.at_level("ERROR", logger="pycoro.net"):
        run(main)
    assert any("handler" in r.getMessage() and r.exc_info and r.exc_info[0] is ValueError
               for r in caplog.records)


def test_server_close_stops_accepting_but_connections_continue(no_leaks):
    def main():
        srv = net.start_server(echo_handler, "127.0.0.1", 0)
        port = srv.port
        c = net.connect_tcp("127.0.0.1", port)
        c.sendall(b"1")
        assert c.recv() == b"1"
        closer = pycoro.spawn(srv.close)
        srv.serve_forever()          # returns once another task closes it
        closer.join()
        assert srv.closed
        c.sendall(b"2")              # the open connection is still served
        assert c.recv() == b"2"
        with pytest.raises(ConnectionRefusedError):
            net.connect_tcp("127.0.0.1", port)
        c.close()
        while srv.connections:
            pycoro.sleep(0.001)

    run(main)


def test_unclosed_stream_collected_in_another_thread_is_closed_on_the_hub(no_leaks):
    import gc
    import threading

    def main():
        a, b = socket.socketpair()
        holder = [net.Stream(a)]
        t = pycoro.spawn(holder[0].recv)
        pycoro.sleep(0)
        b.send(b"1")
        assert t.join() == b"1"            # the stream has a kept registration now
        fd = holder[0].fileno()
        assert fd in pycoro.get_hub()._poller.waiters

        def drop():
            holder.clear()
            gc.collect()

        th = threading.Thread(target=drop)
        th.start()
        pycoro.to_thread(th.join)
        pycoro.sleep(0.001)                # the deferred close runs in the loop
        assert fd not in pycoro.get_hub()._poller.waiters
        b.close()

    pycoro.run(main)


def test_slow_writer_trickling_bytes_is_read_correctly(no_leaks):
    # The client sends its lines one byte per scheduling round; the server's
    # readline/readexactly park between bytes and still see whole messages.
    def handler(s):
        line = s.readline()
        body = s.readexactly(int(line))
        s.sendall(body[::-1])

    def main():
        with net.start_server(handler, "127.0.0.1", 0) as srv:
            with net.connect_tcp("127.0.0.1", srv.port) as c:
                msg = b"12\nhello, world"
                for i in range(len(msg)):
                    c.sendall(msg[i:i + 1])
                    pycoro.sleep(0.001)   # let the server park on a partial message
                assert c.readexactly(12) == b"dlrow ,olleh"
            while srv.connections:
                pycoro.sleep(0.001)

    run(main)


def test_reuse_port_lets_two_servers_share_a_port(no_leaks):
    served = []

    def handler_of(name):
        def handler(stream):
            served.append(name)
            echo_handler(stream)
        return handler

    def main():
        with net.start_server(handler_of("one"), "127.0.0.1", 0, reuse_port=True) as one:
            with net.start_server(handler_of("two"), "127.0.0.1", one.port, reuse_port=True) as two:
                assert two.port == one.port
                for i in range(64):   # the kernel spreads connections over both
                    with net.connect_tcp("127.0.0.1", one.port) as c:
                        c.sendall(b"%d" % i)
                        assert c.recv() == b"%d" % i
                    if len(set(served)) == 2:
                        break
                assert set(served) == {"one", "two"}
                one.cancel_connections()
                two.cancel_connections()
            with pytest.raises(OSError):   # without reuse_port the port is taken
                net.start_server(echo_handler, "127.0.0.1", one.port)

    run(main)


def test_after_a_short_recv_the_next_one_still_gets_data_eof_and_close(no_leaks):
    # A recv that got fewer bytes than asked parks on readiness before its
    # next recv (the EAGAIN it would get is skipped): data that came in the
    # meantime, EOF and a close must still end that recv at once.
    def main():
        a, b = socket.socketpair()
        sa = net.Stream(a)
        with b:
            b.sendall(b"x")
            assert sa.recv(1024) == b"x"                 # short
            b.sendall(b"yz")                             # already there at the next recv
            assert sa.recv(1024) == b"yz"
            b.sendall(b"0123456789")
            assert sa.recv(4) == b"0123"                 # full: no wait before the next
            assert sa.recv(4) == b"4567"
            assert sa.recv(1024) == b"89"                # short again
            late = pycoro.spawn(sa.recv, 1024)           # parks: nothing there yet
            pycoro.sleep(0)
            assert late.state == "waiting"
            b.sendall(b"late")
            assert late.join() == b"late"
            b.shutdown(socket.SHUT_WR)
            assert sa.recv(1024) == b""                  # EOF after a short recv
            sa.close()
            with pytest.raises(net.StreamClosed):
                sa.recv(1024)

    run(main)
