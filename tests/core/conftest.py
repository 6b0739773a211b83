import os

import pytest

from ..platform_support import cffi_unavailable_reason

# Iteration counts scale down under emulation (qemu): PYCORO_TEST_SCALE=0.1.
SCALE = float(os.environ.get("PYCORO_TEST_SCALE", "1"))


def scaled(n, minimum=1):
    return max(minimum, int(n * SCALE))


def pytest_collection_modifyitems(config, items):
    """The core's tests drive it through cffi (in this process or a child):
    where cffi cannot be installed (free-threaded 3.13) they skip, saying why.
    Other folders import `scaled` from here and are not affected."""
    why = cffi_unavailable_reason()
    if why is None:
        return
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        if str(item.path).startswith(here + os.sep):
            item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture(scope="session")
def core_lib():
    from . import ffi_build

    return ffi_build.load()


@pytest.fixture
def core(core_lib):
    """The fixture library with a fresh pc_thread for this test."""
    lib = core_lib.lib
    lib.fx_init()
    yield lib
    lib.fx_fini()
    assert lib.fx_live_blocks() == 0, "heap copies leaked"
