#!/usr/bin/env bash
# Scoring benchmark on a GPU machine, in one command: set up an environment, check that ONNX
# Runtime can really use CUDA, then run `streamrec bench-scoring` ranking exactly and through
# the item index (ann), at batch 1 (p50/p99 latency, CPU per user) and at batch 256
# (users/s), on CPU and on CUDA, and print the table (docs/performance.md, "Retrieval, then
# ranking").
#
#   devtools/gpu_bench.sh MODEL_DIR                  # on a machine with an NVIDIA GPU
#   devtools/gpu_bench.sh --benchmark ../shared/data/diginetica MODEL_DIR   # real sessions
#   devtools/gpu_bench.sh --train ../shared/data/diginetica   # no model yet: train one first
#   devtools/gpu_bench.sh --cpu MODEL_DIR            # the same benchmark on CPU only
#
# Options:
#   --cpu              CPU only: no CUDA libraries, no CUDA check (what the tests run)
#   --no-setup         use $PYTHON (default .venv/bin/python) as it is: no venv, no pip
#   --faiss-gpu        also replace faiss-cpu by the faiss-gpu-cu12 wheel, so that the ann
#                      search runs on the GPU too (exact flat search; faiss GPU has no HNSW)
#   --train DATA_DIR   train a model on DATA_DIR first (streamrec train, TRAIN_MINUTES of
#                      training loop, default 10) into var/gpu_bench/model, and draw the
#                      histories from DATA_DIR's test prefixes
#   --benchmark DIR    draw the histories from DIR's test prefixes (default: random items)
#   --calls N          batch-1 calls timed (default 1000)
#   --batch N          throughput batch (default 256)
#   --batch-calls N    throughput calls timed (default 20)
#   --candidates N     ann: items retrieved per user (default: serving's)
#   --ef-search N      ann: HNSW search breadth (default: = candidates)
#   --json             print the report as JSON instead of the table
#
# Environment: VENV (default .venv-gpu), PYTHON (with --no-setup), BASE_PYTHON (the
# interpreter the venv is made from, default python3.11), TRAIN_MINUTES.
# Exit status: 0 done; 1 the benchmark failed; 2 bad usage or CUDA not usable.
set -euo pipefail

cd "$(dirname "$0")/.."
cpu_only=0 setup=1 faiss_gpu=0 train_data="" model="" json=()
calls=1000 batch=256 batch_calls=20 candidates=() ef_search=() benchmark=""
while (($#)); do
    case "$1" in
        --cpu) cpu_only=1 ;;
        --no-setup) setup=0 ;;
        --faiss-gpu) faiss_gpu=1 ;;
        --train) train_data="$2"; shift ;;
        --calls) calls="$2"; shift ;;
        --batch) batch="$2"; shift ;;
        --batch-calls) batch_calls="$2"; shift ;;
        --candidates) candidates=(--candidates "$2"); shift ;;
        --ef-search) ef_search=(--ef-search "$2"); shift ;;
        --benchmark) benchmark="$2"; shift ;;
        --json) json=(--json) ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "gpu_bench: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) model="$1" ;;
    esac
    shift
done
if [[ -z "$model" && -z "$train_data" ]]; then
    echo "gpu_bench: give a MODEL_DIR or --train DATA_DIR (see --help)" >&2
    exit 2
fi

if ((setup)); then
    VENV="${VENV:-.venv-gpu}"
    if [[ ! -x "$VENV/bin/python" ]]; then
        "${BASE_PYTHON:-python3.11}" -m venv "$VENV"
    fi
    PYTHON="$VENV/bin/python"
    "$PYTHON" -m pip install --quiet --upgrade pip
    "$PYTHON" -m pip install --quiet -e ".[train]"
    if ((!cpu_only)); then
        # the CUDA and cuDNN libraries ONNX Runtime loads, as wheels (no system CUDA needed)
        "$PYTHON" -m pip install --quiet "onnxruntime-gpu[cuda,cudnn]==1.31.1"
        if ((faiss_gpu)); then
            "$PYTHON" -m pip uninstall --quiet -y faiss-cpu
            "$PYTHON" -m pip install --quiet faiss-gpu-cu12
        fi
    fi
else
    PYTHON="${PYTHON:-.venv/bin/python}"
fi

if ((!cpu_only)); then
    # make the pip-installed NVIDIA libraries (nvidia/*/lib) loadable by soname
    nvidia_libs="$("$PYTHON" - <<'EOF'
import glob, os, site
dirs = []
for root in site.getsitepackages():
    dirs += sorted(glob.glob(os.path.join(root, "nvidia", "*", "lib")))
print(":".join(dirs))
EOF
)"
    export LD_LIBRARY_PATH="${nvidia_libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    if ! "$PYTHON" -c "import sys; from models.serving import cuda_usable; sys.exit(0 if cuda_usable() else 1)"; then
        echo "gpu_bench: ONNX Runtime cannot use CUDA here (providers, driver and libraries:)" >&2
        "$PYTHON" -c "import onnxruntime as o; print('  providers:', o.get_available_providers())" >&2 || true
        command -v nvidia-smi >/dev/null && nvidia-smi -L >&2 || echo "  no nvidia-smi" >&2
        echo "  run with --cpu for the CPU figures only" >&2
        exit 2
    fi
    device=auto  # CPU rows, then CUDA rows
else
    device=cpu
fi
# one thread everywhere, as the worker scores: ONNX Runtime is told by bench-scoring, faiss
# by models.retrieval, BLAS here
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

if [[ -n "$train_data" ]]; then
    model="${model:-var/gpu_bench/model}"
    benchmark="${benchmark:-$train_data}"
    "$PYTHON" -m streams.cli train --benchmark "$train_data" --out "$model" \
        --max-minutes "${TRAIN_MINUTES:-10}" --no-progress
fi
histories=()
if [[ -n "$benchmark" ]]; then
    histories=(--benchmark "$benchmark")
fi

"$PYTHON" -m streams.cli bench-scoring --model "$model" --device "$device" \
    --retrieval exact,ann --calls "$calls" --batch "$batch" --batch-calls "$batch_calls" \
    "${candidates[@]}" "${ef_search[@]}" "${histories[@]}" "${json[@]}"
