"""Runs fuzz_api.py in a subprocess: a crash (signal, abort) is a test
failure with the child's output; the number of cases is printed."""
import os
import re
import subprocess
import sys

from tests.platform_support import SCALE, needs_subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOAK = os.environ.get("PYCORO_SOAK", "") not in ("", "0")


@needs_subprocess
def test_fuzz_public_api_in_a_subprocess():
    examples = 20_000 if SOAK else max(100, int(600 * SCALE))
    env = dict(os.environ, FUZZ_EXAMPLES=str(examples),
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "reliability", "fuzz_api.py")],
                       capture_output=True, text=True, env=env, timeout=1200)
    assert p.returncode == 0, f"exit status {p.returncode}\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}"
    m = re.search(r"fuzz cases: (\d+)", p.stdout)
    assert m and int(m.group(1)) >= examples, p.stdout
    print(f"\n{m.group(0)} ({examples} examples)")
