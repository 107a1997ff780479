#!/usr/bin/env bash
# The GPU benchmarks in one go, on a machine whose jax sees a CUDA GPU (pip install -e ".[cuda12]" or
# ".[cuda13]").  Each script writes its own section of benchmarks/RESULTS.md; logs go to $LOGS (default
# ./gpu-logs).  Usage: bash benchmarks/run_gpu.sh [agreement|batch-none|batch|flags|fit|robustness] ...
# (default: all but flags)
# RESULTS.md records every part as run on an H100 (sessions 7 and 10), but K = 1000 warm (see "gpu-notes").
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
LOGS=${LOGS:-gpu-logs}
mkdir -p "$LOGS"
python3 -c "import jax; assert jax.default_backend() == 'gpu', jax.devices(); print(jax.devices())"
for part in "${@:-agreement batch-none batch fit robustness}"; do
  for p in $part; do
    case $p in
      agreement) python3 benchmarks/device_agreement.py --write 2>&1 | tee "$LOGS/device_agreement.log" ;;
      batch-none) python3 benchmarks/batch_speed.py --device gpu --extrapolation none --sizes 1 10 100 1000 \
                    --cold-above 100 2>&1 | tee "$LOGS/batch_none.log" ;;
      batch) python3 benchmarks/batch_speed.py --device gpu --sizes 10 100 --cold-above 0 2>&1 | tee "$LOGS/batch.log" ;;
      flags) python3 benchmarks/xla_flags.py --sizes 1 10 2>&1 | tee "$LOGS/xla_flags.log" ;;
      fit) python3 benchmarks/fit_speed.py --skip-pointfit --stock-methods vectorized 2>&1 | tee "$LOGS/fit_speed.log" ;;
      robustness) python3 benchmarks/robustness.py --device gpu --batch-size 200 --write 2>&1 | tee "$LOGS/robustness.log" ;;
      *) echo "unknown part $p" >&2; exit 2 ;;
    esac
  done
done
