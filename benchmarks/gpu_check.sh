#!/usr/bin/env bash
# The GPU checks, in one script (about 5 minutes on one GPU): the rule contract on CUDA (every rule x
# architecture: one step, every tensor on the GPU), the epoch-time benchmark of BP, DTP, L-DRL and FW-DTP on the
# MNIST MLP and on LeNet (batch 256, the LeNet configurations' batch; FW-DTP is MLP-only) with the device named,
# the harness against a minimal PyTorch loop, the MLP benchmark with --compile (CUDA inductor), and one
# end-to-end `bench run` of L-DRL on CUDA (one epoch, angle to BP measured). Output: gpu_check.txt in
# $OUT (or .). Needs the MNIST files (BIOPLAUS_DATA) and a CUDA build of torch; PYTHON picks the interpreter.
set -uo pipefail
py="${PYTHON:-$(command -v python || command -v python3)}"
out="${OUT:-.}/gpu_check.txt"
{
  date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  "$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
  echo "== rule contract on CUDA"
  "$py" -m pytest -q -p no:cacheprovider tests/test_contract.py -k "cuda" 2>&1 | tail -3
  echo "== epoch time, MLP"
  timeout 150 "$py" benchmarks/epoch_time.py --device cuda --arch mlp --algos bp,dtp,l-drl,fw-dtp --epochs 2
  echo "== epoch time, LeNet"
  timeout 200 "$py" benchmarks/epoch_time.py --device cuda --arch lenet --algos bp,dtp,l-drl --epochs 2 --batch-size 256
  echo "== harness against a minimal PyTorch loop (BP, MLP)"
  timeout 60 "$py" benchmarks/harness_overhead.py --device cuda
  echo "== epoch time, MLP, --compile (compile time is in epoch 1, reported apart)"
  timeout 150 "$py" benchmarks/epoch_time.py --device cuda --arch mlp --algos bp,l-drl --epochs 2 --compile
  echo "== end to end: bench run l-drl, MNIST, 1 epoch, CUDA"
  timeout 120 "$py" -m bioplaus_bench run --algo l-drl --task mnist --epochs 1 --device cuda --angle-every 200 \
    --out "${OUT:-.}/gpu_runs"
} 2>&1 | tee "$out"
