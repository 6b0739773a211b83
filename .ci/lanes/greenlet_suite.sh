#!/usr/bin/env bash
# greenlet's own test suite (from the installed real greenlet wheel) against
# pycoro.compat: per-file passed/failed/excluded/skipped table; exits 1 when
# a test that is not in tests/greenlet_suite/exclusions.txt fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
# g++: greenlet's C++ test extension is rebuilt against pycoro's greenlet.h.
if ! command -v gcc >/dev/null || ! command -v g++ >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends gcc g++ libc6-dev >/dev/null
fi
# greenlet: only for its test files; psutil/objgraph: imported by its test base class.
python3 -m pip install -q -e . 'greenlet>=3' psutil objgraph \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
python3 -m tests.greenlet_suite.run_suite "$@"
