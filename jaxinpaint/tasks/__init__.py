"""The task registry: `config.model` -> the Task that trains, evaluates and runs that model.

  task = tasks.build(config)     # once per run; everything else asks the task (see `tasks.base`)
  tasks.names()                  # ['edgeconnect', 'pconv', ...]: the learned methods
  tasks.quickstart('pconv')      # the commands that train a small model of that kind
  tasks.register('mine', MyTask) # a new model: one task module, one register line, its configs

The built-in tasks: `pconv` (Liu et al. 2018, `tasks.pconv`) and `edgeconnect` (Nazeri et al. 2019,
`tasks.edgeconnect`).
"""

from __future__ import annotations

from typing import Any, Callable

from jaxinpaint.tasks import base
from jaxinpaint.tasks import edgeconnect
from jaxinpaint.tasks import pconv
from jaxinpaint.tasks.base import PROTOCOL, Config, Task, abstract_state

__all__ = ['PROTOCOL', 'Task', 'abstract_state', 'build', 'label', 'names', 'quickstart', 'register']

Factory = Callable[[Config], Any]
_FACTORIES: dict[str, Factory] = {}


def register(name: str, factory: Factory) -> None:
  """Makes `config.model = name` build `factory(config)` (usually a `Task` subclass); replaces an entry."""
  if not isinstance(name, str) or not name:
    raise ValueError(f'task name must be a non-empty string, got {name!r}')
  if not callable(factory):
    raise ValueError(f'task {name!r}: factory must be callable (config -> Task), got {factory!r}')
  _FACTORIES[name] = factory


def names() -> list[str]:
  """The registered model names, sorted."""
  return sorted(_FACTORIES)


def label(name: str) -> str:
  """The human name of a registered model (its factory's `label`), without building a task."""
  if name not in _FACTORIES:
    raise ValueError(f'unknown model {name!r}; expected one of {names()}')
  return getattr(_FACTORIES[name], 'label', '') or name


def quickstart(name: str) -> tuple[str, ...]:
  """The commands that train a small model of a registered kind (its factory's `quickstart`; may be empty)."""
  if name not in _FACTORIES:
    raise ValueError(f'unknown model {name!r}; expected one of {names()}')
  return tuple(getattr(_FACTORIES[name], 'quickstart', ()) or ())


def build(config: Config) -> Task:
  """The task of `config.model`, holding `config`.

  Raises:
    ValueError: unknown `config.model`, or a factory whose task lacks members of the protocol.
  """
  name = config.get('model')
  if name not in _FACTORIES:
    raise ValueError(f'config.model={name!r} is unknown; expected one of {names()}')
  task = _FACTORIES[name](config)
  base.check(task, source=f'the factory of config.model={name!r}')
  if task.name != name:
    raise ValueError(f'the factory of config.model={name!r} built a task named {task.name!r}')
  return task


register('pconv', pconv.PConvTask)
register('edgeconnect', edgeconnect.EdgeConnectTask)
