"""The Task protocol: everything code outside a model's own module needs to know about that model.

A task is built once per run from the config (`jaxinpaint.tasks.build(config)`, selected by
`config.model`) and holds it as `task.config`. Its step functions are pure functions over a pytree state,
so callers jit the bound methods: the training loop jits `train_step` (input state donated, batch sharded
over the mesh's 'data' axis, state replicated), `eval_step` and `sample`; the predictor jits `predict`.
Nobody outside `jaxinpaint.tasks` and `jaxinpaint.models` asks which model it holds: it asks the task.

Members (`PROTOCOL`; `jaxinpaint.tasks.build` checks that a task has all of them):

  Identity
    `name`: the `config.model` it was built for.  `config`: that config.  `label`: a human name (the
    demo's method list).  `predicts_edges`: True when `predict` also returns the edge map it conditioned on.
    `quickstart` (optional): the shell commands that train a small model of this kind, in order, the last
    one's `--workdir` holding the model (what the demo and the inpaint CLI tell a user without one).
  Configuration
    `validate()`: raises ValueError with one line for a config this model cannot train; never prints,
      never compiles.
    `warnings() -> list[str]`: lines the training loop prints once at the start of a run (e.g. a banner
      when a loss term is switched off).
    `requires_init_from() -> str | None`: why a run that starts without a checkpoint must set
      `config.init_from` (e.g. a fine-tuning phase), or None.
    `required_multiple() -> int`: input height and width must be multiples of it.
  Data
    `example_batch(batch_size) -> dict[str, np.ndarray]`: a zero batch with the training shapes (to build
      abstract states for restoring without data).
    `pipeline_kwargs() -> dict`: extra keyword arguments of `jaxinpaint.data.create_train_pipeline`.
    `prepare_eval_batch(batch) -> batch`: adds what held-out {'image', 'mask'} batches lack (e.g. edges).
  State and steps (pure, jittable)
    `init_state(rng, batch) -> state`: a pytree with an integer `step`; everything a resumed run needs.
    `init_from_previous(new_state, old_state) -> state`: what `config.init_from` carries over into a
      freshly initialised state.
    `train_step(state, batch) -> (state, metrics)`: one update; scalar metrics including 'loss'.
    `eval_step(state, batch) -> metrics`: scalar metrics including 'loss' (the best-checkpoint criterion).
    `sample(state, batch) -> dict[str, NHWC images]`: picture panels in display order.
    `predict(state, images, masks) -> {'image': (N, H, W, 3) in [0, 1], ['edge': (N, H, W, 1)]}`: raw
      output (callers composite it with the known pixels); masks 1 = valid, 0 = hole.
    `inference_state(state) -> state`: `state` with only what `predict` reads, everything else None (no
      optimiser state, no discriminators): what a shipped model stores (`jaxinpaint.pretrained`).

`Task` below is a base class with the defaults of the optional members; a task need not derive from it
as long as it has every member.
"""

from __future__ import annotations

import abc
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

Config = ml_collections.ConfigDict

PROTOCOL = ('name', 'label', 'predicts_edges', 'config', 'validate', 'warnings', 'requires_init_from',
            'required_multiple', 'example_batch', 'pipeline_kwargs', 'prepare_eval_batch', 'init_state',
            'init_from_previous', 'train_step', 'eval_step', 'sample', 'predict', 'inference_state')


class Task(abc.ABC):
  """Base class of the tasks: holds the config, defaults for the optional members (see the module doc)."""

  label: str = ''
  predicts_edges: bool = False
  quickstart: tuple[str, ...] = ()

  def __init__(self, config: Config):
    self.config = config
    self.name = str(config.model)

  def __repr__(self) -> str:
    return f'{type(self).__name__}(model={self.name!r})'

  # ------------------------------------------------------------------------------ configuration
  @abc.abstractmethod
  def validate(self) -> None:
    """Raises ValueError (one line) for a config this model cannot train."""

  def warnings(self) -> list[str]:
    return []

  def requires_init_from(self) -> str | None:
    return None

  @abc.abstractmethod
  def required_multiple(self) -> int:
    """Input height/width must be multiples of this."""

  # ---------------------------------------------------------------------------------------- data
  @abc.abstractmethod
  def example_batch(self, batch_size: int) -> dict[str, np.ndarray]:
    """A zero batch with the shapes the model trains on."""

  def pipeline_kwargs(self) -> dict[str, Any]:
    return {}

  def prepare_eval_batch(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return batch

  # ------------------------------------------------------------------------------- state, steps
  @abc.abstractmethod
  def init_state(self, rng: jax.Array, batch: dict[str, jax.Array]) -> Any:
    """A freshly initialised state pytree with an integer `step` field."""

  @abc.abstractmethod
  def init_from_previous(self, new_state: Any, old_state: Any) -> Any:
    """`new_state` with what `config.init_from`'s checkpoint carries over."""

  @abc.abstractmethod
  def train_step(self, state: Any, batch: dict[str, jax.Array]) -> tuple[Any, dict[str, jax.Array]]:
    """One update: (new state, scalar metrics with 'loss')."""

  @abc.abstractmethod
  def eval_step(self, state: Any, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Scalar validation metrics with 'loss'."""

  @abc.abstractmethod
  def sample(self, state: Any, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Picture panels (NHWC in [0, 1]) in display order."""

  @abc.abstractmethod
  def predict(self, state: Any, images: jax.Array, masks: jax.Array) -> dict[str, jax.Array]:
    """{'image': raw output in [0, 1]} (+ 'edge' when `predicts_edges`)."""

  def inference_state(self, state: Any) -> Any:
    """What `predict` reads of `state`, the rest None. This default keeps everything (always correct, larger)."""
    return state


COMPUTE_DTYPES = ('float32', 'bfloat16')


def compute_dtype(config: Config) -> jnp.dtype:
  """`config.dtype` (default float32) as a dtype; a one-line ValueError for anything but COMPUTE_DTYPES.

  The precision policy is the models': bf16 convolutions and activations, float32 parameters, optimiser state,
  losses, normalisation statistics, spectral-norm vectors and partial-convolution mask ratios.
  """
  name = str(config.get('dtype', 'float32'))
  if name not in COMPUTE_DTYPES:
    raise ValueError(f'config.dtype={name!r}: expected one of {", ".join(COMPUTE_DTYPES)}')
  return jnp.dtype(name)


LR_SCHEDULES = ('constant', 'cosine')


def learning_rate_schedule(config: Config, *, scale: float = 1.0) -> optax.Schedule:
  """The lr of every optimiser of a run: `scale` x `config.learning_rate` shaped by the schedule fields.

  * `config.warmup_steps` (default 0): linear warm-up from 0.
  * `config.lr_schedule` 'constant' (default; both papers' fixed lr) or 'cosine' (after the warm-up, a
    half-cosine down to `config.lr_final_fraction` (default 0) x lr at `config.num_steps`).
  * `config.lr_drop_steps` (default none): the lr is multiplied by `config.lr_drop_factor` (default 0.1) at each
    of these steps (EdgeConnect's manual 1e-4 -> 1e-5 drops; PConv's fine-tuning is a new run instead).

  Raises a one-line ValueError for an unknown `config.lr_schedule`.
  """
  lr = float(config.learning_rate) * scale
  warmup = int(config.get('warmup_steps', 0))
  kind = config.get('lr_schedule', 'constant')
  if kind not in LR_SCHEDULES:
    raise ValueError(f'config.lr_schedule must be {" or ".join(map(repr, LR_SCHEDULES))}, got {kind!r}')
  if kind == 'cosine':
    shape = optax.warmup_cosine_decay_schedule(
        0.0 if warmup > 0 else lr, lr, warmup, max(int(config.num_steps), warmup + 1),
        end_value=lr * float(config.get('lr_final_fraction', 0.0)))
  elif warmup > 0:
    shape = optax.linear_schedule(0.0, lr, warmup)
  else:
    shape = optax.constant_schedule(lr)
  drops = {int(s): float(config.get('lr_drop_factor', 0.1)) for s in config.get('lr_drop_steps', ()) or ()}
  if not drops:
    return shape
  factor = optax.piecewise_constant_schedule(1.0, drops)
  return lambda step: shape(step) * factor(step)


def check(task: Any, *, source: str) -> None:
  """ValueError naming `source` (the factory) and the members `task` lacks, if any."""
  missing = [m for m in PROTOCOL if not hasattr(task, m)]
  if missing:
    raise ValueError(f'{source} built a task without the protocol members {missing} (see jaxinpaint.tasks.base)')


def abstract_state(task: Any, batch_size: int = 1) -> Any:
  """The shapes and dtypes of `task.init_state` (nothing computed): the target of a checkpoint restore."""
  return jax.eval_shape(task.init_state, jax.random.PRNGKey(0), task.example_batch(batch_size))
