"""Quickstart: train a small PConv U-Net on CPU on scikit-image's built-in photos, then evaluate it.

  python train.py --config configs/quickstart.py --workdir runs/quickstart

Expected cost: about 5 minutes on 2 CPU cores (no download, no GPU). It trains on `builtin:train` at a
small size with a narrow U-Net, evaluates the final checkpoint on the unseen `builtin:heldout` photos with
generated irregular masks, and prints where the sample grid (`samples/latest.png`), the loss curve and
`eval_results.json` are. Re-running the same command resumes, or says the run is done.

The perceptual and style loss terms are OFF (`loss.allow_missing_vgg=True`): no ImageNet VGG-16 weights
are available offline, so the log says so loudly. Pass --config.vgg_weights=PATH.npz to turn them on.
"""

import importlib.util
import pathlib

import ml_collections


def _base() -> ml_collections.ConfigDict:
  spec = importlib.util.spec_from_file_location('pconv_places2', pathlib.Path(__file__).with_name('pconv_places2.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config('')


def get_config() -> ml_collections.ConfigDict:
  config = _base()
  config.unlock()
  config.images = 'builtin:train'
  config.eval_images = 'builtin:heldout'
  config.masks = 'irregular'
  config.eval_masks = 'irregular'
  config.eval_limit = 8
  config.final_eval_limit = None
  config.final_eval_repeats = 8  # the 3 held-out photos x 8 different irregular masks
  config.final_eval_baseline = 'telea'  # cv2.inpaint on the same pairs, for scale
  config.image_size = 64
  config.batch_size = 8
  config.num_workers = 0
  config.pconv.num_levels = 5
  config.pconv.features = (16, 32, 64, 64, 64)
  config.pconv.kernel_sizes = (7, 5, 5, 3, 3)
  config.loss.allow_missing_vgg = True
  config.learning_rate = 2e-3
  config.num_steps = 800
  config.log_every = 20
  config.sample_every = 200
  config.checkpoint_every = 200
  config.eval_every = 200
  config.keep_checkpoints = 2
  config.lock()
  return config
