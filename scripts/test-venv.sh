#!/bin/sh
# make test: a Python for the tests that read gemmakd's files with other tools --
# h5py and hdf5plugin (Debian's python3-hdf5plugin has no zstd filter), PyYAML
# and matplotlib from PyPI -- in a virtual environment made once, in
# $GEMMAKD_TEST_VENV (default ~/.cache/gemmakd/test-venv, outside build/ so that
# make clean keeps it). Prints that python's path. When it cannot be made (PyPI
# out of reach, say) it says why on stderr and exits 1: the tests that need it
# then skip, naming the module they could not import (tests/fixtures.c).
set -u
cd "$(dirname "$0")/.."
venv="${GEMMAKD_TEST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/gemmakd/test-venv}"
packages="h5py hdf5plugin PyYAML matplotlib"
# Importing them is the check (hdf5plugin registers the zstd filter, 32015, in h5py).
check='import h5py, hdf5plugin, yaml, matplotlib; assert h5py.h5z.filter_avail(32015)'

ready() { "$venv/bin/python" -c "$check" 2>/dev/null; }

# make VENV: a new environment with the packages; on failure nothing is left behind.
make_venv() {
    rm -rf "$venv"
    if ! python3 -m venv "$venv" 2>/dev/null; then # Debian's python3 needs python3-venv for ensurepip
        rm -rf "$venv"
        ./scripts/install-deps.sh venv >&2 && /usr/bin/python3 -m venv "$venv" >&2 || return 1
    fi
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --retries 1 --timeout 30 $packages >&2 && ready
}

if ! ready; then
    mkdir -p "$(dirname "$venv")" || exit 1
    exec 9>"$venv.lock" && flock 9 # one maker at a time: make test may run in two checkouts
    if ! ready; then
        echo "test-venv: installing $packages from PyPI into $venv (once)" >&2
        if ! make_venv; then
            rm -rf "$venv"
            echo "test-venv: could not make $venv (is PyPI reachable?); the tests that need $packages will be skipped" >&2
            exit 1
        fi
    fi
fi
echo "$venv/bin/python"
