"""EdgeConnect (Nazeri et al. 2019) as a task: four training stages of alternating D/G updates, inference.

`EdgeConnectTask` implements the protocol of `jaxinpaint.tasks.base` for `config.model = 'edgeconnect'`,
following the authors' released code (knazeri/edge-connect `src/models.py`, `src/edge_connect.py`):

* `config.stage` 1: edge model (G1 + D1) on (gray, Canny edges, mask);
  2: completion model (G2 + D2) conditioned on the ground-truth Canny edges of the full image;
  3: completion model conditioned on edges from a *frozen* G1, composited with the known edges outside the
     hole (`mask * edge + (1 - mask) * G1`); G1 runs in eval mode so it stays bit-for-bit unchanged;
  4: joint: both models train; G2's loss back-propagates through the composite edges into G1, whose update
     uses the sum of its own loss and G2's (as the reference's accumulated `.backward()` calls do).
* Losses (weights in `config.loss`): edge model = adversarial (1) + feature matching (10); completion model
  = L1 / mean hole fraction (1) + adversarial (0.1) + VGG-19 perceptual (0.1) + VGG-19 style on the hole
  region (250); discriminator = (real + fake) / 2; `config.edgeconnect.gan_type` 'nsgan' | 'lsgan' | 'hinge'.
  The VGG-19 terms need ImageNet weights (`config.vgg_weights`); without them training refuses to start
  unless `config.loss.allow_missing_vgg=True`, which drops the two terms (`warnings` says so loudly).
  Two optional completion terms that are NOT in the paper (weights 0 by default): `config.loss.hole` x
  PConv's hole L1 and `config.loss.ssim` x (1 - SSIM) of the composite (docs/edgeconnect_quality.md).
* Per step: generators forward once (one spectral-norm power iteration of G1), then each discriminator's
  Adam update on (real, fake.detach()), then the generators' Adam update whose loss uses the discriminator
  parameters from *before* that step's update (the reference computes `gen_fake` before `dis_optimizer.step`).
  Discriminators run in train mode three times per step (real, fake, generator) like the reference, so their
  power-iteration vectors advance three times.
* Optax Adam(b1=0, b2=0.9); G lr `config.learning_rate` (1e-4), D lr = `config.d2g_lr` (0.1) x G lr; the lr
  is multiplied by `config.lr_drop_factor` (0.1) at each step in `config.lr_drop_steps` (1e-4 -> 1e-5 -> 1e-6).
  Warm-up and a cosine decay (`config.lr_schedule`) are available as for PConv (`base.learning_rate_schedule`);
  the paper's schedule is the constant one.
* Every state holds all four networks (G1, D1, G2, D2) so the stages chain: `config.init_from` = the previous
  stage's workdir copies all networks (fresh optimisers, step 0), e.g. stage 1 -> 2 carries G1 along.
* `config.ema_decay` > 0 (not in the paper; 0 = off, the default) keeps an exponential moving average of the
  trained generators' weights, `ema <- decay * ema + (1 - decay) * params` after every update, started from
  the stage's initial weights. Validation, samples, `predict`, `inference_state` (export) and the next stage's
  `init_from` then use the averaged generators; training continues on the raw weights. A GAN generator's
  weights wander from step to step (the checkpoints of a constant-lr stage differ by tenths of a dB); the
  average is a smoother model at no training cost (docs/edgeconnect_quality.md).

Inference (`predict`): Canny on the known region -> G1 -> composite edges -> G2; returns the raw G2 output
(the caller composites) and the composite edge map G2 was conditioned on.
"""

from __future__ import annotations

import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxinpaint import edges
from jaxinpaint import losses
from jaxinpaint import metrics
from jaxinpaint.models import edgeconnect as nets
from jaxinpaint.models import vgg
from jaxinpaint.tasks import base

Config = ml_collections.ConfigDict
SPECTRAL = nets.SPECTRAL
EMA = 'ema'  # key of the generators' moving averages in TrainState.opt_state

# Networks each stage optimises.
TRAINED = {1: ('g1', 'd1'), 2: ('g2', 'd2'), 3: ('g2', 'd2'), 4: ('g1', 'd1', 'g2', 'd2')}


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  nets: dict[str, Any]       # 'g1', 'd1', 'g2', 'd2' -> flax variables {'params', ['spectral']}
  # The optimiser states of the networks this stage trains, and with config.ema_decay > 0 'ema': generator
  # name -> averaged 'params' (here, not a field of its own, so checkpoints without averages keep their tree).
  opt_state: dict[str, Any]
  rng: jax.Array


# ---------------------------------------------------------------------------------------------- config

def _wants_vgg(config: Config) -> bool:
  return config.loss.perceptual > 0 or config.loss.style > 0


def _uses_vgg(config: Config) -> bool:
  return bool(config.get('vgg_weights')) and _wants_vgg(config) and config.stage != 1


@functools.lru_cache(maxsize=4)
def _feature_fn(path: str, dtype: str):
  layers = tuple(sorted(set(losses.EDGECONNECT_PERCEPTUAL_LAYERS) | set(losses.EDGECONNECT_STYLE_LAYERS)))
  # In the model's compute dtype (bf16 convolutions under mixed precision, as autocast runs the authors'
  # VGG-19); features and losses float32.
  return vgg.require_weights(path, depth=19, purpose='the EdgeConnect perceptual/style loss', layers=layers,
                             dtype=dtype)


def feature_fn(config: Config):
  if not _uses_vgg(config):
    return None
  return _feature_fn(str(config.vgg_weights), base.compute_dtype(config).name)


# ---------------------------------------------------------------------------------------------- models

def build_models(config: Config) -> dict[str, Any]:
  e, dtype = config.edgeconnect, base.compute_dtype(config)
  return {'g1': nets.EdgeGenerator(features=e.features, residual_blocks=e.residual_blocks, dtype=dtype),
          'g2': nets.InpaintGenerator(features=e.features, residual_blocks=e.residual_blocks, dtype=dtype),
          'd1': nets.PatchDiscriminator(features=e.d_features, dtype=dtype),
          'd2': nets.PatchDiscriminator(features=e.d_features, dtype=dtype)}


def _apply(model, variables, x, *, train: bool):
  """(output, variables with updated spectral vectors) — train mode advances the power iteration."""
  if train and SPECTRAL in variables:
    out, upd = model.apply(variables, x, train=True, mutable=[SPECTRAL])
    return out, {**variables, SPECTRAL: upd[SPECTRAL]}
  return model.apply(variables, x, train=train), variables


def make_optimizers(config: Config) -> dict[str, optax.GradientTransformation]:
  out = {}
  for name in TRAINED[config.stage]:
    scale = float(config.d2g_lr) if name.startswith('d') else 1.0
    out[name] = optax.adam(base.learning_rate_schedule(config, scale=scale), b1=float(config.adam_b1),
                           b2=float(config.adam_b2))
  return out


def _fixed_sigma(config: Config) -> float:
  # edge_sigma = 0 means a random sigma per training example (the authors' SIGMA=0); evaluation and
  # inference use the default 2, as the authors' test setting.
  return float(config.edgeconnect.edge_sigma) or 2.0


def _composite_edges(pred, edge, mask):
  """The edge map G2 sees: the known edges outside the hole, G1's inside (the image composite's rule)."""
  return losses.composite(pred, edge, mask)


def _generators(config: Config, models, all_nets, trained_params, batch, *, train: bool):
  """Forward of the generators a stage uses -> (outputs, updated spectral state of G1).

  `trained_params` holds the params being differentiated (subset of g1/g2); other nets come from
  `all_nets`. outputs: 'edge' (raw G1 output, stages 1, 3, 4), 'edge_in' (what G2 sees), 'image' (G2).
  """
  stage = config.stage
  image, mask, gray, edge = batch['image'], batch['mask'], batch['gray'], batch['edge']
  outs = {}
  g1_vars = all_nets['g1']
  if stage in (1, 3, 4):
    if 'g1' in trained_params:
      g1_vars = {**g1_vars, 'params': trained_params['g1']}
    e, g1_vars = _apply(models['g1'], g1_vars, nets.edge_generator_inputs(gray, edge, mask),
                        train=train and stage != 3)  # stage 3: frozen G1, stored u/v, nothing moves
    outs['edge'] = e
  if stage in (2, 3, 4):
    if stage == 2:
      edge_in = edge
    else:
      edge_in = _composite_edges(outs['edge'], edge, mask)
      if stage == 3:
        edge_in = jax.lax.stop_gradient(edge_in)
    outs['edge_in'] = edge_in
    g2_vars = {**all_nets['g2'], 'params': trained_params.get('g2', all_nets['g2']['params'])}
    outs['image'], _ = _apply(models['g2'], g2_vars, nets.inpaint_generator_inputs(image, edge_in, mask),
                              train=train)
  return outs, g1_vars.get(SPECTRAL)


def _disc_inputs(name: str, batch, outs):
  """(real, fake) discriminator inputs: D1 sees concat(gray, edge), D2 the RGB image."""
  if name == 'd1':
    return (jnp.concatenate([batch['gray'], batch['edge']], -1),
            jnp.concatenate([batch['gray'], outs['edge']], -1))
  return batch['image'], outs['image']


def _d_loss(config, model, params, variables, real, fake):
  gan = config.edgeconnect.gan_type
  v = {**variables, 'params': params}
  (real_logits, real_feats), v = _apply(model, v, real, train=True)
  (fake_logits, _), v = _apply(model, v, fake, train=True)
  loss = (losses.adversarial(real_logits, is_real=True, is_discriminator=True, gan_type=gan)
          + losses.adversarial(fake_logits, is_real=False, is_discriminator=True, gan_type=gan)) / 2.0
  return loss, (v.get(SPECTRAL), jax.lax.stop_gradient(real_feats))


def _g_loss(config, models, d_vars, real_feats, batch, outs):
  """Generator loss of the stage from the generator outputs and the *pre-update* discriminators."""
  gan, w = config.edgeconnect.gan_type, config.loss
  total = jnp.zeros((), jnp.float32)
  terms, new_spectral = {}, {}
  if config.stage in (1, 4):
    (logits, feats), v = _apply(models['d1'], d_vars['d1'], _disc_inputs('d1', batch, outs)[1], train=True)
    new_spectral['d1'] = v.get(SPECTRAL)
    terms['g1_adv'] = losses.adversarial(logits, is_real=True, is_discriminator=False, gan_type=gan)
    terms['g1_fm'] = losses.feature_matching(real_feats['d1'], feats)
    total = total + w.edge_adversarial * terms['g1_adv'] + w.feature_matching * terms['g1_fm']
  if config.stage in (2, 3, 4):
    y, image, mask = outs['image'], batch['image'], batch['mask']
    (logits, _), v = _apply(models['d2'], d_vars['d2'], y, train=True)
    new_spectral['d2'] = v.get(SPECTRAL)
    terms['g2_adv'] = losses.adversarial(logits, is_real=True, is_discriminator=False, gan_type=gan)
    terms['g2_l1'] = losses.edgeconnect_l1(y, image, mask)
    total = total + w.adversarial * terms['g2_adv'] + w.l1 * terms['g2_l1']
    fn = feature_fn(config)
    if fn is not None:
      terms['g2_perceptual'] = losses.edgeconnect_perceptual(y, image, feature_fn=fn)
      terms['g2_style'] = losses.edgeconnect_style(y, image, feature_fn=fn, mask=mask)
      total = total + w.perceptual * terms['g2_perceptual'] + w.style * terms['g2_style']
    # Optional terms NOT in [Nazeri2019], for runs without VGG weights (both 0 by default): PConv's hole L1
    # ([Liu2018] L_hole) moves the weight of the per-pixel loss into the hole, the only region the composite
    # shows, and 1 - SSIM of the composite trains the metric the evaluator reports.
    if w.get('hole', 0.0):
      terms['g2_hole'] = losses.l1_hole(y, image, mask)
      total = total + w.hole * terms['g2_hole']
    if w.get('ssim', 0.0):
      terms['g2_ssim'] = losses.dssim(losses.composite(y, image, mask), image)
      total = total + w.ssim * terms['g2_ssim']
  return total, (terms, new_spectral)


def _edge_metrics(pred, target, mask) -> dict[str, jax.Array]:
  """EdgeConnect's EdgeAccuracy of the batch inside the hole (`jaxinpaint.metrics`)."""
  precision, recall = metrics.edge_precision_recall(*metrics.edge_counts(pred, target, mask))
  return {'edge_precision': precision, 'edge_recall': recall}


def train_step(config: Config, state: TrainState, batch: dict[str, jax.Array]):
  """One EdgeConnect iteration: D update(s), then G update(s) with the pre-update D parameters."""
  models = build_models(config)
  optimizers = make_optimizers(config)
  trained = TRAINED[config.stage]
  gens = [n for n in trained if n.startswith('g')]
  discs = [n for n in trained if n.startswith('d')]
  all_nets = state.nets

  # 1. Generators forward once; keep the VJP for their update.
  g_params = {n: all_nets[n]['params'] for n in gens}
  outs, g_vjp, g1_spectral = jax.vjp(
      lambda p: _generators(config, models, all_nets, p, batch, train=True), g_params, has_aux=True)
  outs_sg = jax.lax.stop_gradient(outs)

  # 2. Discriminator losses and grads (real, fake.detach()), with pre-update parameters.
  step_metrics: dict[str, jax.Array] = {}
  d_grads, d_after, real_feats = {}, {}, {}
  for n in discs:
    real, fake = _disc_inputs(n, batch, outs_sg)
    (d_loss, (spec, feats)), grads = jax.value_and_grad(
        functools.partial(_d_loss, config, models[n]), has_aux=True)(all_nets[n]['params'], all_nets[n], real, fake)
    d_grads[n], real_feats[n] = grads, feats
    d_after[n] = {**all_nets[n], SPECTRAL: spec}  # old params, spectral after the real/fake calls
    step_metrics[f'{n}_loss'] = d_loss

  # 3. Generator loss with the discriminators' pre-update params; pull the grads back through the forward.
  (g_loss, (terms, d_spectral)), out_grads = jax.value_and_grad(
      lambda o: _g_loss(config, models, d_after, real_feats, batch, o), has_aux=True)(outs)
  (g_grads,) = g_vjp(out_grads)

  # 4. Adam updates.
  new_nets = dict(all_nets)
  new_opt = dict(state.opt_state)
  for n in discs:
    upd, new_opt[n] = optimizers[n].update(d_grads[n], state.opt_state[n], all_nets[n]['params'])
    new_nets[n] = {**all_nets[n], 'params': optax.apply_updates(all_nets[n]['params'], upd), SPECTRAL: d_spectral[n]}
  for n in gens:
    upd, new_opt[n] = optimizers[n].update(g_grads[n], state.opt_state[n], all_nets[n]['params'])
    new_nets[n] = {**all_nets[n], 'params': optax.apply_updates(all_nets[n]['params'], upd)}
  if 'g1' in gens and g1_spectral is not None:
    new_nets['g1'] = {**new_nets['g1'], SPECTRAL: g1_spectral}
  if EMA in state.opt_state:
    decay = float(config.ema_decay)
    new_opt[EMA] = {n: optax.incremental_update(new_nets[n]['params'], p, 1.0 - decay)
                    for n, p in state.opt_state[EMA].items()}

  step_metrics.update(terms)
  step_metrics['loss'] = g_loss
  step_metrics['lr'] = base.learning_rate_schedule(config)(state.step)
  if 'edge' in outs:
    step_metrics.update(_edge_metrics(outs_sg['edge'], batch['edge'], batch['mask']))
  for n in gens:
    step_metrics[f'{n}_grad_norm'] = optax.tree.norm(g_grads[n])
  new_state = state.replace(step=state.step + 1, nets=new_nets, opt_state=new_opt)
  return new_state, step_metrics


def averaged_nets(state: TrainState) -> dict[str, Any]:
  """`state.nets` with the generators' weights replaced by their moving averages where the state keeps them."""
  ema = (state.opt_state or {}).get(EMA)
  if not ema:
    return state.nets
  return {**state.nets, **{n: {**state.nets[n], 'params': p} for n, p in ema.items()}}


def _with_ema(config: Config, opt_state: dict[str, Any], nets_: dict[str, Any]) -> dict[str, Any]:
  """`opt_state` with fresh moving averages (copies of `nets_`' trained generators) when config.ema_decay > 0."""
  opt_state = {k: v for k, v in opt_state.items() if k != EMA}
  if config.get('ema_decay'):
    gens = [n for n in TRAINED[config.stage] if n.startswith('g')]
    opt_state[EMA] = {n: jax.tree.map(jnp.copy, nets_[n]['params']) for n in gens}
  return opt_state


def known_region_canny(images: jax.Array, masks: jax.Array, *, sigma: float) -> jax.Array:
  """Canny edges of the gray image restricted to the known region (`jaxinpaint.edges.canny` with the mask,
  as the reference's test-time `load_edge`), callable inside jit (host callback)."""

  def host(im, mk):
    return edges.canny_batch(np.asarray(im, np.float32), sigma=sigma, masks=np.asarray(mk, np.float32))

  return jax.pure_callback(host, jax.ShapeDtypeStruct(masks.shape, jnp.float32), images, masks,
                           vmap_method='sequential')


# ---------------------------------------------------------------------------------------------- the task

class EdgeConnectTask(base.Task):
  """EdgeConnect's edge model G1 and completion model G2 with their discriminators (module docstring)."""

  label = 'EdgeConnect (Nazeri et al. 2019)'
  predicts_edges = True
  quickstart = tuple(  # configs/edgeconnect_quickstart.py: the four stages, each from the previous one
      f'python train.py --config configs/edgeconnect_quickstart.py:stage{s} --workdir runs/ecq_s{s}'
      + (f' --config.init_from=runs/ecq_s{s - 1}' if s > 1 else '') for s in (1, 2, 3, 4))

  def validate(self) -> None:
    """One-line ValueErrors for EdgeConnect-specific mistakes (before anything is compiled)."""
    config = self.config
    base.compute_dtype(config)
    stage = config.get('stage')
    if stage not in TRAINED:
      raise ValueError(f'config.stage={stage!r} must be 1 (edge model), 2 (completion with Canny edges), '
                       '3 (completion with frozen-G1 edges) or 4 (joint)')
    if config.image_size < 32 or config.image_size % self.required_multiple():
      raise ValueError(f'config.image_size={config.image_size} must be a multiple of 4 and >= 32 (two stride-2 '
                       'levels in the generators; the 70x70 PatchGAN needs at least 32 pixels)')
    base.learning_rate_schedule(config)  # unknown config.lr_schedule -> one-line ValueError before compiling
    decay = config.get('ema_decay', 0.0)
    if not (isinstance(decay, (int, float)) and 0.0 <= decay < 1.0):
      raise ValueError(f'config.ema_decay={decay!r} must be in [0, 1) (0 = no moving average of the generators)')
    gan = config.edgeconnect.gan_type
    if gan not in losses.GAN_TYPES:
      raise ValueError(f'config.edgeconnect.gan_type={gan!r} must be one of {losses.GAN_TYPES}')
    if stage != 1 and _wants_vgg(config) and not config.get('vgg_weights') and not config.loss.allow_missing_vgg:
      raise ValueError(
          'the EdgeConnect perceptual/style terms need ImageNet VGG-19 weights: set --config.vgg_weights=PATH '
          '(vgg19-dcbb9e9d.pth or an .npz from `python -m jaxinpaint.weights convert`), or opt out with '
          '--config.loss.allow_missing_vgg=True (trains WITHOUT perceptual/style terms)')

  def warnings(self) -> list[str]:
    """The banner of a completion stage that drops the VGG-19 terms for want of weights."""
    config = self.config
    if config.stage == 1 or not _wants_vgg(config) or config.get('vgg_weights'):
      return []
    bar = '!' * 100
    return [f'{bar}\n!! WARNING: EdgeConnect stage {config.stage} trains WITHOUT the VGG-19 perceptual (0.1) and '
            'style (250) terms\n!! (config.vgg_weights is not set, config.loss.allow_missing_vgg=True). Completions '
            'will be blurrier than the\n!! paper. Set --config.vgg_weights=vgg19.npz for the full loss.\n' + bar]

  def required_multiple(self) -> int:
    """G1/G2 downsample twice with stride-2 convolutions."""
    return 4

  def example_batch(self, batch_size: int) -> dict[str, np.ndarray]:
    s = self.config.image_size
    zeros = lambda c: np.zeros((batch_size, s, s, c), np.float32)
    return {'image': zeros(3), 'mask': np.ones((batch_size, s, s, 1), np.float32), 'gray': zeros(1),
            'edge': zeros(1)}

  def pipeline_kwargs(self) -> dict[str, Any]:
    return {'with_edges': True, 'edge_sigma': float(self.config.edgeconnect.edge_sigma)}

  def prepare_eval_batch(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Adds 'gray' and 'edge' (Canny of the full ground truth, as in training) to an eval batch."""
    gray = edges.rgb_to_gray(batch['image'])[..., None]
    edge = edges.canny_batch(batch['image'], sigma=_fixed_sigma(self.config))
    return {**batch, 'gray': gray.astype(np.float32), 'edge': edge}

  def init_state(self, rng: jax.Array, batch: dict[str, jax.Array]) -> TrainState:
    models = build_models(self.config)
    rng, *keys = jax.random.split(rng, 5)
    x = batch['image'][:1]
    g = batch['gray'][:1]
    variables = {
        'g1': models['g1'].init(keys[0], jnp.concatenate([g, g, g], -1), train=False),
        'g2': models['g2'].init(keys[1], jnp.concatenate([x, g], -1), train=False),
        'd1': models['d1'].init(keys[2], jnp.concatenate([g, g], -1), train=False),
        'd2': models['d2'].init(keys[3], x, train=False),
    }
    variables = {k: dict(v) for k, v in variables.items()}
    opt_state = {k: tx.init(variables[k]['params']) for k, tx in make_optimizers(self.config).items()}
    return TrainState(step=jnp.zeros((), jnp.int32), nets=variables,
                      opt_state=_with_ema(self.config, opt_state, variables), rng=rng)

  def init_from_previous(self, new_state: TrainState, old_state: TrainState) -> TrainState:
    """The next stage starts from all four networks of the previous stage (fresh optimisers, step 0); where
    that stage kept moving averages of its generators, from those (the weights it was evaluated with)."""
    nets_ = averaged_nets(old_state)
    # The caller's fresh optimiser states (already placed on the mesh), new averages of the loaded weights.
    return new_state.replace(nets=nets_, opt_state=_with_ema(self.config, new_state.opt_state, nets_))

  def train_step(self, state: TrainState, batch: dict[str, jax.Array]):
    return train_step(self.config, state, batch)

  def eval_outputs(self, state: TrainState, batch) -> dict[str, jax.Array]:
    """The stage's generator outputs in eval mode (moving averages where kept): 'edge' (G1, stages 1, 3, 4),
    'edge_in', 'image' (G2)."""
    outs, _ = _generators(self.config, build_models(self.config), averaged_nets(state), {}, batch, train=False)
    return outs

  def eval_step(self, state: TrainState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Validation metrics; 'loss' (best-checkpoint criterion) = the hole-normalised L1 of the stage's output
    (edge map in stage 1, image otherwise)."""
    outs = self.eval_outputs(state, batch)
    mask = batch['mask']
    out = {}
    if 'edge' in outs:
      out.update(_edge_metrics(outs['edge'], batch['edge'], mask))
      out['edge_l1'] = losses.edgeconnect_l1(outs['edge'], batch['edge'], mask)
    if 'image' in outs:
      comp = losses.composite(outs['image'], batch['image'], mask)
      out['l1'] = losses.edgeconnect_l1(outs['image'], batch['image'], mask)
      out['l1_composite'] = jnp.mean(jnp.abs(comp - batch['image']))
      out['psnr_composite'] = jnp.mean(metrics.psnr(comp, batch['image']))
      out['loss'] = out['l1']
    else:
      out['loss'] = out['edge_l1']
    return out

  def sample(self, state: TrainState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Picture panels. Keys are numbered because a jitted dict output comes back in sorted-key order."""
    outs = self.eval_outputs(state, batch)
    image, mask = batch['image'], batch['mask']
    panels = {'1 masked input': image * mask + (1.0 - mask), '2 canny (ground truth)': batch['edge']}
    if 'edge' in outs:
      panels['3 G1 edges (composite)'] = _composite_edges(outs['edge'], batch['edge'], mask)
    if 'image' in outs:
      panels['4 output'] = outs['image']
      panels['5 composite'] = losses.composite(outs['image'], image, mask)
    panels['6 ground truth'] = image
    return panels

  def predict(self, state: TrainState, images, masks) -> dict[str, jax.Array]:
    """Image + mask -> Canny on the known region -> G1 -> composite edges -> G2.

    Returns {'image': raw G2 output in [0, 1] (composite it with the mask yourself), 'edge': the composite
    edge map G2 was conditioned on (N, H, W, 1)}.
    """
    images = jnp.asarray(images, jnp.float32)
    masks = jnp.asarray(masks, jnp.float32)
    models = build_models(self.config)
    edge = known_region_canny(images, masks, sigma=_fixed_sigma(self.config))
    gray = (images @ jnp.asarray(edges.LUMA_WEIGHTS))[..., None]
    variables = averaged_nets(state)
    pred = models['g1'].apply(variables['g1'], nets.edge_generator_inputs(gray, edge, masks), train=False)
    edge_comp = _composite_edges(pred, edge, masks)
    out = models['g2'].apply(variables['g2'], nets.inpaint_generator_inputs(images, edge_comp, masks),
                             train=False)
    return {'image': jnp.clip(out, 0.0, 1.0), 'edge': edge_comp}

  def inference_state(self, state: TrainState) -> TrainState:
    """The generators G1 and G2 (weights -- their moving averages where kept -- and stored spectral-norm
    vectors); no discriminators, optimisers, step, rng or separate averages."""
    variables = averaged_nets(state)
    return state.replace(step=None, nets={name: variables[name] for name in ('g1', 'g2')}, opt_state=None,
                         rng=None)
