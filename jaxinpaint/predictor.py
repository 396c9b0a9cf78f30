"""Trained models for inference: a source -> (task, state, info) -> a jitted `predict`.

The one place the inference API (`jaxinpaint.inpaint`), the demo, the evaluator and the end-of-training
report get a trained model from:

  loaded = predictor.load('runs/quickstart')                # Loaded(task, state, info)
  predict, info = predictor.restore_predictor('runs/quickstart', batch_size=8)
  outputs = predict(images, masks)                          # float32 numpy, any N, one compilation

A *source* is resolved by the first resolver in `RESOLVERS` that recognises it. The built-in resolvers:

* shipped models (`jaxinpaint.pretrained`): a name such as 'pconv_cpu_hour' that is not an existing path,
  or a path to a .npz file written by `python -m jaxinpaint.pretrained export`; weights cast to float32;
* training checkpoints (a workdir, its `checkpoints/` directory or one `checkpoints/<step>` directory: the
  config saved with the checkpoint builds the task, orbax restores the state).

Another kind of source is one more resolver (`register_resolver(fn)`), with no change to any caller.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any, Callable

import jax
import ml_collections
import numpy as np

from jaxinpaint import checkpoint as ckpt
from jaxinpaint import pretrained
from jaxinpaint import tasks

Config = ml_collections.ConfigDict
Source = str | os.PathLike
Predict = Callable[[np.ndarray, np.ndarray], Any]


@dataclasses.dataclass(frozen=True)
class Loaded:
  """A model ready for inference.

  Attributes:
    task: the `jaxinpaint.tasks.Task` built from the model's config.
    state: its restored state, on one local device.
    info: {'model' (task name), 'label', 'step', 'checkpoint' (where it came from), 'config',
      'image_size' (training size), 'required_multiple', 'predicts_edges'}; a shipped model adds
      'pretrained' (its name), 'storage_dtype' and 'source_checkpoint' (the checkpoint it was exported from).
  """
  task: tasks.Task
  state: Any
  info: dict[str, Any]


Resolver = Callable[[Source], 'Loaded | None']


def _info(task: tasks.Task, *, step: int, checkpoint: str) -> dict[str, Any]:
  return {'model': task.name, 'label': task.label, 'step': int(step), 'checkpoint': checkpoint,
          'config': task.config, 'image_size': int(task.config.image_size),
          'required_multiple': int(task.required_multiple()), 'predicts_edges': bool(task.predicts_edges)}


def from_checkpoint(source: Source) -> Loaded:
  """Restores a training checkpoint: a workdir (latest step), its `checkpoints/` dir or `checkpoints/<step>`.

  Raises:
    FileNotFoundError: the path does not exist, is not a checkpoint location, or holds no finished step.
    ValueError: the checkpoint has no readable config (not a jaxinpaint training checkpoint), or names an
      unknown model.
  """
  workdir, step = ckpt.locate(source)
  manager = ckpt.create_manager(workdir, read_only=True, keep_best=0)
  try:
    steps = manager.all_steps()
    if step is None:
      step = manager.latest_step()
    if step is None or step not in steps:
      raise FileNotFoundError(f'no finished checkpoint in {ckpt.checkpoint_dir(workdir)} (train one first, e.g. '
                              'python train.py --config configs/quickstart.py --workdir runs/quickstart)')
    where = ckpt.checkpoint_dir(workdir) / str(step)
    try:
      config = Config(ckpt.read_config(manager, step))
    except Exception as e:  # pylint: disable=broad-except  (orbax raises several types for a missing item)
      raise ValueError(f'{where} has no readable config; not a jaxinpaint training checkpoint ({e})') from None
    task = tasks.build(config)
    sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    state, _ = ckpt.restore(manager, step, tasks.abstract_state(task), sharding)
  finally:
    manager.close()
  return Loaded(task, state, _info(task, step=step, checkpoint=str(where)))


def from_pretrained(source: Source) -> Loaded:
  """A shipped model by name ('pconv_cpu_hour', see `jaxinpaint.pretrained.names()`) or a .npz file written by
  `python -m jaxinpaint.pretrained export`; float32 weights on one local device.

  Raises:
    FileNotFoundError: an unknown name (the message lists the shipped ones) or a missing file.
    ValueError: a file that is not a shipped model, or whose weights do not fit its config's network.
  """
  task, state, meta = pretrained.read(source)
  name = pathlib.Path(meta['file']).stem
  info = _info(task, step=meta['step'], checkpoint=f'pretrained model {name} ({meta["file"]})')
  info.update(pretrained=name, storage_dtype=meta['storage_dtype'], source_checkpoint=meta['source_checkpoint'])
  return Loaded(task, state, info)


def _pretrained_resolver(source: Source) -> Loaded | None:
  """Shipped models: a plain name that is no existing path, or a path to a .npz file."""
  if pretrained.is_name(source) and not os.path.exists(source):
    try:
      return from_pretrained(source)
    except FileNotFoundError as e:
      raise FileNotFoundError(f'{str(source)!r} is no checkpoint path, and {e}') from None
  if str(source).endswith('.npz'):
    return from_pretrained(source)
  return None


def _checkpoint_resolver(source: Source) -> Loaded:
  """The last resolver: every source is a checkpoint location (its errors say what was expected)."""
  return from_checkpoint(source)


RESOLVERS: list[Resolver] = [_pretrained_resolver, _checkpoint_resolver]


def register_resolver(resolver: Resolver) -> None:
  """Adds a resolver tried before the existing ones: `resolver(source) -> Loaded`, or None if not its kind."""
  RESOLVERS.insert(0, resolver)


def load(source: Source, *, model: str | None = None) -> Loaded:
  """The model at `source` (see the module docstring for the kinds of source).

  Args:
    source: e.g. a shipped model's name, a training workdir or a checkpoint directory.
    model: if given, the expected task name; a model of another kind raises ValueError.
  """
  for resolver in RESOLVERS:
    loaded = resolver(source)
    if loaded is not None:
      break
  else:
    raise FileNotFoundError(f'{str(source)!r}: no resolver recognises this model source')
  if model is not None and loaded.task.name != model:
    raise ValueError(f'{str(source)!r} holds a {loaded.task.name!r} checkpoint, expected {model!r}')
  return loaded


def jit_predict(task: tasks.Task, *, on_trace: Callable[[], None] | None = None) -> Callable:
  """`jax.jit(task.predict)`: (state, images, masks) -> {'image', ['edge']} device arrays.

  `on_trace` runs whenever jit traces (once per new input shape), e.g. to count compilations.
  """
  def traced(state, images, masks):
    if on_trace is not None:
      on_trace()
    return task.predict(state, images, masks)
  return jax.jit(traced)


def batched_predict(loaded: Loaded, *, batch_size: int = 8, with_edges: bool = False) -> Predict:
  """A numpy predictor over fixed-size jitted calls (any N, one compilation per image size).

  Returns:
    `predict(images (N, H, W, 3) float in [0, 1], masks (N, H, W, 1) or (N, H, W), 1 = valid)` -> outputs
    (N, H, W, 3) float32 (the raw output; composite it yourself) or, with `with_edges`, a dict
    {'image': (N, H, W, 3), 'edge': (N, H, W, 1)} of float32 arrays.

  Raises:
    ValueError: a batch size that is not a positive integer, or `with_edges` for a task without edges.
  """
  if int(batch_size) != batch_size or batch_size < 1:
    raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}')
  batch_size = int(batch_size)
  task, state = loaded.task, loaded.state
  if with_edges and not task.predicts_edges:
    raise ValueError(f'with_edges=True: a {task.name!r} model predicts no edge map (only tasks with '
                     f'predicts_edges do); {loaded.info["checkpoint"]}')
  device = jax.local_devices()[0]
  jitted = jit_predict(task)

  def predict(images: np.ndarray, masks: np.ndarray):
    images = np.asarray(images, np.float32)
    masks = np.asarray(masks, np.float32)
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f'images: expected (N, H, W, 3) float in [0, 1], got shape {images.shape}')
    if masks.ndim == 3:
      masks = masks[..., None]
    if masks.shape != images.shape[:3] + (1,):
      raise ValueError(f'masks: expected shape {images.shape[:3] + (1,)} (1 = valid), got {masks.shape}')
    chunks = []
    for i in range(0, images.shape[0], batch_size):
      im, mk = images[i:i + batch_size], masks[i:i + batch_size]
      k = im.shape[0]
      if k < batch_size:  # pad to a fixed shape: one compilation per image size
        im = np.concatenate([im, np.zeros((batch_size - k,) + im.shape[1:], np.float32)])
        mk = np.concatenate([mk, np.ones((batch_size - k,) + mk.shape[1:], np.float32)])
      out = jitted(state, jax.device_put(im, device), jax.device_put(mk, device))
      chunks.append({key: np.asarray(v, np.float32)[:k] for key, v in out.items()})
    if not chunks:
      out = {'image': np.zeros_like(images), 'edge': np.zeros_like(masks)}
    else:
      out = {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}
    return {'image': out['image'], 'edge': out['edge']} if with_edges else out['image']

  return predict


def restore_predictor(source: Source, *, model: str | None = None, batch_size: int = 8,
                      with_edges: bool = False) -> tuple[Predict, dict[str, Any]]:
  """Loads a trained model for inference: `load` + `batched_predict`.

  Args:
    source: a shipped model's name, a training workdir (latest checkpoint), its `checkpoints/` dir, or one
      `checkpoints/<step>` directory (or any source a registered resolver recognises).
    model: if given, the expected `config.model`; a model of another kind raises ValueError.
    batch_size: images per jitted call (inputs are chunked/padded so any N works without recompiling).
    with_edges: return the edge map the model was conditioned on as well (tasks with `predicts_edges`,
      e.g. EdgeConnect); ValueError for a model without one.

  Returns:
    `(predict, info)`: see `batched_predict` and `Loaded.info`.
  """
  loaded = load(source, model=model)
  return batched_predict(loaded, batch_size=batch_size, with_edges=with_edges), loaded.info
