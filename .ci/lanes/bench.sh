#!/usr/bin/env bash
# Benchmarks vs greenlet, small sizes (< 3 minutes): the `python -m pycoro
# bench --quick` table and the pytest-benchmark suite.  Fails only when a
# measure errors (a crash, fibers not unwound, a worker dying), never on a
# missed target: CI machines are shared and noisy.
set -euo pipefail
cd "$(dirname "$0")/../.."
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
apt-get update -qq
apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null
# The README's main-job command (with --quick), then the test extra for bench/.
python3 -m pip install -q -e '.[bench]' && python3 -m pycoro bench --quick --no-progress
python3 -m pip install -q -e '.[test]'
PYCORO_BENCH_SCALE=0.02 PYCORO_BENCH_MAX_LIVE=10000 \
    python3 -m pytest bench/ --benchmark-only -q \
    --benchmark-max-time=0.2 --benchmark-min-rounds=3 --benchmark-columns=min,median,rounds
