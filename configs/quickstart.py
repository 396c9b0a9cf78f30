"""Quickstart: train a small PConv U-Net on CPU on scikit-image's built-in photos, then evaluate it.

  python train.py --config configs/quickstart.py --workdir runs/quickstart

Expected cost: 1 min 40 s wall (2 min 50 s of CPU) on an idle 2-core machine, no download, no GPU
(`time python train.py --config configs/quickstart.py --workdir /tmp/quickstart`). It trains 2000 steps on `builtin:train` at 64x64 with a
narrow U-Net, evaluates the final checkpoint on the unseen `builtin:heldout` photos with generated irregular
masks (Telea on the same pairs for scale), and prints where the sample grid (`samples/latest.png`), the loss
curve and `eval_results.json` are. Re-running the same command resumes, or says the run is done.

Colour: the eleven training photos share a warm cast, and a network trained on them paints a colour bias
into holes. `channel_shuffle` (a random RGB permutation per example) removes that prior, and 2000 steps
instead of 800 shrink what remains (docs/quality.md, "The quickstart's colours").

The perceptual and style loss terms are OFF (`loss.allow_missing_vgg=True`): no ImageNet VGG-16 weights
are available offline, so the log says so loudly. Pass --config.vgg_weights=PATH.npz to turn them on.
"""

import ml_collections

from configs import common


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """`arg`: '' (one training phase)."""
  config = common.pconv(common.parse_arg(arg, {'': 1}))
  common.cpu_run(config, image_size=64, eval_limit=8)
  config.final_eval_limit = None
  config.final_eval_repeats = 8  # the 3 held-out photos x 8 different irregular masks
  config.final_eval_baseline = 'telea'  # cv2.inpaint on the same pairs, for scale
  common.pconv_unet(config, features=(16, 32, 64, 64, 64), kernel_sizes=(7, 5, 5, 3, 3))
  config.learning_rate = 2e-3
  config.channel_shuffle = True
  common.short_run(config, num_steps=2000, log_every=50, every=500)
  return config.lock()
