"""Compiled gevent (its Cython modules extend and call greenlet's C type
and C API) on pycoro.compat, in a subprocess per scenario: the process must
also end cleanly (a C subclass's dealloc chain runs at exit)."""
import ctypes
import os
import subprocess
import sys
import sysconfig
import textwrap

import pytest

from pycoro.compat import greenlet as G
from tests.platform_support import needs_subprocess

gevent_spec = pytest.importorskip("importlib.util").find_spec("gevent")
needs_gevent = pytest.mark.skipif(gevent_spec is None, reason="gevent is not installed")


def test_capsule_holds_greenlet_h_table_in_order():
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype = ctypes.c_void_p
    get.argtypes = [ctypes.py_object, ctypes.c_char_p]
    table = ctypes.cast(get(G._C_API, b"greenlet._C_API"), ctypes.POINTER(ctypes.c_void_p))
    assert [table[i] for i in range(3)] == [id(G.greenlet), id(G.error), id(G.GreenletExit)]
    assert all(table[i] for i in range(3, 12))
    # greenlet's PyGreenlet: PyObject_HEAD (16 bytes with the GIL, 32 on a
    # free-threaded build), then weakreflist, dict and the pimpl pointer.
    head, ptr = object.__basicsize__, ctypes.sizeof(ctypes.c_void_p)
    assert head == (4 if sysconfig.get_config_var("Py_GIL_DISABLED") else 2) * ptr
    assert G.greenlet.__basicsize__ == head + 3 * ptr
    assert G.greenlet.__weakrefoffset__ == head and G.greenlet.__dictoffset__ == head + ptr


def run(code):
    src = "import pycoro.compat; pycoro.compat.install()\n" + textwrap.dedent(code)
    # PYTHONMALLOC=debug: a freed object (an over-released type) is
    # overwritten at once, so a refcount error crashes instead of lurking.
    env = dict(os.environ, PYTHONMALLOC="debug")
    p = subprocess.run([sys.executable, "-X", "faulthandler", "-c", src],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


@needs_gevent
@needs_subprocess
def test_compiled_gevent_greenlets_spawn_sleep_join_kill():
    out = run("""
        import gevent, gevent.event, gevent.queue, greenlet
        from gevent import _gevent_cgreenlet
        assert greenlet.__name__ == "pycoro.compat.greenlet"
        assert _gevent_cgreenlet.Greenlet.__mro__[1] is greenlet.greenlet
        assert _gevent_cgreenlet.Greenlet.__basicsize__ > greenlet.greenlet.__basicsize__     # its fields after ours
        def body(i):
            for _ in range(3):
                gevent.sleep(0)
            return i
        gs = [gevent.spawn(body, i) for i in range(200)]
        gevent.joinall(gs)
        assert [g.value for g in gs] == list(range(200))
        forever = gevent.spawn(gevent.sleep, 1000)
        gevent.sleep(0)
        forever.kill()
        assert forever.dead and isinstance(forever.value, gevent.GreenletExit)
        with gevent.Timeout(0.01, False):
            gevent.sleep(10)
        ev = gevent.event.Event()
        gevent.spawn_later(0.001, ev.set)
        assert ev.wait(5)
        q = gevent.queue.Queue()
        gevent.spawn(lambda: [q.put(i) for i in range(5)])
        assert [q.get() for _ in range(5)] == list(range(5))
        print("ok")
    """)
    assert out.split() == ["ok"]


@needs_gevent
@needs_subprocess
def test_compiled_gevent_loopback_echo():
    out = run("""
        import gevent
        from gevent import socket
        from gevent.server import StreamServer
        def echo(sock, addr):
            with sock:
                while True:
                    data = sock.recv(1024)
                    if not data:
                        return
                    sock.sendall(data)
        server = StreamServer(("127.0.0.1", 0), echo)
        server.start()
        def client(i):
            with socket.create_connection(("127.0.0.1", server.server_port)) as c:
                c.sendall(b"%d" % i)
                return c.recv(1024)
        gs = [gevent.spawn(client, i) for i in range(50)]
        gevent.joinall(gs, raise_error=True)
        assert sorted(g.value for g in gs) == sorted(b"%d" % i for i in range(50))
        server.stop()
        print("ok")
    """)
    assert out.split() == ["ok"]


@needs_gevent
@needs_subprocess
def test_python_subclass_of_a_cython_greenlet_subclass_keeps_its_type_alive():
    # gevent's Hub is a Python class over Cython greenlet subclasses over
    # greenlet: each instance's reference to its class must be dropped once
    # (it was dropped twice: the class was freed while gevent.hub held it).
    out = run("""
        import gc, sys
        import gevent
        class Sub(gevent.Greenlet):
            pass
        def rounds(n):
            for _ in range(n):
                g = Sub(lambda: 1)
                g.start()
                g.join()
                assert g.value == 1
                del g
            gevent.sleep(0)
            gc.collect()
            return sys.getrefcount(Sub)
        first = rounds(100)               # whatever gevent keeps, it keeps by now
        assert rounds(100) == first == rounds(100), (first, sys.getrefcount(Sub))
        print("ok")
    """)
    assert out.split() == ["ok"]
