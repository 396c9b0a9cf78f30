"""Tiny PConv config for tests and smoke runs (runlocal-style): 32x32, 3 levels, 8-16 channels.

  python train.py --config configs/pconv_tiny.py --workdir /tmp/tiny
  python train.py --config configs/pconv_tiny.py:phase2 --workdir /tmp/tiny_ft --config.init_from=/tmp/tiny

Expected cost: under a minute per phase (each command above under `time`: 44-47 s wall, 29-31 s user + sys,
13 s of it the first step's compilation; 2 cores at load average 4-5). Not meant to learn anything useful;
every training feature (phases, checkpoints, sharding, pictures) is exercised.
"""

import ml_collections

from configs import common


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """`arg`: '' / 'phase1' or 'phase2'."""
  phase = common.parse_arg(arg, common.PHASES)
  config = common.pconv(phase)
  common.cpu_run(config, image_size=32, eval_limit=4)
  config.final_eval_limit = 4
  config.evaluate_at_end = False
  common.pconv_unet(config, features=(8, 16, 16), kernel_sizes=(5, 3, 3))
  config.learning_rate = 1e-3 if phase == 1 else 5e-4
  common.short_run(config, num_steps=10, log_every=1, every=5)
  return config.lock()
