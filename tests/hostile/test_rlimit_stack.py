"""Deep recursion inside fibers under a small RLIMIT_STACK (ulimit -s 256 and
1024, set before exec): RecursionError, never a segfault, and fibers still
work afterwards.  Pure Python recursion runs at the default recursion limit;
recursion through C (sorted(key=)) uses the C stack on every level, which
plain CPython 3.11 cannot protect either (with 256 KiB it segfaults at a limit
of 120 here: a few KiB of C stack per level), so the child first checks it in
plain code at a lower limit, then in fibers.  Calls pycoro and the
standard library in a child process."""
import subprocess
import sys
import textwrap

import pytest

from tests.platform_support import needs_subprocess, stack_limit_before_exec

CHILD = textwrap.dedent("""
    import sys
    from pycoro import Fiber, current
    mode, limit = sys.argv[1], int(sys.argv[2])
    sys.setrecursionlimit(limit)
    def rec_py(n):
        return rec_py(n + 1)
    def rec_c(n):
        return sorted([n], key=rec_c)
    fn = rec_py if mode == "py" else rec_c
    def body(main):
        try:
            fn(0)
        except RecursionError:
            r = "RecursionError"
        except MemoryError:
            r = "MemoryError"
        main.switch(r)           # suspended after the recursion unwound
        return "done"
    results = [body.__name__]
    results[0] = "plain:" + str(Fiber(lambda: None).switch() is None)
    # the control: the same recursion without fibers
    try:
        fn(0)
    except RecursionError:
        results.append("RecursionError")
    main = current()
    fibers = [Fiber(body) for _ in range(5)]
    for f in fibers:
        results.append(f.switch(main))
    # nested: a fiber started from inside a deep stack recurses too
    def deep(n):
        if n:
            return deep(n - 1)
        return Fiber(body).switch(current())
    results.append(deep(limit // 3))
    for f in fibers:
        assert f.switch() == "done" and f.dead
    assert Fiber(lambda x: x + 1).switch(1) == 2
    print(" ".join(results))
    """)


@needs_subprocess
@pytest.mark.parametrize("kib", [256, 1024])
@pytest.mark.parametrize("mode,limit", [("py", 1000), ("c", 50)])
def test_deep_recursion_in_fibers_under_small_stack(kib, mode, limit):
    if mode == "c":
        # The same recursion in plain CPython, pycoro not imported, with an
        # eighth less stack: where the interpreter itself needs more than
        # that (free-threaded 3.13 at 256 KiB: its C frames per level are
        # larger; it survives or not depending on where the stack starts),
        # a crash says nothing about pycoro.
        plain = subprocess.run(
            [sys.executable, "-c", "import sys\nsys.setrecursionlimit(%d)\n"
             "def rec_c(n):\n    return sorted([n], key=rec_c)\n"
             "try:\n    rec_c(0)\nexcept RecursionError:\n    print('ok')\n" % limit],
            capture_output=True, text=True, timeout=120, preexec_fn=stack_limit_before_exec(kib * 7 // 8))
        if plain.returncode < 0:
            pytest.skip("plain CPython %s (no pycoro) dies of signal %d on %d levels of "
                        "sorted(key=) recursion under a %d KiB stack (7/8 of %d KiB)"
                        % (sys.version.split()[0], -plain.returncode, limit, kib * 7 // 8, kib))
    p = subprocess.run([sys.executable, "-X", "faulthandler", "-c", CHILD, mode, str(limit)],
                       capture_output=True, text=True, timeout=120, preexec_fn=stack_limit_before_exec(kib))
    assert p.returncode == 0, (p.returncode, p.stderr[-3000:])
    words = p.stdout.split()
    assert words[0] == "plain:True"
    assert words[1:] == ["RecursionError"] * 7, words
