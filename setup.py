"""Build the pycoro._pycoro extension: the pure C core, the arch switch
(.S) and the CPython binding.

PYCORO_SANITIZE=1 builds with -fsanitize=address,undefined (the sanitizer
CI lane); PYCORO_CFLAGS adds flags (the ARM64 cross lane passes a sysroot).
"""
import glob
import os

import setuptools  # noqa: F401  (makes `distutils` setuptools' copy)
from distutils.unixccompiler import UnixCCompiler
from setuptools import Extension, setup
from setuptools.command.build_py import build_py

# pycoro-greenlet.pth goes to the top of site-packages: with PYCORO_GREENLET=1
# in the environment, every interpreter started there (subprocesses,
# multiprocessing, test runners) gets pycoro.compat as `greenlet`; unset, the
# line costs one os.environ lookup at start-up.
PTH = "pycoro-greenlet.pth"


# The bench's raw C core row (pycoro/bench/core_ffi.py) builds the pure C
# core with the fixtures of tests/core on first use: build_py ships those
# sources as pycoro/bench/csrc/ (fixtures in csrc/fixtures/), so that an
# installed package needs no checkout.  One copy of each in the repository.
BENCH_CSRC = ([(p, os.path.relpath(p, "csrc"))
               for p in sorted(glob.glob("csrc/*.[ch]") + glob.glob("csrc/arch/*"))]
              + [(p, os.path.join("fixtures", os.path.basename(p)))
                 for p in ["tests/core/fixtures.c"] + sorted(glob.glob("tests/core/*.S"))])


class build_py_with_pth(build_py):
    def _extra(self):
        yield PTH, os.path.join(self.build_lib, PTH)
        for src, rel in BENCH_CSRC:
            yield src, os.path.join(self.build_lib, "pycoro", "bench", "csrc", rel)

    def run(self):
        super().run()
        for src, dst in self._extra():
            self.mkpath(os.path.dirname(dst))
            self.copy_file(src, dst, preserve_mode=0)

    def get_outputs(self, include_bytecode=1):
        return super().get_outputs(include_bytecode) + [dst for _, dst in self._extra()]

# distutils compiles .S (assembler through the C preprocessor) only when it
# knows the extension.
if ".S" not in UnixCCompiler.src_extensions:
    UnixCCompiler.src_extensions.append(".S")

# -fvisibility=hidden: only PyInit__pycoro is exported, so calls between the
# module's own files are direct (no PLT); PyMODINIT_FUNC marks PyInit public.
cflags = ["-O2", "-Wall", "-Wextra", "-fno-strict-aliasing", "-fvisibility=hidden"]
ldflags = []
if os.environ.get("PYCORO_SANITIZE"):
    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
    cflags += san + ["-O1", "-g"]
    ldflags += san
cflags += os.environ.get("PYCORO_CFLAGS", "").split()

sources = ["csrc/pycoro_core.c", "csrc/arch/switch.S"] + sorted(glob.glob("csrc/binding/*.c"))

setup(
    cmdclass={"build_py": build_py_with_pth},
    ext_modules=[
        Extension(
            "pycoro._pycoro",
            sources=sources,
            include_dirs=["csrc", "csrc/binding", "pycoro/include"],
            depends=sorted(glob.glob("csrc/**/*.h", recursive=True) + glob.glob("csrc/arch/*.S")),
            extra_compile_args=cflags,
            extra_link_args=ldflags,
        )
    ],
)
