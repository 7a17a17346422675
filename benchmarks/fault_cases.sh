#!/usr/bin/env bash
# The fault and bad-input cases of issue 32, run as a user would: each prints its command, what the suite
# printed, the exit code and what is on disk afterwards. Needs the MNIST files (BIOPLAUS_DATA) and, for the
# full-disk case, a user that may mount a tmpfs (skipped otherwise). Usage: bash benchmarks/fault_cases.sh
set -u
W=$(mktemp -d)
trap 'umount "$W/small" 2>/dev/null; rm -rf "$W"' EXIT
cd "$W" || exit 1
TS=(--algo bp --task teacher-student --lr 0.002 --momentum 0)
LONG=("${TS[@]}" --epochs 200 --max-batches 20)

case_() {  # case_ "title" command...
  echo; echo "### $1"; shift
  echo "\$ $*"
  "$@" > out.txt 2>&1
  local rc=$?
  grep -v -e " INFO " -e "UserWarning" -e "max_unpool2d" out.txt | sed 's/^/  /' | tail -6
  echo "  exit $rc"
}
disk() { echo "  on disk: $(cd "$1" && ls -A | tr '\n' ' ')"; }
status_of() { python -c "import json,sys; r=json.load(open(sys.argv[1])); print('  record:', r['status'], '|', (r.get('error') or '')[:150])" "$1"; }

echo "## 1. A --force rerun killed with SIGKILL"
bench run "${LONG[@]}" --out force > /dev/null 2>&1
REC=$(ls force/*__*.json); md5_before=$(md5sum < "$REC")
bench run "${LONG[@]}" --out force --force > /dev/null 2>&1 & PID=$!
until python -c "import json,sys; sys.exit(0 if (json.load(open('$REC')).get('epochs_done') or 0) >= 2 else 1)" 2>/dev/null; do sleep 0.2; done
kill -9 $PID; wait $PID 2>/dev/null
echo "killed the rerun (pid $PID) after epoch 2"; status_of "$REC"; disk force
case_ "the next command (any that reads the folder)" bench leaderboard --runs force
echo "  record byte for byte the finished one: $([ "$(md5sum < "$REC")" = "$md5_before" ] && echo yes || echo NO)"; disk force
case_ "and a plain rerun" bench run "${LONG[@]}" --out force

echo; echo "## 2. One wrongly typed field"
bench grid "${TS[@]}" --epochs 1 --seeds 0,1 --out typed --executor debug > /dev/null 2>&1
BAD=$(ls typed/*__s1__*.json)
python -c "import json,sys; p=sys.argv[1]; r=json.load(open(p)); r['final']['test_acc']='abc'; json.dump(r, open(p,'w'))" "$BAD"
case_ "leaderboard (final.test_acc = \"abc\" in one of two seeds)" bench leaderboard --runs typed --format csv
case_ "status" bench status --out typed
python -c "import json,sys; p=sys.argv[1]; r=json.load(open(p)); r['final']['test_acc']=0.5; r['curves'].pop('epoch'); json.dump(r, open(p,'w'))" "$BAD"
case_ "plot (curves.epoch missing)" bench plot --runs typed --out typed/figures

echo; echo "## 3. A full disk (1 MB tmpfs: records fit, a 3.7 MB checkpoint does not)"
mkdir small
if mount -t tmpfs -o size=1m tmpfs small 2>/dev/null; then
  case_ "2 epochs: the checkpoint after epoch 1 does not fit" bench run --algo bp --task mnist --epochs 2 --max-batches 5 --out small
  status_of "$(ls small/*.json)"; disk small
  case_ "1 epoch: finishes (its record before its weights)" bench run --algo bp --task mnist --epochs 1 --max-batches 5 --out small
  disk small
  umount small
else
  echo "  (cannot mount a tmpfs here: skipped)"
fi

echo; echo "## 4. Same configuration, different thread counts; a collapse"
BIOPLAUS_THREADS=1 bench run "${TS[@]}" --epochs 1 --out threads > /dev/null 2>&1
case_ "the same config at 2 threads" env BIOPLAUS_THREADS=2 bench run "${TS[@]}" --epochs 1 --out threads
case_ "BP at batch 8 (1500 batches)" bench run --algo bp --task mnist --batch-size 8 --max-batches 1500 --epochs 1 --out collapse
case_ "its leaderboard" bench leaderboard --runs collapse

echo; echo "## 5. Smaller cases"
case_ "--data-dir ''" bench run --algo bp --task mnist --data-dir "" --out small-cases
touch afile
case_ "--data-dir naming a file" bench run --algo bp --task mnist --data-dir afile --out small-cases
case_ "--val-size 60000" bench run --algo bp --task mnist --val-size 60000 --out small-cases
printf 'algos = ["bp"]\ntasks = ["mnist"]\nseeds = []\n' > empty.toml
case_ "seeds = [] in a study" bench grid --study empty.toml --out small-cases
echo "  on disk: $(ls -A small-cases 2>/dev/null | wc -l) files in small-cases"
# a background job of a script ignores SIGINT: restore it, as a terminal's Ctrl-C would find it
python -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])' \
  bench run "${TS[@]}" --epochs 3000 --max-batches 20 --out ctrlc > ctrlc.txt 2>&1 & PID=$!
until ls ctrlc/*__*.json > /dev/null 2>&1 && python -c "import json,glob,sys; sys.exit(0 if (json.load(open(glob.glob('ctrlc/*__*.json')[0])).get('epochs_done') or 0) >= 1 else 1)" 2>/dev/null; do sleep 0.2; done
kill -INT $PID; wait $PID; rc=$?
echo; echo "### Ctrl-C during a run"; grep -v " INFO " ctrlc.txt | sed 's/^/  /'; echo "  exit $rc"; status_of "$(ls ctrlc/*__*.json)"
bench grid "${LONG[@]}" --out killed > /dev/null 2>&1 & PID=$!
until ls killed/*__*.json > /dev/null 2>&1; do sleep 0.2; done; sleep 2
kill -9 $PID; sleep 3
echo; echo "### a grid killed with SIGKILL: its worker's record"; status_of "$(ls killed/*__*.json)"
mkdir corrupt && bench grid "${TS[@]}" --epochs 2 --out corrupt --executor debug > /dev/null 2>&1
R=$(ls corrupt/*__*.json); rm "$R"; echo garbage > "${R%.json}.ckpt.pt"
case_ "a grid point whose checkpoint is corrupt" bench grid "${TS[@]}" --epochs 2 --out corrupt
case_ "--max-parallel 12 on $(nproc) cores" bench grid "${TS[@]}" --epochs 1 --seeds 0,1 --out parallel --max-parallel 12
