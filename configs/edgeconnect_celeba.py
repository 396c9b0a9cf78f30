"""EdgeConnect on CelebA at 256x256 with the paper's / authors' settings (Nazeri et al. 2019).

The four-stage recipe of `configs/edgeconnect_places2.py` (see its docstring): G1 + D1, then G2 + D2 on
ground-truth Canny edges, then G2 on the frozen G1's edges, then joint fine-tuning; batch 8, Adam(0, 0.9),
G lr 1e-4, D lr 1e-5; CelebA images are centre-cropped to 178x178 and resized to 256 (`crop='celeba'`).
Stage N (2-4) adds `--config.init_from=` stage N-1's workdir and the VGG-19 weights:

  python train.py --config configs/edgeconnect_celeba.py:stage1 --workdir runs/ec_celeba_s1 \\
      --config.images=/data/celeba/train --config.eval_images=/data/celeba/val \\
      --config.masks=/data/nvidia_masks/train
  python train.py --config configs/edgeconnect_celeba.py:stage2 --workdir runs/ec_celeba_s2 ...data flags... \\
      --config.init_from=runs/ec_celeba_s1 --config.vgg_weights=weights/vgg19.npz
  (stage3, stage4 likewise), then
  python evaluate.py --method edgeconnect --workdir runs/ec_celeba_s4 --images /data/celeba/test \\
      --masks /data/nvidia_masks/test --out results/ec_celeba

Expected cost: GPU-scale (days per stage on one GPU, as for the authors); not for CPU (see
`configs/edgeconnect_places2.py`).
"""

import ml_collections

from configs import common


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """`arg`: 'stage1' (default) .. 'stage4'."""
  config = common.edgeconnect(common.parse_arg(arg, common.STAGES))
  config.crop = 'celeba'
  return config.lock()
