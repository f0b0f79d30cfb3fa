#!/usr/bin/env bash
# Installs the opt-in peers of `npm run bench` outside the project (they are never dependencies: `npm ci`
# does not need them). bench/peers/onnx.ts and bench/peers/torch.ts look for them where this puts them.
#
#   bash scripts/install-bench-peers.sh [--torch] [DIR]
#
# onnxruntime-node goes to DIR/node_modules (default ~/.cache/deepsentry-peers; a DIR elsewhere must be given
# to the bench as DEEPSENTRY_PEERS_DIR=DIR). Its install script downloads the CUDA execution provider's
# binaries, which fails offline; the CPU build used by the bench is inside the npm package, so the download is
# skipped (ONNXRUNTIME_NODE_INSTALL=skip).
# --torch also installs PyTorch from the system packages (Debian/Ubuntu, as root): python3-torch for
# /usr/bin/python3, and OpenBLAS in place of the reference BLAS python3-torch pulls in. With torch installed
# some other way, point DEEPSENTRY_PYTHON at the interpreter that imports it.
set -euo pipefail
TORCH=0
if [ "${1:-}" = "--torch" ]; then TORCH=1; shift; fi
DIR=${1:-$HOME/.cache/deepsentry-peers}
ORT_VERSION=${ORT_VERSION:-1.30.0}
mkdir -p "$DIR"
cd "$DIR"
[ -f package.json ] || echo '{ "name": "deepsentry-bench-peers", "private": true }' > package.json
ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund "onnxruntime-node@$ORT_VERSION"
if [ "$TORCH" = 1 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "--torch: no apt-get here; install PyTorch for a python3 and set DEEPSENTRY_PYTHON to it" >&2
    exit 2
  fi
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y python3-torch libopenblas0-openmp
fi
echo "onnxruntime-node $ORT_VERSION installed in $DIR"
[ "$DIR" = "$HOME/.cache/deepsentry-peers" ] || echo "run the bench with DEEPSENTRY_PEERS_DIR=$DIR"
