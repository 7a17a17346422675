#!/usr/bin/env bash
# Do the committed issue-3 MNIST records (3 epochs, seed 0, 2 threads) still come out of the current code?
# Reruns one epoch of each rule (no rule here has an epoch-dependent schedule, so epoch 1 of a 3-epoch run
# equals a 1-epoch run) and prints the record's and the rerun's first-epoch test loss.
#   BIOPLAUS_DATA=../shared/data bash results/probes/repro_issue3_epoch1.sh
set -euo pipefail
for rec in bp__mnist__mlp__s0__796237159964 fa__mnist__mlp__s0__af7ed52c7f6c dfa__mnist__mlp__s0__e665f9c6a4bf \
           fw-dtp__mnist__mlp__s0__4d5f35ef79da dtp__mnist__mlp__s0__cc5c538e152f drl__mnist__mlp__s0__dd32ca3403a9 \
           tp__mnist__mlp__s0__18567c36bdc7 l-drl__mnist__mlp__s0__667e861cc9b5; do
  algo=${rec%%__*}
  tmp=$(mktemp -d)
  BIOPLAUS_THREADS=2 bench run --algo "$algo" --task mnist --epochs 1 --seed 0 --out "$tmp" > /dev/null 2>&1
  python - "$rec" "$tmp" <<'PY'
import glob, json, sys
rec, tmp = sys.argv[1], sys.argv[2]
old = json.load(open(f"results/runs/issue3/{rec}.json"))["curves"]["test_loss"][0]
new = json.load(open(glob.glob(f"{tmp}/*.json")[0]))["curves"]["test_loss"][0]
print(f"{rec}: record {old!r}, rerun {new!r}, {'identical' if old == new else f'differs by {new - old:+.2e}'}")
PY
  rm -rf "$tmp"
done
