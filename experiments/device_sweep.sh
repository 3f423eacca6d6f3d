#!/usr/bin/env bash
# Train world-model variants side by side on one accelerator, then evaluate each.
#
#   SWEEP_OUT=runs/sweep bash experiments/device_sweep.sh SECONDS [--dry]   (ONLY='p4 ...': some)
#
# Every variant is experiments/train_world_models.py with --set overrides, so each one is a
# config the CPU script reproduces (the same code; an accelerator's floating point differs,
# so "reproduces" means the same config and seeds, not the same bits). The runs share the
# device and are stopped at the deadline (SECONDS from the start, less the evaluation's
# share); a run stopped early is evaluated at its latest checkpoint. Results, one folder
# per variant under $SWEEP_OUT: log.jsonl, train_config.json, the model (if the run finished),
# quality.json and samples.png. --dry runs each variant for a few steps (a check on CPU).
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
)
eval_share=100 extra="" per=200  # evaluating five models took 76 s on an H200
if [ "$dry" = "--dry" ]; then  # a few steps of each, compiled fast
  eval_share=0 per=4
  extra="--set fast_compile=true --set checkpoint_every=2 --set log_every=1 --set ema_start=0"
  extra="$extra --set standing_batches=1 --set standing_batch_size=16"
fi

train_chain() {  # name model overrides steps resume_to
  local dir=$out/$1
  local left=$(( start + total - eval_share - $(date +%s) ))
  timeout "$left" $py experiments/train_world_models.py "$2" $3 $extra --steps "$4" --out "$dir" \
    --no-progress || return
  if [ "$5" != 0 ]; then
    cp -r "$dir/model" "$dir/model-$4"
    left=$(( start + total - eval_share - $(date +%s) ))
    timeout "$left" $py experiments/train_world_models.py "$2" $3 $extra --steps "$5" --out "$dir" \
      --no-progress && touch "$dir/resumed"
  fi
}

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
$py -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())"
alive() { local p; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
launch() {
  pids=()
  for v in "${VARIANTS[@]}"; do
    IFS='|' read -r name model sets steps resume <<< "$v"
    case " ${ONLY:-$name} " in *" $name "*) ;; *) continue ;; esac
    if [ "$dry" = "--dry" ]; then steps=3; [ "$resume" = 0 ] || resume=5; fi
    rm -rf "${out:?}/$name" && mkdir -p "$out/$name"
    train_chain "$name" "$model" "$sets" "$steps" "$resume" > "$out/$name/train.out" 2>&1 &
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
for v in "${VARIANTS[@]}"; do
  IFS='|' read -r name model sets steps resume <<< "$v"
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
