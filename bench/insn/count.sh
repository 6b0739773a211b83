#!/bin/sh
# Instructions per raw switch round trip (pingpong.c), on x86-64 and ARM64:
# N and 2N round trips are counted and subtracted, so startup cancels out.
#   x86-64: valgrind's callgrind (native build)
#   ARM64:  qemu-aarch64-static -singlestep -d exec,nochain: one block per
#           instruction, every block logged, so the log has one line per
#           instruction executed (Debian's qemu ships no TCG plugins).
# Needs gcc, valgrind; for ARM64 gcc-aarch64-linux-gnu and qemu-user-static.
# Usage: bench/insn/count.sh [x86_64|arm64 ...]   (default: both)
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
SRC="$ROOT/bench/insn/pingpong.c $ROOT/csrc/pycoro_core.c $ROOT/csrc/arch/switch.S"
N=${N:-10000}
per() {  # per ARCH FLAGS: instructions for N round trips, minus startup
    a=$(count "$1" "$N" "$2"); b=$(count "$1" $((2 * N)) "$2")
    echo $(( (b - a) / N ))
}
count() {
    case $1 in
    x86_64) valgrind --tool=callgrind --callgrind-out-file=/dev/null "$TMP/pp-x86_64" "$2" "$3" 2>&1 \
                | sed -n 's/.*Collected : \([0-9]*\).*/\1/p' ;;
    arm64)  qemu-aarch64-static -singlestep -d exec,nochain -D "$TMP/log" "$TMP/pp-arm64" "$2" "$3" >/dev/null
            grep -c '^Trace' "$TMP/log" ;;
    esac
}
for arch in ${*:-x86_64 arm64}; do
    case $arch in
    x86_64) gcc -O2 -I"$ROOT/csrc" $SRC -o "$TMP/pp-x86_64" ;;
    arm64)  aarch64-linux-gnu-gcc -O2 -static -I"$ROOT/csrc" $SRC -o "$TMP/pp-arm64" ;;
    *) echo "unknown arch $arch" >&2; exit 2 ;;
    esac
    echo "$arch: instructions per round trip: own FP env $(per "$arch" 0), shared (PC_FIBER_SHARE_FPENV) $(per "$arch" 1)"
done
