"""Shared helpers for the side-by-side benchmark scripts (not a test module).

Interleaved timing (A B A B ... after warm-up, medians), in this process or in worker subprocesses (one
per implementation, possibly another interpreter: `Worker` / `serve`), the machine's measured matmul and
convolution peaks, and table printing. Timings on a shared machine are noisy; interleaving keeps the
ratios fair.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

# Before any JAX computation here (the matmul peak below creates the backend): `import jaxinpaint` sets the
# XLA:CPU convolution flag (jaxinpaint.xla_cpu), which only takes effect if it comes first.
import jaxinpaint  # noqa: F401  pylint: disable=unused-import


def side_by_side_parser(description: str, *, torch_python_help: str) -> argparse.ArgumentParser:
  """The options every side-by-side script takes: --repeats, --batch, --dtype, --torch-python and --json."""
  parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--repeats", type=int, default=5, help="interleaved timed rounds after warm-up")
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  parser.add_argument("--torch-python", help=torch_python_help)
  parser.add_argument("--json", help="also write the results to this JSON file")
  return parser


def block(value):
  """Waits for JAX arrays (any pytree) or returns torch/numpy values unchanged."""
  try:
    import jax
    return jax.block_until_ready(value)
  except ImportError:
    return value


def time_call(fn: Callable[[], object]) -> float:
  start = time.perf_counter()
  block(fn())
  return time.perf_counter() - start


def interleaved(fns: dict[str, Callable[[], object]], *, repeats: int, warmup: int = 1) -> dict[str, list[float]]:
  """Runs every fn `warmup` times, then `repeats` rounds of A B C ...; returns the per-fn timings."""
  for fn in fns.values():
    for _ in range(warmup):
      block(fn())
  return interleaved_timers({name: (lambda fn=fn: time_call(fn)) for name, fn in fns.items()}, repeats=repeats)


def interleaved_timers(timers: dict[str, Callable[[], float]], *, repeats: int) -> dict[str, list[float]]:
  """`repeats` rounds of A B C ... of timers that return their own duration (e.g. `Worker.run`)."""
  times: dict[str, list[float]] = {name: [] for name in timers}
  for _ in range(repeats):
    for name, timer in timers.items():
      times[name].append(timer())
  return times


def _maxrss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def serve(build: Callable[[], Callable[[], object]]) -> None:
  """Worker side: builds `run = build()`, times a first call and a warm-up, reports, then times one call
  per 'run' line on stdin until 'quit'; one JSON line per answer on stdout."""
  out = sys.stdout
  sys.stdout = sys.stderr  # keep library chatter off the protocol channel
  t0 = time.perf_counter()
  run = build()
  build_s, rss_build = time.perf_counter() - t0, _maxrss_mb()
  first_s = time_call(run)  # jit compile + first run (torch: first run, allocator warm-up)
  time_call(run)  # warm-up
  out.write(json.dumps({"ready": True, "build_s": build_s, "first_call_s": first_s, "maxrss_build_mb": rss_build,
                        "maxrss_first_calls_mb": _maxrss_mb()}) + "\n")
  out.flush()
  for line in sys.stdin:
    cmd = line.strip()
    if cmd == "run":
      out.write(json.dumps({"t": time_call(run)}) + "\n")
      out.flush()
    elif cmd == "quit":
      break
  out.write(json.dumps({"maxrss_mb": _maxrss_mb()}) + "\n")
  out.flush()


class Worker:
  """Parent side of `serve`: a subprocess running `cmd`, timed one call at a time."""

  def __init__(self, name: str, cmd: list[str], cwd: str | None = None, env: dict[str, str] | None = None):
    self.name = name
    self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=cwd, env=env)
    self.info = None

  def _read(self):
    line = self.proc.stdout.readline()
    if not line:
      raise RuntimeError(f"worker {self.name} exited (code {self.proc.wait()}); see its stderr above")
    return json.loads(line)

  def ready(self) -> dict:
    self.info = self._read()
    return self.info

  def run(self) -> float:
    """One timed call in the worker; its duration there, in seconds."""
    self.proc.stdin.write("run\n")
    self.proc.stdin.flush()
    return self._read()["t"]

  def quit(self) -> float:
    """Stops the worker; its peak RSS in MB."""
    self.proc.stdin.write("quit\n")
    self.proc.stdin.flush()
    info = self._read()
    self.proc.wait()
    return info["maxrss_mb"]


def median(values: list[float]) -> float:
  return statistics.median(values)


def matmul_peak_flops(size: int = 2048, repeats: int = 5, dtype: str = "float32") -> float:
  """Measured FLOP/s of a jitted `jnp.dot` of two size x size matrices of `dtype` (best of `repeats`;
  bf16 products accumulate in float32)."""
  import jax
  import jax.numpy as jnp
  a = jax.random.normal(jax.random.PRNGKey(0), (size, size), dtype)
  b = jax.random.normal(jax.random.PRNGKey(1), (size, size), dtype)
  dot = jax.jit(lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32))
  block(dot(a, b))
  best = min(time_call(lambda: dot(a, b)) for _ in range(repeats))
  return 2.0 * size ** 3 / best


def conv_peak_flops(repeats: int = 5, dtype: str = "float32") -> float:
  """Measured FLOP/s of XLA's forward 3x3 256->256 convolution at 64x64, batch 4 (`dtype`; best of
  `repeats`): what XLA:CPU's convolution library reaches on a convolution that suits it."""
  import jax
  import jax.numpy as jnp
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 64, 64, 256), dtype)
  w = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 256, 256), dtype)
  conv = jax.jit(lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)),
                                                           dimension_numbers=("NHWC", "HWIO", "NHWC")))
  block(conv(x, w))
  best = min(time_call(lambda: conv(x, w)) for _ in range(repeats))
  return 2.0 * 4 * 64 * 64 * 9 * 256 * 256 / best


def torch_peaks(dtype: str = "float32") -> tuple[float, float]:
  """PyTorch's measured matmul (2048^2) and 3x3 256->256 convolution FLOP/s (channels_last; bf16 under
  CPU autocast), for the same comparison on the PyTorch side."""
  import torch
  torch.set_num_threads(torch_threads())
  amp = torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16")
  a = torch.randn(2048, 2048)
  x = torch.randn(4, 256, 64, 64).to(memory_format=torch.channels_last)
  w = torch.randn(256, 256, 3, 3).to(memory_format=torch.channels_last)
  with torch.no_grad(), amp:
    mm = lambda: a @ a
    conv = lambda: torch.nn.functional.conv2d(x, w, padding=1)
    mm(), conv()
    t_mm = min(time_call(mm) for _ in range(5))
    t_conv = min(time_call(conv) for _ in range(5))
  return 2.0 * 2048 ** 3 / t_mm, 2.0 * 4 * 64 * 64 * 9 * 256 * 256 / t_conv


def describe_machine(dtype: str = "float32") -> float:
  """Prints JAX's version, `convs.current_target()`, XLA_FLAGS, the load and the measured peaks of `dtype`
  (matmul; bf16: also XLA's convolution); returns the matmul peak in FLOP/s."""
  import jax
  from jaxinpaint import convs
  peak = matmul_peak_flops(dtype=dtype)
  print(f"jax {jax.__version__} backend={jax.default_backend()}; {convs.current_target()}; "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}; {os.cpu_count()} CPUs; load average "
        f"{os.getloadavg()[0]:.1f}\n{dtype} matmul peak (jnp.dot 2048^2): {peak / 1e9:.1f} GFLOP/s", flush=True)
  if dtype == "bfloat16":
    print(f"XLA bf16 3x3 256->256 conv forward: {conv_peak_flops(dtype=dtype) / 1e9:.1f} GFLOP/s", flush=True)
  return peak


def describe_torch(dtype: str = "float32", file=None) -> None:
  """Prints torch's version and threads (bf16: its autocast matmul and convolution peaks)."""
  import torch
  torch.set_num_threads(torch_threads())
  print(f"torch {torch.__version__} threads={torch.get_num_threads()}", file=file, flush=True)
  if dtype == "bfloat16":
    t_mm, t_conv = torch_peaks(dtype)
    print(f"torch autocast bf16: matmul {t_mm / 1e9:.1f}, 3x3 256->256 conv forward {t_conv / 1e9:.1f} GFLOP/s",
          file=file, flush=True)


def torch_threads() -> int:
  """Thread count for torch: every core, as JAX/XLA uses (overridable with BENCH_TORCH_THREADS)."""
  return int(os.environ.get("BENCH_TORCH_THREADS", os.cpu_count() or 1))


def fmt_table(header: list[str], rows: list[list[object]]) -> str:
  """A GitHub-markdown table."""
  cells = [[str(c) for c in header]] + [[c if isinstance(c, str) else f"{c:.3g}" for c in row] for row in rows]
  widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
  lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
  lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
  return "\n".join(lines)


def seeded(shape, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def write_flist(folders: list[str], path: pathlib.Path) -> pathlib.Path:
  """Writes the sorted image files of `folders` (recursively) to the .flist `path` (unchanged if equal)."""
  from jaxinpaint import data  # pylint: disable=import-outside-toplevel
  files = []
  for folder in folders:
    p = pathlib.Path(folder)
    if not p.is_dir():
      raise FileNotFoundError(f'--image_folders: {folder!r} is not a folder')
    files += sorted(str(f) for f in p.rglob('*') if f.suffix.lower() in data.IMAGE_EXTENSIONS)
  if not files:
    raise ValueError(f'--image_folders {folders} hold no images')
  path.parent.mkdir(parents=True, exist_ok=True)
  text = '\n'.join(files) + '\n'
  if not path.is_file() or path.read_text() != text:
    path.write_text(text)
  return path


def checkpoint_steps(workdir: pathlib.Path) -> list[int]:
  """The kept checkpoint steps of a train.py workdir, ascending (FileNotFoundError naming it if none)."""
  ckdir = workdir / 'checkpoints'
  if not ckdir.is_dir():
    raise FileNotFoundError(f'--workdir: {str(ckdir)!r} does not exist (expected a train.py workdir)')
  return sorted(int(p.name) for p in ckdir.iterdir() if p.name.isdigit())


def checkpoint_fingerprint(checkpoint: str) -> list | None:
  """(relative path, size, mtime in ns) of every file of a checkpoint directory, or None if `checkpoint` is not
  one (a shipped model's description). Renaming a workdir keeps it; training one again changes it."""
  path = pathlib.Path(checkpoint)
  if not path.is_absolute() or not path.is_dir():
    return None
  return sorted([str(f.relative_to(path)), f.stat().st_size, f.stat().st_mtime_ns]
                for f in path.rglob('*') if f.is_file())


def _fingerprint_file(out: pathlib.Path) -> pathlib.Path:
  return out / 'checkpoint_fingerprint.json'


def stale_reason(results: dict, out: pathlib.Path, *, model: str | None = None, **setup) -> str | None:
  """Why the cached evaluate.py results in `out` do not answer the evaluation asked for now, or None if they do.

  Args:
    results: the cached results.json (its 'setup' records the settings and the checkpoint it loaded).
    out: the cache folder (`record_fingerprint` wrote the loaded checkpoint's fingerprint there).
    model: the model asked for now (a workdir, a checkpoint or a shipped model's name, as given to
      evaluate.py); None skips the check (a classical method).
    **setup: the settings asked for now (e.g. masks, size, seed, limit, masks_per_image, canny_edges).

  A report keys its cache by the workdir's name, so a workdir trained again under that name (or another run
  moved to it) must not be answered by the old model's numbers: the results are stale when the checkpoint
  they loaded is gone, no longer the workdir's latest, or not the files that were evaluated; and when they are
  of another model than the one asked for (two workdirs of the same name in different folders).
  """
  recorded = results.get('setup', {})
  for key, value in setup.items():
    if recorded.get(key) != value:
      return f'{key} was {recorded.get(key)!r}, now {value!r}'
  evaluated_model = recorded.get('model') or {}
  if model is not None and not _same_model(str(evaluated_model.get('source', '')), model):
    return f'they are of {evaluated_model.get("source")!r}, not of {model!r}'
  checkpoint = str(evaluated_model.get('checkpoint') or '')
  if not pathlib.Path(checkpoint).is_absolute():
    return None  # a classical method or a shipped model: nothing on disk that training rewrites
  if not pathlib.Path(checkpoint).is_dir():
    return f'its checkpoint {checkpoint} no longer exists'
  source = pathlib.Path(str(evaluated_model.get('source', '')))
  if (source / 'checkpoints').is_dir():
    steps = checkpoint_steps(source)
    if steps and steps[-1] != evaluated_model.get('step'):
      return f'{source} now ends at step {steps[-1]}, the results are of step {evaluated_model.get("step")}'
  fingerprint = _fingerprint_file(out)
  if not fingerprint.is_file() or json.loads(fingerprint.read_text()) != checkpoint_fingerprint(checkpoint):
    return f'the files of its checkpoint {checkpoint} are not those evaluated'
  return None


def _same_model(recorded: str, asked: str) -> bool:
  """Whether evaluate.py's recorded model source names the model asked for: the same path once resolved (a
  workdir or checkpoint), else the same shipped model name."""
  if pathlib.Path(recorded).exists() or pathlib.Path(asked).exists():
    return pathlib.Path(recorded).resolve() == pathlib.Path(asked).resolve()
  return recorded == asked


def record_fingerprint(out: pathlib.Path) -> None:
  """Stores, beside a fresh out/results.json, the fingerprint of the checkpoint it loaded (`stale_reason`)."""
  results = json.loads((out / 'results.json').read_text())
  checkpoint = str((results.get('setup', {}).get('model') or {}).get('checkpoint') or '')
  _fingerprint_file(out).write_text(json.dumps(checkpoint_fingerprint(checkpoint)))


def cached_results(out: pathlib.Path, *, model: str | None = None, **setup) -> dict | None:
  """out/results.json if it exists and answers the evaluation `setup` asks for (`stale_reason`), else None;
  prints why a stale one is evaluated again."""
  path = out / 'results.json'
  if not path.is_file():
    return None
  results = json.loads(path.read_text())
  reason = stale_reason(results, out, model=model, **setup)
  if reason:
    print(f'{path}: {reason}; evaluating again', flush=True)
    return None
  return results


def evaluated(method: str, out: pathlib.Path, *, checkpoint: str | None, no_eval: bool, **setup) -> dict | None:
  """The results of evaluate.py's evaluation of `method` (`jaxinpaint.evaluation.run` with `setup`) in `out`:
  the cached ones if current (`cached_results`), else computed and cached now; None if `no_eval` and none is."""
  cached = cached_results(out, model=checkpoint, **setup)
  if cached is not None or no_eval:
    return cached
  from jaxinpaint import evaluation  # pylint: disable=import-outside-toplevel
  print(f'evaluating {method} {checkpoint or ""} -> {out}', flush=True)
  evaluation.run(method=method, out=str(out), checkpoint=checkpoint, progress=False, **setup)
  record_fingerprint(out)
  return json.loads((out / 'results.json').read_text())


def define_evaluation_pair_flags(data_dir: pathlib.Path) -> tuple:
  """The absl flags of the quality reports' evaluation pairs (the 297 pairs of docs/quality.md by default).

  Returns:
    Flag holders (image_folders, masks, size, masks_per_image, seed, limit, baselines).
  """
  from absl import flags  # pylint: disable=import-outside-toplevel
  return (flags.DEFINE_list('image_folders', [str(data_dir / 'places'), str(data_dir / 'psv')],
                            'Evaluation photo folders (listed recursively into EVAL_DIR/eval.flist).'),
          flags.DEFINE_string('masks', str(data_dir / 'masks_nvidia_test300'),
                              'Evaluation mask folder (white = hole).'),
          flags.DEFINE_integer('size', 256, 'Evaluation size.'),
          flags.DEFINE_integer('masks_per_image', 11, 'Masks per evaluation photo.'),
          flags.DEFINE_integer('seed', 0, 'Pairing seed (and PatchMatch seed).'),
          flags.DEFINE_integer('limit', None, 'Evaluate at most this many pairs (quick looks).'),
          flags.DEFINE_list('baselines', ['telea', 'ns', 'patchmatch'], 'Classical methods to compare with.'))


class ComparisonCases:
  """The rows of a comparison figure: `num` evaluation pairs spread over the buckets, chosen without looking
  at any output (`jaxinpaint.figures.select_cases`), with the images, masks and row labels.

  Args:
    flist: the evaluation image list; masks, size, seed, limit, masks_per_image: as the evaluation's.
    per_image: the 'per_image' records of a results.json on these pairs (buckets as the evaluator measured
      them, so rows match the table; their PSNR labels the rows).
    model_name: the model whose PSNR labels each row.
    num: rows.
  """

  def __init__(self, flist: pathlib.Path, *, masks: str, size: int, seed: int, limit: int | None,
               masks_per_image: int, per_image: list[dict], model_name: str, num: int):
    from jaxinpaint import data, evaluation, figures  # pylint: disable=import-outside-toplevel
    source = evaluation.repeated_source(str(flist), masks_per_image)
    pairs = data.create_eval_pairs(images=source, masks=masks, image_size=size, seed=seed, limit=limit)
    buckets = [per_image[i]['bucket'] if i < len(per_image) else p.bucket for i, p in enumerate(pairs)]
    chosen = figures.select_cases(buckets, [p.image_path for p in pairs], num=num)
    self.size = size
    self.images = np.stack([pairs[i].image for i in chosen]).astype(np.float32)
    self.masks = np.stack([pairs[i].mask for i in chosen]).astype(np.float32)[..., None]
    self.labels = []
    for i in chosen:
      rec = per_image[i] if i < len(per_image) else {}
      name = pathlib.Path(pairs[i].image_path).parent.name[:14]
      psnr = f"\n{model_name} {rec['psnr']:.1f} dB" if 'psnr' in rec else ''
      self.labels.append(f'holes {buckets[i]}\n{name}{psnr}')

  def composites(self, outputs) -> list[np.ndarray]:
    """The composites of a method's raw outputs on these pairs (clipped to [0, 1], as scored)."""
    from jaxinpaint import losses  # pylint: disable=import-outside-toplevel
    outputs = np.clip(np.asarray(outputs, np.float32), 0.0, 1.0)
    return list(np.asarray(losses.composite(outputs, self.images, self.masks)))

  def draw(self, cols: list[list[np.ndarray]], columns: list[str], out: pathlib.Path) -> None:
    """Writes the grid (one list of images per column) to `out`."""
    from jaxinpaint import figures  # pylint: disable=import-outside-toplevel
    rows = [[col[r] for col in cols] for r in range(len(self.labels))]
    figures.comparison_grid(rows, columns, out, row_labels=self.labels,
                            title=f'Places2 / Paris StreetView at {self.size}x{self.size}, NVIDIA test masks\n'
                                  '(composites; first pair per bucket, chosen without looking at any output)')
    print(f'wrote {out}')
