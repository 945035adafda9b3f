#!/usr/bin/env bash
# Whole preprocessing (ingest, decode, detect, crop, ssim) per 10 s clip at 640x360 and at 1080p:
# seconds per stage from the run summary, and the process's peak RSS. Clips are cut from the
# registry's talking-head clip (1080p by upscaling it with ffmpeg's bicubic scaler).
# Usage: scripts/bench-preprocess.sh [extra dfd args, e.g. --set runner.threads=1]
set -euo pipefail
cd "$(dirname "$0")/.."
DFD=${DFD:-target/release/dfd}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
SRC=vendor/media/WolfgangLanger_Pexels.mp4
for res in 640x360 1920x1080; do
  dir=$WORK/data-$res
  mkdir -p "$dir"
  ffmpeg -hide_banner -loglevel error -y -i "$SRC" -t 10 -an -vf "scale=${res/x/:}:flags=bicubic" \
    -c:v libx264 -preset veryfast -crf 18 "$dir/clip.mp4"
  echo '{"clip.mp4": {"label": "REAL"}}' >"$dir/metadata.json"
  echo "== $res, one 10 s clip"
  /usr/bin/time -f "peak RSS %M KB, wall %e s" "$DFD" --workspace "$WORK/ws-$res" "$@" run --dataset "$dir" 2>&1 \
    | grep -Ev '^\s*$'
done
