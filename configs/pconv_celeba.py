"""PConv U-Net on CelebA(-HQ) at 256x256: 7 levels, paper losses and optimiser (Liu et al. 2018).

The settings of `configs/pconv_places2.py` at 256x256 with one level fewer. Launch (phase 1, then phase 2
fine-tuning with frozen encoder BatchNorm):

  python train.py --config configs/pconv_celeba.py --workdir runs/celeba \\
      --config.images=/data/celeba/train --config.eval_images=/data/celeba/val \\
      --config.masks=/data/nvidia_masks/train --config.vgg_weights=weights/vgg16.npz
  python train.py --config configs/pconv_celeba.py:phase2 --workdir runs/celeba_ft \\
      --config.init_from=runs/celeba ...same data flags...

Expected cost: the paper trained 256x256 models for ~10 days on one V100 (batch 6); this config's phase 1 is 600k
steps of batch 6 per device. On CPU this config is for benchmarking: 1.10 s per step of batch 4 without the
VGG terms on an idle 2-core machine (`python bench/bench_train.py`).
"""

import ml_collections

from configs import common


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """`arg`: '' / 'phase1' or 'phase2'."""
  config = common.pconv(common.parse_arg(arg, common.PHASES))
  config.image_size = 256
  config.pconv.num_levels = 7
  return config.lock()
