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


class build_py_with_pth(build_py):
    def run(self):
        super().run()
        self.copy_file(PTH, os.path.join(self.build_lib, PTH), preserve_mode=0)

    def get_outputs(self, include_bytecode=1):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, PTH)]

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
