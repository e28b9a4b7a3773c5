#!/bin/sh
# make bench: forward+backward step throughput and FLOP rate against sgemm on
# the same shapes (issue target: >= 40% of sgemm for the 8-layer d=512 model
# at seq_len 512 on this machine's cores).
set -e
cd "$(dirname "$0")/.."
./gemmakd bench --config configs/models/bench-d512.json --batch 2 --seq-len 512 --steps 5
echo
./gemmakd bench --config configs/models/bench-d512.json --batch 2 --seq-len 512 --steps 5 --threads 1
