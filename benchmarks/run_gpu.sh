#!/usr/bin/env bash
# The GPU benchmarks in one go, on a machine whose jax sees a CUDA GPU (pip install -e ".[cuda12]" or
# ".[cuda13]").  Each script writes its own section of benchmarks/RESULTS.md; logs go to $LOGS (default
# ./gpu-logs).  Usage: bash benchmarks/run_gpu.sh [agreement|batch-none|batch|flags|fit] ...  (default: all but flags)
# RESULTS.md records agreement, batch-none, batch and flags as run on an H100 (2026-11-24); fit is still owed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
LOGS=${LOGS:-gpu-logs}
mkdir -p "$LOGS"
python3 -c "import jax; assert jax.default_backend() == 'gpu', jax.devices(); print(jax.devices())"
for part in "${@:-agreement batch-none batch fit}"; do
  for p in $part; do
    case $p in
      agreement) python3 benchmarks/device_agreement.py --write 2>&1 | tee "$LOGS/device_agreement.log" ;;
      batch-none) python3 benchmarks/batch_speed.py --device gpu --extrapolation none --sizes 1 10 100 1000 \
                    --cold-above 100 2>&1 | tee "$LOGS/batch_none.log" ;;
      batch) python3 benchmarks/batch_speed.py --device gpu --sizes 10 100 --cold-above 0 2>&1 | tee "$LOGS/batch.log" ;;
      flags) python3 benchmarks/xla_flags.py --sizes 1 10 2>&1 | tee "$LOGS/xla_flags.log" ;;
      fit) python3 benchmarks/fit_speed.py --skip-pointfit 2>&1 | tee "$LOGS/fit_speed.log" ;;
      *) echo "unknown part $p" >&2; exit 2 ;;
    esac
  done
done
