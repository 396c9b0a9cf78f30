"""Benchmark the PConv train step: compile time, images/s and peak memory (a script, not a test).

  python bench/bench_train.py                       # pconv_celeba @256 batch 4, and the quickstart
  python bench/bench_train.py --configs quickstart --steps 20

Runs the same jitted, sharded, donated train step as `train.py` on synthetic batches (no input pipeline,
so the numbers are the model's). Peak memory: XLA's compiled memory analysis (arguments + outputs +
temporaries of the step) and the process's max RSS.
"""

import argparse
import importlib
import pathlib
import resource
import sys
import time

import jax
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the configs package

from jaxinpaint import tasks  # noqa: E402
from jaxinpaint.training import loop, mesh as mesh_lib  # noqa: E402

CASES = {
    'pconv_celeba': ('pconv_celeba.py', {'batch_size': 4, 'image_size': 256}),
    'quickstart': ('quickstart.py', {}),
}


def load_config(name: str):
  filename, overrides = CASES[name]
  config = importlib.import_module(f'configs.{pathlib.Path(filename).stem}').get_config()
  config.unlock()
  config.loss.allow_missing_vgg = True  # no VGG weights offline: the step without perceptual/style terms
  for k, v in overrides.items():
    config[k] = v
  config.lock()
  return config


def bench(name: str, steps: int) -> dict:
  config = load_config(name)
  task = tasks.build(config)
  mesh = mesh_lib.create_mesh()
  rng = np.random.default_rng(0)
  b, s = config.batch_size, config.image_size
  batch = {'image': rng.random((b, s, s, 3), dtype=np.float32),
           'mask': (rng.random((b, s, s, 1)) > 0.3).astype(np.float32)}
  dev_batch = mesh_lib.put_global_batch(batch, mesh)
  state = loop.create_train_state(task, jax.random.PRNGKey(0), dev_batch, mesh_lib.replicated(mesh))
  step = loop.make_train_step(task, mesh)
  t0 = time.perf_counter()
  compiled = step.lower(state, dev_batch).compile()
  compile_s = time.perf_counter() - t0
  mem = compiled.memory_analysis()
  xla_bytes = None
  if mem is not None:
    xla_bytes = (mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes
                 - mem.alias_size_in_bytes)
  state, m = compiled(state, dev_batch)  # warm-up
  jax.block_until_ready(m)
  t0 = time.perf_counter()
  for _ in range(steps):
    state, m = compiled(state, dev_batch)
  jax.block_until_ready(m)
  dt = time.perf_counter() - t0
  return {'config': name, 'image_size': s, 'batch': b, 'devices': jax.device_count(),
          'compile_s': compile_s, 'step_s': dt / steps, 'images_per_s': b * steps / dt,
          'xla_step_mib': None if xla_bytes is None else xla_bytes / 2**20,
          'max_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--configs', nargs='+', default=list(CASES), choices=list(CASES))
  parser.add_argument('--steps', type=int, default=None, help='timed steps (default: 3 for celeba, 20 quickstart)')
  args = parser.parse_args(argv)
  print(f'jax {jax.__version__}, backend {jax.default_backend()}, {jax.device_count()} device(s)')
  print(f'{"config":14s} {"size":>5s} {"batch":>5s} {"compile s":>10s} {"step s":>8s} {"img/s":>8s} '
        f'{"XLA MiB":>8s} {"RSS MiB":>8s}')
  for name in args.configs:
    steps = args.steps or (3 if name == 'pconv_celeba' else 20)
    r = bench(name, steps)
    xla = f'{r["xla_step_mib"]:8.0f}' if r['xla_step_mib'] is not None else f'{"n/a":>8s}'
    print(f'{name:14s} {r["image_size"]:5d} {r["batch"]:5d} {r["compile_s"]:10.1f} {r["step_s"]:8.3f} '
          f'{r["images_per_s"]:8.2f} {xla} {r["max_rss_mib"]:8.0f}', flush=True)


if __name__ == '__main__':
  sys.exit(main())
