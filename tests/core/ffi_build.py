"""Build the pure C core plus the C fixtures into a cffi module.

No CPython binding is involved: the module links csrc/pycoro_core.c and
csrc/arch/switch.S directly, and the fixtures in this folder run on the
fiber stacks.  The recipe is pycoro/bench/core_ffi.py (the bench's raw-switch
row builds the same module), loaded here by path so that importing it never
imports pycoro's extension: the checkout's copy, else (the pyver lane tests an
installed sdist with the source pycoro/ removed) the installed one.  `load()`
compiles once per source change into build/ and imports it.
"""
import importlib.util
import os
import sysconfig

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CSRC = os.path.join(ROOT, "csrc")


def _recipe_path():
    path = os.path.join(ROOT, "pycoro", "bench", "core_ffi.py")
    if not os.path.exists(path):
        # find_spec of a top-level package locates it without importing it
        path = os.path.join(importlib.util.find_spec("pycoro").submodule_search_locations[0],
                            "bench", "core_ffi.py")
    return path


_spec = importlib.util.spec_from_file_location("_pycoro_core_ffi_recipe", _recipe_path())
recipe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(recipe)
MODULE = recipe.MODULE


def build_dir():
    tag = sysconfig.get_platform() + "-" + sysconfig.get_config_var("SOABI")
    return os.path.join(ROOT, "build", "cffi-core-" + tag)


def build():
    return recipe.build(csrc=CSRC, fixtures=HERE, build_dir=build_dir())


def load():
    return recipe.load(csrc=CSRC, fixtures=HERE, build_dir=build_dir())


if __name__ == "__main__":
    print(build())
