"""The model-agnostic training loop: mesh, input, state, the jitted update step, checkpoints, logging.

Structure follows the Flax ImageNet example / big_vision: `jaxinpaint.training.validation` (fail before
compiling), `create_train_state`, the jitted `train_step` / `eval_step` wrappers, and `train_and_evaluate`,
which owns the mesh, sharding, checkpoints, logging and pictures. Everything about the model comes from
its task (`jaxinpaint.tasks`, selected by `config.model`); the loop never asks which model it trains.
"""

from __future__ import annotations

import json
import math
import pathlib
import time
from typing import Any, Callable

import jax
import ml_collections
import numpy as np

from jaxinpaint import checkpoint as ckpt
from jaxinpaint import data
from jaxinpaint import tasks
from jaxinpaint.training import mesh as mesh_lib
from jaxinpaint.training import observe
from jaxinpaint.training import report
from jaxinpaint.training.validation import ConfigError, validate_config

Config = ml_collections.ConfigDict


class NonFiniteLossError(RuntimeError):
  """The training loss became NaN/inf; the last good checkpoint is kept."""


# ------------------------------------------------------------------------------------------- state

def create_train_state(task: tasks.Task, rng: jax.Array, example: dict[str, jax.Array],
                       sharding: jax.sharding.Sharding):
  """Initialises the task's state directly with its (replicated) sharding."""
  return jax.jit(task.init_state, out_shardings=sharding)(rng, example)


def make_train_step(task: tasks.Task, mesh) -> Callable:
  """THE jitted update: batch sharded over 'data', state replicated, the input state donated."""
  repl, batch = mesh_lib.replicated(mesh), mesh_lib.data_sharding(mesh)
  return jax.jit(task.train_step, in_shardings=(repl, batch), out_shardings=(repl, repl), donate_argnums=(0,))


def make_eval_step(task: tasks.Task, mesh) -> Callable:
  repl, batch = mesh_lib.replicated(mesh), mesh_lib.data_sharding(mesh)
  return jax.jit(task.eval_step, in_shardings=(repl, batch), out_shardings=repl)


def make_sample(task: tasks.Task, mesh) -> Callable:
  """The jitted `task.sample`, returning its panels as host numpy arrays in the task's display order.

  A jitted function (and any `jax.tree.map`) returns dicts with sorted keys ('composite' before 'masked
  input'), so the key order seen while tracing is recorded and restored after fetching: the grid columns
  follow the order the task built its panels in.
  """
  repl, batch_sharding = mesh_lib.replicated(mesh), mesh_lib.data_sharding(mesh)
  order: list[str] = []

  def traced(state, batch):
    panels = task.sample(state, batch)
    order[:] = list(panels)
    return panels

  jitted = jax.jit(traced, in_shardings=(repl, batch_sharding), out_shardings=repl)

  def sample(state, batch) -> dict[str, np.ndarray]:
    panels = jitted(state, batch)
    keys = order if set(order) == set(panels) else list(panels)
    return {k: np.asarray(jax.device_get(panels[k])) for k in keys}

  return sample


# ------------------------------------------------------------------------------------------- input

def create_input(task: tasks.Task):
  """This process's infinite training iterator (its share of the global batch, its own seed)."""
  config = task.config
  kwargs = dict(images=config.images, masks=config.masks, image_size=config.image_size,
                batch_size=config.batch_size // jax.process_count(),
                seed=int(config.seed) + 1_000_003 * jax.process_index(), num_workers=int(config.get('num_workers', 0)))
  if config.get('crop'):
    kwargs['crop'] = config.crop
  if config.get('shorter_side'):
    kwargs['shorter_side'] = config.shorter_side
  if config.get('mask_size'):
    kwargs['mask_size'] = config.mask_size
  if config.get('min_mask_size'):
    kwargs['min_mask_size'] = config.min_mask_size
  if config.get('channel_shuffle'):
    kwargs['channel_shuffle'] = True
  kwargs.update(task.pipeline_kwargs())
  try:
    return data.create_train_pipeline(**kwargs)
  except (ValueError, FileNotFoundError) as e:  # e.g. an empty image or mask folder
    raise ConfigError(f'config.images={config.images!r} / config.masks={config.masks!r}: {e}') from None


def eval_batches(task: tasks.Task, *, limit: int | None = None) -> list[dict[str, np.ndarray]]:
  """Fixed held-out batches of `config.batch_size` (deterministic pairs; padded by repetition)."""
  config = task.config
  try:
    pairs = data.create_eval_pairs(images=config.eval_images, masks=config.get('eval_masks') or config.masks,
                                   image_size=config.image_size, seed=int(config.seed),
                                   limit=limit if limit is not None else config.get('eval_limit'))
  except (ValueError, FileNotFoundError) as e:
    raise ConfigError(f'config.eval_images={config.eval_images!r}: {e}') from None
  b = config.batch_size
  n = max(b, int(math.ceil(len(pairs) / b)) * b)
  pairs = [pairs[i % len(pairs)] for i in range(n)]
  out = []
  for i in range(0, n, b):
    chunk = pairs[i:i + b]
    batch = {'image': np.stack([np.asarray(p.image, np.float32) for p in chunk]),
             'mask': np.stack([np.asarray(p.mask, np.float32) for p in chunk])[..., None]}
    out.append(task.prepare_eval_batch(batch))
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
  # ---- processes, validation (builds the task), mesh
  mesh_lib.initialize_distributed(coordinator_address=config.get('coordinator_address', ''),
                                  num_processes=int(config.get('num_processes', 1)),
                                  process_id=int(config.get('process_id', 0)))
  task = validate_config(config, num_devices=jax.device_count(), num_processes=jax.process_count())
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

  needs_init_from = task.requires_init_from()
  if latest is None and needs_init_from and not config.get('init_from'):
    manager.close()
    raise ConfigError(f'{needs_init_from}: set --config.init_from=WORKDIR (no checkpoint in '
                      f'{ckpt.checkpoint_dir(workdir)} to resume either)')

  # ---- input
  pipeline = create_input(task)
  for line in task.warnings():
    _log(primary, line)

  # ---- state: resume, or init (from config.init_from's checkpoint when set)
  rng = jax.random.PRNGKey(int(config.seed))
  if latest is not None:
    try:
      state, data_state = ckpt.restore(manager, latest, tasks.abstract_state(task), repl)
    except (ValueError, KeyError, TypeError) as e:
      raise ConfigError(f'the checkpoint at step {latest} in {ckpt.checkpoint_dir(workdir)} does not match this '
                        f'config (model settings changed?); use a new --workdir. ({str(e).splitlines()[0][:200]})'
                        ) from None
    if data_state is not None:
      pipeline.set_state(data_state)
    start = latest
    _log(primary, f'resuming from {ckpt.checkpoint_dir(workdir) / str(latest)} (step {latest})')
  else:
    example = mesh_lib.put_global_batch(task.example_batch(config.batch_size), mesh)
    state = create_train_state(task, rng, example, repl)
    if config.get('init_from'):
      state = _init_from(task, state, repl)
    start = int(jax.device_get(state.step))

  # ---- update step, fixed held-out batches
  train_step = make_train_step(task, mesh)
  eval_step = make_eval_step(task, mesh)
  sample_fn = make_sample(task, mesh)
  held_out = eval_batches(task) if config.get('eval_images') else []
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
      batch = next(pipeline)
      if sample_batch is None:  # no held-out set: draw the pictures from the first training batch
        sample_batch, sample_put = batch, mesh_lib.put_local_batch
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
    summary.update(report.evaluate_checkpoint(config, workdir))
  return summary


def _log(primary: bool, msg: str) -> None:
  if primary:
    print(msg, flush=True)


def _init_from(task: tasks.Task, state, sharding):
  """A fresh run starts from the latest checkpoint of `config.init_from` (e.g. PConv's phase-1 workdir)."""
  config = task.config
  src = pathlib.Path(config.init_from).expanduser().absolute()
  manager = ckpt.create_manager(src, read_only=True, keep_best=0)
  try:
    step = manager.latest_step()
    if step is None:
      raise ConfigError(f'config.init_from={config.init_from!r} has no checkpoint in {ckpt.checkpoint_dir(src)}')
    old_config = Config(ckpt.read_config(manager, step))
    if old_config.get('model') != config.model:
      raise ConfigError(f'config.init_from={config.init_from!r} holds a {old_config.get("model")!r} model, '
                        f'not {config.model!r}')
    old_state, _ = ckpt.restore(manager, step, tasks.abstract_state(tasks.build(old_config)), sharding)
  finally:
    manager.close()
  print(f'initialised from {ckpt.checkpoint_dir(src) / str(step)} (step {step})', flush=True)
  return task.init_from_previous(state, old_state)
