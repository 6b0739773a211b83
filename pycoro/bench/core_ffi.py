"""Owns the one recipe that builds the pure C core (csrc/pycoro_core.c and the
arch switch, no CPython binding) with the C fixtures of tests/core into a
cffi module, and imports it.  Two users: the bench's raw-switch row
(pycoro/bench/core.py; sources shipped in the installed package, module
cached in ~/.cache/pycoro) and the core tests (tests/core/ffi_build.py,
which loads this file by path so that they never import the binding).
May call: the standard library, cffi and setuptools' distutils; nothing of
pycoro.
"""
import glob
import hashlib
import importlib.util
import os
import shutil
import sysconfig
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE = "_pycoro_core_ffi"

FUNCS = """
void fx_init(void);
void fx_fini(void);
long fx_live_blocks(void);
long fx_alloc_calls(void);
void fx_fail_alloc_at(long n);
long fx_pingpong(long n);
double fx_switch_ns(long n, unsigned flags, int two_sites);
double fx_floor_ns(long n, int fp);
long fx_floor_check(long n, int fp, long *log, uint64_t *values);
long fx_switch_check(long n, unsigned flags, int two_sites, long *out, uint64_t *values);
uint64_t fx_carried(int side, long turns);
long fx_deep(int depth);
long fx_many(long n, const long *order);
long fx_chain(long n);
void fx_fenv(unsigned main_flags, unsigned fiber_flags, int *main_seen, int *fiber_seen);
long fx_fenv_mixed(void);
long fx_fpctl(void);
long fx_alignment(void);
long fx_enomem(long k);
long fx_regs(void);
long fx_up_to_saved(long rounds);
long fx_partial_block(long rounds);
void fx_crash_entry_returns_null(void);
"""


class Unavailable(Exception):
    """The module cannot be built here (no cffi, compiler, headers or sources):
    the message says what to install."""


def shipped_sources():
    """(csrc, fixtures) directories: the copy setup.py's build_py ships in
    pycoro/bench/csrc/, else a source checkout's csrc/ and tests/core/."""
    ship = os.path.join(HERE, "csrc")
    if os.path.isfile(os.path.join(ship, "pycoro_core.c")):
        return ship, os.path.join(ship, "fixtures")
    root = os.path.dirname(os.path.dirname(HERE))
    csrc, fixtures = os.path.join(root, "csrc"), os.path.join(root, "tests", "core")
    if os.path.isfile(os.path.join(csrc, "pycoro_core.c")) and os.path.isfile(
            os.path.join(fixtures, "fixtures.c")):
        return csrc, fixtures
    raise Unavailable("the C core's sources are not in this installation (%s) nor in a source "
                      "checkout; reinstall pycoro from its sdist or repository" % ship)


def _source_files(csrc, fixtures):
    return ([os.path.join(csrc, "pycoro_core.c"), os.path.join(csrc, "arch", "switch.S")]
            + [os.path.join(fixtures, f) for f in ("fixtures.c", "regcheck.S", "floor.S")])


def _depends(csrc, fixtures):
    return sorted(glob.glob(os.path.join(csrc, "**", "*.[chS]"), recursive=True)
                  + glob.glob(os.path.join(fixtures, "*.[chS]")))


def _flags():
    return (["-O2", "-Wall", "-Wextra"] + os.environ.get("PYCORO_CORE_CFLAGS", "").split(),
            os.environ.get("PYCORO_CORE_LDFLAGS", "").split())


def cache_dir():
    """$PYCORO_CACHE_DIR, else $XDG_CACHE_HOME/pycoro or ~/.cache/pycoro; a
    per-user temporary directory when that cannot be written."""
    d = os.environ.get("PYCORO_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "pycoro")
    try:
        os.makedirs(d, exist_ok=True)
        if os.access(d, os.W_OK):
            return d
    except OSError:
        pass
    d = os.path.join(tempfile.gettempdir(), "pycoro-cache-%d" % os.getuid())
    os.makedirs(d, exist_ok=True)
    return d


def _diagnose(err):
    """Unavailable with what to install, if a build tool is missing; else None."""
    if importlib.util.find_spec("cffi") is None:
        return Unavailable("needs cffi: pip install 'pycoro[bench]' (or pip install cffi)")
    if importlib.util.find_spec("setuptools") is None:
        return Unavailable("needs setuptools (cffi compiles through it): pip install setuptools")
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        return Unavailable("needs a C compiler (%s not found; Debian: apt-get install gcc)" % cc)
    include = sysconfig.get_paths()["include"]
    if not os.path.isfile(os.path.join(include, "Python.h")):
        return Unavailable("needs Python's C headers (%s/Python.h; Debian: apt-get install "
                           "python3-dev)" % include)
    return None


def _compile(csrc, fixtures, tmpdir):
    import setuptools  # noqa: F401  (makes `distutils` setuptools' copy)
    from cffi import FFI
    from distutils.unixccompiler import UnixCCompiler

    # distutils compiles .S (assembler through the C preprocessor) only
    # when it knows the extension.
    if ".S" not in UnixCCompiler.src_extensions:
        UnixCCompiler.src_extensions.append(".S")
    cflags, ldflags = _flags()
    ffi = FFI()
    ffi.cdef(FUNCS)
    ffi.set_source(
        MODULE, '#include "pycoro_core.h"\n' + FUNCS,
        sources=_source_files(csrc, fixtures), include_dirs=[csrc, fixtures],
        # distutils rebuilds only when a source or one of these is newer
        depends=_depends(csrc, fixtures),
        extra_compile_args=cflags, extra_link_args=ldflags, libraries=["m"])
    return ffi.compile(tmpdir=tmpdir)


def build(csrc=None, fixtures=None, build_dir=None):
    """Path of the compiled module.  With `build_dir`, compile there when a
    source changed (the tests' build/ folder); without, the cache dir holds
    one module per source content and flags, built once."""
    if csrc is None:
        csrc, fixtures = shipped_sources()
    try:
        if build_dir is not None:
            return _compile(csrc, fixtures, build_dir)
        h = hashlib.sha256(repr(_flags()).encode())
        for p in _depends(csrc, fixtures):
            with open(p, "rb") as fh:
                h.update(os.path.basename(p).encode() + b"\0" + fh.read())
        tag = "%s-%s-%s" % (sysconfig.get_platform(), sysconfig.get_config_var("SOABI"),
                            h.hexdigest()[:16])
        final = os.path.join(cache_dir(), "core-ffi-" + tag)
        done = glob.glob(os.path.join(final, MODULE + ".*so")) if os.path.isdir(final) else []
        if done:
            return done[0]
        # build privately, then move into place: two processes may race here
        work = tempfile.mkdtemp(prefix="core-ffi-build-", dir=cache_dir())
        try:
            built = _compile(csrc, fixtures, work)
            os.makedirs(final, exist_ok=True)
            dest = os.path.join(final, os.path.basename(built))
            os.replace(built, dest)
            return dest
        finally:
            shutil.rmtree(work, ignore_errors=True)
    except Unavailable:
        raise
    except Exception as e:
        why = _diagnose(e)
        if why is not None:
            raise why from e
        raise


def load(**kwargs):
    """The imported module (ffi, lib); kwargs as for build()."""
    path = build(**kwargs)
    spec = importlib.util.spec_from_file_location(MODULE, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
