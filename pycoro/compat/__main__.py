"""Run a program with pycoro.compat as `greenlet`, without editing it:

    python -m pycoro.compat run app.py [args...]
    python -m pycoro.compat run -m package.module [args...]

The program sees itself as __main__ with its own sys.argv, as if started by
`python app.py` / `python -m package.module`.  PYCORO_GREENLET=1 is set in
the environment as well, so the processes it starts (subprocess with
sys.executable, multiprocessing) get pycoro too, through the
pycoro-greenlet.pth file installed beside the package.
"""
import os
import runpy
import sys

from . import install

USAGE = "usage: python -m pycoro.compat run (script.py | -m module) [args...]"


def main(argv):
    if len(argv) < 2 or argv[0] != "run" or (argv[1] == "-m" and len(argv) < 3):
        print(USAGE, file=sys.stderr)
        return 2
    os.environ["PYCORO_GREENLET"] = "1"
    install()
    if argv[1] == "-m":
        sys.argv = [argv[2]] + argv[3:]
        runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
    else:
        sys.argv = argv[1:]
        sys.path[0] = os.path.dirname(os.path.abspath(argv[1]))
        runpy.run_path(argv[1], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
