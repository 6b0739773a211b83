#!/usr/bin/env bash
# valgrind memcheck lane: a representative subset of the suite (switching,
# throw, GC of suspended fibers, threads, faults, in-process hostile tests)
# under memcheck, on the normal in-place build.  Zero errors needed.
#
# PYTHONMALLOC=malloc: CPython's small-object allocator (obmalloc) reads
# its own arena headers in ways memcheck reports as uninitialised reads;
# with plain malloc that noise is gone and memcheck checks every Python
# object our binding touches.  What CPython still reports by itself (a few
# dozen contexts at start-up and import, none through our code) is counted
# separately below instead of suppressed.
#
# Stack copying: the core copies whole stack slices, including padding
# bytes nobody initialised.  memcheck only reports *uses* of undefined
# values (a branch, an address, a syscall argument), not copies, and it
# follows the definedness through the copy: so the copies need neither
# client requests nor suppressions (measured: 0 contexts through our code).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
LANE="valgrind memcheck, switching/throw/GC/threads subset"
T0=$SECONDS
PROJ=$(cd "$(dirname "$0")/../.." && pwd)
LAB=${VG_LAB:-/tmp/pycoro-valgrind-lane}
rm -rf "$LAB"; mkdir -p "$LAB"
cd "$PROJ"
apt-get update -qq
apt-get install -y -qq --no-install-recommends valgrind gcc libc6-dev >/dev/null
python3 -m pip install -q -e '.[test]' 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)

export PYTHONMALLOC=malloc PYCORO_TEST_SCALE=${PYCORO_TEST_SCALE:-0.02}
# The selection: switching, throw, GC, threads, faults, the stress model,
# and the in-process hostile tests (tests/fiber/test_hostile.py; every test
# of the tests/hostile/ folder runs its work in a child process under real
# limits, so that folder is not here).  Subprocess tests would run
# outside valgrind (children are not traced: --trace-children=no); they are
# covered by the other lanes, and select_plugin.py deselects them (by their
# platform_support marker).  select_plugin also fails the run if any path
# below selects no test; an empty run is pytest's exit 5, never masked.
SELECT=(tests/fiber/test_switch.py tests/fiber/test_threads_gc.py tests/fiber/test_hostile.py
        tests/reliability/test_cycles.py tests/reliability/test_faults.py
        tests/reliability/test_stress.py)
export PYCORO_SELECT_REQUIRE=$(IFS=,; echo "${SELECT[*]}")
export PYTHONPATH=$PROJ/.ci/lanes${PYTHONPATH:+:$PYTHONPATH}
echo "valgrind selection: ${SELECT[*]}"
# the interpreter binary itself (python3 may be a wrapper script, e.g. a
# pyenv shim, and valgrind would then trace the shell)
PY=$(python3 -c 'import sys; print(sys.executable)')
set +e
valgrind --tool=memcheck --track-origins=yes --num-callers=30 \
    --log-file="$LAB/memcheck.%p.log" \
    "$PY" -m pytest -p no:cacheprovider -p select_plugin -q -x "${SELECT[@]}" \
        -k "not leak and not rss and not subprocess and not exit and not signal" \
    2>&1 | tee "$LAB/pytest.log"
rc=${PIPESTATUS[0]}
set -e
grep -q "Command: $PY" "$LAB"/memcheck.*.log || { echo "valgrind did not run $PY"; exit 1; }
# Every error block whose stack passes through our code (the extension or
# the core's sources) counts; CPython's own reports (uninitialised reads in
# its start-up, e.g. int.from_bytes over getrandom output) are listed as a
# total only.  No suppressions.
python3 - "$LAB" > "$LAB/ours.txt" <<'PYEOF'
import glob, re, sys
ours = others = 0
for path in glob.glob(sys.argv[1] + "/memcheck.*.log"):
    blocks, cur = [], []
    for line in open(path, errors="replace"):
        body = re.sub(r"^==\d+== ?", "", line.rstrip("\n"))
        if not body.strip():
            if cur:
                blocks.append(cur)
            cur = []
        else:
            cur.append(body)
    if cur:
        blocks.append(cur)
    for b in blocks:
        if not re.match(r"(Invalid|Conditional|Use of uninit|Syscall param|Mismatched|Source and destination|Argument)", b[0]):
            continue
        # A value derived from int.from_bytes over os.urandom/getrandom
        # output (random's seeding), which memcheck does not see written:
        # CPython's own report even when a collection run from our code
        # (thread_ended -> PyGC_Collect) walks an object holding it.
        origin = "\n".join(b[next((k for k, l in enumerate(b) if "was created by" in l), len(b)):])
        if re.search(r"int_from_bytes", origin):
            others += 1
            continue
        if any(re.search(r"_pycoro\.cpython|_pycoro_core_ffi|pycoro_core\.c|csrc/|\((fiber|module|switch|thread|pystate|chunks|capi)\.c:|pc__switch", l) for l in b):
            ours += 1
            print("\n".join(b[:25]) + "\n")
        else:
            others += 1
print(f"OURS {ours} OTHERS {others}")
PYEOF
nerr=$(tail -n 1 "$LAB/ours.txt" | awk '{print $2}')
echo "==== lane: $LANE"
echo "==== wall time: $((SECONDS - T0)) s"
echo "==== memcheck error contexts through pycoro's code: $nerr (CPython's own: $(tail -n 1 "$LAB/ours.txt" | awk '{print $4}'))"
if [ "$nerr" != 0 ]; then
    head -n 300 "$LAB/ours.txt"
    exit 1
fi
exit "$rc"
