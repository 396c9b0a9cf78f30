"""EdgeConnect on Places2 at 256x256 with the paper's / authors' settings (Nazeri et al. 2019).

Four stages, each started from the previous stage's workdir (`--config.init_from`), selected with the
config argument `stage1` .. `stage4` (after the file name, `configs/edgeconnect_places2.py:stage2`):

  1. edge model G1 + D1 (adversarial 1 + feature matching 10), Canny sigma 2;
  2. completion model G2 + D2 on ground-truth Canny edges (L1 1, adversarial 0.1, VGG-19 perceptual 0.1,
     style 250) — needs ImageNet VGG-19 weights (`--config.vgg_weights`);
  3. G2 + D2 on the edges of the frozen G1 (composited with the known edges);
  4. joint fine-tuning of G1 and G2 (G2's loss reaches G1 through the edge map).

Adam(b1=0, b2=0.9), G lr 1e-4, D lr 1e-5 (d2g_lr 0.1), batch 8, 2M iterations per stage (the authors'
MAX_ITERS); the lr drops 10x at each step of `lr_drop_steps` (the paper lowers 1e-4 -> 1e-5 when the losses
plateau; set the steps for your run). Stage 4 uses lr 1e-6 (the paper's end-to-end fine-tuning lr).

Launch (global batch 8; any number of accelerators dividing it):

  python train.py --config configs/edgeconnect_places2.py:stage1 --workdir runs/ec_places2_s1 \\
      --config.images=/data/places2/train.flist --config.eval_images=/data/places2/val.flist \\
      --config.masks=/data/nvidia_masks/train
  python train.py --config configs/edgeconnect_places2.py:stage2 --workdir runs/ec_places2_s2 \\
      --config.init_from=runs/ec_places2_s1 --config.vgg_weights=weights/vgg19.npz ...same data flags...
  python train.py --config configs/edgeconnect_places2.py:stage3 --workdir runs/ec_places2_s3 \\
      --config.init_from=runs/ec_places2_s2 --config.vgg_weights=weights/vgg19.npz ...
  python train.py --config configs/edgeconnect_places2.py:stage4 --workdir runs/ec_places2_s4 \\
      --config.init_from=runs/ec_places2_s3 --config.vgg_weights=weights/vgg19.npz ...
  python evaluate.py --method edgeconnect --workdir runs/ec_places2_s4 --images /data/places2/test.flist \\
      --masks /data/nvidia_masks/test --out results/ec_places2

Get the VGG-19 weights with `python -m jaxinpaint.weights download vgg19` (online) and optionally convert
them with `python -m jaxinpaint.weights convert vgg19-dcbb9e9d.pth weights/vgg19.npz`.

Expected cost: GPU-scale (the authors train each stage for days on one GPU). Not for CPU: a stage-2 step
of batch 4 with the VGG-19 terms takes 10.5-11.6 s on an idle 2-core machine (`python
bench/bench_edgeconnect.py --vgg both --steps 4`, bench/RESULTS.md).
"""

import ml_collections

from configs import common


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """`arg`: 'stage1' (default) .. 'stage4'."""
  return common.edgeconnect(common.parse_arg(arg, common.STAGES)).lock()
