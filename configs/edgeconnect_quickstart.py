"""EdgeConnect quickstart: all four stages on CPU on scikit-image's built-in photos (no download).

Narrow networks (width 16, 2 residual blocks) at 64x64, batch 8, WITHOUT the VGG-19 perceptual/style terms
(`loss.allow_missing_vgg=True`; the log says so loudly; pass --config.vgg_weights=vgg19.npz to use them).
Each stage starts from the previous one:

  python train.py --config configs/edgeconnect_quickstart.py:stage1 --workdir runs/ecq_s1
  python train.py --config configs/edgeconnect_quickstart.py:stage2 --workdir runs/ecq_s2 --config.init_from=runs/ecq_s1
  python train.py --config configs/edgeconnect_quickstart.py:stage3 --workdir runs/ecq_s3 --config.init_from=runs/ecq_s2
  python train.py --config configs/edgeconnect_quickstart.py:stage4 --workdir runs/ecq_s4 --config.init_from=runs/ecq_s3
  python evaluate.py --method edgeconnect --workdir runs/ecq_s4 --images ../shared/data/places \\
      --masks ../shared/data/masks_nvidia_test300 --size 256 --masks_per_image 15 --out results/ecq

Expected cost: 37 / 44 / 51 / 67 s wall for stages 1-4 on an idle 2-core machine (0.07 / 0.09 / 0.11 /
0.15 s per step; each the whole `time python train.py ...` above, compilation and the end-of-stage
evaluation included). The result is a toy (300 steps per stage), meant to show the recipe end to end, not
paper quality.
"""

import ml_collections

from configs import common


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """`arg`: 'stage1' (default) .. 'stage4'."""
  stage = common.parse_arg(arg, common.STAGES)
  config = common.edgeconnect(stage)
  common.cpu_run(config, image_size=64, eval_limit=8)
  config.final_eval_limit = None
  config.edgeconnect.features = 16
  config.edgeconnect.residual_blocks = 2
  config.edgeconnect.d_features = 16
  config.learning_rate = 1e-3 if stage < 4 else 1e-4  # small nets, few steps: larger than the paper's
  common.short_run(config, num_steps=300, log_every=20, every=100)
  return config.lock()
