"""EdgeConnect that trains in under two hours on 2 CPU cores (all four stages) and is evaluated at 256x256.

  python train.py --config configs/edgeconnect_cpu.py:stage1 --workdir runs/edgeconnect_cpu_s1
  python train.py --config configs/edgeconnect_cpu.py:stage2 --workdir runs/edgeconnect_cpu_s2 --config.init_from=runs/edgeconnect_cpu_s1
  python train.py --config configs/edgeconnect_cpu.py:stage3 --workdir runs/edgeconnect_cpu_s3 --config.init_from=runs/edgeconnect_cpu_s2
  python train.py --config configs/edgeconnect_cpu.py:stage4 --workdir runs/edgeconnect_cpu_s4 --config.init_from=runs/edgeconnect_cpu_s3

Expected cost: 8 / 17 / 45 / 8 wall-minutes for stages 1-4, 78 in all (each the whole `time python train.py
...` above on Python 3.12 / jax 0.12 on an idle 2-core AMD EPYC without AMX, compilation and the end-of-stage
evaluation included; ~5 minutes of a test run shared stage 3). Result on the 297 Places2/PSV evaluation pairs:
22.89 dB / 0.8069 SSIM, BELOW Telea, NS and PatchMatch (25.02-25.05 dB) in every bucket (1.0-2.0 dB from
(0.2, 0.3] up); G1's in-hole edge F1 0.10 is below the Canny edges of Telea's fill (0.14). The evidence, the
limits and the tables: docs/edgeconnect_quality.md (the commands above, then
`python bench/edgeconnect_report.py`). The result ships as `edgeconnect_cpu` (jaxinpaint/pretrained/). bf16
compute (`config.dtype`): on this CPU without AMX a step is ~14% faster than float32, and faster still with AMX.

Training data: the 524 real photos of `../shared/data/natural` (BSDS500 + Kodak24), random crops at native
resolution (64x64 in stages 1-2, 128x128 in stages 3-4); masks: the paper's mix, procedural irregular masks
with 25% rectangular blocks, in stages 3-4 half of the irregular ones with every shape twice as large
(`irregular@2`); edge labels: Canny (sigma 2) of the full photo, as the authors'. Never the evaluation photos
(places/psv) nor the NVIDIA test masks. Both generators are fully convolutional, so they train on crops and are
evaluated at 256x256.

Departures from the paper (docs/edgeconnect_quality.md has what was measured about them):
* width 32 (paper 64) and 4 residual blocks (paper 8): the CPU budget (not compared with other sizes);
* learning rates 5e-4 (G1) and 1e-3 (G2), above the paper's 1e-4, for a run of thousands of steps, and a
  cosine decay to 0 over stage 3; stages 3-4 at 128x128 crops with the wide-hole mask mix (holes as wide in
  pixels as the NVIDIA masks' at the 256x256 evaluation);
* no VGG-19 perceptual/style terms (no ImageNet weights offline); in their place two terms NOT in the paper,
  `loss.hole` x PConv's hole L1 and `loss.ssim` x (1 - SSIM) of the composite.
"""

import ml_collections

from configs import common

# Steps and crop side per stage (1-4), batch 8.
STEPS = {1: 3000, 2: 5000, 3: 3000, 4: 300}
CROP = {1: 64, 2: 64, 3: 128, 4: 128}
# The paper's mix (irregular strokes, 25% blocks). On the 128x128 crops of stages 3-4 half of the irregular masks
# have every shape twice as large (`irregular@2`): holes as wide in pixels as the NVIDIA masks' at 256x256.
PAPER_MIX = 'mix:irregular=3,block=1'
WIDE_HOLE_MIX = 'mix:irregular=3,irregular@2=3,block=2'
MASKS = {1: PAPER_MIX, 2: PAPER_MIX, 3: WIDE_HOLE_MIX, 4: WIDE_HOLE_MIX}


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """`arg`: 'stage1' (default) .. 'stage4'."""
  stage = common.parse_arg(arg, common.STAGES)
  config = common.edgeconnect(stage)
  # Validation on scikit-image's unseen photos (cheap; places/psv stay untouched until evaluate.py).
  common.cpu_run(config, image_size=CROP[stage], eval_limit=8, images=str(common.SHARED_DATA / 'natural'),
                 masks=MASKS[stage])
  config.final_eval_limit = 8
  config.dtype = 'bfloat16'
  config.edgeconnect.features = 32
  config.edgeconnect.residual_blocks = 4
  config.edgeconnect.d_features = 32
  # The authors' Adam(b1=0, b2=0.9) throughout; learning rates above the paper's 1e-4 for the short run.
  config.learning_rate = {1: 5e-4, 2: 1e-3, 3: 5e-4, 4: 1e-4}[stage]
  if stage == 3:
    config.lr_schedule = 'cosine'  # to 0 at the last step: the final checkpoint is the one stage 4 starts from
  if stage > 1:
    config.loss.hole = 5.0
    config.loss.ssim = 5.0
  common.short_run(config, num_steps=STEPS[stage], log_every=50, every=500 if stage < 3 else 250)
  config.eval_every = 100_000  # held-out loss only at checkpoints
  config.keep_checkpoints = 1000  # every checkpoint kept (evaluate.py --checkpoint WORKDIR/checkpoints/STEP)
  config.keep_best = 0
  return config.lock()
