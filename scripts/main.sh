#!/usr/bin/env bash
# The main job on a fresh machine: set up, then run the pipeline end to end on the shipped
# default model (toyworld-biggan, an original BigGAN trained on the toy world), and the PyTorch -> JAX
# conversion path on a random-weight checkpoint in the real pytorch_pretrained_biggan format.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
out=${1:-runs/demo}
mkdir -p "$out"

echo "== 1. the default model's probe / intervention sites"
jaxaware sites
echo "== 2. samples of all 16 classes (rows) from the default model"
jaxaware sample --classes all --per-class 8 --truncation 1.0 --seed 0 --zoom 2 \
  --out "$out/samples.png"
echo "== 3. channel awareness of every CCBN channel, all classes, N = 1000 latents"
jaxaware awareness --num-latents 1000 --truncation 1.0 --seed 0 \
  --out "$out/awareness.npz" --figure "$out/awareness.png"
echo "== 4. how good is it: the world's classifier and segmenter on its samples"
python experiments/evaluate_world_model.py --per-class 100 --out "$out/evaluation.json" \
  --sheet "$out/evaluation_sheet.png" 2>/dev/null
echo "== 5. conversion: a RANDOM-WEIGHT reference checkpoint (pytorch_model.bin + config.json)"
python -m convert.reference --config tiny --seed 0 --out "$out/reference" >/dev/null
jaxaware convert "$out/reference" "$out/converted"
jaxaware sample "$out/converted" --classes 0,1,2 --per-class 4 --truncation 0.4 \
  --out "$out/converted_samples.png" --quiet
echo "== 6. the toy world (the ground truth the default model learned)"
python experiments/toyworld_sheet.py --out "$out/toyworld.png"
echo
echo "done: outputs in $out/"
