#!/bin/sh
# Runs every test program and CLI test script for each build directory given
# (default: build), and the Python tests (tests/py, once, with $GEMMAKD_TEST_PYTHON
# or python3, and GEMMAKD=build/gemmakd for those that run it). One line per case;
# the sanitizer build's names get a "san:" prefix, the GPU build's (build-gpu,
# test_cuda only) "gpu:". Ends with "N passed, N failed"
# (", N skipped" when any).
[ $# -gt 0 ] || set -- build
log=$(mktemp)
out=$(mktemp)
trap 'rm -f "$log" "$out"' EXIT

# run_one NAME PREFIX COMMAND...: runs a test, prefixes its case names, and
# records a failure if it died without reporting one.
run_one() {
    name=$1 prefix=$2
    shift 2
    "$@" > "$out" 2>&1
    rc=$?
    sed "s/^\(PASS\|FAIL\|SKIP\) /\1 $prefix/" "$out" | tee -a "$log"
    if [ $rc -ne 0 ] && ! grep -q '^FAIL ' "$out"; then
        echo "FAIL $prefix$name: exited with status $rc; last output:" | tee -a "$log"
        tail -n 5 "$out"
    fi
}

for build in "$@"; do
    prefix=
    [ "$build" = build-san ] && prefix=san:
    [ "$build" = build-gpu ] && prefix=gpu:
    if [ "$build" = build-gpu ] && [ ! -d build-gpu ]; then
        echo "SKIP gpu:test_cuda: the CUDA toolkit (nvcc) was not found, so the GPU backend was not built" | tee -a "$log"
        continue
    fi
    for t in "$build"/tests/test_*; do
        case "$t" in *.o|*.d) continue ;; esac
        [ -x "$t" ] && run_one "$(basename "$t")" "$prefix" "$t"
    done
    [ "$build" = build-gpu ] && continue # the CLI scripts ran against the CPU builds; the GPU build adds test_cuda
    for t in tests/cli/*.sh; do
        [ -f "$t" ] && run_one "$(basename "$t" .sh)" "$prefix" env GEMMAKD="$build/gemmakd" sh "$t"
    done
    [ "$build" = build ] || continue # the Python tests (scripts of the repository, and info) run once
    for t in tests/py/test_*.py; do
        [ -f "$t" ] && run_one "$(basename "$t" .py)" "" env GEMMAKD="$build/gemmakd" "${GEMMAKD_TEST_PYTHON:-python3}" "$t"
    done
done

passed=$(grep -c '^PASS ' "$log")
failed=$(grep -c '^FAIL ' "$log")
skipped=$(grep -c '^SKIP ' "$log")
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
