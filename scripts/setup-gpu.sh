#!/usr/bin/env bash
# The GPU part of `scripts/setup.sh --gpu` (`make gpu`), run after the CPU set-up: installs libtorch
# with CUDA and ONNX Runtime's CUDA provider from PyPI, every wheel pinned by sha256, builds the GPU
# dfd, writes vendor/gpu-env.sh to run it, and prints what it found on this machine.
#
# - vendor/python-gpu: a virtual environment with torch 2.9.0 (the default PyPI wheel is the CUDA
#   12.8 build of libtorch) and its nvidia-* wheels (scripts/gpu-requirements.txt). torch 2.9.0
#   exactly: burn 0.22.1's `tch` backend is built on tch 0.22.0, which is libtorch 2.9.0's API.
# - vendor/onnxruntime-gpu: onnxruntime-gpu 1.31.1 (the version of the CPU library the default
#   set-up installs) with its CUDA 13 and cuDNN wheels (scripts/gpu-ort-requirements.txt), apart
#   from the venv because its cuDNN wheel installs the same file names as torch's.
# - target/gpu/release/dfd: dfd built with `--features tch` against that libtorch, in a target
#   folder of its own so that the CPU build in target/release stays as it is.
#
# Both lists come from scripts/gpu-pins.py, which reads the hashes from PyPI's JSON API and
# checks that each list holds every wheel its wheels require. About 5.5 GB of downloads.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENDOR=$ROOT/vendor
TORCH_VENV=$VENDOR/python-gpu
ORT_DIR=$VENDOR/onnxruntime-gpu
ORT_LIB=$ORT_DIR/onnxruntime/capi/libonnxruntime.so.1.31.1
GPU_TARGET=$ROOT/target/gpu
ENV_FILE=$VENDOR/gpu-env.sh

log() { printf 'setup --gpu: %s\n' "$*" >&2; }

# --- What the pinned wheels need ---------------------------------------------------------------------
if [[ $(uname -s) != Linux || $(uname -m) != x86_64 ]]; then
  log "the pinned wheels are Linux x86_64 ones; this is $(uname -s) $(uname -m)"
  exit 1
fi
if ! python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  log "the pinned wheels are CPython 3.11's (Debian 12's python3); python3 here is $(python3 --version 2>&1)"
  exit 1
fi

# --- Wheels, each pinned by sha256 -----------------------------------------------------------------
# A stamp holds the sha256 of the requirements file an install was made from: a changed pin
# reinstalls, an unchanged one is quick. pip refuses any wheel whose hash differs, and any
# requirement the file does not pin (--require-hashes).
installed() { # stamp requirements
  [[ -f $1 ]] && [[ $(cat "$1") == $(sha256sum "$2" | cut -d' ' -f1) ]]
}

TORCH_REQ=$ROOT/scripts/gpu-requirements.txt
if ! installed "$TORCH_VENV/.dfd-requirements" "$TORCH_REQ"; then
  log "installing torch 2.9.0 (CUDA 12.8) and its nvidia-* wheels into $TORCH_VENV (about 4.1 GB)"
  rm -rf "$TORCH_VENV"
  python3 -m venv "$TORCH_VENV"
  "$TORCH_VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir \
    --require-hashes --only-binary=:all: -r "$TORCH_REQ"
  sha256sum "$TORCH_REQ" | cut -d' ' -f1 >"$TORCH_VENV/.dfd-requirements"
fi

ORT_REQ=$ROOT/scripts/gpu-ort-requirements.txt
if ! installed "$ORT_DIR/.dfd-requirements" "$ORT_REQ"; then
  log "installing onnxruntime-gpu 1.31.1 and its CUDA 13 / cuDNN wheels into $ORT_DIR (about 1.5 GB)"
  rm -rf "$ORT_DIR"
  "$TORCH_VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir \
    --require-hashes --only-binary=:all: --target "$ORT_DIR" -r "$ORT_REQ"
  sha256sum "$ORT_REQ" | cut -d' ' -f1 >"$ORT_DIR/.dfd-requirements"
fi
[[ -f $ORT_LIB ]] || { log "onnxruntime-gpu has no $ORT_LIB"; exit 1; }

# --- Library paths ---------------------------------------------------------------------------------
# torch/lib (libtorch) first, then the nvidia-* libraries of torch's CUDA 12.8, then ONNX Runtime's
# CUDA 13 ones: where both ship a file of one name (libcudnn.so.9), the one libtorch was built with
# is found first.
TORCH_LIB=$("$TORCH_VENV/bin/python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
lib_dirs() { # site-packages folder: its nvidia/*/lib folders, one per line
  find "$1/nvidia" -mindepth 2 -maxdepth 3 -type d -name lib 2>/dev/null | sort
}
SITE=$("$TORCH_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
GPU_LD_PATH=$TORCH_LIB
while read -r dir; do GPU_LD_PATH+=:$dir; done < <(lib_dirs "$SITE"; lib_dirs "$ORT_DIR")

# --- The GPU dfd -----------------------------------------------------------------------------------
# burn-tch's and torch-sys's build scripts ask the venv's python where libtorch is
# (LIBTORCH_USE_PYTORCH), so the venv goes first on PATH.
log "building dfd with --features tch into $GPU_TARGET (about 10 minutes the first time)"
(
  export VIRTUAL_ENV=$TORCH_VENV PATH=$TORCH_VENV/bin:$PATH LIBTORCH_USE_PYTORCH=1
  export LD_LIBRARY_PATH=$GPU_LD_PATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  cargo build --release -p dfd-pipeline --features tch --target-dir "$GPU_TARGET"
)

# --- vendor/gpu-env.sh -----------------------------------------------------------------------------
cat >"$ENV_FILE" <<EOF
#!/usr/bin/env bash
# Written by scripts/setup.sh --gpu. The environment of the GPU dfd: libtorch and its CUDA
# libraries on LD_LIBRARY_PATH, ONNX Runtime's GPU library as ORT_DYLIB_PATH (paths.onnxruntime),
# and target/gpu/release first on PATH. Source it (. vendor/gpu-env.sh), or run a command in it:
#   vendor/gpu-env.sh dfd --set train.device=cuda run
# NVIDIA_TF32_OVERRIDE=0 keeps cuBLAS and cuDNN from computing float32 work in TF32 (10-bit
# mantissas) on Ampere and Hopper GPUs, so that GPU results stay near the CPU's; unset it to trade
# that for speed (see the README's "GPU" section).
export LD_LIBRARY_PATH="$GPU_LD_PATH\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export ORT_DYLIB_PATH="$ORT_LIB"
export PATH="$GPU_TARGET/release:\$PATH"
export NVIDIA_TF32_OVERRIDE=\${NVIDIA_TF32_OVERRIDE-0}
if [[ \${BASH_SOURCE[0]} == "\$0" ]]; then
  if [[ \$# == 0 ]]; then
    echo "usage: . \$0 (then dfd ...), or \$0 COMMAND [ARGS...]" >&2
    exit 2
  fi
  exec "\$@"
fi
EOF
chmod +x "$ENV_FILE"

# --- What this machine offers ----------------------------------------------------------------------
if command -v nvidia-smi >/dev/null && nvidia-smi >/dev/null 2>&1; then
  log "nvidia-smi:"
  nvidia-smi >&2
else
  log "no NVIDIA driver (nvidia-smi is missing or fails): the GPU dfd is built, but only \"cpu\" will run here"
fi
log "libtorch sees:"
LD_LIBRARY_PATH=$GPU_LD_PATH "$TORCH_VENV/bin/python" - <<'EOF' >&2 || log "torch could not be imported"
import torch
print(f"  torch {torch.__version__}, built with CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
count = torch.cuda.device_count()
print(f"  CUDA available: {torch.cuda.is_available()}, {count} device(s)")
for i in range(count):
    print(f"  cuda:{i}: {torch.cuda.get_device_name(i)}, compute capability {torch.cuda.get_device_capability(i)}")
EOF
log "ONNX Runtime's GPU library: $ORT_LIB"
log "ready: target/gpu/release/dfd; run it through vendor/gpu-env.sh, with train.device / score.device = \"cuda\""
