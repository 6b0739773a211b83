"""Loaded at start-up by every interpreter of the greenlet-suite lane (the
runner puts this folder first on PYTHONPATH): `import greenlet` must give
pycoro.compat.greenlet, also in the scripts greenlet's tests start in
subprocesses (tests/greenlet_suite/run_suite.py)."""
import sys

import pycoro.compat

pycoro.compat.install()

from tests.greenlet_suite import private_shims  # noqa: E402

sys.modules["greenlet._greenlet"] = private_shims
