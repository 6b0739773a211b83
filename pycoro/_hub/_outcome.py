"""How a finished task ended.

A done task's one outcome field holds its return value as is, or an
`Error` wrapping the exception it raised (no allocation for the common case
of a task that returns).  Owns: `Error`, which also reports an exception
nobody retrieved (like asyncio's "exception was never retrieved").
May call: _errors.
"""
import logging

from .._pycoro import FiberExit
from ._errors import Cancelled

_log = logging.getLogger("pycoro")


def _is_plain_memory_error(e):
    # as the interpreter raises it: no arguments, cause, "from None" or
    # notes (a context is set when it was raised while handling another)
    return (type(e) is MemoryError and not e.args and e.__cause__ is None
            and not e.__suppress_context__ and not hasattr(e, "__notes__"))


def _pack(error):
    """A plain MemoryError as (tracebacks, rest): the tracebacks of it and of
    the plain MemoryErrors down its context chain (failing while handling a
    MemoryError makes such chains), and the first context that is not one,
    kept as it is."""
    tbs = []
    while _is_plain_memory_error(error):
        tbs.append(error.__traceback__)
        error = error.__context__
    return tuple(tbs), error


def _unpack(packed):
    tbs, error = packed
    for tb in reversed(tbs):          # innermost first: it is the others' context
        outer = MemoryError().with_traceback(tb)
        if error is not None:
            outer.__context__ = error
        error = outer
    return error


class Error:
    """A task's exception.  Unless it is a cancellation, it is logged when
    this object dies without `retrieved()` having been called.

    A plain MemoryError (see `_is_plain_memory_error`) is kept as its
    traceback and context only (`_pack`) and made again when asked for:
    CPython keeps 16 MemoryError instances in reserve for when nothing can
    be allocated, and a hub whose tasks each kept the ones they died of
    would leave none, so that the next allocation failure aborts the
    interpreter ("Cannot recover from MemoryErrors while normalizing
    exceptions"; CPython 3.11.7 overflows its C stack instead).  One made by
    the program, with arguments, a cause or notes, is kept as it is."""

    __slots__ = ("_error", "_packed", "cancelled", "_report")

    def __init__(self, error, name):
        if _is_plain_memory_error(error):
            try:
                self._packed = _pack(error)
                self._error = None
            except MemoryError:       # no room to pack it: keep it as it is
                self._packed = None
                self._error = error
        else:
            self._error = error
            self._packed = None
        self.cancelled = isinstance(error, (Cancelled, FiberExit))
        self._report = None if self.cancelled else name

    @property
    def error(self):
        error = self._error
        if error is None:     # made once, on first demand: the same object after
            error = self._error = _unpack(self._packed)
            self._packed = None
        return error

    def unwrap(self):
        self._report = None
        raise self.error

    def retrieved(self):
        self._report = None

    def __del__(self):
        name = self._report
        if name is not None:
            exc = self.error
            _log.error("pycoro: exception in %s was never retrieved", name,
                       exc_info=(type(exc), exc, exc.__traceback__))
