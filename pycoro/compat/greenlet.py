"""greenlet 3's public API on pycoro.Fiber.

`greenlet` is a C type (csrc/binding/greenlet_type.c), a subclass of
`pycoro.Fiber` that adds no field: its instances have greenlet 3's C layout
(40 bytes: PyObject_HEAD, weakreflist, dict, one opaque pointer), so C and
Cython code built against greenlet's `greenlet.h` -- compiled gevent --
extends and calls it unchanged, through the capsule `_C_API`.  Switching,
throwing, parents, frames, contexts and collection are Fiber's own C code;
construction, `parent` and `getcurrent()` are the C type's.  What this
module adds to the type in Python (cold paths only):

* greenlet's names: `gr_frame`, `gr_context`, `GreenletExit`, `error`,
  `getcurrent`, and the class attributes greenlet has (`greenlet.getcurrent`,
  `greenlet.GreenletExit`, ...).
* the main greenlet: pycoro creates each thread's main fiber as a plain
  `pycoro.Fiber`.  The first time this module hands that object out
  (`getcurrent()`, `g.parent`, `settrace()`), its class is changed to
  `greenlet` (a layout-compatible subclass, so it stays a Fiber with the
  same C state).  Only main fibers are adopted this way: a non-main fiber
  created as a plain `Fiber` by other pycoro code stays what it is.

* `greenlet(run=None, parent=None)`: like greenlet, an explicit `run=None`
  is stored (`g.run` is None, switching fails with TypeError), an omitted
  run is missing (`g.run` and the first switch raise AttributeError).
  `run` itself is Fiber's C attribute: no Python frame runs when a greenlet
  starts.
* a `parent` on another thread: as in greenlet, an unstarted greenlet
  belongs to the thread of its parents, so it may be given a parent anywhere
  and runs in the thread that switches to it; switching to it from another
  thread raises greenlet's error (the C switch words it greenlet's way).

`GreenletExit` *is* `pycoro.FiberExit` (what pycoro throws into a collected
fiber and what `throw()` throws by default), so `except GreenletExit` sees
exactly what greenlet code expects.  `error` is `pycoro.FiberError`.

The behaviour matched is greenlet's at `__version__`.
"""
import contextvars

from .. import _pycoro

__all__ = [
    "__version__",
    "GreenletExit",
    "error",
    "getcurrent",
    "greenlet",
    "gettrace",
    "settrace",
]

#: The greenlet release whose Python-level behaviour this module follows.
__version__ = "3.5.6"

Fiber = _pycoro.Fiber
GreenletExit = _pycoro.FiberExit
error = _pycoro.FiberError

_current = _pycoro.current
_settrace = _pycoro.settrace
gettrace = _pycoro.gettrace

# greenlet's module constants (all features are always on in greenlet >= 1.0).
GREENLET_USE_GC = True
GREENLET_USE_TRACING = True
GREENLET_USE_CONTEXT_VARS = True
GREENLET_USE_STANDARD_THREADING = True

_fiber_parent = Fiber.__dict__["parent"]
_parent_get = _fiber_parent.__get__

#: The C type (greenlet 3's 40-byte layout, csrc/binding/greenlet_type.c);
#: the Python part of greenlet's API is added to it below.
greenlet = _pycoro.greenlet

#: greenlet.h's table of 12 pointers, for C and Cython users (gevent).
_C_API = _pycoro._greenlet_C_API

_adopt = _pycoro._greenlet_adopt     # a thread's plain main Fiber -> greenlet, in place

#: The running greenlet of this thread (its main greenlet at first).
getcurrent = _pycoro.greenlet_getcurrent


def _adopt_main_of_this_thread():
    f = _current()
    while True:
        p = _parent_get(f)
        if p is None:
            return _adopt(f)
        f = p


def settrace(callback):
    """Call callback(event, (origin, target)) on each switch ('switch') and
    throw ('throw') of this thread; returns the previous callback."""
    # Trace events name fibers of this thread only: adopt its main first so
    # the callback sees greenlet objects.
    _adopt_main_of_this_thread()
    return _settrace(callback)


_fiber_throw = Fiber.throw
_fiber_switch = Fiber.switch
_fiber_run = Fiber.__dict__["run"]
_fiber_context = Fiber.__dict__["context"]
_started = Fiber.__dict__["started"].__get__
_dead = Fiber.__dict__["dead"].__get__
_is_main = Fiber.__dict__["is_main"].__get__

_run_set = _fiber_run.__set__
_context_get = _fiber_context.__get__
_context_set = _fiber_context.__set__

def _exception_instance(typ, val, tb):
    """The exception object `throw(typ, val, tb)` raises (as generator.throw)."""
    if isinstance(typ, BaseException):
        if val is not None:
            raise TypeError("instance exception may not have a separate value")
        exc = typ
    elif isinstance(typ, type) and issubclass(typ, BaseException):
        if isinstance(val, typ):
            exc = val
        elif val is None:
            exc = typ()
        elif isinstance(val, tuple):
            exc = typ(*val)
        else:
            exc = typ(val)
    else:
        return None
    if tb is not None:
        exc = exc.with_traceback(tb)
    return exc


def _end_unstarted(g, exc):
    """Start the unstarted greenlet `g` only to end it with `exc` as its
    result (greenlet: a GreenletExit thrown at a greenlet that has not
    started ends it without calling run; its parent gets the exception as
    the value).  Fiber starts a subclass instance with what getattr(g,
    "run") gives, which may be a run method: for the start `g` is given a
    class whose run is the slot (plain greenlet, or for a subclass with
    __slots__ a same-layout subclass of its own) and gets its class back
    as it starts."""
    cls = type(g)
    if cls is greenlet or (cls.__getattribute__ is Fiber.__getattribute__
                           and getattr(cls, "run", None) is _fiber_run):
        _run_set(g, lambda *a, **k: exc)
        return _fiber_switch(g)

    def end(*a, **k):
        g.__class__ = cls
        return exc
    try:
        g.__class__ = greenlet
    except TypeError:                   # __slots__: another layout
        g.__class__ = type(cls)(cls.__name__, (cls,), {
            "__slots__": (), "run": _fiber_run,
            "__getattribute__": Fiber.__getattribute__})
    _run_set(g, end)
    return _fiber_switch(g)


def _checked_new(cls, *args, **kwargs):
    abstract = getattr(cls, "__abstractmethods__", None)
    if abstract:
        raise TypeError(
            "Can't instantiate abstract class %s with abstract method%s %s"
            % (cls.__name__, "s" if len(abstract) > 1 else "", ", ".join(sorted(abstract))))
    return Fiber.__new__(cls)


class _PythonPart:
    """What greenlet's API adds to Fiber beyond the C type: copied onto
    `greenlet` below (it is never instantiated)."""

    GreenletExit = GreenletExit
    error = error
    getcurrent = staticmethod(getcurrent)
    settrace = staticmethod(settrace)
    gettrace = staticmethod(gettrace)

    gr_frame = Fiber.__dict__["frame"]
    _stack_saved = Fiber.__dict__["stack_saved"]

    def __init_subclass__(cls, **kwargs):
        super(greenlet, cls).__init_subclass__(**kwargs)
        # Fiber's constructor does not look at abstract methods; a subclass
        # made with a metaclass (ABCMeta) gets a checking __new__.  Plain
        # subclasses keep Fiber's C constructor.
        if type(cls) is not type and "__new__" not in cls.__dict__:
            cls.__new__ = _checked_new

    # -- gr_context ----------------------------------------------------------
    @property
    def gr_context(self):
        """The greenlet's contextvars.Context (None: an empty one)."""
        try:
            return _context_get(self)
        except ValueError:
            raise ValueError("cannot get context of a greenlet that is running "
                             "in a different thread") from None

    @gr_context.setter
    def gr_context(self, value):
        if value is not None and type(value) is not contextvars.Context:
            raise TypeError("greenlet context must be a contextvars.Context or None")
        try:
            _context_set(self, value)
        except ValueError:
            raise ValueError("cannot set context of a greenlet that is running "
                             "in a different thread") from None

    @gr_context.deleter
    def gr_context(self):
        raise AttributeError("can't delete context attribute")

    # -- throw -------------------------------------------------------------
    def throw(self, typ=GreenletExit, val=None, tb=None):
        """throw(typ=GreenletExit, val=None, tb=None): raise an exception in
        the greenlet; it goes to the parent if the greenlet is not active."""
        if self:                            # running or suspended: Fiber's
            return _fiber_throw(self, typ, val, tb)
        if not _started(self):
            getattr(self, "run")    # greenlet looks run up first (AttributeError if none)
        exc = _exception_instance(typ, val, tb)
        if isinstance(exc, GreenletExit):
            # greenlet raises it in the greenlet, which ends with it; an
            # ending GreenletExit is a return value for the parent.
            if not _started(self):
                return _end_unstarted(self, exc)
            return _fiber_switch(self, exc)
        return _fiber_throw(self, typ, val, tb)

    # -- misc ----------------------------------------------------------------
    def __repr__(self):
        tp = type(self)
        if _dead(self):
            state = " (thread exited) dead" if _is_main(self) else " dead"
        elif not _started(self):
            state = " pending"
        elif self is _current():
            state = " current active started"
        else:
            state = " suspended active started"
        if _is_main(self) and not _dead(self):
            state += " main"
        return "<%s.%s object at %#x%s>" % (tp.__module__, tp.__qualname__, id(self), state)

    def __getstate__(self):
        raise TypeError("cannot serialize '%s' object" % type(self).__name__)

    def __copy__(self):
        raise TypeError("cannot copy a greenlet")

    def __deepcopy__(self, memo):
        raise TypeError("cannot copy a greenlet")


for _name, _value in list(vars(_PythonPart).items()):
    if _name not in ("__module__", "__qualname__", "__doc__", "__dict__", "__weakref__"):
        setattr(greenlet, _name, _value)
del _name, _value, _PythonPart
