"""Platform facts that tests can ask about.  Import from any test module:

    from tests.platform_support import needs_subprocess, IS_ARM64

`needs_subprocess` marks a test that starts `sys.executable` in a child
process.  On x86-64 it never skips: a child that cannot start is a failure.
On ARM64 the suite may run under qemu user-mode emulation (.ci/lanes/arm64.sh),
where the kernel can run the aarch64 interpreter only if qemu is registered
with binfmt_misc; where it is not, the marked tests skip and say why.

`needs_rlimit_as` marks a test that expects MemoryError under a child's
RLIMIT_AS; it skips where a probe child finds the limit is not enforced
(qemu-user accepts and ignores it), and says so.

`SCALE`/`scaled()` mirror tests/core/conftest.py: iteration counts shrink
under emulation (PYCORO_TEST_SCALE=0.1) instead of tests being skipped.
"""
import functools
import os
import platform
import resource
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


# A child that limits its own address space and then asks for much more than
# the headroom.  Before the limit it makes the same request once, so "the
# machine could not give 512 MiB anyway" is never mistaken for enforcement.
_RLIMIT_AS_PROBE = r"""
import resource
def vmsize():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) << 10
    raise SystemExit("no VmSize in /proc/self/status")
big = 512 << 20
try:
    b = bytearray(big)
    del b
except MemoryError:
    print("no-control")
    raise SystemExit(0)
lim = vmsize() + (64 << 20)
resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
try:
    b = bytearray(big)
except MemoryError:
    print("enforced")
else:
    print("ignored")
"""


@functools.lru_cache(maxsize=None)
def rlimit_as_unenforced_reason():
    """None when RLIMIT_AS is enforced for child processes here, else why not.

    qemu-user (the ARM64 lane) accepts setrlimit(RLIMIT_AS) and ignores it,
    so a test that allocates until MemoryError would run until the host's
    memory or the test timeout ends it."""
    why = subprocess_unavailable_reason()
    if why is not None:
        return why
    try:
        p = subprocess.run([sys.executable, "-c", _RLIMIT_AS_PROBE],
                           capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "RLIMIT_AS probe could not run: %s" % e
    answer = p.stdout.strip()
    if p.returncode == 0 and answer == "enforced":
        return None
    if answer == "ignored":
        what = "qemu-user" if EMULATED else "this platform"
        return ("%s accepts but does not enforce RLIMIT_AS: a child limited to "
                "VmSize+64 MiB allocated 512 MiB" % what)
    if answer == "no-control":
        return "RLIMIT_AS probe: 512 MiB cannot be allocated even without a limit"
    return "RLIMIT_AS probe failed: exit %s, %r %r" % (
        p.returncode, answer[-200:], p.stderr.strip()[-200:])


def rlimit_as_enforced():
    return rlimit_as_unenforced_reason() is None


def stack_limit_before_exec(kib):
    """A preexec_fn setting RLIMIT_STACK to `kib` KiB in the child before it
    execs: only a limit set then is the stack the interpreter really gets
    (CPython 3.14 reads its stack bounds once, at start)."""
    def set_stack():
        resource.setrlimit(resource.RLIMIT_STACK, (kib << 10, kib << 10))
    return set_stack


# The ASan+UBSan build (.ci/lanes/asan_build.sh sets this): its allocator
# keeps freed memory in quarantine and maps shadow memory beside every
# allocation, so what RSS and RLIMIT_AS measure there is ASan's, not ours.
SANITIZED = os.environ.get("PYCORO_SANITIZED", "") not in ("", "0")
SANITIZED_MEMORY_REASON = (
    "ASan build: RLIMIT_AS and RSS count ASan's shadow memory and its quarantine of "
    "freed blocks, so exhaustion comes elsewhere and freeing gives nothing back; the "
    "normal-build lanes (native, pyver-*) run this")


def _rlimit_as_skip_reason():
    if SANITIZED:
        return SANITIZED_MEMORY_REASON
    return rlimit_as_unenforced_reason()


# Marks a test that sets RLIMIT_AS in a child and expects MemoryError from it.
needs_rlimit_as = pytest.mark.skipif(
    _rlimit_as_skip_reason() is not None,
    reason=_rlimit_as_skip_reason() or "RLIMIT_AS is enforced",
)

# Marks a test whose verdict is resident memory given back after a free.
needs_plain_allocator = pytest.mark.skipif(SANITIZED, reason=SANITIZED_MEMORY_REASON)

@functools.lru_cache(maxsize=None)
def cffi_unavailable_reason():
    """None when cffi imports, else why not.  cffi 2.x refuses to build on
    free-threaded CPython 3.13 ("Upgrade to free-threaded 3.14"), so that
    interpreter runs without it; anywhere else a missing cffi is reported
    as such (the test extra installs it)."""
    try:
        import cffi  # noqa: F401
    except ImportError as e:
        import sysconfig

        if sysconfig.get_config_var("Py_GIL_DISABLED") and sys.version_info[:2] == (3, 13):
            return "cffi does not support free-threaded CPython 3.13 (it cannot be installed): " + str(e)
        return "cffi is not installed: " + str(e)
    return None
