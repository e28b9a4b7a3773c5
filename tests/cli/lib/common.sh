# Sourced by every tests/cli script, run from the repository root: the gemmakd under
# test ($G), a scratch dir removed on exit ($T), and results in tests/run.sh's format
# (PASS/FAIL script/case; the script exits $failed).
G=${GEMMAKD:-./gemmakd}
SUITE=$(basename "$0" .sh)
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT
trap 'exit 1' INT TERM HUP
failed=0

pass() { echo "PASS $SUITE/$1"; }
fail() {
    echo "FAIL $SUITE/$1: $2"
    failed=1
}
# Runs gemmakd, stdout to $T/out, stderr to $T/err; returns its status.
gk() { "$G" "$@" >"$T/out" 2>"$T/err"; }

# The python of the tests that read files with Python libraries (make test sets it).
PY=${GEMMAKD_TEST_PYTHON:-python3}
# need_module MODULE CASE...: without MODULE in $PY, every case is a skip naming it, and the script ends.
need_module() {
    module=$1
    shift
    "$PY" -c "import $module" 2>"$T/err" && return 0
    for c in "$@"; do echo "SKIP $SUITE/$c: $PY cannot import $module ($(tail -n 1 "$T/err"))"; done
    exit 0
}
