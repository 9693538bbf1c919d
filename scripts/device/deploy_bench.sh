#!/bin/bash
# One device run for docs/deploy.md (prepared; not run yet: no GPU was lent to the session that wrote it).
# A MiMo-7B-shaped model with random bf16 weights, decode tokens/s with and without MTP at batch 1 and 16:
# through vLLM (when the machine has it; the lent machines' image does not) and through our native CUDA engine.
# Call with a timeout of about 540 s; figures land in $OUT/deploy_bench.jsonl (copy them into docs/benchmarks.md).
set -u
PY=${PYTHON:-python3}  # the device image's python3 holds torch; here: PYTHON=.venv/bin/python
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false VLLM_NO_USAGE_STATS=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
T0=$(date +%s)
stamp() { echo "[t+$(( $(date +%s) - T0 ))s] $*" >&2; }
nvidia-smi 2>/dev/null --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2
$PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" >&2
$PY -c "import vllm; print('vllm', vllm.__version__)" >&2 2>/dev/null || echo "vllm: not installed" >&2
timeout ${BENCH_TIMEOUT:-480} $PY scripts/device/deploy_bench.py --out "$OUT/deploy_bench.jsonl" ${BENCH_ARGS:-} \
  2>&1 | grep -v "Loading weights\|Writing" >&2
stamp "bench done"
ls -la "$OUT" >&2
