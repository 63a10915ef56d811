#!/usr/bin/env bash
# Regenerate the shipped networks (models/*.onnx) and their cards (models/*.md) from nothing.
#
#   pip install ".[train,cpu]"               # TensorFlow for training, onnxruntime for the cards
#   bash models/regenerate.sh [WORK]        # WORK: scratch folder (default models-work)
#
# Every step resumes when rerun (synth and dataset skip what is complete; cmc train continues
# from its checkpoint). The networks are trained by cmc train's survey recipe (redshift input,
# compact head, error head, 8-fold augmentation, Adam with a cosine schedule and weight decay,
# 30 epochs; docs/train.md), exported with the validation calibration against regression to the
# mean inside (cmc export --calibrate). On the 2-core CPU of the model cards: synth 13-40 min (1 GB peak
# RAM), dataset ~2 min (14 GB peak RAM), training ~5 min per single-channel network, the fusion
# into the multi-channel one ~1 min (bench/results/models_training.json), export + evaluation
# ~1 min each.
set -euo pipefail
SHOWN=${1:-models-work}                   # as the cards print it
W=$(realpath -m "$SHOWN")                 # relative to where the script is called from
cd "$(dirname "$0")/.."
mkdir -p "$W"
if [ ! -f "$W/universe/synth.json" ]; then
  cmc synth --preset paper --seed 0 --out "$W/universe" --no-progress
fi
cmc dataset "$W/universe/snapshot.hdf5" --halos "$W/universe/halos.h5" --out "$W/paper.h5" \
    --per-bin 200 --bins 13:15:0.25 --projections x,y,z,diag --workers 2 --seed 0 --instrument paper --no-progress
for ch in Star Ypar Fxb Fxs; do
  cmc train "$W/paper.h5" --channels "$ch" --out "$W/runs/$ch" --seed 0 --no-progress
done
# the multi-channel network: the four single-channel ones fused, weights fitted on validation
# (it measures better than one network trained on the four channels jointly: docs/train.md)
if [ ! -f "$W/runs/multi/config.json" ]; then
  cmc fuse "$W/paper.h5" --members "$W/runs/Star,$W/runs/Fxs,$W/runs/Fxb,$W/runs/Ypar" --out "$W/runs/multi"
fi
for name in Star Fxs Fxb Ypar multi; do
  baseline=$name; [ "$name" = multi ] && baseline=all
  # re-export only when the run is newer than the model (an export stamps its time into the file)
  if [ ! -f "models/$name.onnx" ] || [ "$W/runs/$name/config.json" -nt "models/$name.onnx" ]; then
    cmc export "$W/runs/$name" --out "models/$name.onnx" --data "$W/paper.h5" --check-images 256 --calibrate
  fi
  rm -rf "$W/cards/$name"
  cmc evaluate "models/$name.onnx" --data "$W/paper.h5" --baseline "$baseline" --out "$W/cards/$name"
  cmc card "models/$name.onnx" --report "$W/cards/$name" \
      --regenerate "bash models/regenerate.sh $SHOWN" \
      --check "cmc evaluate models/$name.onnx --data $SHOWN/paper.h5 --baseline $baseline --out card-check  # the table above"
done
