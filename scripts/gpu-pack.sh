#!/usr/bin/env bash
# Pack what an NVIDIA GPU machine without Node needs to run this project's code through Dawn:
# this machine's Node, the Vulkan loader and GL dispatch packages, and the named project paths with
# node_modules/webgpu trimmed to linux-x64. Everything lands in .gpu/ (add it to .git/info/exclude).
# usage (from the project root): bash scripts/gpu-pack.sh PATH...          e.g. dist node_modules
# then, on the GPU machine:       bash .gpu/run.sh COMMAND...              e.g. node dist/bench.js
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: gpu-pack.sh PATH... (project paths the run needs)" >&2; exit 2; }
mkdir -p .gpu/deb /tmp/amd64/partial
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
[ -s .gpu/node.xz ] || xz -T2 -6 -c "$(command -v node)" > .gpu/node.xz
if ! ls .gpu/deb/libvulkan1_*.deb >/dev/null 2>&1; then
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update -qq
  (cd .gpu/deb && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 2>&1 | grep -v unsandboxed || true)
fi
tar cJf .gpu/app.tar.xz \
  --exclude='node_modules/webgpu/dist/darwin-*' --exclude='node_modules/webgpu/dist/win32-*' \
  --exclude='node_modules/webgpu/dist/linux-arm64' --exclude='node_modules/.cache' \
  --exclude='node_modules/playwright-core' --exclude='node_modules/@vitest' \
  "$@"
cat > .gpu/run.sh <<'RUN'
#!/usr/bin/env bash
# On the GPU machine, from the project root: unpack and run COMMAND with Node and the NVIDIA Vulkan driver.
set -e
for f in .gpu/deb/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
mkdir -p /tmp/gpubin && xz -dc .gpu/node.xz > /tmp/gpubin/node && chmod +x /tmp/gpubin/node
export PATH=/tmp/gpubin:$PATH
tar xJf .gpu/app.tar.xz
exec "$@"
RUN
chmod +x .gpu/run.sh
du -sh .gpu; echo "name .gpu in carry, and stay under 64 MiB for everything that travels"
