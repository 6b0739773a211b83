"""Run test files of gevent's own suite (shipped in the gevent wheel) on
real greenlet and on pycoro, side by side, each file in its own process.

    python3 -m tests.gevent_suite.run_suite [--jobs N] [test__name ...]

On pycoro each file runs as `python -m pycoro.compat run -m
gevent.tests.<name>`: gevent's compiled modules load pycoro.compat's
greenlet type and C API, and processes a test starts get pycoro too
(PYCORO_GREENLET=1 and pycoro-greenlet.pth, so pycoro must be installed
from a wheel or sdist here, not in editable mode -- checked first).

A file passes when its process exits 0.  The lane fails when a file that
passes on greenlet fails on pycoro; a file that fails on both is reported
(gevent's own known failures on this machine), as is one that passes only
on pycoro.  Nothing is excluded.

A second chance, as gevent's own runner gives (`--second-chance`), only
for a failure that gevent itself marks as flaky: when a file's output
carries one of gevent.testing.flaky's markers (FlakyAssertionError, raised
by tests decorated as timing-dependent such as test__core_timer's
test_resolution, which polls a libuv timer with no greenlet involved), that
file runs once more on the same implementation and the second result
counts.  Every rerun is listed in the summary.
"""
import argparse
import concurrent.futures
import os
import subprocess
import sys
import time

# Each concern the issue names, with the files that cover it.
FILES = [
    # greenlets, spawn/join/kill
    "test__greenlet", "test__GreenletExit", "test__api", "test__joinall",
    "test__greenletset", "test__iwait", "test__exc_info", "test__contextvars",
    "test__systemerror", "test__destroy", "test__greenness",
    # events, queues, pools, locks, timeouts, local
    "test__event", "test__queue", "test__pool", "test__lock", "test__semaphore",
    "test__timeout", "test__api_timeout", "test__local",
    # the hub and sleeping
    "test__hub", "test__hub_join", "test__hub_join_timeout", "test__sleep0",
    "test__core_timer",
    # loopback sockets, servers, select
    "test__socket", "test__server", "test__example_echoserver", "test__select",
    "test__selectors", "test__socket_dns", "test__pywsgi", "test__ssl",
    # subprocess, threads, os, files
    "test__subprocess", "test__threadpool", "test__threading", "test__os",
    "test__fileobject",
    # monkey patching, signals
    "test__monkey", "test__monkey_queue", "test__signal",
]

TIMEOUT = 300
# gevent.testing.flaky: what a test gevent knows to be timing-dependent
# raises when it fails.
FLAKY_MARKERS = ("FlakyAssertionError", "FlakyTestTimeout", "FlakyTestRaceCondition")


def run_file(impl, name):
    env = dict(os.environ)
    env.pop("PYCORO_GREENLET", None)
    env["GEVENT_DEBUG"] = env.get("GEVENT_DEBUG", "error")
    if impl == "pycoro":
        cmd = [sys.executable, "-m", "pycoro.compat", "run", "-m", "gevent.tests." + name]
    else:
        cmd = [sys.executable, "-m", "gevent.tests." + name]
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=TIMEOUT, cwd="/tmp")
        rc, out = p.returncode, p.stdout
    except subprocess.TimeoutExpired as e:
        rc, out = "timeout", (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
    return impl, name, rc, time.monotonic() - t0, out


def summary_line(out):
    for line in reversed(out.splitlines()):
        if line.startswith(("Ran ", "OK", "FAILED")):
            return line.strip()
    return ""


def check_install():
    """pycoro must be a real install (the .pth beside it) and gevent compiled."""
    import gevent
    import pycoro
    import site
    pth = [d for d in site.getsitepackages() if os.path.exists(os.path.join(d, "pycoro-greenlet.pth"))]
    if not pth:
        raise SystemExit("pycoro-greenlet.pth is not in site-packages: install pycoro from a "
                         "wheel or sdist (pip install .), not in editable mode")
    from gevent import _gevent_cgreenlet  # noqa: F401  (the compiled module must exist)
    print("gevent %s (compiled) from %s; pycoro from %s" % (
        gevent.__version__, os.path.dirname(gevent.__file__), os.path.dirname(pycoro.__file__)))


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("files", nargs="*")
    args = ap.parse_args(argv)
    check_install()
    files = args.files or FILES
    results = {}
    reruns = []
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futs = [pool.submit(run_file, impl, n) for n in files for impl in ("greenlet", "pycoro")]
        for f in concurrent.futures.as_completed(futs):
            impl, name, rc, secs, out = f.result()
            results[impl, name] = (rc, secs, out)
        flaky = [k for k, (rc, _, out) in results.items()
                 if rc != 0 and any(m in out for m in FLAKY_MARKERS)]
        for impl, name, rc, secs, out in pool.map(lambda k: run_file(*k), flaky):
            reruns.append("%s on %s: %s, then %s" % (
                name, impl, "FAIL rc=%s" % results[impl, name][0], "pass" if rc == 0 else "FAIL rc=%s" % rc))
            results[impl, name] = (rc, secs, out)
    bad = []
    print("%-34s %-22s %-22s" % ("gevent test file", "greenlet", "pycoro"))
    for n in files:
        row = []
        for impl in ("greenlet", "pycoro"):
            rc, secs, _ = results[impl, n]
            row.append("%s (%.0f s)" % ("pass" if rc == 0 else "FAIL rc=%s" % rc, secs))
        print("%-34s %-22s %-22s" % (n, row[0], row[1]))
        g_ok, p_ok = results["greenlet", n][0] == 0, results["pycoro", n][0] == 0
        if g_ok and not p_ok:
            bad.append(n)
    for n in bad:
        rc, _, out = results["pycoro", n]
        print("\n==== %s on pycoro (rc=%s): last lines" % (n, rc))
        print("\n".join(out.splitlines()[-60:]))
    both = [n for n in files if results["greenlet", n][0] != 0 and results["pycoro", n][0] != 0]
    only = [n for n in files if results["greenlet", n][0] != 0 and results["pycoro", n][0] == 0]
    passed = sum(results["pycoro", n][0] == 0 for n in files)
    print("\npycoro passes %d of %d files; greenlet passes %d" % (
        passed, len(files), sum(results["greenlet", n][0] == 0 for n in files)))
    print("fail on pycoro only: %s" % (bad or "none"))
    print("fail on both (gevent's own, on this machine): %s" % (both or "none"))
    print("pass on pycoro only: %s" % (only or "none"))
    print("second chance (gevent marks the failure flaky): %s" % ("; ".join(reruns) or "none"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
