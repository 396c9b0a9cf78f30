"""What the recipes in `configs/` share: the two paper bases, the config-argument parser, the CPU-run blocks.

`pconv(phase)` and `edgeconnect(stage)` return the paper settings as unlocked ConfigDicts; a recipe overrides
only what is specific to it and locks the result. `ml_collections.config_flags` loads a recipe by file path
and calls `get_config(arg)` with the text after the colon (`configs/pconv_tiny.py:phase2`); the recipe's
`from configs import common` resolves because the repository root is on `sys.path` (it is train.py's
directory; pytest adds it through `pythonpath = ["."]`).
"""

from collections.abc import Mapping
import pathlib
from typing import TypeVar

import ml_collections

_T = TypeVar('_T')

REPO = pathlib.Path(__file__).resolve().parents[1]
# Data lives beside the repository, never inside it; runs inside it.
SHARED_DATA = REPO.parent / 'shared' / 'data'
RUNS = REPO / 'runs'

# Config arguments (the text after the colon) -> PConv training phase / EdgeConnect stage.
PHASES = {'': 1, 'phase1': 1, 'phase2': 2}
STAGES = {'': 1, 'stage1': 1, 'stage2': 2, 'stage3': 3, 'stage4': 4, '1': 1, '2': 2, '3': 3, '4': 4}


def parse_arg(arg: str, allowed: Mapping[str, _T]) -> _T:
  """The value of a recipe's config argument (`configs/X.py:arg`).

  Args:
    arg: the text after the colon ('' without one).
    allowed: accepted arguments -> value, e.g. `PHASES`.

  Returns:
    `allowed[arg]`.

  Raises:
    ValueError: one line naming `arg` and every accepted value.
  """
  if arg not in allowed:
    raise ValueError(f'config argument {arg!r}: expected one of {", ".join(map(repr, allowed))}')
  return allowed[arg]


def pconv(phase: int) -> ml_collections.ConfigDict:
  """PConv U-Net on Places2 at 512x512 with the paper's settings (Liu et al. 2018, sec. 4), unlocked.

  Args:
    phase: 1 (BatchNorm everywhere, lr 2e-4) or 2 (fine-tuning with the encoder BatchNorm frozen, lr 5e-5).

  Returns:
    The config of `configs/pconv_places2.py`.
  """
  config = _shared_fields('pconv', sample_every=5_000, evaluate_at_end=True)
  config.phase = phase

  # Input (with the shared fields).
  config.final_eval_repeats = 1  # masks per held-out image in the end-of-training evaluation
  config.final_eval_baseline = ''  # e.g. 'telea': also score a classical method on the same pairs
  config.image_size = 512
  config.batch_size = 6          # GLOBAL batch; the paper uses 6 per accelerator
  config.crop = 'random'
  config.shorter_side = 0        # > 0: resize to this shorter side before the random crop (0 = native)
  config.mask_size = 0           # > 0: draw masks at this size, train on a crop-sized window (0 = crop size)
  config.min_mask_size = 0       # > 0: each mask's side drawn uniformly from [min_mask_size, mask_size]

  # Model (PConvUNet).
  config.pconv = ml_collections.ConfigDict()
  config.pconv.num_levels = 8
  config.pconv.features = (64, 128, 256, 512, 512, 512, 512, 512)
  config.pconv.kernel_sizes = (7, 5, 5, 3, 3, 3, 3, 3)

  # Loss (paper eq. 7) and the perceptual network.
  config.loss = ml_collections.ConfigDict()
  config.loss.valid = 1.0
  config.loss.hole = 6.0
  config.loss.perceptual = 0.05
  config.loss.style = 120.0
  config.loss.tv = 0.1
  config.loss.ssim = 0.0  # not in the paper: optional 1 - SSIM(I_comp, I_gt) term (jaxinpaint.losses.dssim)
  config.loss.mse = 0.0   # not in the paper: optional mean((I_comp - I_gt)^2) term, the error PSNR measures
  config.loss.allow_missing_vgg = False  # True: train without perceptual/style when no VGG weights exist
  config.vgg_weights = ''                # .npz from `python -m jaxinpaint.weights convert`

  # Optimiser and schedule.
  config.learning_rate = 2e-4 if phase == 1 else 5e-5
  config.warmup_steps = 0
  config.lr_schedule = 'constant'  # the paper's fixed lr per phase; 'cosine' decays to lr_final_fraction x lr
  config.lr_final_fraction = 0.0
  config.lr_drop_steps = ()        # the lr x lr_drop_factor at each of these steps
  config.lr_drop_factor = 0.1
  config.num_steps = 600_000 if phase == 1 else 200_000

  return config


def edgeconnect(stage: int) -> ml_collections.ConfigDict:
  """EdgeConnect at 256x256 with the paper's / authors' settings (Nazeri et al. 2019), unlocked.

  Args:
    stage: 1 (G1 + D1), 2 (G2 + D2 on ground-truth edges), 3 (G2 + D2 on the frozen G1's edges) or
      4 (G1 and G2 jointly, lr 1e-6).

  Returns:
    The config of `configs/edgeconnect_places2.py`.
  """
  config = _shared_fields('edgeconnect', sample_every=1_000, evaluate_at_end=stage > 1)
  config.stage = stage

  # Input (with the shared fields).
  config.image_size = 256
  config.batch_size = 8          # GLOBAL batch (the authors' BATCH_SIZE)
  config.crop = 'center'         # the authors' loader centre-crops to a square, then resizes
  config.shorter_side = 0        # with crop 'random': resize to this shorter side first (0 = native)
  config.mask_size = 0           # > 0: draw masks at this size, train on a crop-sized window (0 = crop size)
  config.min_mask_size = 0       # > 0: each mask's side drawn uniformly from [min_mask_size, mask_size]

  # Networks (defaults = paper; smaller widths only for CPU runs and tests).
  config.edgeconnect = ml_collections.ConfigDict()
  config.edgeconnect.features = 64
  config.edgeconnect.residual_blocks = 8
  config.edgeconnect.d_features = 64
  config.edgeconnect.gan_type = 'nsgan'   # 'nsgan' | 'lsgan' | 'hinge'
  config.edgeconnect.edge_sigma = 2.0     # Canny sigma (authors' SIGMA)
  config.ema_decay = 0.0                  # not in the paper: > 0 averages the generators' weights (0 = off)

  # Loss weights (authors' config.yml).
  config.loss = ml_collections.ConfigDict()
  config.loss.edge_adversarial = 1.0      # G1 adversarial
  config.loss.feature_matching = 10.0     # FM_LOSS_WEIGHT
  config.loss.l1 = 1.0                    # L1_LOSS_WEIGHT
  config.loss.adversarial = 0.1           # INPAINT_ADV_LOSS_WEIGHT
  config.loss.perceptual = 0.1            # CONTENT_LOSS_WEIGHT
  config.loss.style = 250.0               # STYLE_LOSS_WEIGHT
  config.loss.hole = 0.0                  # not in the paper: + hole x [Liu2018] L_hole (losses.l1_hole)
  config.loss.ssim = 0.0                  # not in the paper: + ssim x (1 - SSIM(I_comp, I_gt)) (losses.dssim)
  config.loss.allow_missing_vgg = False   # True: train stages 2-4 without perceptual/style (loud warning)
  config.vgg_weights = ''                 # VGG-19: vgg19-dcbb9e9d.pth, .safetensors or converted .npz

  # Optimiser and schedule.
  config.learning_rate = 1e-4 if stage < 4 else 1e-6
  config.d2g_lr = 0.1
  config.adam_b1 = 0.0
  config.adam_b2 = 0.9
  config.warmup_steps = 0
  config.lr_schedule = 'constant'         # the paper's; 'cosine' decays to lr_final_fraction x lr at num_steps
  config.lr_final_fraction = 0.0
  config.lr_drop_steps = ()               # e.g. (1_000_000, 1_500_000): 1e-4 -> 1e-5 -> 1e-6
  config.lr_drop_factor = 0.1
  config.num_steps = 2_000_000            # the authors' MAX_ITERS

  return config


def _shared_fields(model: str, *, sample_every: int, evaluate_at_end: bool) -> ml_collections.ConfigDict:
  """The fields of every model's config: seed, data sources, logging/checkpoint cadence, processes."""
  config = ml_collections.ConfigDict()
  config.model = model
  config.seed = 0
  config.init_from = ''          # previous phase's/stage's workdir to start from when this one has no checkpoint
  # Compute dtype of the networks: 'float32' or 'bfloat16' (mixed precision: bf16 convolutions and
  # activations; parameters, optimiser state, losses and normalisation statistics stay float32).
  config.dtype = 'float32'

  # Input.
  config.images = ''
  config.masks = 'irregular'
  config.eval_images = ''
  config.eval_masks = 'irregular'
  config.channel_shuffle = False  # random RGB permutation per training example (data.create_train_pipeline)
  config.eval_limit = 64         # held-out images for the validation loss (best checkpoint)
  config.final_eval_limit = 500  # images for the end-of-training evaluation
  config.num_workers = 4

  # Logging, pictures, checkpoints.
  config.log_every = 100
  config.sample_every = sample_every
  config.checkpoint_every = 10_000
  config.eval_every = 10_000
  config.keep_checkpoints = 3
  config.keep_best = 1
  config.evaluate_at_end = evaluate_at_end

  # Processes (jax.distributed) for multi-host training.
  config.num_processes = 1
  config.process_id = 0
  config.coordinator_address = ''

  return config


def cpu_run(config: ml_collections.ConfigDict, *, image_size: int, eval_limit: int,
            images: str = 'builtin:train', masks: str = 'irregular') -> None:
  """Input of a run on a CPU without downloads.

  Batch 8 of random `image_size` crops loaded in the training process; validation loss on `eval_limit` of
  scikit-image's held-out photos; the VGG perceptual/style terms off unless `--config.vgg_weights` is given
  (no ImageNet weights offline; the log says so).

  Args:
    config: a `pconv` or `edgeconnect` config, changed in place.
    image_size: crop side.
    eval_limit: held-out images of the validation loss.
    images: training images (default: scikit-image's built-in photos, shipped in its wheel).
    masks: training masks.
  """
  config.images = images
  config.masks = masks
  config.eval_images = 'builtin:heldout'
  config.eval_masks = 'irregular'
  config.eval_limit = eval_limit
  config.crop = 'random'
  config.image_size = image_size
  config.batch_size = 8
  config.num_workers = 0
  config.loss.allow_missing_vgg = True


def short_run(config: ml_collections.ConfigDict, *, num_steps: int, log_every: int, every: int) -> None:
  """Schedule of a short run: `num_steps` steps; pictures, validation and a checkpoint `every` steps.

  Args:
    config: changed in place.
    num_steps: training steps.
    log_every: steps between log lines.
    every: steps between sample grids, validation losses and checkpoints (the last two kept).
  """
  config.num_steps = num_steps
  config.log_every = log_every
  config.sample_every = every
  config.checkpoint_every = every
  config.eval_every = every
  config.keep_checkpoints = 2


def pconv_unet(config: ml_collections.ConfigDict, *, features: tuple[int, ...],
               kernel_sizes: tuple[int, ...]) -> None:
  """A PConv U-Net with one encoder level per entry of `features` (channels) and `kernel_sizes`."""
  if len(features) != len(kernel_sizes):
    raise ValueError(f'pconv_unet: features {features} and kernel_sizes {kernel_sizes} differ in length')
  config.pconv.num_levels = len(features)
  config.pconv.features = features
  config.pconv.kernel_sizes = kernel_sizes
