"""Loaded at start-up by every interpreter of the greenlet-suite lane (the
runner puts this folder first on PYTHONPATH): `import greenlet` must give
pycoro.compat.greenlet, also in the scripts greenlet's tests start in
subprocesses (tests/greenlet_suite/run_suite.py)."""
import os

import pycoro.compat

greenlet = pycoro.compat.install()
# Where the runner copied greenlet's test package: `import greenlet.tests`
# (greenlet's scripts run in subprocesses do it) finds it there.
if os.environ.get("PYCORO_GREENLET_SUITE_DIR"):
    greenlet.__path__.append(os.environ["PYCORO_GREENLET_SUITE_DIR"])
