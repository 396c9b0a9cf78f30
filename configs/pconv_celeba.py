"""PConv U-Net on CelebA(-HQ) at 256x256: 7 levels, paper losses and optimiser (Liu et al. 2018).

Launch (phase 1, then phase 2 fine-tuning with frozen encoder BatchNorm):

  python train.py --config configs/pconv_celeba.py --workdir runs/celeba \\
      --config.images=/data/celeba/train --config.eval_images=/data/celeba/val \\
      --config.masks=/data/nvidia_masks/train --config.vgg_weights=weights/vgg16.npz
  python train.py --config configs/pconv_celeba.py:phase2 --workdir runs/celeba_ft \\
      --config.init_from=runs/celeba ...same data flags...

Expected cost: the paper trained 256x256 models for ~10 days on one V100 (batch 6); here phase 1 is
600k steps of batch 6 per device. On CPU this config is for benchmarking only (see bench/bench_train.py).
"""

import importlib.util
import pathlib

import ml_collections


def _base(arg: str) -> ml_collections.ConfigDict:
  # configs/ is not a package (config_flags loads files by path): load the paper config beside this file.
  spec = importlib.util.spec_from_file_location('pconv_places2', pathlib.Path(__file__).with_name('pconv_places2.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  config = _base(arg)
  config.unlock()
  config.image_size = 256
  config.pconv.num_levels = 7
  config.lock()
  return config
