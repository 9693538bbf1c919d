#!/bin/bash
# The one device run (second lease): the CUDA checks of the native engine, the CUDA decode bench, then three
# variants of nano's phase 2 (continued pretraining) trained side by side from the shipped nano.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
DEADLINE=${DEADLINE:-520}   # seconds after start by which training must end (pack and transfers follow)
T0=$(date +%s)
stamp() { echo "[t+$(( $(date +%s) - T0 ))s] $*" >&2; }
nvidia-smi 2>/dev/null --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2
python3 -c "import torch, transformers; print(torch.__version__, transformers.__version__)" >&2
DATA=/tmp/nano3; RUNS=/tmp/runs; mkdir -p $DATA/shards $RUNS
cp -r .gpu/tokenizer $DATA/ && cp .gpu/data/manifest.json $DATA/shards/
for f in .gpu/data/*.gz; do gunzip -c $f > $DATA/shards/$(basename $f .gz) & done; wait
stamp "data unpacked: $(du -sh $DATA/shards | cut -f1)"
timeout ${CHECK_TIMEOUT:-60} python3 scripts/device/cuda_check.py --model engine/assets/nano --out $RUNS/check.jsonl \
  ${CHECK_ARGS:-} 2>&1 | grep -v "Loading weights" >&2
stamp "cuda check done"
timeout ${BENCH_TIMEOUT:-110} python3 scripts/device/bench_cuda.py --out $RUNS/bench.jsonl --tokenizer $DATA/tokenizer \
  --nano engine/assets/nano --random-dtypes bfloat16 --draft-tokens 1 3 --tokens 64 ${BENCH_ARGS:-} 2>&1 \
  | grep -v "Loading weights\|Writing" >&2
stamp "bench done"
BUDGET=$(( DEADLINE - ($(date +%s) - T0) - 45 ))   # probe, load and final export come on top of the budget
[ $BUDGET -gt 300 ] && BUDGET=300
[ $BUDGET -lt 1 ] && BUDGET=1
stamp "training for $BUDGET s"
for v in A B C; do
  OMP_NUM_THREADS=4 python3 scripts/device/continue_gpu.py --variant $v --data $DATA --init-from engine/assets/nano \
    --heldout training/assets/nano-heldout/heldout.jsonl --out $RUNS/$v --budget $BUDGET ${TRAIN_ARGS:-} \
    > $RUNS/$v.log 2>&1 &
done
wait
stamp "training done"
for v in A B C; do tail -n 12 $RUNS/$v.log >&2; done
python3 scripts/device/pack.py $RUNS $OUT
stamp "packed"
ls -la $OUT >&2
