#!/usr/bin/env bash
# The GPU checks, in one script (under 5 minutes on one GPU): the rule contract on CUDA (every rule x
# architecture: one step, every tensor on the GPU), then the epoch-time benchmark of BP, DTP, L-DRL and FW-DTP
# on the MNIST MLP and on LeNet (FW-DTP is MLP-only) with the device named. Output: gpu_check.txt in $OUT (or .).
# Needs the MNIST files (BIOPLAUS_DATA) and a CUDA build of torch.
set -euo pipefail
out="${OUT:-.}/gpu_check.txt"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
  python -m pytest -q -p no:cacheprovider tests/test_contract.py -k "cuda" 2>&1 | tail -3
  python benchmarks/epoch_time.py --device cuda --arch mlp --algos bp,dtp,l-drl,fw-dtp --epochs 2
  python benchmarks/epoch_time.py --device cuda --arch lenet --algos bp,dtp,l-drl --epochs 2
} 2>&1 | tee "$out"
