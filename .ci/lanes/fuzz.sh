#!/usr/bin/env bash
# Long fuzz lane (issue 14): tests/reliability/fuzz_ops.py, random
# operations over switch/throw/kill/gc/tracer/threads checked against the
# model, FUZZ_OPS of them (default 1,000,000) on the normal build, then the
# same run on the ASan+UBSan build of sanitize.sh (the recipe in
# asan_build.sh) with zero sanitizer reports needed.  Seeded: the seed is
# PYCORO_FUZZ_SEED (default 0), printed, and reproduces the run
# (python -m tests.reliability.fuzz_ops --ops N --seed S).
#
# Env: FUZZ_OPS, FUZZ_ASAN_OPS (default: FUZZ_OPS), PYCORO_FUZZ_SEED,
# FUZZ_LAB (work dir, default /tmp/pycoro-fuzz-lane, wiped first).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
LANE="long fuzz (normal, ASan)"
T0=$SECONDS
PROJ=$(cd "$(dirname "$0")/../.." && pwd)
LAB=${FUZZ_LAB:-/tmp/pycoro-fuzz-lane}
OPS=${FUZZ_OPS:-1000000}
ASAN_OPS=${FUZZ_ASAN_OPS:-$OPS}
SEED=${PYCORO_FUZZ_SEED:-0}
step() { echo "---- [$LANE] $* ($((SECONDS - T0)) s)"; }
rm -rf "$LAB"; mkdir -p "$LAB/reports"

step "normal build (editable install with the test extra)"
apt-get update -qq
apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null
cd "$PROJ"
python3 -m pip install -q -e '.[test]' 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)

rc_normal=0
step "fuzz_ops: $OPS operations, seed $SEED, normal build"
t=$SECONDS
python3 -m tests.reliability.fuzz_ops --ops "$OPS" --seed "$SEED" || rc_normal=$?
normal_s=$((SECONDS - t))

# shellcheck source=asan_build.sh
. "$PROJ/.ci/lanes/asan_build.sh"       # leaves us in $LAB/tree, ASan env exported
rc_asan=0
step "fuzz_ops: $ASAN_OPS operations, seed $SEED, ASan+UBSan build"
t=$SECONDS
PYTHONPATH=$LAB/tree python3 -m tests.reliability.fuzz_ops --ops "$ASAN_OPS" --seed "$SEED" || rc_asan=$?
asan_s=$((SECONDS - t))
nrep=$(asan_reports)

echo "==== lane: $LANE"
echo "==== wall time: $((SECONDS - T0)) s"
echo "==== normal build: $OPS operations, exit $rc_normal, $normal_s s"
echo "==== ASan build:   $ASAN_OPS operations, exit $rc_asan, $asan_s s, sanitizer reports: $nrep"
echo "==== seed $SEED (rerun: python -m tests.reliability.fuzz_ops --ops N --seed $SEED --verbose)"
if [ "$nrep" != 0 ]; then
    for f in "$LAB"/reports/*; do echo "---- $f"; head -60 "$f"; done
    exit 1
fi
[ "$rc_normal" = 0 ] && [ "$rc_asan" = 0 ]
