"""EdgeConnect quickstart: all four stages on CPU on scikit-image's built-in photos (no download).

Narrow networks (width 16, 2 residual blocks) at 64x64, batch 8, WITHOUT the VGG-19 perceptual/style terms
(`loss.allow_missing_vgg=True`; the log says so loudly; pass --config.vgg_weights=vgg19.npz to use them).
Each stage starts from the previous one:

  python train.py --config configs/edgeconnect_quickstart.py:stage1 --workdir runs/ecq_s1
  python train.py --config configs/edgeconnect_quickstart.py:stage2 --workdir runs/ecq_s2 --config.init_from=runs/ecq_s1
  python train.py --config configs/edgeconnect_quickstart.py:stage3 --workdir runs/ecq_s3 --config.init_from=runs/ecq_s2
  python train.py --config configs/edgeconnect_quickstart.py:stage4 --workdir runs/ecq_s4 --config.init_from=runs/ecq_s3
  python evaluate.py --method edgeconnect --checkpoint runs/ecq_s4 ...

The result is a toy (a few hundred steps), meant to show the recipe end to end, not paper quality.
"""

import importlib.util
import pathlib

import ml_collections


def _places2():
  spec = importlib.util.spec_from_file_location('edgeconnect_places2',
                                                pathlib.Path(__file__).with_name('edgeconnect_places2.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """`arg`: 'stage1' (default) .. 'stage4'."""
  base = _places2()
  stage = base.parse_stage(arg)
  config = base.base_config(stage)
  config.images = 'builtin:train'
  config.eval_images = 'builtin:heldout'
  config.masks = 'irregular'
  config.eval_masks = 'irregular'
  config.eval_limit = 8
  config.final_eval_limit = None
  config.crop = 'random'
  config.image_size = 64
  config.batch_size = 8
  config.num_workers = 0
  config.edgeconnect.features = 16
  config.edgeconnect.residual_blocks = 2
  config.edgeconnect.d_features = 16
  config.loss.allow_missing_vgg = True
  config.learning_rate = 1e-3 if stage < 4 else 1e-4  # small nets, few steps: larger than the paper's
  config.num_steps = 300
  config.log_every = 20
  config.sample_every = 100
  config.checkpoint_every = 100
  config.eval_every = 100
  config.keep_checkpoints = 2
  config.lock()
  return config
