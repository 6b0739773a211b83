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
    this object dies without `retrieved()` having been called."""

    __slots__ = ("error", "cancelled", "_report")

    def __init__(self, error, name):
        self.error = error
        self.cancelled = isinstance(error, (Cancelled, FiberExit))
        self._report = None if self.cancelled else name

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
