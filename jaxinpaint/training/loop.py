"""The model-agnostic training loop: validate config, mesh, input, state, update step, checkpoints.

Structure follows the Flax ImageNet example / big_vision: `validate_config` (fail before compiling),
`create_train_state`, the jitted `train_step` / `eval_step` wrappers, and `train_and_evaluate`, which owns
the mesh, sharding, checkpoints, logging and pictures. The model lives in a module selected by
`config.model` (see `jaxinpaint.training.registry` for the protocol).
"""

from __future__ import annotations

import functools
import json
import math
import os
import pathlib
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxinpaint.training import checkpoint as ckpt
from jaxinpaint.training import mesh as mesh_lib
from jaxinpaint.training import observe
from jaxinpaint.training import registry

Config = ml_collections.ConfigDict


class ConfigError(ValueError):
  """A configuration mistake, reported as one line before anything is compiled."""


class NonFiniteLossError(RuntimeError):
  """The training loss became NaN/inf; the last good checkpoint is kept."""


# ------------------------------------------------------------------------------------ config checks

_GENERATED_MASKS = ('irregular', 'block', 'half', 'mix:', 'center', 'random')


def _check_source(name: str, spec: str, *, masks: bool = False) -> None:
  if not spec:
    raise ConfigError(f'config.{name} is empty; expected a folder, a .flist file'
                      + (', or a generator name (irregular, block, half, mix:...)' if masks
                         else ', tfds:NAME[:SPLIT] or builtin[:train|:heldout]'))
  if spec.startswith(('builtin', 'tfds:')) and not masks:
    return
  if masks and spec.startswith(_GENERATED_MASKS):
    return
  if not pathlib.Path(spec).expanduser().exists():
    raise ConfigError(f'config.{name}={spec!r}: no such file or directory')


def validate_config(config: Config, *, num_devices: int | None = None, num_processes: int | None = None) -> None:
  """Raises ConfigError (one clear line) for a config that cannot train; compiles nothing.

  Checks: known model, positive sizes, global batch divisible by the device count (and process count),
  model-specific constraints (e.g. image size divisible by 2**num_levels), data paths that exist,
  VGG weights when perceptual/style terms are on.
  """
  try:
    module = registry.get(config.model)
  except ValueError as e:
    raise ConfigError(str(e)) from None
  for field in ('batch_size', 'image_size', 'num_steps'):
    if int(config[field]) <= 0:
      raise ConfigError(f'config.{field}={config[field]} must be a positive integer')
  num_processes = num_processes or int(config.get('num_processes', 1))
  if num_devices is None:
    # Multi-process: call `mesh.initialize_distributed` first, or jax.device_count() is only local.
    num_devices = jax.device_count()
  if config.batch_size % num_devices:
    raise ConfigError(f'config.batch_size={config.batch_size} must be divisible by the number of devices '
                      f'({num_devices}); e.g. --config.batch_size={max(1, config.batch_size // num_devices) * num_devices}')
  if config.batch_size % num_processes:
    raise ConfigError(f'config.batch_size={config.batch_size} must be divisible by config.num_processes={num_processes}')
  for field in ('log_every', 'checkpoint_every', 'sample_every'):
    if int(config.get(field, 1)) <= 0:
      raise ConfigError(f'config.{field}={config.get(field)} must be a positive integer')
  if hasattr(module, 'validate_config'):
    try:
      module.validate_config(config)
    except ValueError as e:
      raise ConfigError(str(e)) from None
  _check_source('images', config.images)
  _check_source('masks', config.masks, masks=True)
  if config.get('eval_images'):
    _check_source('eval_images', config.eval_images)
    _check_source('eval_masks', config.get('eval_masks') or config.masks, masks=True)
  if config.get('init_from'):
    path = pathlib.Path(config.init_from).expanduser()
    if not (ckpt.checkpoint_dir(path).is_dir() or path.is_dir()):
      raise ConfigError(f'config.init_from={config.init_from!r}: no such workdir (expected the phase-1 workdir '
                        'containing checkpoints/)')


# ------------------------------------------------------------------------------------------- state

def create_train_state(config: Config, module, rng: jax.Array, example: dict[str, jax.Array],
                       sharding: jax.sharding.Sharding):
  """Initialises the model state directly with its (replicated) sharding."""
  return jax.jit(functools.partial(module.init_state, config), out_shardings=sharding)(rng, example)


def abstract_state(config: Config, module, batch_size: int = 1):
  example = module.example_batch(config, batch_size)
  return jax.eval_shape(functools.partial(module.init_state, config), jax.random.PRNGKey(0), example)


def make_train_step(config: Config, module, mesh) -> Callable:
  """THE jitted update: batch sharded over 'data', state replicated, the input state donated."""
  repl, data = mesh_lib.replicated(mesh), mesh_lib.data_sharding(mesh)
  return jax.jit(functools.partial(module.train_step, config), in_shardings=(repl, data),
                 out_shardings=(repl, repl), donate_argnums=(0,))


def make_eval_step(config: Config, module, mesh) -> Callable:
  repl, data = mesh_lib.replicated(mesh), mesh_lib.data_sharding(mesh)
  return jax.jit(functools.partial(module.eval_step, config), in_shardings=(repl, data), out_shardings=repl)


def make_sample(config: Config, module, mesh) -> Callable:
  """The jitted `module.sample`, returning its panels as host numpy arrays in the module's display order.

  A jitted function (and any `jax.tree.map`) returns dicts with sorted keys ('composite' before 'masked
  input'), so the key order seen while tracing is recorded and restored after fetching: the grid columns
  follow the order the module built its panels in.
  """
  repl, data = mesh_lib.replicated(mesh), mesh_lib.data_sharding(mesh)
  order: list[str] = []

  def traced(state, batch):
    panels = module.sample(config, state, batch)
    order[:] = list(panels)
    return panels

  jitted = jax.jit(traced, in_shardings=(repl, data), out_shardings=repl)

  def sample(state, batch) -> dict[str, np.ndarray]:
    panels = jitted(state, batch)
    keys = order if set(order) == set(panels) else list(panels)
    return {k: np.asarray(jax.device_get(panels[k])) for k in keys}

  return sample


# ------------------------------------------------------------------------------------------- input

def create_input(config: Config, module):
  """This process's infinite training iterator (its share of the global batch, its own seed)."""
  from jaxinpaint import data  # pylint: disable=import-outside-toplevel
  local_batch = config.batch_size // jax.process_count()
  kwargs = dict(images=config.images, masks=config.masks, image_size=config.image_size, batch_size=local_batch,
                seed=int(config.seed) + 1_000_003 * jax.process_index(), num_workers=int(config.get('num_workers', 0)))
  if config.get('crop'):
    kwargs['crop'] = config.crop
  if hasattr(module, 'pipeline_kwargs'):
    kwargs.update(module.pipeline_kwargs(config))
  return data.create_train_pipeline(**kwargs)


def eval_batches(config: Config, module, *, limit: int | None = None) -> list[dict[str, np.ndarray]]:
  """Fixed held-out batches of `config.batch_size` (deterministic pairs; padded by repetition)."""
  from jaxinpaint import data  # pylint: disable=import-outside-toplevel
  pairs = data.create_eval_pairs(images=config.eval_images, masks=config.get('eval_masks') or config.masks,
                                 image_size=config.image_size, seed=int(config.seed),
                                 limit=limit if limit is not None else config.get('eval_limit'))
  if not pairs:
    raise ConfigError(f'config.eval_images={config.eval_images!r} yielded no evaluation images')
  b = config.batch_size
  n = max(b, int(math.ceil(len(pairs) / b)) * b)
  pairs = [pairs[i % len(pairs)] for i in range(n)]
  out = []
  for i in range(0, n, b):
    chunk = pairs[i:i + b]
    batch = {'image': np.stack([np.asarray(p.image, np.float32) for p in chunk]),
             'mask': np.stack([np.asarray(p.mask, np.float32) for p in chunk])[..., None]}
    if hasattr(module, 'prepare_eval_batch'):
      batch = module.prepare_eval_batch(config, batch)
    out.append(batch)
  return out


def evaluate(eval_step: Callable, state, batches: list[dict[str, np.ndarray]], mesh) -> dict[str, float]:
  totals: dict[str, float] = {}
  for batch in batches:
    m = mesh_lib.to_host(eval_step(state, mesh_lib.put_global_batch(batch, mesh)))
    for k, v in m.items():
      totals[k] = totals.get(k, 0.0) + float(v)
  return {k: v / len(batches) for k, v in totals.items()}


# ------------------------------------------------------------------------------------------- loop

def _config_dict(config: Config) -> dict:
  return json.loads(config.to_json_best_effort())


def _first_nonfinite(history: list[tuple[int, dict]]) -> tuple[int, dict] | None:
  for step, m in history:
    if not np.isfinite(m['loss']):
      return step, m
  return None


def _mean(history: list[tuple[int, dict]]) -> dict[str, float]:
  keys = history[-1][1].keys()
  return {k: float(np.mean([m[k] for _, m in history])) for k in keys}


def train_and_evaluate(config: Config, workdir: str | pathlib.Path, *, progress: bool = True) -> dict[str, Any]:
  """Trains `config` in `workdir` (resuming from its latest checkpoint), then optionally evaluates.

  Returns a summary dict: `status` ('done' | 'already_done'), `step`, `state` (final, replicated),
  `sample_path`, `eval` (held-out metrics) and `eval_path`.
  """
  # ---- processes, validation, mesh
  mesh_lib.initialize_distributed(coordinator_address=config.get('coordinator_address', ''),
                                  num_processes=int(config.get('num_processes', 1)),
                                  process_id=int(config.get('process_id', 0)))
  validate_config(config, num_devices=jax.device_count(), num_processes=jax.process_count())
  module = registry.get(config.model)
  workdir = pathlib.Path(workdir).expanduser().absolute()
  primary = jax.process_index() == 0
  if primary:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / 'config.json').write_text(json.dumps(_config_dict(config), indent=2))
  mesh = mesh_lib.create_mesh()
  repl = mesh_lib.replicated(mesh)

  # ---- checkpoint: finished already?
  manager = ckpt.create_manager(workdir, keep=int(config.keep_checkpoints), keep_best=int(config.keep_best))
  latest = manager.latest_step()
  summary: dict[str, Any] = {'workdir': str(workdir), 'sample_path': None, 'eval': None, 'eval_path': None}
  if latest is not None and latest >= config.num_steps:
    msg = (f'{workdir}: training is already done (checkpoint at step {latest} >= config.num_steps='
           f'{config.num_steps}); nothing to do. Raise --config.num_steps to train longer.')
    if primary:
      print(msg, flush=True)
    manager.close()
    return {**summary, 'status': 'already_done', 'step': latest, 'state': None}

  if latest is None and int(config.get('phase', 1)) == 2 and not config.get('init_from'):
    manager.close()
    raise ConfigError('config.phase=2 fine-tunes a phase-1 model: set --config.init_from=PHASE1_WORKDIR '
                      f'(no checkpoint in {ckpt.checkpoint_dir(workdir)} to resume either)')

  # ---- input
  pipeline = create_input(config, module)
  if primary:
    _warn_about_loss_terms(config)

  # ---- state: resume, or init (phase 2: from the phase-1 checkpoint)
  abstract = abstract_state(config, module)
  rng = jax.random.PRNGKey(int(config.seed))
  if latest is not None:
    try:
      state, data_state = ckpt.restore(manager, latest, abstract, repl)
    except (ValueError, KeyError, TypeError) as e:
      raise ConfigError(f'the checkpoint at step {latest} in {ckpt.checkpoint_dir(workdir)} does not match this '
                        f'config (model settings changed?); use a new --workdir. ({str(e).splitlines()[0][:200]})'
                        ) from None
    if data_state is not None:
      pipeline.set_state(data_state)
    start = latest
    _log(primary, f'resuming from {ckpt.checkpoint_dir(workdir) / str(latest)} (step {latest})')
  else:
    example = mesh_lib.put_global_batch(module.example_batch(config, config.batch_size), mesh)
    state = create_train_state(config, module, rng, example, repl)
    start = 0
    if config.get('init_from'):
      state = _init_from(config, module, state, repl)
  start = int(jax.device_get(state.step)) if latest is None else start

  # ---- update step, fixed held-out batches
  train_step = make_train_step(config, module, mesh)
  eval_step = make_eval_step(config, module, mesh)
  sample_fn = make_sample(config, module, mesh)
  held_out = eval_batches(config, module) if config.get('eval_images') else []
  sample_batch = held_out[0] if held_out else None
  sample_put = mesh_lib.put_global_batch

  obs = observe.Observer(workdir, total_steps=config.num_steps, initial_step=start, is_primary=primary,
                         progress=progress)
  if primary and obs.tensorboard_enabled:
    obs.log(f'TensorBoard summaries: {workdir / "tensorboard"}')
  cfg_json = _config_dict(config)
  history: list[tuple[int, dict]] = []   # (step, device metrics) since the last fetch
  last_saved = latest
  t_last, steps_since, compile_time = time.time(), 0, None
  # Test hook (environment, so a killed run can be re-run with the *same* command): hang before this step.
  hang_at = int(os.environ.get('JAXINPAINT_TEST_HANG_AT_STEP', -1))
  nan_at = int(config.get('debug_nan_step', -1))

  def fetch_and_check(step: int) -> dict[str, float] | None:
    nonlocal history
    if not history:
      return None
    host = [(s, mesh_lib.to_host(m)) for s, m in history]
    history = []
    bad = _first_nonfinite(host)
    if bad is not None:
      where = (f'the last good checkpoint is step {last_saved} in {ckpt.checkpoint_dir(workdir)}'
               if last_saved is not None else 'no checkpoint was saved before it')
      terms = ', '.join(f'{k}={v:.4g}' for k, v in bad[1].items() if k != 'lr')
      raise NonFiniteLossError(f'non-finite loss at step {bad[0]} ({terms}); stopped without saving, {where}. '
                               'Lower config.learning_rate or check the input data.')
    return _mean(host)

  step = start
  try:
    for step in range(start, config.num_steps):
      if step == hang_at:  # test hook: simulate a job that dies between checkpoints
        _log(primary, f'JAXINPAINT_TEST_HANG_AT_STEP={hang_at}: hanging', force=True)
        while True:
          time.sleep(1.0)
      batch = next(pipeline)
      if sample_batch is None:  # no held-out set: draw the pictures from the first training batch
        sample_batch, sample_put = batch, mesh_lib.put_local_batch
      if step == nan_at:  # test hook: inject a non-finite input
        batch = dict(batch, image=np.full_like(batch['image'], np.nan))
      t0 = time.time()
      state, metrics = train_step(state, mesh_lib.put_local_batch(batch, mesh))
      if compile_time is None:
        jax.block_until_ready(metrics)
        compile_time = time.time() - t0
        t_last, steps_since = time.time(), 0
        obs.log(f'first step (compile + run) took {compile_time:.1f}s on {jax.device_count()} device(s)')
      else:
        steps_since += 1
      history.append((step + 1, metrics))
      done = step + 1

      is_last = done == config.num_steps
      want_ckpt = done % config.checkpoint_every == 0 or is_last
      if done % config.log_every == 0 or want_ckpt:
        means = fetch_and_check(done)
        now = time.time()
        ips = steps_since * config.batch_size / max(now - t_last, 1e-9) if steps_since else float('nan')
        t_last, steps_since = now, 0
        if means is not None:
          obs.write(done, 'train', {**means, **({'images_per_sec': ips} if np.isfinite(ips) else {})})
          obs.progress(done, means['loss'], ips if np.isfinite(ips) else None)
      val_loss = None
      if held_out and (want_ckpt or done % int(config.get('eval_every', config.checkpoint_every)) == 0):
        ev = evaluate(eval_step, state, held_out, mesh)
        if not np.isfinite(ev['loss']):
          raise NonFiniteLossError(f'non-finite validation loss at step {done}; stopped without saving, the last '
                                   f'good checkpoint is step {last_saved}.')
        val_loss = ev['loss']
        obs.write(done, 'eval', ev)
      if sample_batch is not None and (done % config.sample_every == 0 or is_last):
        panels = sample_fn(state, sample_put(sample_batch, mesh))  # host arrays, display order
        summary['sample_path'] = obs.samples(done, panels)
        obs.loss_curve()
      if want_ckpt:
        ckpt.save(manager, done, state, data_state=pipeline.get_state(), config=cfg_json, val_loss=val_loss)
        last_saved = done
      if val_loss is not None or want_ckpt or done % config.sample_every == 0:
        t_last, steps_since = time.time(), 0  # images/s measures training only, not eval/pictures/saving
    obs.progress(config.num_steps)
    if primary:
      obs.loss_curve()
  finally:
    obs.close()
    manager.close()
    if hasattr(pipeline, 'close'):
      pipeline.close()  # decoding worker threads
  summary.update(status='done', step=config.num_steps, state=state, compile_time=compile_time,
                 loss_curve=str(workdir / 'loss_curve.png'))
  if config.get('evaluate_at_end') and config.get('eval_images'):
    summary.update(evaluate_checkpoint(config, workdir))
  return summary


def _log(primary: bool, msg: str, force: bool = False) -> None:
  if primary or force:
    print(msg, flush=True)


def _warn_about_loss_terms(config: Config) -> None:
  loss = config.get('loss')
  if loss is None or config.get('model') == 'edgeconnect':  # EdgeConnect's validate_config warns (VGG-19)
    return
  wants = loss.get('perceptual', 0) > 0 or loss.get('style', 0) > 0
  if wants and not config.get('vgg_weights') and loss.get('allow_missing_vgg'):
    bar = '!' * 100
    print(f'{bar}\n!! WARNING: config.vgg_weights is not set and config.loss.allow_missing_vgg=True: training '
          'WITHOUT the perceptual\n!! and style loss terms (no ImageNet VGG-16 weights available). Results will be '
          'blurrier than the paper.\n!! Set --config.vgg_weights=PATH.npz for the full loss.\n' + bar, flush=True)


def _init_from(config: Config, module, state, sharding):
  """Phase 2 starts from the latest checkpoint of `config.init_from` (the phase-1 workdir)."""
  src = pathlib.Path(config.init_from).expanduser().absolute()
  manager = ckpt.create_manager(src, read_only=True, keep_best=0)
  step = manager.latest_step()
  if step is None:
    raise ConfigError(f'config.init_from={config.init_from!r} has no checkpoint in {ckpt.checkpoint_dir(src)}')
  old_cfg = Config(ckpt.read_config(manager, step))
  if old_cfg.model != config.model:
    raise ConfigError(f'config.init_from={config.init_from!r} holds a {old_cfg.model!r} model, not {config.model!r}')
  old_state, _ = ckpt.restore(manager, step, abstract_state(old_cfg, module), sharding)
  manager.close()
  if hasattr(module, 'init_from_previous'):
    state = module.init_from_previous(config, state, old_state)
  else:
    state = state.replace(params=old_state.params)
  print(f'initialised from {ckpt.checkpoint_dir(src) / str(step)} (phase {old_cfg.get("phase", 1)} step {step})',
        flush=True)
  return state


# ------------------------------------------------------------------------------------------- inference

def _resolve_checkpoint(path: str | pathlib.Path) -> tuple[pathlib.Path, int | None]:
  """(workdir, step or None for latest) from a workdir, its checkpoints/ dir or a checkpoints/<step> dir."""
  p = pathlib.Path(path).expanduser().absolute()
  if not p.exists():
    raise FileNotFoundError(f'checkpoint path {str(path)!r} does not exist')
  if (p / ckpt.CHECKPOINT_DIR).is_dir():
    return p, None
  if p.name == ckpt.CHECKPOINT_DIR and p.is_dir():
    return p.parent, None
  if p.name.isdigit() and p.parent.name == ckpt.CHECKPOINT_DIR:
    return p.parent.parent, int(p.name)
  raise FileNotFoundError(f'{str(path)!r} is not a jaxinpaint checkpoint: expected a training workdir containing '
                          f'{ckpt.CHECKPOINT_DIR}/, or a {ckpt.CHECKPOINT_DIR}/<step> directory')


def restore_predictor(workdir_or_checkpoint: str | pathlib.Path, *, model: str | None = None,
                      batch_size: int = 8, with_edges: bool = False
                      ) -> tuple[Callable[[np.ndarray, np.ndarray], Any], dict]:
  """Loads a trained model for inference.

  Args:
    workdir_or_checkpoint: a training workdir (latest checkpoint), its `checkpoints/` dir, or one
      `checkpoints/<step>` directory.
    model: if given, the expected `config.model` ('pconv', 'edgeconnect'); a checkpoint of another kind
      raises ValueError.
    batch_size: images per jitted call (inputs are chunked/padded so any N works without recompiling).
    with_edges: return the edge map the model was conditioned on as well (models whose module defines
      `predict_with_edges`, i.e. EdgeConnect); ValueError for a model without one (PConv).

  Returns:
    `(predict, info)`: `predict(images (N,H,W,3) float [0,1], masks (N,H,W,1) 1=valid) -> outputs
    (N,H,W,3) float32 numpy` (raw network output; composite it yourself) or, with `with_edges`, a dict
    {'image': (N,H,W,3), 'edge': (N,H,W,1)} of float32 numpy arrays; and `info` =
    {'model', 'step', 'checkpoint', 'config', 'image_size', 'required_multiple'} where
    `required_multiple` is the model module's `required_multiple(config)` (None if it defines none).
  """
  if int(batch_size) != batch_size or batch_size < 1:
    raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}')
  batch_size = int(batch_size)
  workdir, step = _resolve_checkpoint(workdir_or_checkpoint)
  manager = ckpt.create_manager(workdir, read_only=True, keep_best=0)
  steps = manager.all_steps()
  if step is None:
    step = manager.latest_step()
  if step is None or step not in steps:
    manager.close()
    raise FileNotFoundError(f'no finished checkpoint in {ckpt.checkpoint_dir(workdir)}')
  try:
    config = Config(ckpt.read_config(manager, step))
  except Exception as e:  # pylint: disable=broad-except
    manager.close()
    raise ValueError(f'{ckpt.checkpoint_dir(workdir) / str(step)} has no readable config item; '
                     f'not a jaxinpaint training checkpoint ({e})') from None
  if model is not None and config.get('model') != model:
    manager.close()
    raise ValueError(f'{workdir_or_checkpoint!r} holds a {config.get("model")!r} checkpoint, expected {model!r}')
  module = registry.get(config.model)
  if with_edges and not hasattr(module, 'predict_with_edges'):
    manager.close()
    raise ValueError(f'with_edges=True: a {config.model!r} model predicts no edge map (only models whose module '
                     f'defines predict_with_edges, e.g. edgeconnect, do); {workdir_or_checkpoint!r}')
  device = jax.local_devices()[0]
  sharding = jax.sharding.SingleDeviceSharding(device)
  state, _ = ckpt.restore(manager, step, abstract_state(config, module), sharding)
  manager.close()
  jit_predict = jax.jit(functools.partial(module.predict_with_edges if with_edges else module.predict, config))

  def predict(images: np.ndarray, masks: np.ndarray):
    images = np.asarray(images, np.float32)
    masks = np.asarray(masks, np.float32)
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f'images: expected (N, H, W, 3) float in [0, 1], got shape {images.shape}')
    if masks.ndim == 3:
      masks = masks[..., None]
    if masks.shape != images.shape[:3] + (1,):
      raise ValueError(f'masks: expected shape {images.shape[:3] + (1,)} (1 = valid), got {masks.shape}')
    n = images.shape[0]
    chunks = []
    for i in range(0, n, batch_size):
      im, mk = images[i:i + batch_size], masks[i:i + batch_size]
      k = im.shape[0]
      if k < batch_size:  # pad to a fixed shape: one compilation per image size
        im = np.concatenate([im, np.zeros((batch_size - k,) + im.shape[1:], np.float32)])
        mk = np.concatenate([mk, np.ones((batch_size - k,) + mk.shape[1:], np.float32)])
      out = jit_predict(state, jax.device_put(im, device), jax.device_put(mk, device))
      chunks.append(jax.tree.map(lambda x, k=k: np.asarray(x, np.float32)[:k], out))
    if not with_edges:
      return np.concatenate(chunks) if chunks else np.zeros_like(images)
    if not chunks:
      return {'image': np.zeros_like(images), 'edge': np.zeros_like(masks)}
    return {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}

  multiple = module.required_multiple(config) if hasattr(module, 'required_multiple') else None
  info = {'model': config.model, 'step': int(step), 'checkpoint': str(ckpt.checkpoint_dir(workdir) / str(step)),
          'config': config, 'image_size': int(config.image_size),
          'required_multiple': None if multiple is None else int(multiple)}
  return predict, info


def evaluate_checkpoint(config: Config, workdir: pathlib.Path) -> dict[str, Any]:
  """Evaluates the final checkpoint on the held-out images with generated masks.

  Uses `jaxinpaint.evaluation` (issue 6: per hole-ratio bucket L1/PSNR/SSIM, worst/best pictures in
  `workdir/eval/`) when available; always writes `eval_results.json` (overall numbers) and
  `eval_samples.png` (masked input | output | composite | ground truth).
  """
  from jaxinpaint import data  # pylint: disable=import-outside-toplevel
  try:
    from jaxinpaint import evaluation  # pylint: disable=import-outside-toplevel
  except ImportError:
    evaluation = None
  predict, info = restore_predictor(workdir, batch_size=int(config.batch_size))
  images_spec = config.eval_images
  repeats = int(config.get('final_eval_repeats') or 1)
  if repeats > 1 and evaluation is not None:  # few held-out photos: each one with several different masks
    images_spec = evaluation.repeated_source(config.eval_images, repeats)
  pairs = data.create_eval_pairs(images=images_spec, masks=config.get('eval_masks') or config.masks,
                                 image_size=config.image_size, seed=int(config.seed) + 1,
                                 limit=config.get('final_eval_limit'))
  images = np.stack([np.asarray(p.image, np.float32) for p in pairs])
  masks = np.stack([np.asarray(p.mask, np.float32) for p in pairs])[..., None]
  outputs = predict(images, masks)
  comp = masks * images + (1.0 - masks) * outputs
  results: dict[str, Any] = {'checkpoint': info['checkpoint'], 'num_images': int(len(pairs)),
                             'hole_fraction': float(np.mean(1.0 - masks))}
  out: dict[str, Any] = {}
  if evaluation is not None:
    res = evaluation.evaluate(predict, pairs, batch_size=int(config.batch_size), progress=False,
                              method=str(config.model))
    row = res.row()
    results.update({'l1_percent': float(row['l1']), 'psnr': float(row['psnr']), 'ssim': float(row['ssim'])})
    if jax.process_index() == 0:
      paths = evaluation.write_results(res, workdir / 'eval')
      out['eval_table_path'] = str(paths['markdown'])
    if config.get('final_eval_baseline'):  # a classical method on the same pairs, for scale
      from jaxinpaint import baselines  # pylint: disable=import-outside-toplevel
      name = str(config.final_eval_baseline)
      base = evaluation.evaluate(baselines.get_predictor(name), pairs, batch_size=int(config.batch_size),
                                 progress=False, method=name).row()
      results[f'baseline_{name}'] = {'l1_percent': float(base['l1']), 'psnr': float(base['psnr']),
                                     'ssim': float(base['ssim'])}
  else:  # the same definitions as jaxinpaint.metrics, inline
    results['l1_percent'] = float(100.0 * np.mean(np.abs(comp - images)))
    mse = np.mean((comp - images) ** 2, axis=(1, 2, 3))
    results['psnr'] = float(np.mean(-10.0 * np.log10(np.maximum(mse, 1e-10))))
  path = workdir / 'eval_results.json'
  if jax.process_index() == 0:
    path.write_text(json.dumps(results, indent=2))
    grid = observe.image_grid({'masked input': images * masks + (1 - masks), 'output': np.clip(outputs, 0, 1),
                               'composite': comp, 'ground truth': images})
    observe.save_png(workdir / 'eval_samples.png', grid)
  out.update({'eval': results, 'eval_path': str(path), 'eval_sample_path': str(workdir / 'eval_samples.png')})
  return out
