#!/usr/bin/env bash
# Records in results/runs/issue4/: 3 seeds x every rule x 2 epochs on real MNIST (MLP 784-256x5-10), with
# the angle to BP measured every 100 batches; then the leaderboard and the figures.
set -euo pipefail
out=results/runs/issue4
for seed in 0 1 2; do
  for algo in bp fa dfa fw-dtp l-drl dtp drl tp; do
    bench run --algo "$algo" --task mnist --epochs 2 --seed "$seed" --angle-every 100 --out "$out"
  done
done
bench leaderboard --runs "$out" --format md > results/leaderboard_mnist.md
bench leaderboard --runs "$out" --format latex > results/leaderboard_mnist.tex
bench plot --runs "$out" --out results/figures
