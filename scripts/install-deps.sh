#!/bin/sh
# Installs the Debian packages a step needs, when any is missing (a no-op on a
# prepared machine). Groups: build (default: compiler and libraries), corpus
# (the Debian packages the corpus comes from, spm_train, python3), demo
# (corpus + matplotlib for the plots), ablations (demo + PyYAML, for
# scripts/sweep.py), venv (python3 with its venv module, for scripts/test-venv.sh).
set -e
case "${1:-build}" in
    build) pkgs="gcc make libopenblas-openmp-dev libdnnl-dev libhdf5-dev libzstd-dev libyaml-dev libomp-dev libopenmpi-dev openmpi-bin" ;;
    corpus) pkgs="bible-kjv dict-gcide fortunes sentencepiece python3" ;;
    demo) pkgs="bible-kjv dict-gcide fortunes sentencepiece python3 python3-matplotlib" ;;
    ablations) pkgs="bible-kjv dict-gcide fortunes sentencepiece python3 python3-matplotlib python3-yaml" ;;
    venv) pkgs="python3 python3-venv" ;;
    *) echo "usage: $0 [build|corpus|demo|ablations|venv]" >&2; exit 2 ;;
esac
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
