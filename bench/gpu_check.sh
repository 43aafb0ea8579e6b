#!/usr/bin/env bash
# The GPU checks, on one device (e.g. an H200), in under 8 minutes:
#   * real-size random-weight bf16 encode throughput, peak memory and MFU of the four seed families;
#   * a real-size bf16 GradCache training step at global batch 256 (LoRA r=8), with its peak memory,
#     against a plain step over one chunk.
# Results: bench/results/gpu_encoders.json and bench/results/gpu_train_step.json.
#   bash bench/gpu_check.sh            (PEAK_TFLOPS=989 for an H200; set it for another device)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
PEAK_TFLOPS=${PEAK_TFLOPS:-989}
FAMILIES=(llava_next qwen2_5_vl lavida mmada)
$PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: this script checks the GPU paths')"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
timeout 240 $PY bench/bench_encoders.py --size real --device cuda --dtype bf16 --batch 16 --repeats 5 \
  --families "${FAMILIES[@]}" --peak-tflops "$PEAK_TFLOPS" --out bench/results/gpu_encoders.json
timeout 300 $PY bench/bench_train_step.py --size real --device cuda --batch 256 --chunk 16 --image-side 336 \
  --gradient-checkpointing --families "${FAMILIES[@]}" --out bench/results/gpu_train_step.json
echo "wrote bench/results/gpu_encoders.json bench/results/gpu_train_step.json"
