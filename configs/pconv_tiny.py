"""Tiny PConv config for tests and smoke runs (runlocal-style): 32x32, 3 levels, 8-16 channels.

  python train.py --config configs/pconv_tiny.py --workdir /tmp/tiny

Expected cost: a few seconds of compile and milliseconds per step on one CPU core. Not meant to learn
anything useful; every training feature (phases, checkpoints, sharding, pictures) is exercised.
"""

import importlib.util
import pathlib

import ml_collections


def _base(arg: str) -> ml_collections.ConfigDict:
  spec = importlib.util.spec_from_file_location('pconv_places2', pathlib.Path(__file__).with_name('pconv_places2.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """`arg` '' / 'phase1' or 'phase2'."""
  config = _base(arg)
  config.unlock()
  config.images = 'builtin:train'
  config.eval_images = 'builtin:heldout'
  config.eval_limit = 4
  config.final_eval_limit = 4
  config.image_size = 32
  config.batch_size = 8
  config.num_workers = 0
  config.pconv.num_levels = 3
  config.pconv.features = (8, 16, 16)
  config.pconv.kernel_sizes = (5, 3, 3)
  config.loss.allow_missing_vgg = True
  config.learning_rate = 1e-3 if arg != 'phase2' else 5e-4
  config.num_steps = 10
  config.log_every = 1
  config.sample_every = 5
  config.checkpoint_every = 5
  config.eval_every = 5
  config.keep_checkpoints = 2
  config.evaluate_at_end = False
  config.lock()
  return config
