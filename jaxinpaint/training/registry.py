"""Model registry: `config.model` name -> the module implementing the model protocol.

The training loop knows nothing about a particular network. A model module (`jaxinpaint.training.pconv`,
later `jaxinpaint.training.edgeconnect`) provides pure functions over a pytree state; the loop binds the
config with `functools.partial` and owns jit, sharding, checkpoints and logging:

  * `init_state(config, rng, batch) -> state`: a pytree (e.g. a `flax.struct.dataclass`) with an integer
    `step` field; everything needed to resume (params, batch stats, optimiser state, rng) lives in it.
  * `train_step(config, state, batch) -> (state, metrics)`: one optimiser update; `metrics` is a dict of
    scalars and must contain `'loss'` (checked for finiteness by the loop).
  * `eval_step(config, state, batch) -> metrics`: dict of scalars, must contain `'loss'` (the validation
    loss used to keep the best checkpoint).
  * `sample(config, state, batch) -> dict[str, images NHWC]`: panels for the PNG grid, in display order.
  * `predict(config, state, images, masks) -> outputs` (NHWC in [0, 1]; the caller composites).
  * `example_batch(config, batch_size) -> dict of numpy arrays`: a zero batch with the shapes the model
    trains on (used to build abstract states for restoring without data).
  * `validate_config(config) -> None`: raise `ValueError` with one clear line for a bad model config.
  * `pipeline_kwargs(config) -> dict`: extra keyword arguments for `data.create_train_pipeline`
    (e.g. `with_edges=True`).
  Optional: `prepare_eval_batch(config, batch) -> batch` (add e.g. edges to held-out batches),
  `init_from_previous(config, new_state, old_state) -> state` (what `config.init_from` carries over;
  default: params), `required_multiple(config) -> int` (reported by `restore_predictor`).

A new model registers itself with `register('name', 'package.module')` (or is added to `_MODELS`).
"""

from __future__ import annotations

import importlib
import types

_MODELS: dict[str, str] = {
    'pconv': 'jaxinpaint.training.pconv',
    'edgeconnect': 'jaxinpaint.training.edgeconnect',
}

REQUIRED = ('init_state', 'train_step', 'eval_step', 'sample', 'predict', 'example_batch')


def register(name: str, module_path: str) -> None:
  """Registers `module_path` (importable, implementing the protocol above) under `config.model = name`."""
  _MODELS[name] = module_path


def names() -> list[str]:
  return sorted(_MODELS)


def get(name: str) -> types.ModuleType:
  """Returns the model module for `config.model`; ValueError naming the known models otherwise."""
  if name not in _MODELS:
    raise ValueError(f'config.model={name!r} is unknown; expected one of {names()}')
  try:
    module = importlib.import_module(_MODELS[name])
  except ModuleNotFoundError as e:
    if e.name == _MODELS[name]:
      raise ValueError(f'config.model={name!r}: its training module {_MODELS[name]} is not available yet') from e
    raise
  missing = [f for f in REQUIRED if not hasattr(module, f)]
  if missing:
    raise ValueError(f'model module {_MODELS[name]} lacks protocol functions {missing}')
  return module
