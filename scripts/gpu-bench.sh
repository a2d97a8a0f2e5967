#!/usr/bin/env bash
# The GPU-machine benchmark of BENCHMARKS.md, as one prepared script (docs/platform.md).
#   Here:            bash scripts/gpu-bench.sh pack
#   On the machine:  bash scripts/gpu-bench.sh run      (device tool: carry [".gpu"], results in $OUT)
# `pack` builds the library, its CLIs and the Node bench driver, and packs Node, the Vulkan loader,
# the builds and the runtime package they need (webgpu) into .gpu/ with scripts/gpu-pack.sh.
# `run`, on any machine with an NVIDIA GPU, PyTorch and nvidia-smi: logs the GPU's clocks every
# 100 ms for the whole run (clocks.csv; every timed row carries the time it was timed), times
# PyTorch (bench/torch_bn_bench.py) and then kernel versions 4 and 5 of this library (through Dawn)
# on the ResNet-50 and MLP shapes, both the same way (each timed batch queued behind at least a
# second of continuous GPU work, bench/timer.ts), prints the plan report beside them, and runs the
# float16 conformance cases. Predicted to take about 6 minutes on an H200 (not yet run; BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  pack)
    npm run build --silent
    npx vite build --mode bench-cli --logLevel warn
    bash scripts/gpu-pack.sh dist dist-bench node_modules/webgpu
    mkdir -p .gpu/tools && cp bench/torch_bn_bench.py .gpu/tools/
    ;;
  run)
    # Each stage writes its own file, so a failure in one leaves the others' results. Extra
    # arguments go to our float32 bench.
    shift
    out="${OUT:-gpu-results}"
    mkdir -p "$out"
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm --format=csv > "$out/gpu.txt" 2>&1 || true
    nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,utilization.gpu \
      --format=csv -lms 100 > "$out/clocks.csv" 2>&1 &
    clocks=$!
    trap 'kill $clocks 2>/dev/null || true' EXIT
    PYTHONUNBUFFERED=1 python3 .gpu/tools/torch_bn_bench.py --shapes resnet50,mlp --warm-ms 1000 > "$out/torch.txt" 2>&1 ||
      echo "torch bench failed: $?" >> "$out/torch.txt"
    torch=(); grep -q '^JSON ' "$out/torch.txt" && torch=(--torch "$out/torch.txt")
    bash .gpu/run.sh node dist-bench/cli.js --runtime node --versions 4,5 --warm-ms 1000 --reps 20 --iters 20 --dtypes f32 \
      --shapes resnet50,mlp --ops forward-train,inference,backward,train-step "${torch[@]}" \
      --json "$out/ours.json" --svg "$out/ours.svg" "$@" 2>&1 | tee "$out/ours.txt" || echo "bench failed: $?" >> "$out/ours.txt"
    bash .gpu/run.sh node dist-bench/cli.js --plan-report --fit "$out/ours.json" --json "$out/plan.json" > "$out/plan.txt" 2>&1 ||
      echo "plan report failed: $?" >> "$out/plan.txt"
    bash .gpu/run.sh node dist/cli/bn-conformance.js --dtype float16 --runtime node > "$out/f16.txt" 2>&1 ||
      echo "float16 conformance: exit $?" >> "$out/f16.txt"
    kill $clocks 2>/dev/null || true
    cat "$out/gpu.txt"; tail -n 30 "$out/torch.txt"; grep '^fit' "$out/plan.txt" | tail -n 4; tail -n 3 "$out/f16.txt"
    ;;
  *)
    echo "usage: bash scripts/gpu-bench.sh pack|run" >&2
    exit 2
    ;;
esac
