"""pycoro's C API (pycoro/include/pycoro.h, capsule pycoro._pycoro._C_API),
driven by a small extension (capi_test.c) compiled at test time by
tests/capi/build.py."""
import gc
import os
import sys

import pytest

import pycoro
from tests.capi import build
from tests.platform_support import scaled


@pytest.fixture(scope="module")
def ext(tmp_path_factory):
    return build.load(build.build(tmp_path_factory.mktemp("capi_build")))


def test_header_is_where_get_include_says():
    assert os.path.isfile(os.path.join(pycoro.get_include(), "pycoro.h"))


def test_capsule_tables_the_module_objects(ext):
    fiber_type, fiber_exit, fiber_error, version = ext.types()
    assert fiber_type is pycoro.Fiber
    assert fiber_exit is pycoro.FiberExit
    assert fiber_error is pycoro.FiberError
    assert version >= 1


def test_pingpong_through_the_c_api(ext):
    n = scaled(10000)
    assert ext.pingpong(n) == n
    assert ext.pingpong(1) == 1


def test_throw_through_the_c_api(ext):
    assert ext.throw_value_error("boom") == "caught ValueError: boom"


def test_throw_default_is_fiber_exit_and_ends_normally(ext):
    f = ext.new_fiber(lambda: pycoro.current().parent.switch("ready"))
    assert f.switch() == "ready"
    r = ext.throw(f)
    assert isinstance(r, pycoro.FiberExit) and f.dead


def test_throw_uncaught_reaches_parent_with_traceback(ext):
    f = pycoro.Fiber(lambda: pycoro.current().parent.switch())
    f.switch()
    try:
        raise KeyError("k")
    except KeyError as e:
        tb = e.__traceback__
    with pytest.raises(KeyError) as info:
        ext.throw(f, KeyError, "k", tb)
    assert f.dead
    assert info.value.__traceback__ is not None


def test_throw_rejects_bad_arguments(ext):
    f = pycoro.Fiber(lambda: None)
    with pytest.raises(TypeError):
        ext.throw(f, 42)
    with pytest.raises(TypeError):
        ext.throw(object(), ValueError)
    assert not f.started


def test_switch_packs_args_and_kwargs_like_the_method(ext):
    def run(*args, **kwargs):
        got = [(args, kwargs)]
        while True:
            got.append(pycoro.current().parent.switch(got[-1]))

    f = pycoro.Fiber(run)
    assert ext.switch_kwargs(f, (1, 2), {"a": 3}) == ((1, 2), {"a": 3})
    assert ext.switch_kwargs(f, None, None) == ()
    assert ext.switch_kwargs(f, ("x",), None) == "x"
    assert ext.switch_kwargs(f, None, {"k": 1}) == {"k": 1}
    assert ext.switch_kwargs(f, (1,), {"k": 1}) == ((1,), {"k": 1})
    with pytest.raises(TypeError):
        ext.switch_kwargs(f, [1], None)
    with pytest.raises(TypeError):
        ext.switch_kwargs(42, None, None)
    f.throw()
    assert f.dead


def test_new_current_and_parent(ext):
    main = ext.current()
    assert main is pycoro.current()
    assert ext.get_parent(main) is None
    assert ext.state(main) == {"started": True, "active": True, "dead": False, "main": True}

    seen = []
    a = ext.new_fiber(lambda x: seen.append(("a", x)) or "a done")
    b = ext.new_fiber(lambda: ext.current().parent.switch("b to parent"))
    assert ext.get_parent(a) is main and ext.get_parent(b) is main
    ext.set_parent(b, a)
    assert b.parent is a
    with pytest.raises(ValueError):
        ext.set_parent(a, b)                   # cycle
    with pytest.raises(TypeError):
        ext.set_parent(a, 1)
    assert ext.state(b) == {"started": False, "active": False, "dead": False, "main": False}
    # b's parent is the new fiber a: switching to it starts a
    assert b.switch() == "a done"
    assert seen == [("a", "b to parent")]
    assert ext.state(a)["dead"]
    assert ext.state(b) == {"started": True, "active": True, "dead": False, "main": False}
    b.throw()
    assert ext.state(b)["dead"]
    with pytest.raises(TypeError):
        ext.state("not a fiber")


def test_subclass_run_method_when_run_is_null(ext):
    class F(pycoro.Fiber):
        def run(self):
            return "from method"

    f = pycoro.Fiber.__new__(F)
    assert ext.switch_kwargs(f, None, None) == "from method"


def test_no_leak_over_many_round_trips(ext):
    gc.collect()
    before = sys.gettotalrefcount() if hasattr(sys, "gettotalrefcount") else None
    n_objs = len(gc.get_objects())
    for _ in range(scaled(200)):
        ext.pingpong(10)
        ext.throw_value_error("x")
    gc.collect()
    assert len(gc.get_objects()) - n_objs < 50
    if before is not None:
        assert sys.gettotalrefcount() - before < 200
