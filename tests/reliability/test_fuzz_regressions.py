"""Smallest reproducers of crashes found by the long fuzz and soak runs
(.ci/lanes/fuzz.sh, .ci/lanes/soak.sh).  Each runs in a subprocess, since
the failure is a crash; each says where it was found.  A test here that
fails is an open bug for the C side, not a flaky test."""
import subprocess
import sys
import textwrap

from tests.platform_support import needs_subprocess


def run_child(code):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120)


@needs_subprocess
def test_collect_cycle_through_a_suspended_frame_with_a_container_local():
    # Found by tests/reliability/soak.py and fuzz_ops.py (2026-12-03): a
    # garbage cycle node -> fiber -> suspended frame -> node, where the
    # frame also has a local that is a GC container (here an empty list;
    # a tuple or a dict too; a plain object() does not).  gc.collect() ends
    # in "pycoro: fatal: a finished fiber's entry returned no live fiber to
    # switch to" (abort), or a segfault with more such cycles.
    p = run_child("""
        import gc
        from pycoro import Fiber, current
        main = current()
        class Node:
            pass
        def hold(node):
            buf = []
            main.switch()
        node = Node()
        node.fiber = Fiber(hold)
        node.fiber.switch(node)
        del node
        gc.collect()
        assert Fiber(lambda: 5).switch() == 5
        print("ok")
    """)
    assert p.returncode == 0 and p.stdout.strip() == "ok", (p.returncode, p.stdout, p.stderr[-2000:])


@needs_subprocess
def test_collect_cycle_through_a_suspended_frame_with_frequent_gc():
    # Found by tests/reliability/soak.py (2026-12-03): the same cycle
    # without the list (node -> fiber -> frame -> node), but automatic
    # collections running often (threshold 1, as a program allocating a lot
    # gets in effect: 1,000 such cycles at the default threshold abort the
    # same way).  Aborts with "a finished fiber's entry returned no live
    # fiber to switch to"; with two cycles, "a finished fiber was resumed".
    p = run_child("""
        import gc
        from pycoro import Fiber, current
        main = current()
        class Node:
            pass
        gc.set_threshold(1)
        def hold(node):
            main.switch()
        node = Node()
        node.fiber = Fiber(hold)
        node.fiber.switch(node)
        del node
        gc.collect()
        assert Fiber(lambda: 5).switch() == 5
        print("ok")
    """)
    assert p.returncode == 0 and p.stdout.strip() == "ok", (p.returncode, p.stdout, p.stderr[-2000:])
