"""PConv U-Net on Places2 at 512x512 with the paper's settings (Liu et al. 2018, sec. 4).

8 levels, batch 6 per accelerator, Adam lr 2e-4 (phase 1, BatchNorm everywhere), then phase 2 fine-tuning
at lr 5e-5 with the encoder BatchNorm frozen (running averages, scale/bias not optimised).
Loss weights: valid 1, hole 6, perceptual 0.05, style 120, TV 0.1 (needs ImageNet VGG-16 weights).

Launch on N accelerators (global batch = 6 N; e.g. 8 GPUs -> 48):

  python train.py --config configs/pconv_places2.py --workdir runs/places2 \\
      --config.batch_size=48 --config.images=/data/places2/train.flist \\
      --config.eval_images=/data/places2/val.flist --config.masks=/data/nvidia_masks/train \\
      --config.vgg_weights=weights/vgg16.npz
  python train.py --config configs/pconv_places2.py:phase2 --workdir runs/places2_ft \\
      --config.init_from=runs/places2 ...same flags...

Multi-host: add --config.num_processes=P --config.process_id=I --config.coordinator_address=HOST:PORT
on every host (global batch stays config.batch_size).

Expected cost: the paper reports 10 days for phase 1 + 2 days of fine-tuning on one V100 (batch 6). Not for
CPU: a step at 256x256 with 7 levels already takes 1.10 s for batch 4 on 2 cores (`python
bench/bench_train.py`, configs/pconv_celeba.py), and 512x512 is 4x the pixels.
"""

import ml_collections

from configs import common


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """`arg`: '' / 'phase1' (train from scratch) or 'phase2' (the paper's fine-tuning settings)."""
  return common.pconv(common.parse_arg(arg, common.PHASES)).lock()
