"""Shipped models: trained networks stored inside the package, loaded by name.

  from jaxinpaint import pretrained
  pretrained.names()                       # the shipped models, e.g. ['pconv_cpu_hour']
  print(pretrained.card('pconv_cpu_hour'))  # its model card (Markdown)
  pretrained.path('pconv_cpu_hour')         # its .npz file
  Inpainter.from_pretrained('pconv_cpu_hour')  # or predictor.load('pconv_cpu_hour'), evaluate.py, the demo

A shipped model NAME is two files in a directory of `search_path()`:

* `NAME.npz`: the task's inference variables (`Task.inference_state`: no optimiser state, no discriminators),
  one array per pytree leaf keyed by its path ('params/enc1/conv/kernel'), floating leaves stored in
  float16 or bfloat16 (bfloat16 as its uint16 bit pattern: .npz has no bfloat16), and `__meta__`, a JSON
  string: format, model kind, training step, source checkpoint, storage dtype, the training config, the
  storage dtype's measured effect on the outputs and the fingerprint (the stored model's outputs on
  `fixed_input`, see `fingerprint`). Loading casts every leaf back to float32.
* `NAME.md`: the model card (architecture, parameters, training data and terms, recipe, evaluation, storage).

`python -m jaxinpaint.pretrained export --workdir runs/X --name NAME` regenerates both from a training workdir
(`jaxinpaint.pretrained.export`); `list` and `card NAME` show what is shipped.

The search path is this package's directory, or, when the environment variable `JAXINPAINT_PRETRAINED_PATH`
is set, the directories it lists instead (`os.pathsep`-separated; a model found earlier shadows one of the
same name found later). Tests point it at temporary directories; any .npz written by the export command can
also be loaded by its path.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import re
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from jaxinpaint import tasks

__all__ = ['DEFAULT', 'ENV_VAR', 'FINGERPRINT_ATOL', 'FINGERPRINT_ATOL_BF16', 'STORAGE_DTYPES', 'card', 'default_for',
           'fingerprint', 'fingerprint_difference', 'fingerprint_tolerance', 'fixed_input', 'flatten', 'metadata',
           'names', 'outputs', 'path', 'read', 'recompute_fingerprint', 'search_path', 'unflatten']

FORMAT = 'jaxinpaint.pretrained/1'
ENV_VAR = 'JAXINPAINT_PRETRAINED_PATH'
PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
META_KEY = '__meta__'
# The model the inpaint CLI uses when given no model at all.
DEFAULT = 'pconv_cpu_hour'
# Models this package is meant to ship, with how to produce them (a missing one gets this hint).
RECIPES = {
    'pconv_cpu_hour': ('python train.py --config configs/pconv_cpu_hour.py --workdir runs/pconv_cpu_hour',
                       'python train.py --config configs/pconv_cpu_hour.py:phase2 --workdir runs/pconv_cpu_hour_ft',
                       'python -m jaxinpaint.pretrained export --workdir runs/pconv_cpu_hour_ft --name pconv_cpu_hour'),
    'edgeconnect_cpu': ('the four commands in the docstring of configs/edgeconnect_cpu.py (stages 1-4)',
                        'python -m jaxinpaint.pretrained export --workdir runs/edgeconnect_cpu_s4 '
                        '--name edgeconnect_cpu'),
}
STORAGE_DTYPES = ('float16', 'bfloat16', 'float32')
# The fingerprint is recomputed from the stored weights on the same fixed input, so between machines and JAX
# versions only the order of float32 accumulations in the convolutions differs. Measured between jax 0.10.2
# and 0.12.0.1 on CPU: 5.7e-7 (one 8 x 8 block mean of the 1.3M-parameter PConv U-Net of
# configs/pconv_cpu_hour.py; its mean/std/min/max agree to 3e-9); the bound is 17 float32 ulps of 1.0.
FINGERPRINT_ATOL = 2e-6
# A model that computes in bfloat16 (`config.dtype`) rounds the inputs of its convolutions to 8 bits of mantissa,
# and which intermediate values are rounded depends on how the XLA version fuses the graph. Measured between jax
# 0.10.2 and 0.12.0.1 on CPU: 3.7e-3 (the shipped edgeconnect_cpu, outputs in [0, 1]); the bound is 5x that,
# still far below what a changed layer does to an 8 x 8 block mean (tests/test_pretrained.py).
FINGERPRINT_ATOL_BF16 = 2e-2
FIXED_INPUT_SIZE = 64
_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')


# ------------------------------------------------------------------------------------------ lookup

def search_path() -> list[pathlib.Path]:
  """The directories searched for NAME.npz: `JAXINPAINT_PRETRAINED_PATH`'s if set, else the package's."""
  listed = [pathlib.Path(p).expanduser() for p in os.environ.get(ENV_VAR, '').split(os.pathsep) if p]
  return listed or [PACKAGE_DIR]


def is_name(source: Any) -> bool:
  """True for a string that can name a shipped model (no directory part, no .npz suffix)."""
  return isinstance(source, str) and bool(_NAME.match(source)) and not source.endswith('.npz')


def names() -> list[str]:
  """The shipped models found on the search path, sorted."""
  found = {p.stem for d in search_path() if d.is_dir() for p in d.glob('*.npz') if is_name(p.stem)}
  return sorted(found)


def _unknown(name: str) -> str:
  shipped = ', '.join(names()) or 'none'
  hint = f'; make it with: {" && ".join(RECIPES[name])}' if name in RECIPES else ''
  return (f'pretrained model {name!r} is not installed (looked for {name}.npz in '
          f'{", ".join(map(str, search_path()))}); shipped: {shipped}{hint}')


def path(name: str) -> pathlib.Path:
  """The .npz file of the shipped model `name` (the first on the search path).

  Raises:
    FileNotFoundError: no such model (the message lists the shipped names).
  """
  if not is_name(name):
    raise ValueError(f'pretrained model name must be a plain name such as {DEFAULT!r}, got {name!r}')
  for d in search_path():
    candidate = d / f'{name}.npz'
    if candidate.is_file():
      return candidate
  raise FileNotFoundError(_unknown(name))


def card(name: str) -> str:
  """The model card (Markdown) of the shipped model `name`.

  Raises:
    FileNotFoundError: no such model, or its .md file is missing.
  """
  file = path(name).with_suffix('.md')
  if not file.is_file():
    raise FileNotFoundError(f'pretrained model {name!r}: model card {file} is missing')
  return file.read_text()


def _file(source: str | os.PathLike) -> pathlib.Path:
  """A shipped name or a path to a .npz written by the export command -> the file."""
  if is_name(source):
    return path(str(source))
  file = pathlib.Path(source).expanduser()
  if not file.is_file():
    raise FileNotFoundError(f'pretrained model file {str(source)!r} does not exist')
  return file


def metadata(source: str | os.PathLike) -> dict[str, Any]:
  """The `__meta__` record of a shipped model (name) or .npz file (path), without reading the weights.

  Raises:
    FileNotFoundError: unknown name / missing file. ValueError: not a file of this format.
  """
  file = _file(source)
  try:
    with np.load(file, allow_pickle=False) as npz:
      meta = json.loads(str(npz[META_KEY][()]))
  except (KeyError, OSError, ValueError) as e:
    raise ValueError(f'{file} is not a jaxinpaint pretrained model file ({FORMAT}): {e}') from None
  if meta.get('format') != FORMAT:
    raise ValueError(f'{file}: format {meta.get("format")!r}, expected {FORMAT!r}')
  return meta


def default_for(model: str) -> str | None:
  """The shipped model of kind `model` (a task name) to use when none is given: the first on the search
  path (`DEFAULT` first among a directory's models), or None when none of that kind is shipped."""
  for d in search_path():
    files = sorted(d.glob('*.npz'), key=lambda p: (p.stem != DEFAULT, p.stem)) if d.is_dir() else []
    for file in files:
      if not is_name(file.stem):
        continue
      try:
        if metadata(file)['model'] == model:
          return file.stem
      except ValueError:
        continue
  return None


# -------------------------------------------------------------------------------- the weights file

def _key(path_entries) -> str:
  parts = []
  for k in path_entries:
    for attr in ('key', 'name', 'idx'):
      if hasattr(k, attr):
        parts.append(str(getattr(k, attr)))
        break
    else:
      parts.append(str(k))
  return '/'.join(parts)


def flatten(tree: Any) -> dict[str, np.ndarray]:
  """{'a/b/c': numpy array} of a pytree's leaves (None subtrees have none)."""
  return {_key(p): np.asarray(leaf) for p, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def unflatten(arrays: dict[str, np.ndarray], like: Any, *, where: str) -> Any:
  """The pytree `like` (arrays or ShapeDtypeStructs) with its leaves taken from `arrays`, cast to each
  leaf's dtype.

  Raises:
    ValueError: naming `where`, when the keys or shapes differ from `like`'s.
  """
  leaves, treedef = jax.tree_util.tree_flatten_with_path(like)
  wanted = {_key(p) for p, _ in leaves}
  missing, extra = sorted(wanted - set(arrays)), sorted(set(arrays) - wanted)
  if missing or extra:
    raise ValueError(f'{where} does not match the network its config builds: missing {missing[:5]}, '
                     f'unexpected {extra[:5]}')
  out = []
  for p, leaf in leaves:
    k = _key(p)
    if tuple(arrays[k].shape) != tuple(leaf.shape):
      raise ValueError(f'{where}: {k} has shape {arrays[k].shape}, the network expects {tuple(leaf.shape)}')
    out.append(np.asarray(arrays[k]).astype(leaf.dtype))
  return jax.tree_util.tree_unflatten(treedef, out)


def encode(arrays: dict[str, np.ndarray], dtype: str) -> dict[str, np.ndarray]:
  """Floating arrays in the storage `dtype` (bfloat16 as uint16 bits); others unchanged.

  Raises:
    ValueError: a value that overflows `dtype` (e.g. above 65504 in float16), naming the array.
  """
  if dtype not in STORAGE_DTYPES:
    raise ValueError(f'storage dtype must be one of {", ".join(STORAGE_DTYPES)}, got {dtype!r}')
  out = {}
  for k, a in arrays.items():
    if not np.issubdtype(a.dtype, np.floating):
      out[k] = a
      continue
    stored = a.astype(jnp.bfloat16 if dtype == 'bfloat16' else dtype)
    if not np.array_equal(np.isfinite(stored.astype(np.float32)), np.isfinite(a)):
      raise ValueError(f'{k}: values up to {np.max(np.abs(a)):g} overflow {dtype}; store as bfloat16 or float32')
    out[k] = stored.view(np.uint16) if dtype == 'bfloat16' else stored
  return out


def decode(arrays: dict[str, np.ndarray], dtype: str) -> dict[str, np.ndarray]:
  """The inverse of `encode`, as float32 (integer arrays unchanged)."""
  out = {}
  for k, a in arrays.items():
    if dtype == 'bfloat16' and a.dtype == np.uint16:
      a = a.view(jnp.bfloat16).astype(np.float32)
    out[k] = a.astype(np.float32) if np.issubdtype(a.dtype, np.floating) else a
  return out


def abstract_inference_state(task: tasks.Task) -> Any:
  """The shapes and dtypes of `task.inference_state` (what a shipped file holds), nothing computed."""
  return task.inference_state(tasks.abstract_state(task))


def read(source: str | os.PathLike) -> tuple[tasks.Task, Any, dict[str, Any]]:
  """Loads a shipped model (name) or .npz file (path): (task, float32 state on one device, metadata with
  'file' added).

  Raises:
    FileNotFoundError: unknown name (listing the shipped ones) or missing file.
    ValueError: not a file of this format, or weights that do not fit the model its config builds.
  """
  file = _file(source)
  meta = metadata(file)
  task = tasks.build(ml_collections.ConfigDict(meta['config']))
  with np.load(file, allow_pickle=False) as npz:
    arrays = {k: npz[k] for k in npz.files if k != META_KEY}
  state = unflatten(decode(arrays, meta['storage_dtype']), abstract_inference_state(task), where=str(file))
  state = jax.device_put(state, jax.sharding.SingleDeviceSharding(jax.local_devices()[0]))
  return task, state, {**meta, 'file': str(file)}


# ----------------------------------------------------------------------------- the fixed input

def _photo(size: int) -> np.ndarray:
  import skimage.data  # pylint: disable=import-outside-toplevel
  photo = np.asarray(skimage.data.astronaut(), np.float32)[..., :3] / 255.0  # 512 x 512
  if photo.shape[0] % size == 0:  # exact block mean (no resampler whose details vary between versions)
    f = photo.shape[0] // size
    return photo.reshape(size, f, size, f, 3).mean(axis=(1, 3))
  img = Image.fromarray(np.rint(photo * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BOX)
  return np.asarray(img, np.float32) / 255.0


def _upsample_bilinear(low: np.ndarray, size: int) -> np.ndarray:
  """(k, k, C) -> (size, size, C) float32, bilinear with half-pixel centres, computed in float64 with numpy
  (the same bits on every machine)."""
  k = low.shape[0]
  x = np.clip((np.arange(size) + 0.5) * k / size - 0.5, 0, k - 1)
  i0 = np.floor(x).astype(int)
  i1 = np.minimum(i0 + 1, k - 1)
  t = (x - i0)[:, None]
  rows = low[i0] * (1 - t)[..., None] + low[i1] * t[..., None]            # (size, k, C)
  return (rows[:, i0] * (1 - t.T)[..., None] + rows[:, i1] * t.T[..., None]).astype(np.float32)


def fixed_input(required_multiple: int = 1) -> tuple[np.ndarray, np.ndarray]:
  """The input of the fingerprint and the storage-effect measurement: 3 images of S x S, S = lcm(64, multiple).

  Two smooth seeded random images (8 x 8 uniform noise upsampled bilinearly) and scikit-image's astronaut
  photo, each with its own hole pattern (a centred square, two bars, a square + a disc).

  Returns:
    (images (3, S, S, 3) float32 in [0, 1], masks (3, S, S, 1) float32, 1 = valid, 0 = hole).
  """
  s = math.lcm(FIXED_INPUT_SIZE, int(required_multiple))
  rng = np.random.default_rng(20180420)
  smooth = []
  for _ in range(2):
    smooth.append(_upsample_bilinear(rng.random((8, 8, 3)), s))
  images = np.stack(smooth + [_photo(s)]).astype(np.float32)
  yy, xx = np.mgrid[0:s, 0:s]
  q = s // 4
  holes = [(abs(yy - s / 2) < q) & (abs(xx - s / 2) < q),
           ((xx > q) & (xx < q + s // 8)) | ((yy > 2 * q) & (yy < 2 * q + s // 8)),
           ((yy < q) & (xx < q)) | ((yy - 0.7 * s) ** 2 + (xx - 0.6 * s) ** 2 < (s / 6) ** 2)]
  masks = np.stack([(~h).astype(np.float32) for h in holes])[..., None]
  return images, masks


def fingerprint(outputs: dict[str, np.ndarray]) -> dict[str, Any]:
  """A model's outputs on `fixed_input`, summarised: per output key its mean, std, min, max and an 8 x 8
  block mean of every image (a small array that still locates a change)."""
  out = {}
  for key in sorted(outputs):
    a = np.asarray(outputs[key], np.float32)
    n, h, w, c = a.shape
    blocks = a.reshape(n, 8, h // 8, 8, w // 8, c).mean(axis=(2, 4), dtype=np.float64)
    out[key] = {'mean': float(a.mean(dtype=np.float64)), 'std': float(a.std(dtype=np.float64)),
                'min': float(a.min()), 'max': float(a.max()), 'blocks': np.round(blocks, 9).tolist()}
  return out


def outputs(task: tasks.Task, state: Any, images: np.ndarray, masks: np.ndarray) -> dict[str, np.ndarray]:
  """`task.predict` (jitted) as float32 numpy: the computation every fingerprint is taken of."""
  return {k: np.asarray(v, np.float32) for k, v in jax.jit(task.predict)(state, images, masks).items()}


def recompute_fingerprint(source: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
  """(the fingerprint stored with a shipped model, the one its weights give here and now)."""
  task, state, meta = read(source)
  images, masks = fixed_input(task.required_multiple())
  return meta['fingerprint'], fingerprint(outputs(task, state, images, masks))


def fingerprint_tolerance(meta: dict[str, Any]) -> float:
  """How far a shipped model's recomputed fingerprint may be from its stored one on another machine or JAX
  version: `FINGERPRINT_ATOL_BF16` for a model computing in bfloat16 (`config.dtype`), else `FINGERPRINT_ATOL`."""
  return FINGERPRINT_ATOL_BF16 if meta['config'].get('dtype') == 'bfloat16' else FINGERPRINT_ATOL


def fingerprint_difference(a: dict[str, Any], b: dict[str, Any]) -> float:
  """The largest absolute difference between two fingerprints (inf if their keys or shapes differ)."""
  if sorted(a) != sorted(b):
    return math.inf
  worst = 0.0
  for key in a:
    for stat in ('mean', 'std', 'min', 'max'):
      worst = max(worst, abs(a[key][stat] - b[key][stat]))
    x, y = np.asarray(a[key]['blocks']), np.asarray(b[key]['blocks'])
    if x.shape != y.shape:
      return math.inf
    worst = max(worst, float(np.max(np.abs(x - y))) if x.size else 0.0)
  return worst
