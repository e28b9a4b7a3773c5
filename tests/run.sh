#!/bin/sh
# Runs every test program and the CLI tests; prints one line per case and the
# closing line "N passed, N failed, N skipped". Exit status 1 if any failed.
BUILD=${BUILD:-build}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
for t in "$BUILD"/tests/test_*; do
    case "$t" in *.o|*.d) continue ;; esac
    [ -x "$t" ] || continue
    name=$(basename "$t")
    "$t" > "$log.out" 2>&1
    rc=$?
    cat "$log.out"
    cat "$log.out" >> "$log"
    # A program that died without reporting a failure still fails.
    if [ $rc -ne 0 ] && ! grep -q '^FAIL ' "$log.out"; then
        echo "FAIL $name: exited with status $rc"
        echo "FAIL $name: exited with status $rc" >> "$log"
    fi
    rm -f "$log.out"
done
for t in tests/cli/*.sh; do
    [ -f "$t" ] || continue
    GEMMAKD="$BUILD/gemmakd" sh "$t" >> "$log.out" 2>&1
    rc=$?
    cat "$log.out"
    cat "$log.out" >> "$log"
    if [ $rc -ne 0 ] && ! grep -q '^FAIL ' "$log.out"; then
        echo "FAIL $(basename "$t"): exited with status $rc" | tee -a "$log"
    fi
    rm -f "$log.out"
done
passed=$(grep -c '^PASS ' "$log")
failed=$(grep -c '^FAIL ' "$log")
skipped=$(grep -c '^SKIP ' "$log")
[ "$failed" -eq 0 ] || status=1
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
exit $status
