#!/usr/bin/env bash
# The GPU-machine benchmark of BENCHMARKS.md, as one prepared script (docs/platform.md).
#   Here:            bash scripts/gpu-bench.sh pack
#   On the machine:  bash scripts/gpu-bench.sh run      (device tool: carry [".gpu"], results in $OUT)
# `pack` builds the library, its CLIs and the Node bench driver, and packs Node, the Vulkan loader,
# the builds and their two runtime packages (webgpu, wgsl_reflect) into .gpu/ with
# scripts/gpu-pack.sh. `run` times PyTorch (bench/torch_bn_bench.py) and this library
# (through Dawn) in the same call, so the ratios compare like with like, then runs the float16
# conformance cases (bn-conformance --dtype float16) on the card.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  pack)
    npm run build --silent
    npx vite build --mode bench-cli --logLevel warn
    bash scripts/gpu-pack.sh dist dist-bench node_modules/webgpu node_modules/wgsl_reflect
    mkdir -p .gpu/tools && cp bench/torch_bn_bench.py .gpu/tools/
    ;;
  run)
    # Extra arguments go to the float32 bench (default: every kernel version, 20 reps of 20 ops).
    # The float16 conformance cases run before the benches, and the float16 bench (version 4)
    # runs on its own after the float32 one, so a failure in one leaves the others' results.
    shift
    out="${OUT:-gpu-results}"
    mkdir -p "$out"
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > "$out/gpu.txt" 2>&1 || true
    PYTHONUNBUFFERED=1 python3 .gpu/tools/torch_bn_bench.py > "$out/torch.txt" 2>&1 || echo "torch bench failed: $?" >> "$out/torch.txt"
    bash .gpu/run.sh node dist/cli/bn-conformance.js --dtype float16 --runtime node > "$out/f16.txt" 2>&1 || echo "float16 conformance failed: $?" >> "$out/f16.txt"
    set -o pipefail
    bash .gpu/run.sh node dist-bench/cli.js --runtime node --reps 20 --iters 20 --dtypes f32 --json "$out/ours.json" --svg "$out/ours.svg" "$@" \
      2>&1 | tee "$out/ours.txt" || echo "bench failed: $?" >> "$out/ours.txt"
    bash .gpu/run.sh node dist-bench/cli.js --runtime node --reps 20 --iters 20 --dtypes f16 --versions 4 --json "$out/ours-f16.json" --svg /tmp/ours-f16.svg \
      2>&1 | tee "$out/ours-f16.txt" || echo "bench failed: $?" >> "$out/ours-f16.txt"
    cat "$out/gpu.txt"; tail -n 25 "$out/torch.txt"; tail -n 3 "$out/f16.txt"
    ;;
  *)
    echo "usage: bash scripts/gpu-bench.sh pack|run" >&2
    exit 2
    ;;
esac
