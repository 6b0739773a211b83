# Sourced by the ASan lanes (sanitize.sh, fuzz.sh): the ASan+UBSan build
# recipe.  Expects PROJ (the checkout), LAB (a fresh work dir with reports/)
# and step(); installs the packages, copies the tree to $LAB/tree, builds
# the extension and the cffi core test module there with
# -fsanitize=address,undefined, exports the run-time environment below
# (LD_PRELOAD, ASAN_OPTIONS, ...; reports go to $LAB/reports) and checks
# that ASan is live.  Leaves the current directory at $LAB/tree.
# asan_reports prints how many reports $LAB/reports holds.

mkdir -p "$LAB/tree" "$LAB/reports"
step "system packages (gcc, its sanitizer runtimes)"
apt-get update -qq
apt-get install -y -qq --no-install-recommends gcc libc6-dev libasan8 libubsan1 >/dev/null

step "test dependencies (pyproject's test extra)"
mapfile -t deps < <(python3 - "$PROJ/pyproject.toml" <<'PYEOF'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["optional-dependencies"]["test"]))
PYEOF
)
python3 -m pip install -q "${deps[@]}" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)

step "copy the tree (tracked and new files, no build products) to $LAB/tree"
cd "$PROJ"
git ls-files -z --cached --others --exclude-standard | xargs -0 -r ls -d 2>/dev/null \
    | tar -cf - -T - | tar -xf - -C "$LAB/tree"
cd "$LAB/tree"

SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g"
step "build the extension with PYCORO_SANITIZE=1 (in the copy)"
# (unfiltered: a compiler warning shows, and a failed build fails the lane)
PYCORO_SANITIZE=1 python3 setup.py -q build_ext --inplace
# (grep reads ldd's whole output from a variable: "ldd | grep -q" under
# pipefail fails now and then, when grep exits at the first match and ldd
# gets SIGPIPE writing the next line -- 1 run in 300 here, and CI stop 24)
libs=$(ldd pycoro/_pycoro.cpython-*.so)
grep -q libasan <<<"$libs" || { echo "extension not linked with ASan:"; echo "$libs"; exit 1; }
step "build the cffi core module with ASan+UBSan (tests/core/ffi_build.py)"
export PYCORO_CORE_CFLAGS="$SAN -O1" PYCORO_CORE_LDFLAGS="-fsanitize=address,undefined"
python3 -m tests.core.ffi_build
libs=$(ldd build/cffi-core-*/_pycoro_core_ffi*.so)
grep -q libasan <<<"$libs" || { echo "cffi module not linked with ASan:"; echo "$libs"; exit 1; }

# CPython is not built with ASan: the runtime must be first in the process,
# hence LD_PRELOAD (inherited by the subprocess tests, which run under ASan
# too).  Options:
# Any file in the report directory is a finding: the count below greps for
# ASan errors, sanitizer CHECK failures and UBSan runtime errors.
#   detect_leaks=0    LeakSanitizer would report CPython's own objects that
#                     live until exit (interned strings, static types, ...);
#                     leaks are measured by tests/reliability/test_leaks.py.
#   detect_stack_use_after_return=0
#                     fake stacks free frames by comparing real stack
#                     addresses, which stack copying reuses (pycoro_core.c,
#                     asan_forget_stale_frames); 0 is the default, made explicit.
#   log_path=...      every report (this process and every child) goes to a
#                     file; the lane counts them, so a report in a subprocess
#                     test whose exit status is expected to be non-zero still
#                     fails the lane.
#   handle_abort=0    the tests that check a loud abort (pc_fatal) in a child
#                     expect SIGABRT, not an ASan report (the default, explicit).
#   quarantine_size_mb=8 (thread_local_quarantine_size_kb=64)
#                     freed blocks are held back (poisoned) to catch use after
#                     free; by default up to 256 MB, which the RSS-based leak
#                     tests would read as a leak.  Bounded, RSS plateaus after
#                     their warm-up, and a use after free is still caught
#                     within the last 8 MB of frees (a switch's are recent).
#   allocator_may_return_null=1
#                     a failed huge allocation (fuzz: huge sizes) is a
#                     MemoryError in Python, as without ASan, not a report.
# UBSAN: print_stacktrace=1, halt_on_error=1 (-fno-sanitize-recover), same log.
# PYTHONMALLOC=malloc: CPython's objects come from malloc, so ASan also checks
# our use of Python objects (use after free, overflow), not just our own heap.
# libstdc++ too: ASan resolves its __cxa_throw interceptor at start-up, and a
# C++ extension loaded later (greenlet, matplotlib) would otherwise abort on
# its first C++ exception ("CHECK failed: real___cxa_throw").
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)"
export ASAN_OPTIONS="detect_leaks=0:detect_stack_use_after_return=0:handle_abort=0:quarantine_size_mb=8:thread_local_quarantine_size_kb=64:allocator_may_return_null=1:log_path=$LAB/reports/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$LAB/reports/ubsan"
export PYTHONMALLOC=malloc
export PYCORO_SANITIZED=1     # tests may ask (e.g. timing-sensitive ones)
# ASan with PYTHONMALLOC=malloc runs the suite several times slower: the
# iteration counts (stress examples, 1e6 lifecycles, fuzz) run at 0.2.
export PYCORO_TEST_SCALE=${PYCORO_TEST_SCALE:-0.2}
export PYTHONPATH=$LAB/tree
python3 -c 'import pycoro, sys; assert pycoro.__file__.startswith(sys.argv[1]), pycoro.__file__; print("pycoro from", pycoro.__file__)' "$LAB/tree"

step "sanity: ASan is live (a heap overflow inside a fiber is reported)"
set +e
ASAN_OPTIONS="${ASAN_OPTIONS%%:log_path=*}" python3 - >"$LAB/canary.log" 2>&1 <<'PYEOF'
import ctypes, pycoro
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
def body():
    buf = libc.malloc(16)
    pycoro.current().parent.switch()
    ctypes.memset(buf + 16, 0, 1)      # one byte past a 16-byte block
f = pycoro.Fiber(body)
f.switch()
f.switch()
PYEOF
set -e
grep -q "heap-buffer-overflow" "$LAB/canary.log" || { cat "$LAB/canary.log"; echo "ASan canary not reported"; exit 1; }
echo "canary reported: $(grep -m1 'ERROR: AddressSanitizer' "$LAB/canary.log")"


asan_reports() {
    cat "$LAB"/reports/* 2>/dev/null | grep -cE "ERROR: AddressSanitizer|Sanitizer: CHECK failed|runtime error:" || true
}
