#!/usr/bin/env bash
# The packed engine's GPU checks, in one go (about 3 minutes on one H100; each step is time-boxed so the
# whole script ends within 5 minutes even when a step hangs):
#   1. the gpu-marked tests of tests/unit/test_packed.py (CUDA eager vs CPU, CUDA graphs vs eager, graphs
#      with dropout, early stopping and a requeue);
#   2. the benchmark at a pack of 100 on CUDA, sinewave (the seed's evaluation) and Fashion-MNIST (1 epoch),
#      per-individual Lightning timed on 3 of the 100 candidates, the packed engine with and without CUDA graphs.
# Usage, from the repository root: bash tests/bench/gpu_check.sh [OUT_DIR]   (default OUT_DIR: $OUT or .)
# Every step's output goes to the terminal and to OUT_DIR/gpu_check-*.log; the summary at the end has each
# benchmark's rates and ratio lines. Needs Debian's dataset-fashion-mnist files for step 2b (else it is skipped).
set -u
cd "$(dirname "$0")/../.."
OUT_DIR="${1:-${OUT:-.}}"
mkdir -p "$OUT_DIR"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python
export PYTHONUNBUFFERED=1

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    echo "=== $name (limit ${limit}s): $*"
    local start=$SECONDS
    timeout --signal=INT --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUT_DIR/gpu_check-$name.log"
    local rc=${PIPESTATUS[0]}
    echo "=== $name: exit $rc after $((SECONDS - start)) s"
    echo "$name exit=$rc seconds=$((SECONDS - start))" >> "$OUT_DIR/gpu_check-summary.txt"
}

: > "$OUT_DIR/gpu_check-summary.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$OUT_DIR/gpu_check-summary.txt"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())" \
    2>&1 | tee -a "$OUT_DIR/gpu_check-summary.txt"

step tests 70 "$PY" -m pytest tests/unit/test_packed.py -m gpu -q -p no:cacheprovider -rA
step sinewave 95 "$PY" tests/bench/packed.py --device cuda --pack 100 --task sinewave --lightning-sample 3
if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    step fashion_mnist 95 "$PY" tests/bench/packed.py --device cuda --pack 100 --task fashion_mnist \
        --lightning-sample 3
else
    echo "fashion_mnist skipped: no /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist)" \
        | tee -a "$OUT_DIR/gpu_check-summary.txt"
fi

echo "=== summary"
for name in sinewave fashion_mnist; do
    log="$OUT_DIR/gpu_check-$name.log"
    [ -f "$log" ] && grep -E "^(task=|lightning:|packed|ratio=)" "$log" | sed "s/^/$name: /" \
        >> "$OUT_DIR/gpu_check-summary.txt"
done
grep -E "passed|failed|error" "$OUT_DIR/gpu_check-tests.log" | tail -1 | sed "s/^/tests: /" \
    >> "$OUT_DIR/gpu_check-summary.txt"
cat "$OUT_DIR/gpu_check-summary.txt"
