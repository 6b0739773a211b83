"""pycoro.compat.greenlet and pycoro.compat.install() (greenlet's own suite
runs in .ci/lanes/greenlet_suite.sh; these cover the layer itself)."""
import contextvars
import gc
import subprocess
import sys
import textwrap
import threading
import weakref

import pytest

import pycoro
from pycoro.compat import greenlet as G
from tests.platform_support import needs_subprocess


def run_child(code):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300)


@needs_subprocess
def test_install_makes_import_greenlet_resolve_to_compat():
    p = run_child("""
        import sys, pycoro.compat
        pycoro.compat.install()
        pycoro.compat.install()              # idempotent
        import greenlet
        from greenlet import greenlet as g, getcurrent, GreenletExit
        import pycoro.compat.greenlet as c
        assert greenlet is c and g is c.greenlet and pycoro.compat.installed()
        assert GreenletExit is pycoro.FiberExit
        print(g(lambda x: x * 2).switch(21), type(getcurrent()).__name__)
    """)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["42", "greenlet"]


@needs_subprocess
def test_install_after_real_greenlet_raises_clear_error():
    p = run_child("""
        import greenlet, pycoro.compat
        try:
            pycoro.compat.install()
        except ImportError as e:
            print(type(e).__name__, e)
        else:
            print("no error")
        import sys
        assert sys.modules["greenlet"] is greenlet
    """)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("GreenletAlreadyImported pycoro.compat.install() must run before greenlet")
    assert "already imported" in p.stdout


def test_getcurrent_adopts_main_and_parent_chain():
    main = G.getcurrent()
    assert isinstance(main, G.greenlet) and isinstance(main, pycoro.Fiber)
    assert main is pycoro.current() and main.parent is None
    g = G.greenlet(lambda: G.getcurrent().parent)
    assert g.parent is main
    assert g.switch() is main
    assert g.dead and not g


def test_main_of_a_new_thread_is_adopted_via_parent():
    out = []

    def t():
        child = G.greenlet(lambda: 1)     # parent: a plain main Fiber so far
        out.append(type(child.parent))
        out.append(child.parent is G.getcurrent())
    th = threading.Thread(target=t)
    th.start()
    th.join()
    assert out == [G.greenlet, True]


def test_non_main_plain_fibers_are_left_alone():
    seen = []
    f = pycoro.Fiber(lambda: seen.append(type(G.getcurrent())))
    f.switch()
    assert seen == [pycoro.Fiber]


def test_switch_throw_and_greenletexit():
    def run(a, b=0):
        try:
            G.getcurrent().parent.switch(a + b)
        except G.GreenletExit:
            return "exited"
    g = G.greenlet(run)
    assert g.switch(1, b=2) == 3
    assert g.throw() == "exited"
    assert g.dead
    # throwing into a dead or never started greenlet: GreenletExit becomes the value
    assert isinstance(g.throw(), G.GreenletExit)
    n = G.greenlet(lambda: 1)
    assert isinstance(n.throw(), G.GreenletExit) and n.dead
    with pytest.raises(KeyError):
        G.greenlet(lambda: 1).throw(KeyError)
    with pytest.raises(AttributeError):
        G.greenlet().throw(KeyError)            # no run: greenlet checks it first


def test_collected_greenlet_sees_greenletexit():
    seen = []

    def run():
        try:
            G.getcurrent().parent.switch()
        except G.GreenletExit:
            seen.append("exit")
            raise
    g = G.greenlet(run)
    g.switch()
    del g
    gc.collect()
    assert seen == ["exit"]


def test_subclass_init_dict_weakref():
    class Mine(G.greenlet):
        def __init__(self, run=None, parent=None, tag="t"):
            super().__init__(run, parent)
            self.tag = tag

        def run(self, x):
            return (self.tag, x)
    m = Mine(tag="z")
    r = weakref.ref(m)
    assert m.__dict__ == {"tag": "z"}
    assert m.switch(5) == ("z", 5)
    del m
    gc.collect()
    assert r() is None


def test_abstract_subclass_cannot_be_instantiated():
    import abc

    class A(G.greenlet, metaclass=abc.ABCMeta):
        @abc.abstractmethod
        def run(self):
            pass
    with pytest.raises(TypeError):
        A()


def test_gr_context_semantics():
    var = contextvars.ContextVar("var", default="unset")
    var.set("main")
    g = G.greenlet(lambda: (var.get(), G.getcurrent().parent.switch(var.get())))
    assert g.gr_context is None                      # new greenlet: empty context
    assert g.switch() == "unset"                     # not the parent's context
    ctx = contextvars.copy_context()
    g2 = G.greenlet(lambda: var.get())
    g2.gr_context = ctx                              # assignable before start
    assert g2.switch() == "main"
    # assignable while suspended and when dead; wrong type rejected
    assert g.gr_context is None                      # it never set a variable
    g.gr_context = ctx
    assert g.gr_context is ctx
    g.switch()
    assert g.dead
    g.gr_context = ctx
    assert g.gr_context is ctx
    g.gr_context = None
    assert g.gr_context is None
    with pytest.raises(TypeError):
        g.gr_context = {}
    with pytest.raises(AttributeError):
        del g.gr_context


def test_parent_errors_and_repr():
    main = G.getcurrent()
    g = G.greenlet(lambda: None)
    with pytest.raises(TypeError):
        g.parent = 1
    with pytest.raises(AttributeError):
        main.parent = g
    with pytest.raises(ValueError):
        g.parent = g
    assert repr(g).endswith(" pending>")
    assert repr(main).endswith(" current active started main>")
    g.switch()
    assert repr(g).endswith(" dead>")


def test_settrace_sees_greenlets():
    events = []
    old = G.settrace(lambda ev, args: events.append((ev, type(args[0]), type(args[1]))))
    try:
        G.greenlet(lambda: None).switch()
    finally:
        G.settrace(old)
    assert events == [("switch", G.greenlet, G.greenlet)] * 2
    assert G.gettrace() is old


def test_version_and_names():
    assert G.__version__.startswith("3.")
    for name in ("greenlet", "getcurrent", "GreenletExit", "error", "settrace", "gettrace"):
        assert hasattr(G, name)
    assert G.error is pycoro.FiberError
    assert issubclass(G.error, Exception)
