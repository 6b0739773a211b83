"""Where the memory of one suspended fiber goes, pycoro against greenlet, at
Python depths 5, 20 and 50 (docs/memory.md explains the method).

    python bench/memory_depth.py [--n 20000] [--depths 5,20,50] [--repeat 3] [--json]

Every (implementation, depth, repeat) runs in a fresh interpreter
(`python bench/memory_depth.py --child IMPL DEPTH N`), so the heap one run
leaves behind never counts against another, and greenlet's process never makes
a pycoro fiber (pycoro's data-stack chunk cache, filled by its fibers, would serve
greenlet too; the package itself is imported, for the workload).
The child uses the bench's own workload (pycoro.bench.workloads.fiber_at_depth:
a closure `run` that calls `_descend` depth-2 times and suspends in a bound
`switch()`), so the numbers are the ones `python -m pycoro bench` reports.

Per fiber, averaged over N live suspended fibers:
  rss     resident set growth (/proc/self/statm)
  malloc  glibc heap bytes in use (mallinfo2: uordblks + hblkhd), headers
          included: the saved C stack copy, pycoro's root data-stack chunks
  pymal   pymalloc bytes in allocated blocks (sys._debugmallocstats):
          the fiber objects, pycoro's fiber record, the closures
  mmap    rss - malloc - pymal: pages of mmap'ed memory that were touched
          (CPython's 16 KiB data-stack chunks) and the partly used pages
          of the other two
  frames  bytes of the suspended Python frames in the data stack
          (computed from the code objects of the fiber's frame chain)
  cstack  bytes of the saved C stack copy (stack_saved)
The summary line prints pycoro/greenlet rss per fiber, the median of the
repeats, with the spread (min-max of the ratio over pairs).
"""
import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def _rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                 "fsmblks", "uordblks", "fordblks", "keepcost")]


def _malloc_bytes():
    libc = ctypes.CDLL(None)
    try:
        f = libc.mallinfo2
    except AttributeError:
        return None
    f.restype = _MallInfo2
    m = f()
    return m.uordblks + m.hblkhd


def _pymalloc_bytes():
    """pymalloc's 'bytes in allocated blocks' (it prints to fd 2)."""
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        for line in tmp.read().decode().splitlines():
            if line.startswith("# bytes in allocated blocks"):
                return int(line.split("=")[1].replace(",", ""))
    return None


def _frame_bytes(frame):
    """Data-stack bytes of a chain of suspended frames: each frame takes
    co_framesize slots (locals + cells + free variables + value stack +
    the interpreter's specials: 9 slots on 3.11-3.13)."""
    total = 0
    n = 0
    while frame is not None:
        c = frame.f_code
        nlocalsplus = c.co_nlocals + len(c.co_cellvars) + len(c.co_freevars)
        total += (nlocalsplus + c.co_stacksize + 9) * 8
        n += 1
        frame = frame.f_back
    return total, n


def child(impl_name, depth, n):
    sys.path.insert(0, os.path.dirname(HERE))
    # The package's __init__ loads the extension, but greenlet's process never
    # makes a fiber of ours, so pycoro's chunk cache stays empty there.
    from pycoro.bench import workloads as work
    impl = work.load_impl(impl_name)
    warm = [work.fiber_at_depth(impl, depth, loop=False) for _ in range(256)]
    for f in warm:
        f.switch()
    warm = f = None
    fibers = [None] * n
    gc.collect()
    r0, m0, p0 = _rss(), _malloc_bytes(), _pymalloc_bytes()
    for i in range(n):
        fibers[i] = work.fiber_at_depth(impl, depth, loop=False)
    gc.collect()
    r1, m1, p1 = _rss(), _malloc_bytes(), _pymalloc_bytes()
    out = {"impl": impl_name, "version": impl.version, "depth": depth, "n": n,
           "rss": (r1 - r0) / n,
           "malloc": None if m0 is None else (m1 - m0) / n,
           "pymalloc": (p1 - p0) / n,
           "cstack": impl.stack_saved(fibers[-1])}
    out["mmap"] = out["rss"] - (out["malloc"] or 0) - out["pymalloc"]
    # Frames last: asking for a frame makes frame objects.
    top = fibers[-1].gr_frame if impl_name == "greenlet" else fibers[-1].frame
    out["frames"], out["nframes"] = _frame_bytes(top)
    top = None
    for f in fibers:
        f.switch()
    assert all(f.dead for f in fibers)
    return out


def run_child(impl, depth, n):
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", impl, str(depth),
                        str(n)], capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError("%s depth %d failed:\n%s" % (impl, depth, p.stderr[-2000:]))
    return json.loads(p.stdout)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--depths", default="5,20,50")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--impls", default="pycoro,greenlet")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", nargs=3, metavar=("IMPL", "DEPTH", "N"))
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.child[0], int(a.child[1]), int(a.child[2]))))
        return 0
    impls = a.impls.split(",")
    rows = []
    for depth in map(int, a.depths.split(",")):
        for _ in range(a.repeat):
            for impl in impls:          # interleaved: drift hits both alike
                rows.append(run_child(impl, depth, a.n))
    if a.json:
        print(json.dumps(rows, indent=1))
        return 0
    print("bytes per suspended fiber (N=%d, median of %d fresh processes each)" % (a.n, a.repeat))
    print("%-9s %5s %7s %7s %7s %7s %7s %7s" % ("impl", "depth", "rss", "malloc", "pymal",
                                                "mmap", "frames", "cstack"))

    def med(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2]

    for depth in map(int, a.depths.split(",")):
        by = {}
        for impl in impls:
            rs = [r for r in rows if r["impl"] == impl and r["depth"] == depth]
            by[impl] = rs
            print("%-9s %5d %7.0f %7.0f %7.0f %7.0f %7d %7s" % (
                impl, depth, med([r["rss"] for r in rs]),
                med([r["malloc"] or 0 for r in rs]), med([r["pymalloc"] for r in rs]),
                med([r["mmap"] for r in rs]), rs[0]["frames"], rs[0]["cstack"]))
        if len(impls) == 2:
            s, b = ([r["rss"] for r in by[i]] for i in impls)
            ratios = [x / y for x, y in zip(s, b)]
            print("%s/%s rss at depth %d: %.3f (%.3f-%.3f)" % (
                impls[0], impls[1], depth, med(s) / med(b), min(ratios), max(ratios)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
