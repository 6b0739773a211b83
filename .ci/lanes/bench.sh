#!/usr/bin/env bash
# Benchmarks vs greenlet, small sizes: the `python -m pycoro bench --quick`
# table and the pytest-benchmark suite.  Fails only when a measure errors or
# cannot run (a crash, fibers not unwound, a worker dying, a row skipped),
# never on a missed target: CI machines are shared and noisy.  One row may
# be "n/a": the free-threaded switch row on a GIL build (nothing missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
apt-get update -qq
apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null
# The README's main-job command (with --quick): a normal (non-editable)
# install, run from outside the checkout with an empty cache, so the package
# alone must run every row, the raw C core row's cffi build included.
python3 -m pip install -q '.[bench]'
out=$(mktemp -d)
(cd "$out" && XDG_CACHE_HOME="$out/cache" python3 -m pycoro bench --quick --no-progress --json r.json)
python3 -c 'import json, sys; bad = [(m["id"], m["status"], m["error"]) for m in json.load(open(sys.argv[1]))["measures"]
if m["status"] in ("skipped", "error") or (m["status"] == "n/a" and m["id"] != "ft_switch_threads")]; sys.exit("rows that did not run: %r" % bad if bad else 0)' "$out/r.json"
python3 -m pip install -q -e '.[test]'
PYCORO_BENCH_SCALE=0.02 PYCORO_BENCH_MAX_LIVE=10000 \
    python3 -m pytest bench/ --benchmark-only -q \
    --benchmark-max-time=0.2 --benchmark-min-rounds=3 --benchmark-columns=min,median,rounds
