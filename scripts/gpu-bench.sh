#!/usr/bin/env bash
# The GPU-machine benchmark of BENCHMARKS.md, as one prepared script (docs/platform.md).
#   Here:            bash scripts/gpu-bench.sh pack
#   On the machine:  bash scripts/gpu-bench.sh run      (device tool: carry [".gpu"], results in $OUT)
# `run` is predicted to need about 6 minutes on an H200 (not yet run with these shapes).
# `pack` builds the library, its CLIs and the Node bench driver, and packs Node, the Vulkan loader,
# the builds and the runtime package they need (webgpu) into .gpu/ with
# scripts/gpu-pack.sh. `run` times PyTorch (bench/torch_bn_bench.py) and this library
# (through Dawn) in the same call, so the ratios compare like with like, then runs the float16
# conformance cases (bn-conformance --dtype float16) on the card.
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
    # PyTorch first (its JSON goes beside every row of ours), then ours: the ResNet-50 and MLP
    # shapes with per-dispatch profiles, the ResNet-50 training step, and the float16 cases.
    # Extra arguments go to our float32 bench. Each stage writes its own file, so a failure in one
    # leaves the others' results.
    shift
    out="${OUT:-gpu-results}"
    mkdir -p "$out"
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > "$out/gpu.txt" 2>&1 || true
    PYTHONUNBUFFERED=1 python3 .gpu/tools/torch_bn_bench.py --shapes resnet50,mlp > "$out/torch.txt" 2>&1 || echo "torch bench failed: $?" >> "$out/torch.txt"
    bash .gpu/run.sh node dist/cli/bn-conformance.js --dtype float16 --runtime node > "$out/f16.txt" 2>&1 || echo "float16 conformance: exit $?" >> "$out/f16.txt"
    set -o pipefail
    torch=(); grep -q '^JSON ' "$out/torch.txt" && torch=(--torch "$out/torch.txt")
    bash .gpu/run.sh node dist-bench/cli.js --runtime node --reps 20 --iters 20 --dtypes f32 --shapes resnet50,mlp \
      --ops forward-train,inference,backward,train-step --profile "${torch[@]}" --json "$out/ours.json" --svg "$out/ours.svg" "$@" \
      2>&1 | tee "$out/ours.txt" || echo "bench failed: $?" >> "$out/ours.txt"
    cat "$out/gpu.txt"; tail -n 30 "$out/torch.txt"; tail -n 3 "$out/f16.txt"
    ;;
  *)
    echo "usage: bash scripts/gpu-bench.sh pack|run" >&2
    exit 2
    ;;
esac
