"""The pure C core, driven through cffi: no CPython binding is imported."""
import random
import subprocess
import sys
import textwrap

import pytest

from ..platform_support import needs_subprocess
from .conftest import scaled


def test_pingpong_values(core):
    n = scaled(100_000)
    assert core.fx_pingpong(n) == n + 1


def test_deep_recursion_frames_survive(core):
    # ~200 B per level and a switch every 64 levels: the fiber is suspended
    # with stacks of up to ~2 MB that must come back byte for byte.
    depth = scaled(8000, 200)
    assert core.fx_deep(depth) == depth


def test_thousands_of_live_contexts(core, core_lib):
    n = scaled(5000, 200)
    order = list(range(n))
    random.Random(42).shuffle(order)
    arr = core_lib.ffi.new("long[]", order)
    assert core.fx_many(n, arr) == n


def test_nested_start_chain_does_not_overflow(core):
    # Each fiber starts the next from inside its own stack; without the
    # nest limit (invariant I4) 100,000 levels of 512 B frames would need
    # ~50 MB of C stack and crash.
    n = scaled(100_000, 2000)
    assert core.fx_chain(n) == n - 1


def test_callee_saved_registers_preserved(core):
    assert core.fx_regs() == 0


SHARE = 1  # PC_FIBER_SHARE_FPENV


@pytest.mark.parametrize("main_flags, fiber_flags, expect", [
    (0, 0, (0, 1)),            # the default: each keeps its own
    (SHARE, 0, (0, 1)),        # one side shares, the other has its own:
    (0, SHARE, (0, 1)),        #   still isolated
    (SHARE, SHARE, (1, 2)),    # both share: each sees the other's change
])
def test_fp_environment_shared_or_owned(core, core_lib, main_flags, fiber_flags, expect):
    # rounding codes: 0 to nearest, 1 upward, 2 downward (see fx_fenv)
    main_seen = core_lib.ffi.new("int *")
    fiber_seen = core_lib.ffi.new("int *")
    core.fx_fenv(main_flags, fiber_flags, main_seen, fiber_seen)
    assert (main_seen[0], fiber_seen[0]) == expect


def test_fp_environment_mixed_owners(core):
    # main and A share the thread's environment while B has its own
    assert core.fx_fenv_mixed() == 0


def test_fp_control_register_is_per_fiber(core):
    # FPCR on arm64, MXCSR on x86-64: rounding mode and flush-to-zero,
    # checked in the register and in the arithmetic on both sides.
    assert core.fx_fpctl() == 0


def test_switch_back_to_a_partly_saved_starter(core):
    # registers, locals and values survive when a fiber's switch back
    # resumes a starter whose register block had been saved
    assert core.fx_up_to_saved(scaled(1000, 100)) == 0


def test_switch_back_to_a_starter_with_part_of_its_registers_saved(core):
    assert core.fx_partial_block(scaled(1000, 100)) == 0


def test_stack_aligned_at_entry(core):
    assert core.fx_alignment() == 0


def test_allocation_failure_leaves_both_fibers_usable(core):
    seen = 0
    for k in range(1, 8):
        r = core.fx_enomem(k)
        assert r >= 0, f"broken after failing allocation {k}"
        seen += r
    assert seen >= 1, "no injected failure reached a switch"


def test_no_copies_leak(core):
    core.fx_pingpong(100)
    core.fx_deep(500)
    # the `core` fixture asserts fx_live_blocks() == 0 after this test


@pytest.mark.parametrize("flags", [0, SHARE])
@pytest.mark.parametrize("two_sites", [0, 1])
def test_raw_switch_loops_take_turns_and_keep_values(core, core_lib, flags, two_sites):
    # The loops the bench times (fx_switch_ns), checked: each side counts
    # its resumptions and carries a value in locals across every switch.
    n = scaled(100_000, 1000)
    out = core_lib.ffi.new("long[2]")
    values = core_lib.ffi.new("uint64_t[2]")
    assert core.fx_switch_check(n, flags, two_sites, out, values) == 0, "the fiber did not end"
    # one call site: the fiber's first switch is in its loop, so its loop
    # also counts the final resumption that ends it
    fiber_turns = n if two_sites else n + 1
    assert list(out) == [n, fiber_turns]
    assert list(values) == [core.fx_carried(0, n), core.fx_carried(1, fiber_turns)]


@pytest.mark.parametrize("flags", [0, SHARE])
@pytest.mark.parametrize("two_sites", [0, 1])
def test_raw_switch_time_is_printed(core, flags, two_sites):
    # Not a speed test (the benchmarks are): it prints the figure, and the
    # timed loop must end its fiber cleanly (-1 otherwise).
    ns = core.fx_switch_ns(scaled(1_000_000, 10_000), flags, two_sites)
    print(f"raw C core switch: {ns:.1f} ns (shared FP env {flags}, two call sites {two_sites})")
    assert ns != -1.0, "the timed fiber did not end"


@pytest.mark.parametrize("fp", [0, 1])
def test_floor_swap_takes_turns_and_keeps_values(core, core_lib, fp):
    # the bench's reference point (tests/core/floor.S): the two contexts
    # alternate exactly, main first back, and their locals survive the swaps
    n = scaled(10_000, 1000)
    log = core_lib.ffi.new("long[]", 2 * n + 1)
    values = core_lib.ffi.new("uint64_t[2]")
    assert core.fx_floor_check(n, fp, log, values) == 2 * n
    assert list(log)[:2 * n] == [0, 1] * n
    assert list(values) == [core.fx_carried(0, n), core.fx_carried(1, n)]


@pytest.mark.parametrize("fp", [0, 1])
def test_floor_swap_time_is_printed(core, fp):
    ns = core.fx_floor_ns(scaled(1_000_000, 10_000), fp)
    print(f"bare register swap (floor.S, FP read {fp}): {ns:.1f} ns")
    assert ns != -1.0, "the timed contexts did not take turns"


@needs_subprocess
def test_entry_returning_no_fiber_aborts_loudly():
    code = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, %r)
        from tests.core import ffi_build
        lib = ffi_build.load().lib
        lib.fx_init()
        lib.fx_crash_entry_returns_null()
        print("not reached")
        """
    ) % (ffi_build_root(),)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode != 0
    assert "not reached" not in p.stdout
    assert "pycoro: fatal: a finished fiber's entry returned no live fiber" in p.stderr


def ffi_build_root():
    import os

    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
