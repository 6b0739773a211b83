"""Build the pure C core plus the C fixtures into a cffi module.

No CPython binding is involved: the module links csrc/pycoro_core.c and
csrc/arch/switch.S directly, and the fixtures in this folder run on the
fiber stacks.  `load()` compiles once per source change and imports it.
"""
import glob
import importlib.util
import os
import sysconfig

import setuptools  # noqa: F401  (makes `distutils` setuptools' copy)
from cffi import FFI
from distutils.unixccompiler import UnixCCompiler

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CSRC = os.path.join(ROOT, "csrc")
MODULE = "_pycoro_core_ffi"

# distutils compiles .S (assembler, run through the C preprocessor) only
# when it knows the extension.
if ".S" not in UnixCCompiler.src_extensions:
    UnixCCompiler.src_extensions.append(".S")

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


def build_dir():
    tag = sysconfig.get_platform() + "-" + sysconfig.get_config_var("SOABI")
    return os.path.join(ROOT, "build", "cffi-core-" + tag)


def build():
    ffi = FFI()
    ffi.cdef(FUNCS)
    cflags = ["-O2", "-Wall", "-Wextra"]
    cflags += os.environ.get("PYCORO_CORE_CFLAGS", "").split()
    ffi.set_source(
        MODULE,
        '#include "pycoro_core.h"\n' + FUNCS,
        sources=[
            os.path.join(CSRC, "pycoro_core.c"),
            os.path.join(CSRC, "arch", "switch.S"),
            os.path.join(HERE, "fixtures.c"),
            os.path.join(HERE, "regcheck.S"),
            os.path.join(HERE, "floor.S"),
        ],
        include_dirs=[CSRC, HERE],
        # distutils rebuilds only when a source or one of these is newer
        depends=sorted(glob.glob(os.path.join(CSRC, "**", "*.[hS]"), recursive=True)
                       + glob.glob(os.path.join(HERE, "*.[chS]"))),
        extra_compile_args=cflags,
        extra_link_args=os.environ.get("PYCORO_CORE_LDFLAGS", "").split(),
        libraries=["m"],
    )
    return ffi.compile(tmpdir=build_dir())


def load():
    path = build()
    spec = importlib.util.spec_from_file_location(MODULE, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


if __name__ == "__main__":
    print(build())
