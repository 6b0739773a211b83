"""The raw C core row's worker: times the pure C core's switch through the
cffi module core_ffi.py builds (no CPython in the switched code), in a
fresh process per replicate.  Owns the variants timed and their samples.
May call: core_ffi, workloads (BURSTS).
"""
from . import core_ffi
from .workloads import BURSTS


def work_core(n, repeat):
    """ns per switch of each variant, `repeat` samples each (interleaved, so
    that all see the same machine), every sample the fastest of BURSTS
    bursts of n / BURSTS switches; {"skipped": why} when the module cannot
    be built here."""
    try:
        lib = core_ffi.load().lib
    except core_ffi.Unavailable as e:
        return {"skipped": "raw C core row: %s" % e}
    # The default (each fiber keeps its own FP environment; both sides
    # switch from one call site, as the binding's switches do), the FP
    # environment shared (PC_FIBER_SHARE_FPENV = 1), and the default switched
    # from two different call sites (every return is then mispredicted).
    # The floor: a bare register swap between two stacks (tests/core/floor.S),
    # without and with reading the FP control state.
    burst = max(1, n // BURSTS)
    variants = {
        "default": lambda: lib.fx_switch_ns(burst, 0, 0),
        "shared_fpenv": lambda: lib.fx_switch_ns(burst, 1, 0),
        "two_sites": lambda: lib.fx_switch_ns(burst, 0, 1),
        "floor": lambda: lib.fx_floor_ns(burst, 0),
        "floor_fp": lambda: lib.fx_floor_ns(burst, 1),
    }
    samples = {k: [] for k in variants}
    for _ in range(repeat + 1):          # the first round is a warm-up
        for name, one in variants.items():
            lib.fx_init()
            samples[name].append(min(one() for _ in range(BURSTS)))
            lib.fx_fini()
    for name, v in samples.items():
        del v[0]
        if min(v) <= 0:       # the fixtures return -1 when the fibers misbehaved
            raise RuntimeError("raw switch fixture %r failed (returned %r)" % (name, min(v)))
    return {"samples": samples["default"], "variant_samples": samples, "n": n}
