#!/usr/bin/env bash
# The main job on a fresh machine: set up, then run the whole pipeline end to end.
#
# Until a trained default model ships, this runs on a SMALL RANDOM-WEIGHT BigGAN-deep
# saved in the real pytorch_pretrained_biggan format: it shows every step working
# (convert -> sites -> sample -> awareness), not findings about a trained GAN.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
out=${1:-runs/demo}
mkdir -p "$out"

echo "== 1. a random-weight reference checkpoint (pytorch_model.bin + config.json)"
python -m convert.reference --config tiny --seed 0 --out "$out/reference" >/dev/null
ls -l "$out/reference"
echo "== 2. convert it, strictly, to jaxaware weights"
jaxaware convert "$out/reference" "$out/weights"
echo "== 3. the probe / intervention sites"
jaxaware sites "$out/weights"
echo "== 4. samples (rows: classes 0..3, truncation 0.4)"
jaxaware sample "$out/weights" --classes 0,1,2,3 --per-class 6 --truncation 0.4 --seed 0 \
  --out "$out/samples.png"
echo "== 5. channel awareness of every CCBN channel, all classes, N = 1000 latents"
jaxaware awareness "$out/weights" --num-latents 1000 --truncation 1.0 --seed 0 \
  --out "$out/awareness.npz" --figure "$out/awareness.png"
echo "== 6. the toy world (the ground truth a trained default model will learn)"
python experiments/toyworld_sheet.py --out "$out/toyworld.png"
echo
echo "done: outputs in $out/ (random weights: the numbers show the mechanics only)"
