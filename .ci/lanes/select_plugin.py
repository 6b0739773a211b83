"""pytest plugin for lanes that run a subset of the suite (valgrind.sh):

* deselects the tests marked with tests.platform_support's subprocess
  markers (needs_subprocess, needs_rlimit_as where it exists): their work
  happens in a child process, which such a lane does not instrument;
* fails the run (a usage error, exit 4) if one of the paths named in
  $PYCORO_SELECT_REQUIRE (comma-separated, as given to pytest) ends up
  with no selected test, so a renamed file or an over-broad -k can not
  quietly shrink the lane to nothing.

Load with `-p select_plugin` and .ci/lanes on PYTHONPATH."""
import os

import pytest


def _subprocess_marks():
    try:
        from tests import platform_support as ps
    except ImportError:
        return []
    marks = []
    for name in ("needs_subprocess", "needs_rlimit_as"):
        deco = getattr(ps, name, None)
        if isinstance(deco, pytest.MarkDecorator):
            marks.append(deco.mark)
    return marks


@pytest.hookimpl(trylast=True)      # after -k/-m deselection
def pytest_collection_modifyitems(config, items):
    marks = _subprocess_marks()
    keep, drop = [], []
    for item in items:
        mine = list(item.iter_markers())
        (drop if any(m == s for m in mine for s in marks) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    for path in filter(None, os.environ.get("PYCORO_SELECT_REQUIRE", "").split(",")):
        path = path.rstrip("/")
        n = sum(1 for i in items if i.nodeid == path or i.nodeid.startswith(path + "/")
                or i.nodeid.startswith(path + "::"))
        if n == 0:
            raise pytest.UsageError(f"select_plugin: no test selected from {path}")
        print(f"select_plugin: {n} tests from {path}")
