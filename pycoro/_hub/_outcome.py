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


class Error:
    """A task's exception.  Unless it is a cancellation, it is logged when
    this object dies without `retrieved()` having been called.

    A plain MemoryError (no arguments, cause, context or notes) is kept as
    its traceback only and made again when asked for: CPython keeps 16
    MemoryError instances in reserve for when nothing can be allocated, and
    a hub whose tasks each kept the one they died of would leave none, so
    that the next allocation failure aborts the interpreter ("Cannot recover
    from MemoryErrors while normalizing exceptions")."""

    __slots__ = ("_error", "_memory_tb", "cancelled", "_report")

    def __init__(self, error, name):
        if (type(error) is MemoryError and not error.args and error.__cause__ is None
                and error.__context__ is None and not hasattr(error, "__notes__")):
            self._error = None
            self._memory_tb = error.__traceback__
        else:
            self._error = error
            self._memory_tb = None
        self.cancelled = isinstance(error, (Cancelled, FiberExit))
        self._report = None if self.cancelled else name

    @property
    def error(self):
        error = self._error
        if error is None:     # made once, on first demand: the same object after
            error = self._error = MemoryError().with_traceback(self._memory_tb)
            self._memory_tb = None
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
