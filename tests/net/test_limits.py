"""Exhaustion: the fd limit reached while accepting; 10,000 concurrent
connections on loopback."""
import logging
import os
import resource

import socket
import subprocess
import sys

import pycoro
from pycoro import net
from pycoro.net import _connect as net_connect

from .conftest import echo_handler


def with_deadline(main, seconds=120):
    """Run main with a generous deadline: a hang becomes a failure, not a stuck run."""
    def guarded():
        with pycoro.timeout(seconds):
            return main()
    return pycoro.run(guarded)


def test_accept_at_the_fd_limit_fails_cleanly_and_resumes(no_leaks, caplog, fd_limit):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def main():
        with net.start_server(echo_handler, "127.0.0.1", 0) as srv:
            clients = [net.connect_tcp("127.0.0.1", srv.port) for _ in range(3)]
            for c in clients:          # all three are served
                c.sendall(b"a")
                assert c.recv() == b"a"
            # The client's socket is made first; then no fd number is left
            # free below the limit, so the server's accept() gets EMFILE.
            raw = socket.socket()
            raw.setblocking(False)
            lowest_free = os.dup(0)
            os.close(lowest_free)
            resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
            net_connect.connect_sock(raw, ("127.0.0.1", srv.port))  # needs no new fd
            late = net.Stream(raw)
            try:
                while not any("accept() failed" in r.getMessage() for r in caplog.records):
                    pycoro.sleep(0.005)
                for c in clients:      # existing connections are unaffected
                    c.sendall(b"b")
                    assert c.recv() == b"b"
            finally:
                resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
            late.sendall(b"served at last")   # the server accepts it once fds are available
            assert late.readexactly(14) == b"served at last"
            for c in clients + [late]:
                c.close()
            while srv.connections:
                pycoro.sleep(0.001)

    with caplog.at_level(logging.ERROR, logger="pycoro.net"):
        with_deadline(main)
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (soft, hard)


_CLIENTS = r"""
import resource, sys
import pycoro
from pycoro import net
n, port = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 100), hard))

def client(i):
    c = net.connect_tcp("127.0.0.1", port)
    msg = b"%d\n" % i
    c.sendall(msg)
    assert c.readline() == msg
    return c

def main():
    streams = [t.join() for t in [pycoro.spawn(client, i) for i in range(n)]]
    print("connected", len(streams), flush=True)
    sys.stdin.readline()          # the server has counted them: now each once more
    for s in streams:
        s.sendall(b"x")
    for s in streams:
        assert s.recv() == b"x"
        s.close()
    print("done", flush=True)

pycoro.run(main)
"""


def test_10000_concurrent_connections(no_leaks, fd_limit):
    # The clients run in a child process: both ends of 10,000 connections in
    # one process would need more fds than the usual hard limit (20,000).
    n = 10_000
    fd_limit(n + 200)

    def main():
        with net.start_server(echo_handler, "127.0.0.1", 0, backlog=4096) as srv:
            proc = subprocess.Popen([sys.executable, "-c", _CLIENTS, str(n), str(srv.port)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            try:
                line = pycoro.to_thread(proc.stdout.readline)
                assert line == b"connected %d\n" % n
                assert len(srv.connections) == n      # all open at the same time
                proc.stdin.write(b"go\n")
                proc.stdin.flush()
                assert pycoro.to_thread(proc.stdout.readline) == b"done\n"
                assert pycoro.to_thread(proc.wait) == 0
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdin.close()
                proc.stdout.close()
            while srv.connections:
                pycoro.sleep(0.001)

    with_deadline(main)
