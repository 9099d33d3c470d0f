#!/usr/bin/env bash
# The GPU path in one go, on a machine with an NVIDIA GPU: a fresh venv with CUDA torch, the
# inference tests on the device (CUDA available, so the device code paths run), then
# benchmarks/bench_gpu.py (precisions, batches, region; agreement with the CPU path). Figures go
# to RESULTS_DIR (default benchmarks/results): gpu_check.txt (log and test summary) and
# inference_gpu.json. Budget: under 8 minutes on a data-centre GPU with a warm pip cache.
#
#   bash benchmarks/gpu_check.sh [RESULTS_DIR]
#
# Environment: UQSEG_GPU_VENV (default .venv-gpu), UQSEG_TORCH_INDEX (default CUDA 12.4 wheels),
# UQSEG_ACDC_DIR (the ACDC copy; a synthetic volume is used without it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(mkdir -p "${1:-$ROOT/benchmarks/results}" && cd "${1:-$ROOT/benchmarks/results}" && pwd)"
VENV="${UQSEG_GPU_VENV:-$ROOT/.venv-gpu}"
INDEX="${UQSEG_TORCH_INDEX:-https://download.pytorch.org/whl/cu124}"
LOG="$OUT/gpu_check.txt"
start=$SECONDS
cd "$ROOT"
{
  echo "gpu_check $(date -u +%Y-%m-%dT%H:%MZ)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
} | tee "$LOG"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install -q --upgrade pip
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  "$PY" -m pip install -q torch --index-url "$INDEX"
fi
"$PY" -m pip install -q -e "$ROOT" "pytest>=8"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))" | tee -a "$LOG"
echo "setup: $((SECONDS - start)) s" | tee -a "$LOG"

# Device-dependent tests: with CUDA present, "auto" picks it, so the engine's own tests (devices,
# precisions, mask streams, region, adaptive T, predict) run on the GPU. No ACDC or DICOM needed.
T=tests/napari_uqseg/inference
timeout 240 "$PY" -m pytest -q -p no:cacheprovider -m "not slow and not gui" \
  $T/test_device.py $T/test_engine.py $T/test_optimise.py $T/test_streams.py $T/test_sources.py \
  $T/test_region.py $T/test_adaptive.py $T/test_threads.py $T/test_predict.py \
  2>&1 | tail -n 15 | tee -a "$LOG" || echo "tests: FAILED" | tee -a "$LOG"
echo "tests: $((SECONDS - start)) s" | tee -a "$LOG"

timeout 240 env PYTHONPATH="$ROOT" "$PY" benchmarks/bench_gpu.py --out "$OUT/inference_gpu.json" \
  2>&1 | tail -n 60 | tee -a "$LOG"
echo "total: $((SECONDS - start)) s" | tee -a "$LOG"
