#!/usr/bin/env bash
# Records in results/runs/issue3/: every rule on real MNIST, MLP 784-256x5-10, 3 epochs, seed 0, default
# hyperparameters; then L-DRL on LeNet for 1 epoch with the ernoult2022-lenet preset, its feedback
# iterations cut from (41, 51, 24) to 3 per layer so that one CPU epoch takes ~15 min instead of ~3 h.
set -euo pipefail
out=results/runs/issue3
for algo in bp fa dfa fw-dtp l-drl dtp drl tp; do
  bench run --algo "$algo" --task mnist --epochs 3 --seed 0 --out "$out"
done
bench run --algo l-drl --task mnist --preset ernoult2022-lenet --epochs 1 --set fb_iterations=3 --out "$out"
