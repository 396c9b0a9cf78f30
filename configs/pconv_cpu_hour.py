"""PConv U-Net that trains in under an hour on 2 CPU cores and is evaluated at 256x256.

  python train.py --config configs/pconv_cpu_hour.py --workdir runs/pconv_cpu_hour
  python train.py --config configs/pconv_cpu_hour.py:phase2 --workdir runs/pconv_cpu_hour_ft

Expected cost: 56 wall-minutes on an idle 2-core machine (103 CPU-minutes of the trainer): phase 1 at 64x64
(12000 steps, 12 min) then phase 2 at 128x128 (10000 steps, 44 min; frozen encoder BN, cosine lr from 6e-4,
plus a 1 - SSIM term). Result on the 297 Places2/PSV evaluation pairs: 25.75 dB / 0.8419 SSIM, best of
Telea/NS/PatchMatch on both in every hole-ratio bucket except SSIM in (0.1, 0.2] (docs/quality.md: the
commands above, then `python bench/quality_report.py --workdir runs/pconv_cpu_hour,runs/pconv_cpu_hour_ft`).
With `--config.dtype=bfloat16` on both commands the same recipe ran in 53.9 minutes and scored 25.78 dB / 0.8420
(every bucket within 0.03 dB; docs/quality.md, "bf16 against float32").

Training data: the 524 real photos of `../shared/data/natural` (BSDS500 + Kodak24), random crops at native
resolution; masks: the procedural irregular generator mixed with EdgeConnect's blocks. Never the evaluation
photos (places/psv) nor the NVIDIA test masks. The network is fully convolutional, so it trains on small
crops and is evaluated at 256x256 (256 is divisible by 2**num_levels).

Loss: L_valid + hole * L_hole + tv * L_tv (paper eq. 1-7 without the perceptual/style terms: no ImageNet
VGG-16 weights are available offline, so `loss.perceptual = loss.style = 0`, nothing needs VGG); phase 2 adds
5 x (1 - SSIM(I_comp, I_gt)) (`jaxinpaint.losses.dssim`, not in the paper).

Choices (crop size, width/depth, learning rate, warm-up, hole weight, mask mix) were made by measurement;
the evidence table (what was tried, what it gave) is in docs/quality.md.
"""

import ml_collections

from configs import common


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """`arg` '' / 'phase1' (train from scratch) or 'phase2' (fine-tune with frozen encoder BN, lower lr)."""
  phase = common.parse_arg(arg, common.PHASES)
  config = common.pconv(phase)
  # Validation loss on scikit-image's unseen photos (cheap; places/psv stay untouched until the separate
  # evaluate.py run).
  common.cpu_run(config, image_size=64, eval_limit=8, images=str(common.SHARED_DATA / 'natural'),
                 masks='mix:irregular=3,block=1')
  config.evaluate_at_end = False
  # Width 32-128: with XLA's Eigen convolutions a step costs about as much as at 16-64 (0.057 vs 0.035 s at
  # 64x64, 0.25 vs 0.19 s at 128x128), and the wider net learns more per step (docs/quality.md).
  common.pconv_unet(config, features=(32, 64, 128, 128, 128), kernel_sizes=(7, 5, 5, 3, 3))
  config.loss.perceptual = 0.0
  config.loss.style = 0.0
  config.learning_rate = 2e-3
  config.warmup_steps = 200
  config.num_steps = 12000  # 12 wall-minutes on the idle machine (22 CPU-minutes), docs/quality.md
  config.checkpoint_every = 2000
  if phase == 2:
    # Phase 2 (paper sec. 4: frozen encoder BN) at 128x128: the larger crop shows holes closer to their size
    # in pixels at the 256x256 evaluation (docs/quality.md, run e7: +0.5 dB over phase 2 at 64x64, run e5).
    # Cosine decay to 0 and a 1 - SSIM term on the composite (not in the paper; it stands in for the
    # perceptual/style terms that suppress blotchy fills when VGG weights exist): docs/quality.md, runs A-E
    # (+0.0044 SSIM and +0.07 dB in 600 steps over the same steps without it).
    config.init_from = str(common.RUNS / 'pconv_cpu_hour')
    config.image_size = 128
    config.learning_rate = 6e-4
    config.lr_schedule = 'cosine'
    config.lr_final_fraction = 0.0
    config.loss.ssim = 5.0
    config.warmup_steps = 0
    config.num_steps = 10000
    config.checkpoint_every = 1000
  config.log_every = 50
  config.sample_every = 1000
  config.eval_every = 100000  # held-out loss only at checkpoints
  # Every checkpoint is kept: evaluating them afterwards gives the learning curve (docs/quality_curve.png).
  config.keep_checkpoints = 1000
  config.keep_best = 0
  return config.lock()
