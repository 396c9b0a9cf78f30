"""Partial-convolution U-Net (Liu et al. 2018) as a task: state, update step, evaluation, sampling, inference.

`PConvTask` implements the protocol of `jaxinpaint.tasks.base` for `config.model = 'pconv'`:

* Loss: `jaxinpaint.losses.pconv_loss` (paper eq. 1-7: L_valid + 6 L_hole + 0.05 L_perceptual
  + 120 (L_style_out + L_style_comp) + 0.1 L_tv) with weights from `config.loss`. The perceptual and style
  terms need ImageNet VGG-16 features (`config.vgg_weights`, loaded with `jaxinpaint.models.vgg.pretrained`).
* Optimiser: Adam (paper: lr 2e-4 in phase 1, 5e-5 in phase 2).
* Phase 2 (fine-tuning, paper sec. 4): the U-Net runs with `freeze_encoder_bn=True` (encoder BatchNorm uses
  its running averages) and the encoder BN scale/bias are excluded from the optimiser with
  `optax.multi_transform` (`set_to_zero` on every `params/enc*/bn/*`), so they stay exactly unchanged. It
  starts from a phase-1 workdir (`config.init_from`): phase 1's weights and BN statistics, a fresh optimiser.
"""

from __future__ import annotations

import functools
import pathlib
import re
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxinpaint import losses
from jaxinpaint import metrics
from jaxinpaint.models import vgg
from jaxinpaint.models.pconv_unet import PConvUNet
from jaxinpaint.tasks import base

Config = ml_collections.ConfigDict


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  rng: jax.Array


# ---------------------------------------------------------------------------------------------- model

def build_model(config: Config, *, freeze_encoder_bn: bool | None = None) -> PConvUNet:
  p = config.pconv
  if freeze_encoder_bn is None:
    freeze_encoder_bn = config.phase == 2
  kwargs = dict(num_levels=p.num_levels, freeze_encoder_bn=freeze_encoder_bn,
                dtype=base.compute_dtype(config))
  if p.get('features'):
    kwargs['features'] = tuple(p.features)
  if p.get('kernel_sizes'):
    kwargs['kernel_sizes'] = tuple(p.kernel_sizes)
  return PConvUNet(**kwargs)


def _wants_vgg(config: Config) -> bool:
  return config.loss.perceptual > 0 or config.loss.style > 0


def uses_vgg(config: Config) -> bool:
  return bool(config.get('vgg_weights')) and _wants_vgg(config)


@functools.lru_cache(maxsize=4)
def _feature_fn(path: str, dtype: str):
  # Only the layers the loss reads (pool1..pool3): the rest of VGG-16 would be computed for nothing.
  # The loss network computes in the model's dtype (bf16 convolutions under mixed precision, float32
  # features and losses).
  return vgg.pretrained(path, depth=16, layers=tuple(losses.PCONV_FEATURE_LAYERS), dtype=dtype)


def feature_fn(config: Config):
  if not uses_vgg(config):
    return None
  return _feature_fn(str(config.vgg_weights), base.compute_dtype(config).name)


def loss_fn(config: Config, output, target, mask):
  l = config.loss
  fn = feature_fn(config)
  kwargs = dict(valid_weight=l.valid, hole_weight=l.hole, tv_weight=l.tv, ssim_weight=l.get('ssim', 0.0),
                mse_weight=l.get('mse', 0.0))
  if fn is not None:
    kwargs.update(feature_fn=fn, perceptual_weight=l.perceptual, style_weight=l.style)
  return losses.pconv_loss(output, target, mask, **kwargs)


# ------------------------------------------------------------------------------------------ optimiser

_FROZEN_IN_PHASE_2 = re.compile(r'^enc\d+/bn/')


def param_labels(params) -> Any:
  """'frozen' for encoder BN scale/bias (phase 2 only trains the rest), 'train' otherwise."""
  def label(path, _):
    name = '/'.join(str(getattr(k, 'key', k)) for k in path)
    return 'frozen' if _FROZEN_IN_PHASE_2.match(name) else 'train'
  return jax.tree_util.tree_map_with_path(label, params)


learning_rate_schedule = base.learning_rate_schedule


def make_optimizer(config: Config) -> optax.GradientTransformation:
  adam = optax.adam(learning_rate_schedule(config), b1=config.get('adam_b1', 0.9), b2=config.get('adam_b2', 0.999))
  if config.phase == 2:
    return optax.multi_transform({'train': adam, 'frozen': optax.set_to_zero()}, param_labels)
  return adam


# ------------------------------------------------------------------------------------------ the task

class PConvTask(base.Task):
  """The PConv U-Net of Liu et al. 2018 (see the module docstring)."""

  label = 'PConv (Liu et al. 2018)'
  quickstart = ('python train.py --config configs/quickstart.py --workdir runs/quickstart',)

  def validate(self) -> None:
    """One-line ValueErrors for PConv-specific mistakes (checked before anything is compiled)."""
    config = self.config
    base.compute_dtype(config)
    multiple = self.required_multiple()
    if config.image_size % multiple:
      raise ValueError(f'config.image_size={config.image_size} must be divisible by 2**config.pconv.num_levels='
                       f'{multiple} (the U-Net halves the resolution {config.pconv.num_levels} times)')
    if config.phase not in (1, 2):
      raise ValueError(f'config.phase={config.phase} must be 1 (train) or 2 (fine-tune with frozen encoder BN)')
    learning_rate_schedule(config)  # unknown config.lr_schedule -> one-line ValueError before compiling
    wants_vgg = _wants_vgg(config)
    if wants_vgg and config.get('vgg_weights') and not pathlib.Path(config.vgg_weights).expanduser().is_file():
      raise ValueError(f'config.vgg_weights={config.vgg_weights!r}: no such file (expected VGG-16 ImageNet weights: '
                       'torchvision .pth, .safetensors, or .npz from `python -m jaxinpaint.weights convert`)')
    if wants_vgg and not config.get('vgg_weights') and not config.loss.allow_missing_vgg:
      raise ValueError(
          'the perceptual/style loss terms need ImageNet VGG-16 weights: set --config.vgg_weights=PATH.npz '
          '(convert with `python -m jaxinpaint.weights convert`), or opt out with '
          '--config.loss.allow_missing_vgg=True (trains without perceptual/style terms)')

  def warnings(self) -> list[str]:
    """The banner of a run that drops the perceptual and style terms for want of VGG-16 weights."""
    config = self.config
    if not (_wants_vgg(config) and not config.get('vgg_weights') and config.loss.get('allow_missing_vgg')):
      return []
    bar = '!' * 100
    return [f'{bar}\n!! WARNING: config.vgg_weights is not set and config.loss.allow_missing_vgg=True: training '
            'WITHOUT the perceptual\n!! and style loss terms (no ImageNet VGG-16 weights available). Results will '
            'be blurrier than the paper.\n!! Set --config.vgg_weights=PATH.npz for the full loss.\n' + bar]

  def requires_init_from(self) -> str | None:
    return 'config.phase=2 fine-tunes a phase-1 model' if self.config.phase == 2 else None

  def required_multiple(self) -> int:
    """The U-Net halves the resolution num_levels times."""
    return 2 ** int(self.config.pconv.num_levels)

  def example_batch(self, batch_size: int) -> dict[str, np.ndarray]:
    s = self.config.image_size
    return {'image': np.zeros((batch_size, s, s, 3), np.float32),
            'mask': np.ones((batch_size, s, s, 1), np.float32)}

  def init_state(self, rng: jax.Array, batch: dict[str, jax.Array]) -> TrainState:
    model = build_model(self.config)
    init_rng, rng = jax.random.split(rng)
    variables = model.init(init_rng, batch['image'][:1], batch['mask'][:1], train=False)
    params = variables['params']
    batch_stats = variables.get('batch_stats', {})
    opt_state = make_optimizer(self.config).init(params)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
                      opt_state=opt_state, rng=rng)

  def init_from_previous(self, new_state: TrainState, old_state: TrainState) -> TrainState:
    """Phase 2 starts from phase 1's weights and BN statistics with a fresh optimiser and step 0."""
    return new_state.replace(params=old_state.params, batch_stats=old_state.batch_stats)

  def train_step(self, state: TrainState, batch: dict[str, jax.Array]):
    """One Adam update on the global batch (BN statistics are the global batch's under jit+sharding)."""
    config = self.config
    model = build_model(config)
    optimizer = make_optimizer(config)
    image, mask = batch['image'], batch['mask']

    def objective(params):
      output, updates = model.apply({'params': params, 'batch_stats': state.batch_stats}, image, mask,
                                    train=True, mutable=['batch_stats'])
      total, terms = loss_fn(config, output, image, mask)
      return total, (terms, updates)

    (loss, (terms, updates)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
    param_updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, param_updates)
    new_stats = updates.get('batch_stats', state.batch_stats)
    step_metrics = {'loss': loss, **terms, 'lr': learning_rate_schedule(config)(state.step),
                    'grad_norm': optax.tree.norm(grads)}
    new_state = state.replace(step=state.step + 1, params=params, batch_stats=new_stats, opt_state=opt_state)
    return new_state, step_metrics

  def _apply(self, state: TrainState, image, mask):
    model = build_model(self.config)
    return model.apply({'params': state.params, 'batch_stats': state.batch_stats}, image, mask, train=False)

  def eval_step(self, state: TrainState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    image, mask = batch['image'], batch['mask']
    output = self._apply(state, image, mask)
    loss, terms = loss_fn(self.config, output, image, mask)
    comp = losses.composite(output, image, mask)
    return {'loss': loss, **terms, 'l1_composite': jnp.mean(jnp.abs(comp - image)),
            'psnr_composite': jnp.mean(metrics.psnr(comp, image))}

  def sample(self, state: TrainState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    image, mask = batch['image'], batch['mask']
    output = jnp.clip(self._apply(state, image, mask), 0.0, 1.0)
    return {'masked input': image * mask + (1.0 - mask), 'output': output,
            'composite': losses.composite(output, image, mask), 'ground truth': image}

  def predict(self, state: TrainState, images, masks) -> dict[str, jax.Array]:
    """{'image': raw network output in [0, 1]} (callers composite it with `jaxinpaint.losses.composite`)."""
    return {'image': jnp.clip(self._apply(state, images, masks), 0.0, 1.0)}

  def inference_state(self, state: TrainState) -> TrainState:
    """The weights and BatchNorm statistics; no optimiser state, step or rng."""
    return state.replace(step=None, opt_state=None, rng=None)
