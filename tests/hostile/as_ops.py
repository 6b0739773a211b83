"""The operations the RLIMIT_AS sweep (as_child.py) drives to exhaustion.

Each operation is `fill(keep, cap)`: repeat one unit of the operation up to
`cap` times, appending what the unit made to `keep` so that memory grows,
and check every result (a wrong value raises AssertionError, which the
sweep counts as a defect).  An exception ends the fill; the sweep classifies
it.  `teardown()` (optional) undoes global state before the sweep drops
objects.

Rule every operation keeps: a started, not dead Fiber in `keep[i][0]` is
parked in `park()`, so resuming it with ``f.switch()`` returns ``()``; the
sweep uses one to check switching still works after exhaustion.

Calls only pycoro's public API, the C API test extension (tests/capi) and
the standard library.
"""
import contextvars
import weakref

import pycoro
from pycoro import Fiber, current

main = current()


def park(first=()):
    """Hand `first` to main, then return () to every later resume."""
    main.switch(first)
    while True:
        main.switch()


def parked_deep(n):
    if n:
        return parked_deep(n - 1)
    park()


def loop(unit, keep, cap):
    for i in range(cap):
        unit(i, keep)


def older(keep, i):
    """An earlier entry of keep (deterministic), for switching back into."""
    return keep[i // 2] if keep else None


# ------------------------------------------------------------- Fiber

def fill_new(keep, cap):
    def unit(i, keep):
        keep.append((Fiber(park),))
    loop(unit, keep, cap)


def fill_switch(keep, cap):
    def unit(i, keep):
        f = Fiber(park)
        assert f.switch() == ()
        keep.append((f,))
        o = older(keep, i)
        assert o[0].switch() == ()     # restore an old stack, save it again
    loop(unit, keep, cap)


def fill_switch_deep(keep, cap):
    def unit(i, keep):
        f = Fiber(parked_deep)
        assert f.switch(40) == ()
        keep.append((f,))
        assert older(keep, i)[0].switch() == ()
    loop(unit, keep, cap)


def catcher():
    held = []
    reply = ()
    while True:
        try:
            main.switch(reply)
            reply = ()
        except ValueError as e:
            held.append(e)
            reply = ("caught", len(held))


def fill_throw(keep, cap):
    def unit(i, keep):
        f = Fiber(catcher)
        assert f.switch() == ()
        keep.append((f,))
        assert f.throw(ValueError("v%d" % i)) == ("caught", 1)
        r = older(keep, i)[0].throw(ValueError, ValueError("again"))
        assert r[0] == "caught", r
    loop(unit, keep, cap)


def fill_args(keep, cap):
    def run(*args, **kwargs):
        park((args, kwargs))

    def unit(i, keep):
        f = Fiber(run)
        a, k = f.switch([i], {"k": i}, key=str(i), other=(i,))
        assert a == ([i], {"k": i}) and k == {"key": str(i), "other": (i,)}
        keep.append((f,))
    loop(unit, keep, cap)


def fill_frame(keep, cap):
    def unit(i, keep):
        f = Fiber(parked_deep)
        f.switch(3)
        fr = f.frame
        assert fr is not None and fr.f_code is park.__code__, fr
        n = 0
        while fr is not None:
            n += 1
            fr = fr.f_back
        assert n == 5, n                 # park + 4 parked_deep
        keep.append((f, f.frame))
    loop(unit, keep, cap)


var = contextvars.ContextVar("var")


def reader():
    park(var.get())


def fill_context(keep, cap):
    def unit(i, keep):
        ctx = contextvars.copy_context()
        ctx.run(var.set, i)
        f = Fiber(reader)
        f.context = ctx
        assert f.switch() == i
        keep.append((f, ctx))
        o = older(keep, i)[0]
        c2 = contextvars.copy_context()      # re-assign a suspended fiber's
        o.context = c2
        assert o.context is c2
    loop(unit, keep, cap)


events = []


def tracer(event, args):
    events.append(event)


def fill_settrace(keep, cap):
    pycoro.settrace(tracer)

    def unit(i, keep):
        before = len(events)
        f = Fiber(park)
        assert f.switch() == ()
        keep.append((f,))
        assert len(events) - before == 2, events[before:]
    loop(unit, keep, cap)


def teardown_settrace():
    pycoro.settrace(None)
    events.clear()


died = []


def fill_weakref(keep, cap):
    def unit(i, keep):
        f = Fiber(park)
        f.switch()
        keep.append((f, weakref.ref(f, died.append)))
        if i % 4 == 3:
            # Drop an older suspended fiber: its dealloc unwinds it (FiberExit)
            # and then runs the weakref callback, under the same limit.
            j = i // 2
            w = keep[j][1]
            n = len(died)
            keep[j] = (None, None)
            assert w() is None
            if len(died) != n + 1:
                # The callback ran but died.append found no memory: CPython
                # reports that MemoryError as unraisable (the harness records
                # it, and the test allows only MemoryError there), so this
                # unit's outcome is that MemoryError.
                raise MemoryError("the weakref callback could not record its call")
    loop(unit, keep, cap)


def teardown_weakref():
    died.clear()


# ------------------------------------------------------------- the hub

def in_hub(body):
    def fill(keep, cap):
        ev = pycoro.Event()

        def main_task():
            for i in range(cap):
                body(i, keep, ev)
            ev.set()
        pycoro.run(main_task)
    return fill


def _spawn(i, keep, ev):
    t = pycoro.spawn(ev.wait)
    keep.append((None, t))
    pycoro.sleep(0)                 # t starts and blocks


def _sleep(i, keep, ev):
    def sleeper():
        pycoro.sleep(3600)
    t = pycoro.spawn(sleeper)
    keep.append((None, t))
    pycoro.sleep(0)
    if i % 8 == 7:
        keep[i // 2][1].cancel()    # wake one: timers and cancel under pressure


def _join(i, keep, ev):
    prev = keep[-1][1] if keep else pycoro.spawn(ev.wait)
    t = pycoro.spawn(prev.join)
    keep.append((None, t))
    pycoro.sleep(0)


def _timeout(i, keep, ev):
    def waiter():
        with pycoro.timeout(3600):
            ev.wait()
    t = pycoro.spawn(waiter)
    keep.append((None, t))
    pycoro.sleep(0)
    with pycoro.move_on_after(0) as scope:  # a deadline that fires
        pycoro.sleep(1)
    assert scope.fired


def _channel(i, keep, ev):
    ch = pycoro.Channel()
    t = pycoro.spawn(ch.send, [i])
    keep.append((None, t, ch, i))
    pycoro.sleep(0)                 # the sender blocks: nobody receives yet
    if i % 2:
        _, ot, och, oi = keep[i // 2]
        if ot.state == "waiting":          # not yet received from
            assert och.recv() == [oi]


def _queue(i, keep, ev):
    q = pycoro.Queue()
    t = pycoro.spawn(q.get)
    keep.append((None, t, q, i))
    pycoro.sleep(0)                 # the getter blocks
    if i % 2:
        _, ot, oq, oi = keep[i // 2]
        if ot.state == "waiting":
            oq.put(oi)
            pycoro.sleep(0)
            assert ot.done() and ot.result() == oi


def _group(i, keep, ev):
    def child():
        with pycoro.TaskGroup() as g:
            g.spawn(ev.wait)
            g.spawn(ev.wait)
        return "group done"
    t = pycoro.spawn(child)
    keep.append((None, t))
    pycoro.sleep(0)


def fill_group_body(keep, cap):
    """A TaskGroup whose own body exhausts memory (the error is raised from
    the group's `with` block, wrapped in an ExceptionGroup)."""
    def main_task():
        ev = pycoro.Event()
        with pycoro.TaskGroup() as g:
            for i in range(cap):
                keep.append((None, g.spawn(ev.wait)))
                pycoro.sleep(0)
            ev.set()
    pycoro.run(main_task)


def hub_small():
    """A small hub run: three tasks, a channel, a queue, a timeout."""
    def main_task():
        ch = pycoro.Channel(1)
        q = pycoro.Queue()
        ts = [pycoro.spawn(lambda k=k: (pycoro.sleep(0), k)[1]) for k in range(3)]
        ch.send("c")
        q.put("q")
        with pycoro.move_on_after(0):
            pycoro.sleep(1)
        with pycoro.TaskGroup() as g:
            g.spawn(pycoro.sleep, 0)
        return sum(t.join() for t in ts), ch.recv(), q.get()
    assert pycoro.run(main_task) == (3, "c", "q")


# ------------------------------------------------------------- the C API

ext = None          # set by as_child.py from the built test extension


def fill_capi_switch(keep, cap):
    def run(*args, **kwargs):
        park((args, kwargs))

    def unit(i, keep):
        f = ext.new_fiber(run, None)
        assert ext.state(f) == {"started": False, "active": False, "dead": False, "main": False}
        r = ext.switch_kwargs(f, (i,), {"k": i})
        assert r == ((i,), {"k": i}), r
        keep.append((f,))
        assert ext.switch_kwargs(older(keep, i)[0], None, None) == ()
    loop(unit, keep, cap)


def fill_capi_throw(keep, cap):
    def unit(i, keep):
        f = ext.new_fiber(catcher, None)
        assert ext.switch_kwargs(f, None, None) == ()
        keep.append((f,))
        assert ext.throw(f, ValueError, "v") == ("caught", 1)
        assert ext.throw(older(keep, i)[0], ValueError)[0] == "caught"
        assert ext.throw_value_error("x") == "caught ValueError: x"
    loop(unit, keep, cap)


def fill_capi_parent(keep, cap):
    def unit(i, keep):
        assert ext.current() is main
        p = keep[-1][0] if keep else main
        f = ext.new_fiber(park, p)
        assert ext.get_parent(f) is p
        ext.set_parent(f, main)
        assert ext.get_parent(f) is main
        assert ext.switch_kwargs(f, None, None) == ()
        assert ext.state(f)["active"]
        keep.append((f,))
    loop(unit, keep, cap)


def fill_capi_pingpong(keep, cap):
    """Fibers whose run is C code switching through the C API."""
    def unit(i, keep):
        assert ext.pingpong(3) == 3
        f = ext.new_fiber(park, None)
        ext.switch_kwargs(f, None, None)
        keep.append((f,))
    loop(unit, keep, cap)


OPS = {
    "new": (fill_new, None),
    "switch": (fill_switch, None),
    "switch_deep": (fill_switch_deep, None),
    "throw": (fill_throw, None),
    "args": (fill_args, None),
    "frame": (fill_frame, None),
    "context": (fill_context, None),
    "settrace": (fill_settrace, teardown_settrace),
    "weakref": (fill_weakref, teardown_weakref),
    "hub_spawn": (in_hub(_spawn), None),
    "hub_sleep": (in_hub(_sleep), None),
    "hub_join": (in_hub(_join), None),
    "hub_timeout": (in_hub(_timeout), None),
    "hub_channel": (in_hub(_channel), None),
    "hub_queue": (in_hub(_queue), None),
    "hub_group": (in_hub(_group), None),
    "hub_group_body": (fill_group_body, None),
    "capi_switch": (fill_capi_switch, None),
    "capi_throw": (fill_capi_throw, None),
    "capi_parent": (fill_capi_parent, None),
    "capi_pingpong": (fill_capi_pingpong, None),
}
