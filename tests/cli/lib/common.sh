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

# tiny_run_config FILE: the first 60 KB of the tokenizer fixture's text as train and validation shards
# in $T/data, and the first lines of a run config in FILE (run_dir $T/runs/unset, seed 7, one thread,
# the tiny model, those shards at seq_len 32), to which the caller appends the rest.
tiny_run_config() {
    head -c 60000 tests/fixtures/tokenizer/mixed.txt >"$T/text.txt"
    if ! "$G" tokenize --tokenizer tests/fixtures/tokenizer/spm_bpe.model --input "$T/text.txt" --out "$T/data" \
        --doc-separator '\n\n' --val-fraction 0.2 >/dev/null 2>"$T/err"; then
        fail setup "tokenize: $(tail -n 1 "$T/err")"
        exit 1
    fi
    cat >"$1" <<EOF
run_dir: $T/runs/unset
seed: 7
threads: 1
model: {config: configs/models/tiny.json}
data: {train: "$T/data/train-*.h5", val: "$T/data/val-*.h5", seq_len: 32}
EOF
}
