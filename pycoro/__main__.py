"""`python -m pycoro`: command-line tools.  Subcommands import what they
need lazily, so `import pycoro` itself stays free of any dependency."""
import argparse
import sys


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pycoro",
                                description="pycoro: stackful coroutines for CPython.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    bench = sub.add_parser(
        "bench", help="benchmark pycoro against greenlet (switch, create, memory, ...)",
        description="Run pycoro's performance measures against greenlet in one run and print "
                    "a table of medians, each judged statistic with its interval, targets and verdicts.")
    from . import bench as bench_cli  # stdlib-only at import time; greenlet/matplotlib load on use

    bench_cli.add_arguments(bench)
    args = p.parse_args(argv)
    if args.command == "bench":
        return bench_cli.command(args)
    p.print_help()
    return 2


def run_command(fn):
    """fn()'s status; a reader that stops early (`... | head`) ends the
    output quietly, as for any Unix tool, instead of a BrokenPipeError
    traceback (also at exit, when Python flushes stdout)."""
    try:
        code = fn()
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(run_command(main))
