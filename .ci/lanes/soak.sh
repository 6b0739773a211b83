#!/usr/bin/env bash
# Soak lane (issue 14): tests/reliability/soak.py for SOAK_SECONDS (default
# 120) of mixed load -- fibers (switch, throw, kill, garbage cycles through
# suspended frames), hub tasks with Channel/Queue/Event/TaskGroup, two
# threads with their own fibers and hub, a thread running gc.collect(), the
# switch tracer on and off -- with RSS sampled once a second.  Fails if the
# load fails or if RSS at the end is more than 10 % above its level after
# warm-up.  SOAK_ARGS passes more options (e.g. --no-cycles).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
cd "$(dirname "$0")/../.."
apt-get update -qq
apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null
python3 -m pip install -q -e . 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
# shellcheck disable=SC2086
exec python3 -m tests.reliability.soak --seconds "${SOAK_SECONDS:-120}" ${SOAK_ARGS:-}
