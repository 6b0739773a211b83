"""Platform facts that tests can ask about.  Import from any test module:

    from tests.platform_support import needs_subprocess, IS_ARM64

`needs_subprocess` marks a test that starts `sys.executable` in a child
process.  On x86-64 it never skips: a child that cannot start is a failure.
On ARM64 the suite may run under qemu user-mode emulation (.ci/lanes/arm64.sh),
where the kernel can run the aarch64 interpreter only if qemu is registered
with binfmt_misc; where it is not, the marked tests skip and say why.

`SCALE`/`scaled()` mirror tests/core/conftest.py: iteration counts shrink
under emulation (PYCORO_TEST_SCALE=0.1) instead of tests being skipped.
"""
import functools
import os
import platform
import subprocess
import sys

import pytest

IS_ARM64 = platform.machine().lower() in ("aarch64", "arm64")

# Set by the ARM64 lane; only informative (tests still run in full).
EMULATED = os.environ.get("PYCORO_EMULATED", "") not in ("", "0")

SCALE = float(os.environ.get("PYCORO_TEST_SCALE", "1"))


def scaled(n, minimum=1):
    return max(minimum, int(n * SCALE))


@functools.lru_cache(maxsize=None)
def subprocess_unavailable_reason():
    """None when a child `sys.executable` can run here, else the reason.

    Only ARM64 is probed: elsewhere the answer is always None, so a broken
    subprocess shows up as a test failure, never as a skip."""
    if not IS_ARM64:
        return None
    why = None
    try:
        p = subprocess.run(
            [sys.executable, "-c", "print('ok')"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if p.returncode != 0 or p.stdout.strip() != "ok":
            why = f"exit status {p.returncode}: {p.stderr.strip()[-200:]}"
    except OSError as e:
        why = str(e)
    if why is None:
        return None
    return (
        "ARM64: cannot start sys.executable in a subprocess (%s); "
        "register qemu-aarch64 with binfmt_misc to run this test" % why
    )


needs_subprocess = pytest.mark.skipif(
    subprocess_unavailable_reason() is not None,
    reason=subprocess_unavailable_reason() or "subprocesses work",
)
