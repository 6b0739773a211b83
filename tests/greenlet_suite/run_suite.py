"""Run greenlet's own test suite against pycoro.compat.

    python3 -m tests.greenlet_suite.run_suite [test_file.py ...]

The test files come from the installed real greenlet wheel: they are copied
into a temporary folder at run time (nothing of greenlet's is committed).
Each file runs in its own interpreter whose `import greenlet` is
pycoro.compat.greenlet (boot/sitecustomize.py calls pycoro.compat.install()),
with greenlet's test package loaded as `greenlet.tests` from the copy.

Tests listed in exclusions.txt are not run and are counted as excluded;
tests that greenlet's suite itself skips on this platform are counted as
skipped with greenlet's reason.  Exit status 1 when any other test fails.
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

DEFAULT_FILES = [
    "test_greenlet.py",
    "test_throw.py",
    "test_generator.py",
    "test_generator_nested.py",
    "test_contextvars.py",
    "test_weakref.py",
    "test_gc.py",
    "test_tracing.py",
    "test_extension_interface.py",
    "test_cpp.py",
    "test_greenlet_trash.py",
    "test_interpreter_shutdown.py",
    "test_leaks.py",
    "test_stack_saved.py",
    "test_version.py",
]

# greenlet's C and C++ test extensions, rebuilt against pycoro's greenlet.h
# (pycoro/include/greenlet/greenlet.h): they include "../greenlet.h", so
# pycoro's header is put there; the C++ one also includes greenlet's own
# compiler-compatibility header, copied from the wheel.
TEST_EXTENSIONS = ["_test_extension.c", "_test_extension_cpp.cpp"]

MARK = "GREENLET_SUITE_RESULT "


def read_exclusions(path=os.path.join(HERE, "exclusions.txt")):
    """{ "file.py::Class.test": reason } from `file.py::Class.test | reason` lines."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            test, sep, reason = line.partition("|")
            if not sep or not reason.strip() or "::" not in test:
                raise SystemExit("%s:%d: expected 'file.py::Class.test | reason'" % (path, n))
            out[test.strip()] = reason.strip()
    return out


def real_greenlet_tests():
    """The tests folder of the installed greenlet, found without importing it."""
    spec = importlib.util.find_spec("greenlet")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the real greenlet is not installed (pip install greenlet)")
    tests = os.path.join(list(spec.submodule_search_locations)[0], "tests")
    if not os.path.isfile(os.path.join(tests, "__init__.py")):
        raise SystemExit("%s: greenlet's wheel has no tests folder" % tests)
    return tests


# ---------------------------------------------------------------- child side

def run_one(tests_copy, filename):
    """In the child: run one test file, print a JSON summary line."""
    import unittest

    import greenlet  # noqa: F401  (pycoro.compat.greenlet, by sitecustomize)

    assert greenlet.__name__ == "pycoro.compat.greenlet", greenlet
    spec = importlib.util.spec_from_file_location(
        "greenlet.tests", os.path.join(tests_copy, "__init__.py"),
        submodule_search_locations=[tests_copy])
    pkg = importlib.util.module_from_spec(spec)
    sys.modules["greenlet.tests"] = pkg
    spec.loader.exec_module(pkg)

    # greenlet marks tests of its own known leaks (@fails_leakcheck...): its
    # checker then fails them unless they leak.  pycoro leaks none of them,
    # so they run under the ordinary check instead: they pass only if
    # nothing leaks.
    leakcheck = importlib.import_module("greenlet.tests.leakcheck")
    leakcheck.fails_leakcheck = lambda func: func
    leakcheck.fails_leakcheck_on_py314_or_less = lambda func: func

    modname = "greenlet.tests." + filename[:-3]
    module = importlib.import_module(modname)
    excluded = {k.split("::", 1)[1]: v for k, v in read_exclusions().items()
                if k.split("::", 1)[0] == filename}

    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    tests = []

    def flatten(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                flatten(t)
            else:
                tests.append(t)
    flatten(suite)

    def name_of(t):
        return "%s.%s" % (type(t).__name__, t._testMethodName)

    unknown = set(excluded) - {name_of(t) for t in tests}
    if unknown:
        raise SystemExit("exclusions.txt names tests that %s does not have: %s"
                         % (filename, sorted(unknown)))
    runnable = unittest.TestSuite(t for t in tests if name_of(t) not in excluded)
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(runnable)
    bad = {name_of(t) for t, _ in result.failures + result.errors}
    bad |= {name_of(t) for t in result.unexpectedSuccesses}
    skipped = {name_of(t): why for t, why in result.skipped}
    passed = result.testsRun - len(bad) - len(skipped)
    print(MARK + json.dumps({
        "file": filename,
        "passed": passed,
        "failed": sorted(bad),
        "skipped": skipped,
        "excluded": excluded,
    }), flush=True)


# --------------------------------------------------------------- parent side

def main(argv):
    files = argv or DEFAULT_FILES
    exclusions = read_exclusions()
    src = real_greenlet_tests()
    tmp = tempfile.mkdtemp(prefix="pycoro-greenlet-suite-")
    try:
        copy = os.path.join(tmp, "tests")
        os.mkdir(copy)
        for name in os.listdir(src):
            if name.endswith(".py"):          # never greenlet's compiled test extensions
                shutil.copy(os.path.join(src, name), copy)
        build_test_extensions(src, tmp, copy)
        env = dict(os.environ)
        env["PYCORO_GREENLET_SUITE_DIR"] = tmp
        env["PYTHONPATH"] = os.pathsep.join(
            [os.path.join(HERE, "boot"), ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
        rows, failed_any = [], False
        for filename in files:
            if not os.path.exists(os.path.join(copy, filename)):
                raise SystemExit("greenlet's suite has no %s" % filename)
            print("=" * 20, filename, flush=True)
            p = subprocess.run(
                [sys.executable, os.path.join(HERE, "run_suite.py"), "--child", copy, filename],
                # not pycoro's checkout: test_version looks for a setup.py
                # from the working directory up (greenlet's, when in tree)
                cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            sys.stdout.write(p.stdout)
            summary = None
            for line in p.stdout.splitlines():
                if line.startswith(MARK):
                    summary = json.loads(line[len(MARK):])
            if summary is None or p.returncode != 0:
                rows.append((filename, "-", "CRASHED (exit %s)" % p.returncode, "-", "-"))
                failed_any = True
                continue
            if summary["failed"]:
                failed_any = True
            rows.append((filename, summary["passed"], len(summary["failed"]),
                         len(summary["excluded"]), len(summary["skipped"])))
            for t in summary["failed"]:
                print("FAILED   %s::%s" % (filename, t))
            for t, why in sorted(summary["excluded"].items()):
                print("EXCLUDED %s::%s -- %s" % (filename, t, why))
            for t, why in sorted(summary["skipped"].items()):
                print("SKIPPED  %s::%s -- greenlet's suite: %s" % (filename, t, why))
        print()
        print("greenlet %s test suite against pycoro.compat" % _real_version(src))
        print("%-28s %7s %7s %9s %8s" % ("file", "passed", "failed", "excluded", "skipped"))
        for r in rows:
            print("%-28s %7s %7s %9s %8s" % r)
        tot = [sum(r[i] for r in rows if isinstance(r[i], int)) for i in (1, 2, 3, 4)]
        print("%-28s %7s %7s %9s %8s" % ("total", *tot))
        print("(excluded: tests of greenlet-private details, reasons in "
              "tests/greenlet_suite/exclusions.txt; skipped: by greenlet's own conditions)")
        return 1 if failed_any else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def build_test_extensions(src, tmp, copy):
    """Compile greenlet's test extensions from the wheel's sources into the
    copied test package, against pycoro's greenlet.h only."""
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    import pycoro

    shutil.copy(os.path.join(pycoro.get_include(), "greenlet", "greenlet.h"),
                os.path.join(tmp, "greenlet.h"))
    shutil.copy(os.path.join(os.path.dirname(src), "greenlet_compiler_compat.hpp"), tmp)
    exts = []
    for name in TEST_EXTENSIONS:
        shutil.copy(os.path.join(src, name), copy)
        exts.append(Extension(os.path.splitext(name)[0], [os.path.join(copy, name)],
                              include_dirs=[tmp]))
    cmd = build_ext(Distribution({"ext_modules": exts}))
    cmd.build_lib = copy
    cmd.build_temp = os.path.join(tmp, "build")
    cmd.ensure_finalized()
    cmd.run()


def _real_version(src):
    import re
    with open(os.path.join(os.path.dirname(src), "__init__.py"), encoding="utf-8") as f:
        m = re.search(r"__version__ = '([^']+)'", f.read())
    return m.group(1) if m else "?"


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        run_one(sys.argv[2], sys.argv[3])
    else:
        sys.exit(main(sys.argv[1:]))
