#!/bin/bash
# The one device run: three nano variants trained side by side on the GPU, then the CUDA decode bench.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
BUDGET=${BUDGET:-330}
T0=$(date +%s)
stamp() { echo "[t+$(( $(date +%s) - T0 ))s] $*" >&2; }
nvidia-smi 2>/dev/null --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2
python3 -c "import torch, transformers; print(torch.__version__, transformers.__version__)" >&2
DATA=/tmp/nano2; mkdir -p $DATA/shards /tmp/runs
cp -r .gpu/tokenizer $DATA/ && cp .gpu/data/manifest.json $DATA/shards/
for f in .gpu/data/*.gz; do gunzip -c $f > $DATA/shards/$(basename $f .gz) & done; wait
stamp "data unpacked: $(du -sh $DATA/shards | cut -f1)"
for v in A B C; do
  OMP_NUM_THREADS=4 python3 scripts/device/nano_gpu.py --variant $v --data $DATA --out /tmp/runs/$v --budget $BUDGET ${TRAIN_ARGS:-} > /tmp/runs/$v.log 2>&1 &
done
wait
stamp "training done"
for v in A B C; do tail -n 3 /tmp/runs/$v.log >&2; done
timeout 120 python3 scripts/device/bench_cuda.py --out /tmp/runs/bench.jsonl --tokenizer $DATA/tokenizer --nano /tmp/runs/A/model /tmp/runs/C/model ${BENCH_ARGS:-} 2>&1 | grep -v "Loading weights\|Writing" >&2
stamp "bench done"
python3 scripts/device/pack.py /tmp/runs $OUT
stamp "packed"
ls -la $OUT >&2
