"""EdgeConnect on CelebA at 256x256 with the paper's / authors' settings (Nazeri et al. 2019).

Same four-stage recipe as `configs/edgeconnect_places2.py` (see its docstring): G1 + D1, then G2 + D2 on
ground-truth Canny edges, then G2 on the frozen G1's edges, then joint fine-tuning; batch 8, Adam(0, 0.9),
G lr 1e-4, D lr 1e-5; CelebA images are centre-cropped to 178x178 and resized to 256 (`crop='celeba'`).

  python train.py --config configs/edgeconnect_celeba.py:stage1 --workdir runs/ec_celeba_s1 \\
      --config.images=/data/celeba/train --config.eval_images=/data/celeba/val \\
      --config.masks=/data/nvidia_masks/train
  python train.py --config configs/edgeconnect_celeba.py:stage2 --workdir runs/ec_celeba_s2 \\
      --config.init_from=runs/ec_celeba_s1 --config.vgg_weights=weights/vgg19.npz ...same data flags...
  python train.py --config configs/edgeconnect_celeba.py:stage3 --workdir runs/ec_celeba_s3 \\
      --config.init_from=runs/ec_celeba_s2 --config.vgg_weights=weights/vgg19.npz ...
  python train.py --config configs/edgeconnect_celeba.py:stage4 --workdir runs/ec_celeba_s4 \\
      --config.init_from=runs/ec_celeba_s3 --config.vgg_weights=weights/vgg19.npz ...
  python evaluate.py --method edgeconnect --checkpoint runs/ec_celeba_s4 ...

Expected cost: GPU-scale (days per stage on one GPU, as for the authors); not for CPU.
"""

import importlib.util
import pathlib

import ml_collections


def _places2():
  # configs/ is not a package (config_flags loads files by path): load the paper config beside this file.
  spec = importlib.util.spec_from_file_location('edgeconnect_places2',
                                                pathlib.Path(__file__).with_name('edgeconnect_places2.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """`arg`: 'stage1' (default) .. 'stage4'."""
  base = _places2()
  config = base.base_config(base.parse_stage(arg))
  config.crop = 'celeba'
  config.lock()
  return config
