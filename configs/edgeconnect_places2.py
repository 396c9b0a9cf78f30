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
  python evaluate.py --method edgeconnect --checkpoint runs/ec_places2_s4 ...

Get the VGG-19 weights with `python -m jaxinpaint.weights download vgg19` (online) and optionally convert
them with `python -m jaxinpaint.weights convert vgg19-dcbb9e9d.pth weights/vgg19.npz`.

Expected cost: GPU-scale (the authors train each stage for days on one GPU); not for CPU.
"""

import ml_collections

STAGES = {'': 1, 'stage1': 1, 'stage2': 2, 'stage3': 3, 'stage4': 4, '1': 1, '2': 2, '3': 3, '4': 4}


def parse_stage(arg: str) -> int:
  if arg not in STAGES:
    raise ValueError(f'config argument {arg!r}: expected "stage1", "stage2", "stage3" or "stage4"')
  return STAGES[arg]


def base_config(stage: int) -> ml_collections.ConfigDict:
  """The paper's settings for `stage` (unlocked; the dataset configs fill in data and schedule)."""
  config = ml_collections.ConfigDict()
  config.model = 'edgeconnect'
  config.seed = 0
  config.stage = stage
  config.init_from = ''          # previous stage's workdir (required in practice for stages 2-4)

  # Input.
  config.images = ''
  config.masks = 'irregular'
  config.eval_images = ''
  config.eval_masks = 'irregular'
  config.eval_limit = 64
  config.final_eval_limit = 500
  config.image_size = 256
  config.batch_size = 8          # GLOBAL batch (the authors' BATCH_SIZE)
  config.num_workers = 4
  config.crop = 'center'       # the authors' loader centre-crops to a square, then resizes

  # Networks (defaults = paper; smaller widths only for CPU runs and tests).
  config.edgeconnect = ml_collections.ConfigDict()
  config.edgeconnect.features = 64
  config.edgeconnect.residual_blocks = 8
  config.edgeconnect.d_features = 64
  config.edgeconnect.gan_type = 'nsgan'   # 'nsgan' | 'lsgan' | 'hinge'
  config.edgeconnect.edge_sigma = 2.0     # Canny sigma (authors' SIGMA)

  # Loss weights (authors' config.yml).
  config.loss = ml_collections.ConfigDict()
  config.loss.edge_adversarial = 1.0      # G1 adversarial
  config.loss.feature_matching = 10.0     # FM_LOSS_WEIGHT
  config.loss.l1 = 1.0                    # L1_LOSS_WEIGHT
  config.loss.adversarial = 0.1           # INPAINT_ADV_LOSS_WEIGHT
  config.loss.perceptual = 0.1            # CONTENT_LOSS_WEIGHT
  config.loss.style = 250.0               # STYLE_LOSS_WEIGHT
  config.loss.allow_missing_vgg = False   # True: train stages 2-4 without perceptual/style (loud warning)
  config.vgg_weights = ''                 # VGG-19: vgg19-dcbb9e9d.pth, .safetensors or converted .npz

  # Optimiser and schedule.
  config.learning_rate = 1e-4 if stage < 4 else 1e-6
  config.d2g_lr = 0.1
  config.adam_b1 = 0.0
  config.adam_b2 = 0.9
  config.lr_drop_steps = ()               # e.g. (1_000_000, 1_500_000): 1e-4 -> 1e-5 -> 1e-6
  config.lr_drop_factor = 0.1
  config.num_steps = 2_000_000

  # Logging, pictures, checkpoints.
  config.log_every = 100
  config.sample_every = 1_000
  config.checkpoint_every = 10_000
  config.eval_every = 10_000
  config.keep_checkpoints = 3
  config.keep_best = 1
  config.evaluate_at_end = stage > 1

  # Processes (jax.distributed) for multi-host training.
  config.num_processes = 1
  config.process_id = 0
  config.coordinator_address = ''

  # Test hooks (negative = off).
  config.debug_nan_step = -1
  config.debug_hang_at_step = -1
  return config


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """`arg`: 'stage1' (default) .. 'stage4'."""
  config = base_config(parse_stage(arg))
  config.lock()
  return config
