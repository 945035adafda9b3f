#!/usr/bin/env bash
# Builds the GPU proof (stages/models/examples/gpu_proof.rs) for the lent GPU machine, and prints
# the one command to run there. Run it here, on a machine with the network; the GPU machine has no
# network and no Rust, but PyTorch 2.11.0+cu130 under its python3 (see the device tool's notes).
#
#   bench/gpu-proof.sh            # build target/gpu-proof/bin/gpu_proof (stripped), print the command
#
# The binary is built with dfd-models' `tch` feature against torch 2.11.0's headers and libraries
# (the PyPI wheel, installed without its nvidia-* wheels into a venv outside the repository), and
# runs on the GPU machine against that machine's torch/lib. burn 0.22.1's `tch` backend is written
# for libtorch 2.9.0 (tch 0.22.0), so torch-sys's version check is bypassed
# (LIBTORCH_BYPASS_VERSION_CHECK=1). How far that is sound: torch-sys compiles its C shim from
# source against the headers of the libtorch it links, so every libtorch function it calls is
# type-checked against 2.11's declarations (a removed or changed signature is a build error, not a
# crash) and the ABI is the one of the libraries loaded at run time, the same 2.11 build on both
# machines. What the compiler cannot see is an operator whose behaviour changed between 2.9 and
# 2.11 with the same signature; the proof's CPU-against-GPU comparison runs inside one libtorch,
# so such a change would not show there either. The set-up (`make gpu`) installs torch 2.9.0,
# the version the backend is written for.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TORCH_VERSION=2.11.0
VENV=${GPU_PROOF_VENV:-${TMPDIR:-/tmp}/dfd-gpu-proof-torch-$TORCH_VERSION}
TARGET=$ROOT/target/gpu-proof
OUT_BIN=$TARGET/bin/gpu_proof

log() { printf 'gpu-proof: %s\n' "$*" >&2; }

# torch 2.11.0's Linux x86_64 wheel, without its nvidia-* wheels: only its headers and libraries
# are linked against (the CUDA libraries they need are the GPU machine's). Not `import`ed: without
# the nvidia-* wheels it cannot be, so torch-sys is pointed at the folder (LIBTORCH) instead of
# asking python (LIBTORCH_USE_PYTORCH).
if [[ ! -f $VENV/.done ]]; then
  log "installing torch==$TORCH_VERSION (no dependencies) into $VENV (about 1 GB)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    "torch==$TORCH_VERSION"
  touch "$VENV/.done"
fi
TORCH_DIR=$(find "$VENV/lib" -maxdepth 3 -type d -name torch -path '*site-packages*' | head -n1)
[[ -f $TORCH_DIR/lib/libtorch_cuda.so ]] || {
  log "$TORCH_DIR/lib has no libtorch_cuda.so: not a CUDA build of torch"
  exit 1
}

log "building the gpu_proof example against $TORCH_DIR"
(
  export LIBTORCH=$TORCH_DIR LIBTORCH_CXX11_ABI=1 LIBTORCH_BYPASS_VERSION_CHECK=1
  # libtorch_cuda.so needs the CUDA libraries of the nvidia-* wheels, not installed here: the
  # linker leaves their symbols to the GPU machine's libraries (found through torch/lib's RUNPATH).
  export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,--allow-shlib-undefined"
  cargo build --release -p dfd-models --features tch --example gpu_proof --target-dir "$TARGET"
)
mkdir -p "$(dirname "$OUT_BIN")"
cp "$TARGET/release/examples/gpu_proof" "$OUT_BIN"
strip "$OUT_BIN"
log "$OUT_BIN: $(du -h "$OUT_BIN" | cut -f1) (the device run carries at most 64 MiB with the tree)"

# The device run: torch/lib of the machine's python3 on LD_LIBRARY_PATH, the proof with TF32 off
# (NVIDIA_TF32_OVERRIDE=0), then on (libtorch's default for cuDNN convolutions), nvidia-smi first.
cat <<'EOF'
run(carry=["target/gpu-proof/bin"], timeout_s=420, command=
  'set -x; nvidia-smi | tee $OUT/nvidia-smi.txt;
   TORCH_LIB=$(python3 -c "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), \"lib\"))");
   python3 -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))" | tee $OUT/torch.txt;
   export LD_LIBRARY_PATH=$TORCH_LIB;
   NVIDIA_TF32_OVERRIDE=0 target/gpu-proof/bin/gpu_proof --device cuda:0 --steps 20 --cpu-steps 3 | tee $OUT/tf32-off.txt;
   target/gpu-proof/bin/gpu_proof --device cuda:0 --steps 20 --cpu-steps 1 | tee $OUT/tf32-on.txt')
EOF
