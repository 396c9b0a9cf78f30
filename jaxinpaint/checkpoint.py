"""Orbax checkpointing: `workdir/checkpoints/<step>/{state,data,config}`.

* `state`: the model state pytree (params, batch stats, optimiser state, step, rng), saved with
  `StandardSave`, restored with target shardings from the *current* mesh so a checkpoint written on
  N devices restores on M devices.
* `data`: the input iterator state(s) as JSON (one entry per process, so multi-host resumes exactly).
* `config`: the training config as JSON, so `jaxinpaint.predictor` can rebuild the task from the
  checkpoint alone.

Orbax writes each step into a temporary directory and renames it when complete, so a run killed
mid-save leaves no half checkpoint behind (it is cleaned up on the next start). Retention: the last
`keep` checkpoints plus the `keep_best` ones with the lowest validation loss.
"""

from __future__ import annotations

import contextlib
import json
import logging
import pathlib
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

CHECKPOINT_DIR = 'checkpoints'
ITEMS = ('state', 'data', 'config')


def checkpoint_dir(workdir: str | pathlib.Path) -> pathlib.Path:
  return pathlib.Path(workdir).absolute() / CHECKPOINT_DIR


def create_manager(workdir: str | pathlib.Path, *, keep: int = 3, keep_best: int = 1,
                   read_only: bool = False) -> ocp.CheckpointManager:
  """A CheckpointManager keeping the latest `keep` plus the best `keep_best` (lowest `val_loss`)."""
  policies: list[Any] = [ocp.checkpoint_managers.LatestN(n=keep)]
  if keep_best > 0:
    # BestN sorts by the metric and keeps the last n; reverse=True puts the lowest losses last.
    policies.append(ocp.checkpoint_managers.BestN(get_metric_fn=lambda m: m['val_loss'], reverse=True,
                                                  n=keep_best, keep_checkpoints_without_metrics=False))
  options = ocp.CheckpointManagerOptions(
      preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(policies),
      create=not read_only, read_only=read_only, enable_async_checkpointing=False,
      cleanup_tmp_directories=not read_only, save_interval_steps=0 if read_only else 1)
  # Reading a workdir (evaluation, inference) is what read_only is for: orbax's warning that the directory is
  # read only would be printed on every load, so it is dropped while the manager is built.
  quiet = _drop_warnings(logging.getLogger('absl')) if read_only else contextlib.nullcontext()
  with quiet:
    manager = ocp.CheckpointManager(checkpoint_dir(workdir), options=options, item_names=ITEMS)
  # Orbax cleans up unfinished temporary checkpoints of earlier runs in a background thread and awaits it only
  # in its first save; a run that stops right away (a config error reported before training) would exit under
  # that thread and print its traceback. Await it here (a private method: skipped if orbax renames it).
  manager.wait_until_finished()
  await_cleanup = getattr(manager, '_maybe_await_cleanup_tmp_directory', None)
  if await_cleanup is not None:
    await_cleanup()
  return manager


@contextlib.contextmanager
def _drop_warnings(logger: logging.Logger):
  """Drops the records of `logger` below ERROR inside the block."""
  only_errors = lambda record: record.levelno >= logging.ERROR  # noqa: E731
  logger.addFilter(only_errors)
  try:
    yield
  finally:
    logger.removeFilter(only_errors)


def _gather_json(obj: Any) -> list[Any]:
  """Every process's JSON-serialisable `obj`, in process order (a list of one with one process)."""
  if jax.process_count() == 1:
    return [obj]
  raw = np.frombuffer(json.dumps(obj).encode(), dtype=np.uint8)
  lengths = multihost_utils.process_allgather(np.array([raw.size], np.int32))
  buf = np.zeros(int(np.max(lengths)), np.uint8)
  buf[:raw.size] = raw
  bufs = multihost_utils.process_allgather(buf)
  return [json.loads(bytes(b[:int(n)]).decode()) for b, n in zip(bufs, np.ravel(lengths))]


def save(manager: ocp.CheckpointManager, step: int, state: Any, *, data_state: Any, config: dict,
         val_loss: float | None = None) -> None:
  """Saves state + every process's data-iterator state + config at `step` (blocking)."""
  metrics = {'val_loss': float(val_loss)} if val_loss is not None else None
  data = {'processes': _gather_json(data_state)}
  manager.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data), config=ocp.args.JsonSave(config)),
               metrics=metrics, force=True)
  manager.wait_until_finished()


def abstract_with_sharding(abstract_state: Any, sharding: jax.sharding.Sharding) -> Any:
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), abstract_state)


def restore(manager: ocp.CheckpointManager, step: int, abstract_state: Any,
            sharding: jax.sharding.Sharding) -> tuple[Any, Any]:
  """Restores (state, this process's data-iterator state) at `step`, placing arrays with `sharding`."""
  target = abstract_with_sharding(abstract_state, sharding)
  out = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(target), data=ocp.args.JsonRestore()))
  processes = (out['data'] or {}).get('processes') or [None]
  # A different process count cannot continue each stream exactly; fall back to process 0's position.
  data_state = processes[jax.process_index()] if len(processes) == jax.process_count() else processes[0]
  return out['state'], data_state


def read_config(manager: ocp.CheckpointManager, step: int) -> dict:
  return manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))['config']


def locate(path: str | pathlib.Path) -> tuple[pathlib.Path, int | None]:
  """(workdir, step or None for the latest) from a workdir, its `checkpoints/` dir or a `checkpoints/<step>` dir.

  Raises:
    FileNotFoundError: `path` does not exist, or is none of the three.
  """
  p = pathlib.Path(path).expanduser().absolute()
  if not p.exists():
    raise FileNotFoundError(f'checkpoint path {str(path)!r} does not exist')
  if (p / CHECKPOINT_DIR).is_dir():
    return p, None
  if p.name == CHECKPOINT_DIR and p.is_dir():
    return p.parent, None
  if p.name.isdigit() and p.parent.name == CHECKPOINT_DIR:
    return p.parent.parent, int(p.name)
  raise FileNotFoundError(f'{str(path)!r} is not a jaxinpaint checkpoint: expected a training workdir containing '
                          f'{CHECKPOINT_DIR}/, or a {CHECKPOINT_DIR}/<step> directory')
