import os

import pytest

from . import ffi_build

# Iteration counts scale down under emulation (qemu): PYCORO_TEST_SCALE=0.1.
SCALE = float(os.environ.get("PYCORO_TEST_SCALE", "1"))


def scaled(n, minimum=1):
    return max(minimum, int(n * SCALE))


@pytest.fixture(scope="session")
def core_lib():
    return ffi_build.load()


@pytest.fixture
def core(core_lib):
    """The fixture library with a fresh pc_thread for this test."""
    lib = core_lib.lib
    lib.fx_init()
    yield lib
    lib.fx_fini()
    assert lib.fx_live_blocks() == 0, "heap copies leaked"
