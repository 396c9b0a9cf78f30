"""Subprocess entry point for tests/test_training.py (device counts and processes differ per run).

  python tests/training_worker.py onestep OUT.npz            # one train step, global batch 8, all devices
  python tests/training_worker.py train WORKDIR OUT.npz [--config.X=Y ...] [--phase2] [--hang-at-step=N]

`train` runs train_and_evaluate on the tiny config and writes the final params/batch_stats flattened to OUT
(per process: OUT with `.p{index}` before `.npz`). `--hang-at-step=N` makes the input pipeline print
'hanging' and block when the loop asks for the batch of step N (0-based), so a test can kill the process
between two checkpoints at a known place.
"""

import pathlib
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import numpy as np  # noqa: E402


def tiny_config(arg: str = ''):
  from configs import pconv_tiny  # pylint: disable=import-outside-toplevel
  return pconv_tiny.get_config(arg)


def apply_overrides(config, overrides):
  config.unlock()
  for o in overrides:
    key, value = o.removeprefix('--config.').split('=', 1)
    node = config
    *parents, leaf = key.split('.')
    for p in parents:
      node = node[p]
    old = node[leaf]
    node[leaf] = type(old)(value) if old is not None and not isinstance(old, bool) else (
        value == 'True' if isinstance(old, bool) else value)
  config.lock()
  return config


def flatten(state) -> dict:
  out = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path({'params': state.params, 'batch_stats': state.batch_stats}):
    out['/'.join(str(getattr(k, 'key', k)) for k in path)] = np.asarray(jax.device_get(leaf))
  out['step'] = np.asarray(jax.device_get(state.step))
  return out


def fixed_batch(n: int = 8, size: int = 32) -> dict:
  rng = np.random.default_rng(0)
  yy, xx = np.mgrid[:size, :size] / size
  image = np.stack([np.stack([np.sin(6 * xx + i), np.cos(5 * yy - i), xx * yy], -1) for i in range(n)])
  image = (0.5 + 0.5 * image).astype(np.float32) * 0.9 + 0.05 * rng.random((n, size, size, 3), dtype=np.float32)
  mask = np.ones((n, size, size, 1), np.float32)
  for i in range(n):
    y, x = rng.integers(0, size // 2, 2)
    mask[i, y:y + size // 3, x:x + size // 3] = 0.0
  return {'image': image, 'mask': mask}


class _HangingPipeline:
  """Delegates to a training pipeline, but blocks forever when asked for the batch of step `at`."""

  def __init__(self, pipeline, at: int):
    self._pipeline, self._at, self._served = pipeline, at, 0

  def __iter__(self):
    return self

  def __next__(self):
    if self._served == self._at:
      print(f'hanging before step {self._at}', flush=True)
      while True:
        time.sleep(1.0)
    self._served += 1
    return next(self._pipeline)

  def __getattr__(self, name):
    return getattr(self._pipeline, name)


def hang_at_step(step: int) -> None:
  """Makes every training pipeline created from now on in this process hang before step `step`."""
  from jaxinpaint import data  # pylint: disable=import-outside-toplevel
  create = data.create_train_pipeline
  data.create_train_pipeline = lambda **kwargs: _HangingPipeline(create(**kwargs), step)


def onestep(out: str) -> None:
  from jaxinpaint import tasks  # pylint: disable=import-outside-toplevel
  from jaxinpaint.training import loop, mesh as mesh_lib  # pylint: disable=import-outside-toplevel
  task = tasks.build(tiny_config())
  mesh = mesh_lib.create_mesh()
  repl = mesh_lib.replicated(mesh)
  batch = fixed_batch()
  state = loop.create_train_state(task, jax.random.PRNGKey(0), mesh_lib.put_global_batch(batch, mesh), repl)
  step = loop.make_train_step(task, mesh)
  state, _ = step(state, mesh_lib.put_global_batch(batch, mesh))
  np.savez(out, devices=jax.device_count(), **flatten(state))


def train(workdir: str, out: str, overrides) -> None:
  from jaxinpaint import training  # pylint: disable=import-outside-toplevel
  from jaxinpaint.training import mesh as mesh_lib  # pylint: disable=import-outside-toplevel
  arg = ''
  rest = []
  for o in overrides:
    if o.startswith('--phase2'):
      arg = 'phase2'
    elif o.startswith('--hang-at-step='):
      hang_at_step(int(o.partition('=')[2]))
    else:
      rest.append(o)
  config = apply_overrides(tiny_config(arg), rest)
  mesh_lib.initialize_distributed(coordinator_address=config.coordinator_address,
                                  num_processes=config.num_processes, process_id=config.process_id)
  try:
    summary = training.train_and_evaluate(config, workdir, progress=False)
  except training.NonFiniteLossError as e:
    print(f'NONFINITE: {e}', flush=True)
    sys.exit(3)
  print(f'STATUS {summary["status"]} {summary["step"]}', flush=True)
  if summary['state'] is not None:
    path = out.replace('.npz', f'.p{jax.process_index()}.npz')
    np.savez(path, **flatten(summary['state']))


if __name__ == '__main__':
  cmd = sys.argv[1]
  if cmd == 'onestep':
    onestep(sys.argv[2])
  elif cmd == 'train':
    train(sys.argv[2], sys.argv[3], sys.argv[4:])
  else:
    raise SystemExit(f'unknown command {cmd}')
