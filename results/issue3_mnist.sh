#!/usr/bin/env bash
# Records in results/runs/issue3/: every rule on real MNIST, MLP 784-256x5-10, 3 epochs, seed 0, default
# hyperparameters; then L-DRL on LeNet for 1 epoch with the ernoult2022-lenet preset, 5 feedback iterations
# per layer instead of (41, 51, 24) (one CPU epoch: ~8.5 min instead of ~1 h), 20 feedback-only warm-up
# batches and forward lr 0.01 (without them LeNet diverges: results/probes/ldrl_lenet_*.out).
set -euo pipefail
out=results/runs/issue3
for algo in bp fa dfa fw-dtp l-drl dtp drl tp; do
  bench run --algo "$algo" --task mnist --epochs 3 --seed 0 --out "$out"
done
bench run --algo l-drl --task mnist --preset ernoult2022-lenet --epochs 1 \
  --set fb_iterations=5 --set lr=0.01 --set warmup_batches=20 --out "$out"
