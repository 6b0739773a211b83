"""Compatibility layers that let code written for other coroutine libraries
run on pycoro.

`pycoro.compat.greenlet` is greenlet 3's public API backed by pycoro.Fiber.
`install()` makes `import greenlet` resolve to it for the rest of the process.
"""
import sys

__all__ = ["install", "installed"]


class GreenletAlreadyImported(ImportError):
    """install() was called after the real greenlet had been imported."""


def installed():
    """True when `import greenlet` gives pycoro.compat.greenlet."""
    from . import greenlet as compat
    return sys.modules.get("greenlet") is compat


def install():
    """Make `import greenlet` (and `from greenlet import ...`) resolve to
    pycoro.compat.greenlet for the rest of the process.

    Idempotent.  Raises GreenletAlreadyImported when the real greenlet (or
    any greenlet submodule) is already in sys.modules: objects made by it
    could not be mixed with pycoro's, so the switch must happen before
    anything imports greenlet.
    """
    from . import greenlet as compat
    existing = sys.modules.get("greenlet")
    if existing is compat:
        return compat
    loaded = sorted(n for n in sys.modules if n == "greenlet" or n.startswith("greenlet."))
    if loaded:
        where = getattr(sys.modules[loaded[0]], "__file__", None) or "?"
        raise GreenletAlreadyImported(
            "pycoro.compat.install() must run before greenlet is imported, but %s "
            "is already imported (from %s); call install() earlier, e.g. at the top "
            "of the program's entry point" % (", ".join(loaded), where)
        )
    from . import _greenlet
    sys.modules["greenlet"] = compat
    sys.modules["greenlet._greenlet"] = _greenlet
    compat._greenlet = _greenlet
    # greenlet is a package: `import greenlet.<name>` must find names in
    # sys.modules (greenlet._greenlet) and a path others may extend.
    if not hasattr(compat, "__path__"):
        compat.__path__ = []
    return compat
