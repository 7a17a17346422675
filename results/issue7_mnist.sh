#!/usr/bin/env bash
# Records in results/runs/issue7/: DNI, cDNI, uSF and frSF on real MNIST, MLP 784-256x5-10, 3 epochs, seed 0,
# default hyperparameters (the DNI/cDNI defaults were chosen on validation accuracy: runs/issue7/dni_tuning/ and
# runs/issue7/dni_layer_lr/, each record holds its command; DNI at batch 32, see algorithms/dni.py);
# then the Lillicrap et al. 2016 study (records, table, figure).
set -euo pipefail
out=results/runs/issue7
bench run --algo dni --task mnist --epochs 3 --seed 0 --batch-size 32 --out "$out"
for algo in cdni usf frsf; do
  bench run --algo "$algo" --task mnist --epochs 3 --seed 0 --out "$out"
done
bench paper lillicrap2016 --budget full
