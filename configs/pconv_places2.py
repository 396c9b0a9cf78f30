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

Expected cost: the paper reports 10 days for phase 1 + 2 days of fine-tuning on one V100 (batch 6). Do not
run on CPU (a single 512x512 step takes minutes there).
"""

import ml_collections


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """`arg` is '' / 'phase1' or 'phase2' (paper fine-tuning settings)."""
  config = ml_collections.ConfigDict()
  config.model = 'pconv'
  config.seed = 0
  config.phase = 1
  config.init_from = ''          # phase 2: phase-1 workdir to start from when this workdir has no checkpoint

  # Input.
  config.images = ''
  config.masks = 'irregular'
  config.eval_images = ''
  config.eval_masks = 'irregular'
  config.eval_limit = 64         # held-out images for the validation loss (best checkpoint)
  config.final_eval_limit = 500  # images for the end-of-training evaluation
  config.final_eval_repeats = 1  # masks per held-out image in that evaluation
  config.final_eval_baseline = ''  # e.g. 'telea': also score a classical method on the same pairs
  config.image_size = 512
  config.batch_size = 6          # GLOBAL batch; the paper uses 6 per accelerator
  config.num_workers = 4
  config.crop = 'random'

  # Model (PConvUNet).
  config.pconv = ml_collections.ConfigDict()
  config.pconv.num_levels = 8
  config.pconv.features = (64, 128, 256, 512, 512, 512, 512, 512)
  config.pconv.kernel_sizes = (7, 5, 5, 3, 3, 3, 3, 3)
  config.pconv.dtype = 'float32'

  # Loss (paper eq. 7) and the perceptual network.
  config.loss = ml_collections.ConfigDict()
  config.loss.valid = 1.0
  config.loss.hole = 6.0
  config.loss.perceptual = 0.05
  config.loss.style = 120.0
  config.loss.tv = 0.1
  config.loss.ssim = 0.0  # not in the paper: optional 1 - SSIM(I_comp, I_gt) term (jaxinpaint.losses.dssim)
  config.loss.allow_missing_vgg = False  # True: train without perceptual/style when no VGG weights exist
  config.vgg_weights = ''                # .npz from `python -m jaxinpaint.weights convert`

  # Optimiser and schedule.
  config.learning_rate = 2e-4
  config.warmup_steps = 0
  config.lr_schedule = 'constant'  # the paper's fixed lr per phase; 'cosine' decays to lr_final_fraction x lr
  config.lr_final_fraction = 0.0
  config.num_steps = 600_000

  # Logging, pictures, checkpoints.
  config.log_every = 100
  config.sample_every = 5_000
  config.checkpoint_every = 10_000
  config.eval_every = 10_000
  config.keep_checkpoints = 3
  config.keep_best = 1
  config.evaluate_at_end = True

  # Processes (jax.distributed) for multi-host training.
  config.num_processes = 1
  config.process_id = 0
  config.coordinator_address = ''

  # Test hook (negative = off): feed a NaN batch at this step (non-finite-loss handling).
  config.debug_nan_step = -1

  if arg == 'phase2':
    config.phase = 2
    config.learning_rate = 5e-5
    config.num_steps = 200_000
  elif arg not in ('', 'phase1'):
    raise ValueError(f'config argument {arg!r}: expected "", "phase1" or "phase2"')
  config.lock()
  return config
