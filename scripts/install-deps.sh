#!/bin/sh
# Installs the Debian packages gemmakd builds against, when any is missing.
# Run by `make`, `make test` and `make demo`; a no-op on a prepared machine.
set -e
pkgs="gcc make libopenblas-openmp-dev libhdf5-dev libzstd-dev libyaml-dev libomp-dev"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
