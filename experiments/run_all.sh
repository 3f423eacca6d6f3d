#!/usr/bin/env bash
# Every experiment of the paper on one model: its quality in the toy world, the analyses
# (Sec. 3, App. A), the applications (Sec. 4.1-4.3) and the per-class evaluation (Sec. 4.4,
# App. B). Each script writes a figure and the JSON behind it into OUT_DIR and prints its
# own progress; the numbers in the README come from these files.
#
#   bash experiments/run_all.sh [WEIGHTS|NAME] [OUT_DIR]
#
# Defaults: the shipped original BigGAN (toyworld-biggan), docs/<name>/. Run it inside the
# venv (source .venv/bin/activate). Times on the 2-core CPU are in the README.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-toyworld-biggan}
out=${2:-docs/$(basename "$model")}
mkdir -p "$out"

step() {  # name, command...: run one experiment and say how long it took
  local name=$1 start=$SECONDS
  shift
  echo "== $name"
  "$@"
  echo "== $name: $((SECONDS - start)) s"
}

step quality python experiments/evaluate_world_model.py "$model" --per-class 200 --findings \
  --out "$out/quality.json" --sheet "$out/samples.png"
step ablation python experiments/ablation_fig3.py "$model" --out-dir "$out"
step overlap python experiments/overlap_fig5a.py "$model" --out-dir "$out"
step shared python experiments/shared_channels_tab1.py "$model" --out-dir "$out"
step transfer python experiments/transfer_fig5b.py "$model" --out-dir "$out"
step edit python experiments/edit_channels.py "$model" --out-dir "$out"
step hybridize python experiments/hybridize_classes.py "$model" --out-dir "$out"
step segment python experiments/segment_clusters.py "$model" --out-dir "$out"
step evaluation python experiments/evaluate_awareness_correlation.py "$model" \
  --out-prefix "$out/evaluation"
step response python experiments/response_fig4.py "$model" --out-dir "$out"
echo "done: $out"
