#!/usr/bin/env bash
# Build a free-threaded CPython 3.13 (3.13t) from Debian trixie's python3.13
# source package (its orig tarball is the upstream tarball) with --disable-gil,
# and print the path of its python executable on stdout.
#
#   bash .ci/lanes/build_313t.sh [PREFIX_ROOT]     (default /tmp/pycoro-313t)
#
# Cached: the source tarball in $ROOT/src and the installed interpreter in
# $ROOT/opt (marked by .ready), so a rerun only prints the path.  About 5-6 min
# on 2 cores the first time.  Needs root on a Debian host (apt-get).
# Adapted from the shared recipe ../shared/recipes/more-pythons.sh.
set -euo pipefail
ROOT=${1:-/tmp/pycoro-313t}
MIRROR=${PYVERS_MIRROR:-http://deb.debian.org/debian}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
PREFIX=$ROOT/opt
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [ ! -f "$PREFIX/.ready" ]; then
    export DEBIAN_FRONTEND=noninteractive
    log "apt-get: CPython build dependencies"
    for _ in $(seq 60); do apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 && break; sleep 10; done
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends build-essential \
        pkg-config libssl-dev zlib1g-dev libffi-dev libbz2-dev liblzma-dev libsqlite3-dev \
        libreadline-dev libncurses-dev uuid-dev libexpat1-dev ca-certificates xz-utils >/dev/null
    mkdir -p "$ROOT/src" "$ROOT/logs"
    tb=$(ls "$ROOT"/src/python3.13_*.orig.tar.xz 2>/dev/null | sort -V | tail -1 || true)
    if [ -z "$tb" ]; then
        log "apt-get source python3.13/trixie (download only)"
        a=$ROOT/apt-src
        mkdir -p "$a/lists/partial" "$a/cache/archives/partial"
        echo "deb-src [signed-by=$KEYRING] $MIRROR trixie main" >"$a/sources.list"
        o=(-o "Dir::Etc::SourceList=$a/sources.list" -o Dir::Etc::SourceParts=/nonexistent
           -o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a/cache"
           -o Acquire::Check-Valid-Until=false -o APT::Sandbox::User=root)
        apt-get "${o[@]}" update -qq >&2
        (cd "$ROOT/src" && apt-get "${o[@]}" -qq source --download-only python3.13/trixie >&2)
        tb=$(ls "$ROOT"/src/python3.13_*.orig.tar.xz | sort -V | tail -1)
    fi
    b=$ROOT/build
    log "building 3.13t from $(basename "$tb") (--disable-gil, make -j$(nproc)): several minutes"
    rm -rf "$b" "$PREFIX"; mkdir -p "$b"
    tar -xf "$tb" -C "$b" --strip-components=1
    ( cd "$b"
      ./configure --prefix="$PREFIX" --disable-gil --with-ensurepip=install >"$ROOT/logs/configure.log" 2>&1
      make -j"$(nproc)" >"$ROOT/logs/make.log" 2>&1
      make install >"$ROOT/logs/install.log" 2>&1 ) \
      || { log "build failed, see $ROOT/logs"; tail -20 "$ROOT/logs/make.log" >&2; exit 1; }
    # keep the source tree (internal headers are read from it when debugging) only if asked
    [ "${PYCORO_313T_KEEP_BUILD:-0}" = 1 ] || rm -rf "$b"
    touch "$PREFIX/.ready"
fi
exe=$PREFIX/bin/python3.13t
[ -x "$exe" ] || { log "no $exe"; exit 1; }
"$exe" -c 'import sys, sysconfig; assert sysconfig.get_config_var("Py_GIL_DISABLED"), "not a free-threaded build"' >&2
echo "$exe"
