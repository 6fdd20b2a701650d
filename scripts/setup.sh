#!/usr/bin/env bash
# Sets up a fresh Debian machine for cliplab: system packages, then the exact npm dependency tree.
# Safe to run again; apt-get runs only when a package is missing. environment.md explains each piece.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  dataset-fashion-mnist   # real training images: /usr/share/datasets/fashion-mnist
  python3-torch           # the PyTorch peer that `npm run bench` measures against (never used by tests)
  libopenblas0-openmp     # the BLAS behind cliplab's native matrix kernels (src/backend/blas.ts), and PyTorch's: without it Debian's torch uses the reference BLAS
  jupyter-nbconvert       # runs the notebooks headless (npm run notebooks, and the test suite)
  jupyter-client          # talks to the tslab kernel
  jupyter-notebook        # the notebook front end a person opens in a browser (npm run lab); Debian has no JupyterLab
  chromium                # opens every report and executed notebook to check that its figures render
  gcc                     # builds cliplab's optional fused CPU kernels (scripts/build-native.sh)
  libc6-dev               # the C headers gcc needs for that
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "setup: Node.js 20 or newer is needed, found $(node --version)" >&2
  exit 1
fi

# tfjs-node-gpu is optional: its install downloads libtensorflow, which fails without internet,
# and npm then drops it; cliplab falls back to the WASM backend.
# onnxruntime-node ships its CPU library in the package; its install script would fetch CUDA parts
# from a host a closed network cannot reach, so skip that step (the CPU engine needs none of it).
ONNXRUNTIME_NODE_INSTALL=skip ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm ci --no-audit --no-fund

# cliplab's fused CPU kernels (attention, LayerNorm, GELU, ...): a small C library, optional.
bash scripts/build-native.sh || echo "setup: the fused kernels were not built; cliplab runs those ops as tfjs kernels" >&2

# The Jupyter kernelspec that starts tslab in this repository (JUPYTER_PATH=$PWD/.jupyter).
node scripts/install-kernel.js
