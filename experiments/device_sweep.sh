#!/usr/bin/env bash
# Train world-model variants side by side on one accelerator, then evaluate each.
#
#   SWEEP_OUT=runs/sweep bash experiments/device_sweep.sh SECONDS [--dry]   (ONLY='p4 ...': some)
#   (SWEEP_EVAL=0: train only, and evaluate elsewhere, e.g. the models fetched back to a CPU)
#
# Every variant is experiments/train_world_models.py with --set overrides, so each one is a
# config the CPU script reproduces (the same code; an accelerator's floating point differs,
# so "reproduces" means the same config and seeds, not the same bits). The runs share the
# device and are stopped at the deadline (SECONDS from the start, less the evaluation's
# share); a run stopped early is evaluated at its latest checkpoint. Results, one folder
# per variant under $SWEEP_OUT: log.jsonl, train_config.json, the model (if the run finished),
# quality.json and samples.png. --dry runs each variant for a few steps (a check on CPU).
# A variant with a sixth field branches from that training checkpoint (copied into its
# folder first, so a run begun on the CPU goes on here; the config must be the one that
# wrote it up to its step, as for any resume).
set -u
total=${1:?usage: device_sweep.sh SECONDS [--dry]}
dry=${2:-}
start=$(date +%s)
out=${SWEEP_OUT:-runs/sweep}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # the runs share one device's memory
export JAX_DEFAULT_MATMUL_PRECISION=${JAX_DEFAULT_MATMUL_PRECISION:-highest}  # float32, as on CPU
py=${PYTHON:-python3}
P4="--set d_minibatch_std=false --set d_class_groups=true --set d_pack=4"
P8="--set d_minibatch_std=false --set d_class_groups=true --set d_group=8 --set d_pack=8"
# name | model | overrides | steps | then resume to (0: no resume). The first five ran on an
# H200 (docs/world-models.md); p4-g24 and p8-b64 are past the CPU's time bar and not yet run;
# p4-layout ran on the CPU to its time bar only (ONLY='p4-g24 p8-b64 p4-layout' for those).
# p4-s1, p4-s2, p4-layout16-s1 and p4-layout16-s2 are other seeds of the two CPU configs
# that ended nearest the bars (pack 4; pack 4 + the 16-px layout D, run to 12,000 on the
# CPU): one run per config cannot tell a config's effect from a run's luck. The p4-rel*
# variants are relative-edge mode seeking (docs/world-models.md): on from 8,000 steps at
# W = 6.6 on three seeds (the CPU ran seed 2), weaker from 6,000 (W = 6.6 from 6,000
# overshot on the CPU), and W = 6.6 for a window of 6,000-8,000 steps only.
RE="--set mode_seeking_view=relative_edges"
W810="--set mode_seeking_start=8000 --set mode_seeking_stop=10000"
W89="--set mode_seeking_start=8000 --set mode_seeking_stop=9000"
W885="--set mode_seeking_start=8000 --set mode_seeking_stop=8500"
VARIANTS=(
  "p4|toyworld-biggan|$P4 --set d_ch=32|10000|20000"
  "p4-ema9995|toyworld-biggan|$P4 --set d_ch=32 --set ema_decay=0.9995|10000|0"
  "p4-lrg2|toyworld-biggan|$P4 --set d_ch=32 --set lr_g=0.0002|10000|0"
  "p4-d48|toyworld-biggan|$P4 --set d_ch=48|10000|0"
  "deep-p4|toyworld-biggan-deep|$P4 --set d_ch=32|12000|0"
  "p4-g24|toyworld-biggan|$P4 --set d_ch=32 --set model.channel_width=24|10000|0"
  "p8-b64|toyworld-biggan|$P8 --set d_ch=32 --set batch_size=64|10000|0"
  "p4-layout|toyworld-biggan|$P4 --set d_ch=32 --set d_group=8 --set d_layout=1 --set d_layout_pack=8|10000|14000"
  "p4-s1|toyworld-biggan|$P4 --set d_ch=32 --set seed=1|10000|12000"
  "p4-s2|toyworld-biggan|$P4 --set d_ch=32 --set seed=2|10000|12000"
  "p4-layout16-s1|toyworld-biggan|$P4 --set d_ch=32 --set d_layout=1 --set d_layout_size=16 --set d_layout_pack=4 --set seed=1|10000|12000"
  "p4-layout16-s2|toyworld-biggan|$P4 --set d_ch=32 --set d_layout=1 --set d_layout_size=16 --set d_layout_pack=4 --set seed=2|10000|12000"
  "p4-rel66-8k|toyworld-biggan|$P4 --set d_ch=32 $RE --set mode_seeking=6.6 --set mode_seeking_start=8000|10000|0"
  "p4-rel66-8k-s1|toyworld-biggan|$P4 --set d_ch=32 $RE --set mode_seeking=6.6 --set mode_seeking_start=8000 --set seed=1|10000|0"
  "p4-rel66-8k-s2|toyworld-biggan|$P4 --set d_ch=32 $RE --set mode_seeking=6.6 --set mode_seeking_start=8000 --set seed=2|10000|0"
  "p4-rel22-6k|toyworld-biggan|$P4 --set d_ch=32 $RE --set mode_seeking=2.2 --set mode_seeking_start=6000|10000|0"
  "p4-rel66-6k-8k|toyworld-biggan|$P4 --set d_ch=32 $RE --set mode_seeking=6.6 --set mode_seeking_start=6000 --set mode_seeking_stop=8000|10000|0"
  # Branches from the CPU's 8,000-step pack-4 checkpoints of seeds 0, 1 and 2 (runs/p4-s*-8000,
  # git-ignored: carried to the device) to 11,000 steps, the CPU's time bar: plain, the
  # 8,000-10,000 relative-edge window the CPU ran (W = 6.6), the same window weaker (3.3), and a
  # short strong one (13.2 for 8,000-9,000). Three seeds of each, so a setting's effect can be
  # told from a seed's.
  "b-s0-plain|toyworld-biggan|$P4 --set d_ch=32|11000|0|runs/p4-s0-8000/checkpoint"
  "b-s1-plain|toyworld-biggan|$P4 --set d_ch=32 --set seed=1|11000|0|runs/p4-s1-8000/checkpoint"
  "b-s2-plain|toyworld-biggan|$P4 --set d_ch=32 --set seed=2|11000|0|runs/p4-s2-8000/checkpoint"
  "b-s0-rel66|toyworld-biggan|$P4 --set d_ch=32 $RE --set mode_seeking=6.6 $W810|11000|0|runs/p4-s0-8000/checkpoint"
  "b-s1-rel66|toyworld-biggan|$P4 --set d_ch=32 $RE --set mode_seeking=6.6 $W810 --set seed=1|11000|0|runs/p4-s1-8000/checkpoint"
  "b-s2-rel66|toyworld-biggan|$P4 --set d_ch=32 $RE --set mode_seeking=6.6 $W810 --set seed=2|11000|0|runs/p4-s2-8000/checkpoint"
  "b-s0-rel33|toyworld-biggan|$P4 --set d_ch=32 $RE --set mode_seeking=3.3 $W810|11000|0|runs/p4-s0-8000/checkpoint"
  "b-s1-rel33|toyworld-biggan|$P4 --set d_ch=32 $RE --set mode_seeking=3.3 $W810 --set seed=1|11000|0|runs/p4-s1-8000/checkpoint"
  "b-s2-rel33|toyworld-biggan|$P4 --set d_ch=32 $RE --set mode_seeking=3.3 $W810 --set seed=2|11000|0|runs/p4-s2-8000/checkpoint"
  "b-s0-rel132|toyworld-biggan|$P4 --set d_ch=32 $RE --set mode_seeking=13.2 $W89|11000|0|runs/p4-s0-8000/checkpoint"
  "b-s1-rel132|toyworld-biggan|$P4 --set d_ch=32 $RE --set mode_seeking=13.2 $W89 --set seed=1|11000|0|runs/p4-s1-8000/checkpoint"
  "b-s2-rel132|toyworld-biggan|$P4 --set d_ch=32 $RE --set mode_seeking=13.2 $W89 --set seed=2|11000|0|runs/p4-s2-8000/checkpoint"
  # Half that kick (8,000-8,500) at 13.2 and at 26.4: the 8,000-9,000 kick kept the sizes best.
  "b-s0-rel132h|toyworld-biggan|$P4 --set d_ch=32 $RE --set mode_seeking=13.2 $W885|11000|0|runs/p4-s0-8000/checkpoint"
  "b-s0-rel264h|toyworld-biggan|$P4 --set d_ch=32 $RE --set mode_seeking=26.4 $W885|11000|0|runs/p4-s0-8000/checkpoint"
  "b-s1-rel132h|toyworld-biggan|$P4 --set d_ch=32 $RE --set mode_seeking=13.2 $W885 --set seed=1|11000|0|runs/p4-s1-8000/checkpoint"
  "b-s1-rel264h|toyworld-biggan|$P4 --set d_ch=32 $RE --set mode_seeking=26.4 $W885 --set seed=1|11000|0|runs/p4-s1-8000/checkpoint"
  "b-s2-rel132h|toyworld-biggan|$P4 --set d_ch=32 $RE --set mode_seeking=13.2 $W885 --set seed=2|11000|0|runs/p4-s2-8000/checkpoint"
  "b-s2-rel264h|toyworld-biggan|$P4 --set d_ch=32 $RE --set mode_seeking=26.4 $W885 --set seed=2|11000|0|runs/p4-s2-8000/checkpoint"
  # The extent term (jaxaware/train/extent.py), which the CPU ran from 8,000 to 11,000 steps
  # on seeds 0-2: three more seeds of that config from scratch; the term from the start and
  # from 6,000; and the shipped BigGAN-deep config with the term from 4,000.
  "e-s3|toyworld-biggan|$P4 --set d_ch=32 --set extent=1 --set extent_start=8000 --set seed=3|11000|0"
  "e-s4|toyworld-biggan|$P4 --set d_ch=32 --set extent=1 --set extent_start=8000 --set seed=4|11000|0"
  "e-s5|toyworld-biggan|$P4 --set d_ch=32 --set extent=1 --set extent_start=8000 --set seed=5|11000|0"
  "e-from0|toyworld-biggan|$P4 --set d_ch=32 --set extent=1|11000|0"
  "e-from6k|toyworld-biggan|$P4 --set d_ch=32 --set extent=1 --set extent_start=6000|11000|0"
  "deep-e4k|toyworld-biggan-deep|--set extent=1 --set extent_start=4000|8000|0"
  # The calibrated target (extent_target=calibrated: the regressor's expected reading of the
  # world's sizes, not the sizes): does it undo the term's overshoot on seeds 0-2 at W = 1?
  "ec-s0|toyworld-biggan|$P4 --set d_ch=32 --set extent=1 --set extent_target=calibrated --set extent_start=8000|11000|0"
  "ec-s1|toyworld-biggan|$P4 --set d_ch=32 --set extent=1 --set extent_target=calibrated --set extent_start=8000 --set seed=1|11000|0"
  "ec-s2|toyworld-biggan|$P4 --set d_ch=32 --set extent=1 --set extent_target=calibrated --set extent_start=8000 --set seed=2|11000|0"
)
eval_share=100 extra="" per=200  # evaluating five models took 76 s on an H200
evaluate=${SWEEP_EVAL:-1}
[ "$evaluate" = 0 ] && eval_share=0
if [ "$dry" = "--dry" ]; then  # a few steps of each, compiled fast
  eval_share=0 per=4
  extra="--set fast_compile=true --set checkpoint_every=2 --set log_every=1 --set ema_start=0"
  extra="$extra --set standing_batches=1 --set standing_batch_size=16"
fi

train_chain() {  # name model overrides steps resume_to [checkpoint to branch from]
  local dir=$out/$1 sets="$3 $extra"
  if [ -n "${6:-}" ]; then
    cp -r "$6" "$dir/checkpoint" || return
    # the machines the branched run has seen so far (the trainer adds this one's)
    [ -f "$(dirname "$6")/environment.jsonl" ] && cp "$(dirname "$6")/environment.jsonl" "$dir/"
    # --dry: only overrides a resume accepts (the others would change the config)
    [ "$dry" = "--dry" ] && sets="$3 --set checkpoint_every=2 --set log_every=1"
  fi
  local left=$(( start + total - eval_share - $(date +%s) ))
  timeout "$left" $py experiments/train_world_models.py "$2" $sets --steps "$4" --out "$dir" \
    --no-progress || return
  if [ "$5" != 0 ]; then
    cp -r "$dir/model" "$dir/model-$4"
    left=$(( start + total - eval_share - $(date +%s) ))
    timeout "$left" $py experiments/train_world_models.py "$2" $sets --steps "$5" --out "$dir" \
      --no-progress && touch "$dir/resumed"
  fi
}

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
$py -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())"
alive() { local p; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
launch() {
  pids=()
  for v in "${VARIANTS[@]}"; do
    IFS='|' read -r name model sets steps resume from <<< "$v"
    case " ${ONLY:-$name} " in *" $name "*) ;; *) continue ;; esac
    if [ "$dry" = "--dry" ]; then
      steps=3; [ "$resume" = 0 ] || resume=5
      [ -z "$from" ] || steps=$(( $($py -c "import json, sys
print(json.load(open(sys.argv[1] + '/config.json'))['extra']['step'])" "$from") + 3 ))
    fi
    rm -rf "${out:?}/$name" && mkdir -p "$out/$name"
    train_chain "$name" "$model" "$sets" "$steps" "$resume" "$from" > "$out/$name/train.out" 2>&1 &
    pids+=($!)
  done
}
launch
# If every run fails before its first logged step and wheels were carried (WHEELS=dir:
# this project's own flax/optax/chex), try once more with them.
while alive && ! ls "$out"/*/log.jsonl > /dev/null 2>&1; do sleep 5; done
if ! alive && ! ls "$out"/*/log.jsonl > /dev/null 2>&1 && [ -d "${WHEELS:-}" ]; then
  tail -n 3 "$out"/*/train.out
  echo "every run failed: again with the wheels in $WHEELS"
  $py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/sweep-site "$WHEELS"/*.whl && export PYTHONPATH=/tmp/sweep-site:$PYTHONPATH
  launch
fi
( while sleep 60; do  # progress: each run's latest logged step
    echo "$(( $(date +%s) - start )) s: $(for d in "$out"/*/; do
      printf '%s %s  ' "$(basename "$d")" "$(tail -n 1 "$d/log.jsonl" 2>/dev/null | cut -c1-14)"
    done)"
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null
  done ) &
monitor=$!
wait "${pids[@]}"
kill $monitor
echo "training done at $(( $(date +%s) - start )) s"
if [ "$evaluate" = 0 ]; then
  for d in "$out"/*/; do tail -n 1 "$d/log.jsonl" 2>/dev/null | sed "s|^|$(basename "$d"): |"; done
  exit 0
fi
for v in "${VARIANTS[@]}"; do
  IFS='|' read -r name model sets steps resume from <<< "$v"
  case " ${ONLY:-$name} " in *" $name "*) ;; *) continue ;; esac
  dir=$out/$name
  tail -n 1 "$dir/log.jsonl" 2>/dev/null | sed "s/^/$name: /"
  for m in "$dir"/model-*; do  # the snapshot a resumed run passed through
    [ -d "$m" ] && timeout 140 $py experiments/evaluate_world_model.py "$m" --per-class $per \
      --out "$dir/quality-${m##*-}.json" > "$dir/eval-${m##*-}.out" 2>&1 &
  done
  if [ -f "$dir/model/config.json" ] && { [ "$resume" = 0 ] || [ -f "$dir/resumed" ]; }; then
    src=("$dir/model")
  else
    src=("$dir" --checkpoint)
  fi
  timeout 140 $py experiments/evaluate_world_model.py "${src[@]}" --per-class $per \
    --out "$dir/quality.json" --sheet "$dir/samples.png" > "$dir/eval.out" 2>&1 &
done
wait
echo "all done at $(( $(date +%s) - start )) s"
