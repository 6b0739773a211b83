#!/usr/bin/env bash
# The RLIMIT_AS sweep (issue 14, tests/hostile/test_rlimit_as.py): every
# public operation driven to exhaustion at 20 address-space limits, each in
# a child process; the outcome must be ok/MemoryError/RecursionError/
# FiberError and the process must keep working.  Too long for every lane
# that runs the whole suite, so the tests run only here (PYCORO_SWEEP=1).
# Known defects are non-strict xfails with their reasons in the test file.
set -euo pipefail
cd "$(dirname "$0")/../.."
apt-get update -qq
apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null
python3 -m pip install -q -e '.[test]' 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
PYCORO_SWEEP=1 exec python3 -m pytest -q -rxXfE -p no:cacheprovider tests/hostile/test_rlimit_as.py
