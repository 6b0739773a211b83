"""Compiled gevent on greenlet vs compiled gevent on pycoro: the workloads of
the bench's gevent rows (rows_net.py).  Each sample runs in a fresh
interpreter (workers.py's protocol): "pycoro" installs pycoro.compat as
`greenlet` before gevent is imported, "greenlet" uses the real one.  Times
are nanoseconds of wall clock for the whole workload.

Owns: the three gevent workloads.  May call: gevent, pycoro.compat.
"""
import time


def _load_gevent(impl_name):
    if impl_name == "pycoro":
        import pycoro.compat
        pycoro.compat.install()
    elif impl_name != "greenlet":
        raise ValueError("gevent rows compare 'pycoro' and 'greenlet', not %r" % impl_name)
    import gevent
    import greenlet
    expected = "pycoro.compat.greenlet" if impl_name == "pycoro" else "greenlet"
    if greenlet.__name__ != expected:
        raise RuntimeError("gevent runs on %s, expected %s" % (greenlet.__name__, expected))
    return gevent


def gevent_available():
    """None if compiled gevent can be imported here, else why not."""
    import importlib.util
    if importlib.util.find_spec("gevent") is None:
        return "gevent is not installed (pip install gevent)"
    return None


def work_sleep0(impl_name, greenlets, rounds):
    """`greenlets` greenlets each calling gevent.sleep(0) `rounds` times:
    ns per sleep(0) (one trip through the hub's loop and back)."""
    gevent = _load_gevent(impl_name)

    def body():
        for _ in range(rounds):
            gevent.sleep(0)

    warm = [gevent.spawn(body) for _ in range(10)]
    gevent.joinall(warm)
    gs = [gevent.spawn(body) for _ in range(greenlets)]
    t0 = time.perf_counter_ns()
    gevent.joinall(gs)
    ns = time.perf_counter_ns() - t0
    assert all(g.successful() for g in gs)
    return {"ns": ns / (greenlets * rounds)}


def work_spawn_join(impl_name, n):
    """spawn n trivial greenlets and joinall them: ns for the whole batch."""
    gevent = _load_gevent(impl_name)

    def trivial(i):
        return i

    gevent.joinall([gevent.spawn(trivial, i) for i in range(100)])
    t0 = time.perf_counter_ns()
    gs = [gevent.spawn(trivial, i) for i in range(n)]
    gevent.joinall(gs)
    ns = time.perf_counter_ns() - t0
    assert sum(g.value for g in gs) == n * (n - 1) // 2
    return {"ns": ns}


def work_echo(impl_name, connections, messages, size=64):
    """A gevent StreamServer echoing on loopback; `connections` client
    greenlets each send `messages` messages of `size` bytes and read each
    back: ns per message round trip (over all connections)."""
    gevent = _load_gevent(impl_name)
    from gevent import socket
    from gevent.server import StreamServer

    def echo(sock, addr):
        with sock:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                sock.sendall(data)

    server = StreamServer(("127.0.0.1", 0), echo, backlog=connections * 2)
    server.start()
    port = server.server_port
    payload = b"x" * size

    def client():
        with socket.create_connection(("127.0.0.1", port)) as c:
            for _ in range(messages):
                c.sendall(payload)
                got = 0
                while got < size:
                    chunk = c.recv(size - got)
                    if not chunk:
                        raise RuntimeError("server closed early")
                    got += len(chunk)
        return True

    gevent.joinall([gevent.spawn(client) for _ in range(4)])     # warm-up
    t0 = time.perf_counter_ns()
    gs = [gevent.spawn(client) for _ in range(connections)]
    gevent.joinall(gs)
    ns = time.perf_counter_ns() - t0
    server.stop()
    assert all(g.value for g in gs), [g.exception for g in gs if not g.value][:3]
    return {"ns": ns / (connections * messages)}


WORKERS = {"gevent_sleep0": work_sleep0, "gevent_spawn_join": work_spawn_join,
           "gevent_echo": work_echo}
