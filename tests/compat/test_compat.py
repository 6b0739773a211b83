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


def test_run_omitted_none_and_subclass_method():
    with pytest.raises(AttributeError):
        G.greenlet().run                             # no run at all
    with pytest.raises(AttributeError):
        G.greenlet().switch()
    g = G.greenlet(None)                             # an explicit None is a run
    assert g.run is None
    with pytest.raises(TypeError):
        g.switch()
    f = lambda: 1
    g = G.greenlet(f)
    assert g.run is f
    g.switch()
    with pytest.raises(AttributeError):
        g.run                                        # gone once started

    class Sub(G.greenlet):
        def run(self):
            return "method"
    assert Sub(run=lambda: "argument").switch() == "method"
    assert Sub(None).switch() == "method"


def test_no_python_frame_on_the_start_path():
    def body():
        return 1
    g = G.greenlet(body)
    calls = []
    sys.setprofile(lambda frame, event, arg: calls.append((event, frame.f_code.co_name)))
    try:
        g.switch()
    finally:
        sys.setprofile(None)
    assert [c for c in calls if c[0] == "call"] == [("call", "body")]


def test_gr_context_kept_after_death():
    var = contextvars.ContextVar("var")

    def run():
        var.set(1)
    g = G.greenlet(run)
    g.switch()
    assert g.dead
    assert g.gr_context is not None and g.gr_context[var] == 1


def _other_thread_greenlet(keep_running):
    """A finished greenlet of another thread (that thread still running
    when keep_running is an Event, which the caller must set)."""
    out, ready = [], threading.Event()

    def worker():
        g = G.greenlet(lambda: None)
        g.switch()
        out.append(g)
        ready.set()
        if keep_running:
            keep_running.wait(10)
    t = threading.Thread(target=worker)
    t.start()
    ready.wait(10)
    if not keep_running:
        t.join(10)
    return out[0], t


def test_unstarted_greenlet_belongs_to_the_thread_of_its_parents():
    # greenlet: an unstarted greenlet may be given a parent anywhere; it is
    # switching to it from a thread its parents do not belong to that fails.
    other, t = _other_thread_greenlet(None)          # its thread has exited
    g = G.greenlet(lambda: None)
    g.parent = other
    assert g.parent is other
    with pytest.raises(G.error) as e:
        g.switch()
    assert str(e.value) == "cannot switch to a different thread (which happens to have exited)"

    stop = threading.Event()
    other, t = _other_thread_greenlet(stop)
    try:
        g = G.greenlet(lambda: None, parent=other)
        with pytest.raises(G.error) as e:
            g.switch()
        assert str(e.value).startswith("Cannot switch to a different thread\n\tCurrent:")
        assert "Expected:" in str(e.value)
        started = G.greenlet(lambda: G.getcurrent().parent.switch())
        started.switch()
        with pytest.raises(ValueError) as e:
            started.parent = other
        assert str(e.value) == "parent cannot be on a different thread"
        started.throw()
    finally:
        stop.set()
        t.join(10)


def test_greenlet_made_in_one_thread_runs_in_the_thread_that_adopts_it():
    # gevent's threadpool does this: the greenlet is made by the hub's
    # thread, a worker thread makes itself its parent and switches to it.
    g = G.greenlet(lambda: threading.get_ident())
    out = []

    def worker():
        g.parent = G.getcurrent()
        out.append(g.switch())
    t = threading.Thread(target=worker)
    t.start()
    t.join(10)
    assert out == [t.ident]
    assert g.dead


def test_greenletexit_at_unstarted_subclass_does_not_run_it():
    ran = []

    class Sub(G.greenlet):
        def run(self):
            ran.append(1)

    class Slotted(G.greenlet):
        __slots__ = ("x",)

        def run(self):
            ran.append(2)
    for cls in (Sub, Slotted):
        g = cls()
        assert isinstance(g.throw(), G.GreenletExit)
        assert g.dead and type(g) is cls
    assert ran == []
