"""Builds and loads the C API test extension (capi_test.c) with the compiler
and flags sysconfig gives the running interpreter, plus PYCORO_CORE_CFLAGS /
PYCORO_CORE_LDFLAGS (what the ARM64 cross lane exports).  Used by
tests/capi and by the hostile harness (tests/hostile), whose child processes
load the built file by path."""
import importlib.util
import os

import pycoro

HERE = os.path.dirname(os.path.abspath(__file__))
NAME = "_pycoro_capi_test"


def build(out):
    """Compile the extension under the directory `out`; return the .so path."""
    import setuptools  # noqa: F401  (distutils is setuptools' copy)
    from setuptools import Distribution, Extension

    out = str(out)
    ext = Extension(
        NAME,
        sources=[os.path.join(HERE, "capi_test.c")],
        include_dirs=[pycoro.get_include()],
        extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror"]
        + os.environ.get("PYCORO_CORE_CFLAGS", "").split(),
        extra_link_args=os.environ.get("PYCORO_CORE_LDFLAGS", "").split(),
    )
    dist = Distribution({"name": "pycoro-capi-test", "ext_modules": [ext]})
    cmd = dist.get_command_obj("build_ext")
    cmd.build_lib = os.path.join(out, "lib")
    cmd.build_temp = os.path.join(out, "tmp")
    cmd.ensure_finalized()
    cmd.run()
    return cmd.get_ext_fullpath(NAME)


def load(path):
    """Import the built extension from `path`."""
    spec = importlib.util.spec_from_file_location(NAME, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
