"""Frozen VGG-16/VGG-19 feature extractors (Flax linen, NHWC) for the perceptual and style losses.

Implements the convolutional part (``features``) of torchvision's VGG (Simonyan & Zisserman 2015,
configurations D and E): 3x3 convolutions with symmetric padding 1 and bias, ReLU, and 2x2 max pooling
with stride 2 (floor, like ``nn.MaxPool2d(2, 2)``). Inputs are RGB in [0, 1]; the ImageNet mean/std
normalisation torchvision's weights expect is applied inside.

Named outputs follow the usual convention: ``relu{block}_{i}`` after the i-th convolution of a block
and ``pool{block}`` after its max pool. Partial Convolutions (Liu et al. 2018, Sec. 3.4, perceptual
and style losses) uses VGG-16 ``pool1``-``pool3``; EdgeConnect (Nazeri et al. 2019, Sec. 3.2) uses
VGG-19 ``relu1_1``...``relu5_1`` (perceptual) and ``relu2_2``, ``relu3_4``, ``relu4_4``, ``relu5_2``
(style).

Typical use::

  features = vgg.pretrained("vgg16.npz", depth=16)   # or vgg16-397923af.pth / .safetensors
  feats = features(images)                            # {'relu1_1': ..., 'pool3': ...}

Training code calls `require_weights`, which refuses to run without a weights file (random VGG
features would silently make the perceptual/style terms meaningless).
"""

from __future__ import annotations

import functools
import os
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxinpaint import weights as weights_lib

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Convolutions per block (torchvision cfgs "D" and "E") and the block widths.
BLOCKS = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)

FeatureFn = Callable[[jax.Array], dict[str, jax.Array]]


@jax.custom_vjp
def max_pool_2x2(x: jax.Array) -> jax.Array:
  """``torch.nn.MaxPool2d(2, 2)`` on NHWC (floor: an odd last row/column is dropped).

  The gradient goes to the *first* maximum of each window in row-major order, as torch's kernels
  (``val > maxval``) and XLA's select-and-scatter (``>=``) do. Why not `flax.linen.max_pool`: on XLA:CPU
  its reduce-window gradient materialises index arrays and scatters, and a reduce-window feeding a
  convolution is fused into a YNNPACK kernel that runs that convolution about 2.5x slower (timings in
  bench/RESULTS.md). The forward here is the maximum of the window's four strided corners, which XLA leaves
  to its own convolutions, and the gradient four elementwise selects.
  """
  return _max_pool_2x2_fwd(x)[0]


def _corners(x: jax.Array) -> list[jax.Array]:
  """x[:, a::2, b::2] for (a, b) = (0, 0), (0, 1), (1, 0), (1, 1), cropped to whole windows."""
  h2, w2 = x.shape[1] // 2, x.shape[2] // 2
  return [x[:, a:a + 2 * h2:2, b:b + 2 * w2:2] for a in (0, 1) for b in (0, 1)]


def _max_pool_2x2_fwd(x):
  c00, c01, c10, c11 = _corners(x)
  y = jnp.maximum(jnp.maximum(c00, c01), jnp.maximum(c10, c11))
  return y, (x, y)


def _max_pool_2x2_bwd(res, g):
  x, y = res
  taken = jnp.zeros(y.shape, bool)
  parts = []
  for corner in _corners(x):  # row-major order: the first maximum takes a tie
    hit = (corner == y) & ~taken
    taken = taken | hit
    parts.append(jnp.where(hit, g, jnp.zeros_like(g)))
  n, h2, w2, c = g.shape
  dx = jnp.stack(parts, axis=2).reshape(n, h2, 2, 2, w2, c)  # (n, i, a, b, j, c)
  dx = jnp.transpose(dx, (0, 1, 2, 4, 3, 5)).reshape(n, 2 * h2, 2 * w2, c)  # row 2i+a, column 2j+b
  if dx.shape != x.shape:  # the floor-dropped row/column gets no gradient
    dx = jnp.pad(dx, ((0, 0), (0, x.shape[1] - 2 * h2), (0, x.shape[2] - 2 * w2), (0, 0)))
  return (dx,)


max_pool_2x2.defvjp(_max_pool_2x2_fwd, _max_pool_2x2_bwd)


def _check_depth(depth: int) -> None:
  if depth not in BLOCKS:
    raise ValueError(f"depth must be 16 or 19, got {depth!r}")


def layer_names(depth: int = 16) -> tuple[str, ...]:
  """All output names in forward order, e.g. ``('relu1_1', 'relu1_2', 'pool1', ...)``."""
  _check_depth(depth)
  names = []
  for block, count in enumerate(BLOCKS[depth], start=1):
    names += [f"relu{block}_{i}" for i in range(1, count + 1)] + [f"pool{block}"]
  return tuple(names)


def torch_indices(depth: int = 16) -> dict[str, int]:
  """``{'conv1_1': 0, 'conv1_2': 2, ...}``: index of each conv in torchvision's ``features``
  Sequential (conv, ReLU pairs; one MaxPool after each block)."""
  _check_depth(depth)
  out, index = {}, 0
  for block, count in enumerate(BLOCKS[depth], start=1):
    for i in range(1, count + 1):
      out[f"conv{block}_{i}"] = index
      index += 2
    index += 1
  return out


class VGG(nn.Module):
  """VGG-16/19 convolutional trunk returning named activations.

  Attributes:
    depth: 16 or 19.
    layers: names to return (see `layer_names`); computation stops after the deepest one. None
      returns every ``relu*`` and ``pool*`` activation the input size allows (all of them for
      inputs of at least 32x32; a 16x16 input stops after ``relu5_*``, like torch would fail at
      ``pool5``).
    precision: `jax.lax.Precision` for the convolutions (None: backend default).
    dtype: compute dtype of the convolutions (None: float32). With bfloat16 the convolutions run in bf16
      (what PyTorch autocast does with a VGG loss network); the weights stay float32 and every returned
      activation is cast to float32, so the perceptual/style losses are computed in float32.

  Call: ``model.apply({'params': params}, x)`` with ``x`` NHWC RGB in [0, 1] ->
  ``dict[name, NHWC array]``.
  """
  depth: int = 16
  layers: tuple[str, ...] | None = None
  precision: jax.lax.Precision | None = None
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
    _check_depth(self.depth)
    names = layer_names(self.depth)
    wanted = names if self.layers is None else tuple(self.layers)
    unknown = [n for n in wanted if n not in names]
    if unknown:
      raise ValueError(f"unknown VGG-{self.depth} layer(s) {unknown}; expected names from {names}")
    if x.ndim != 4 or x.shape[-1] != 3:
      raise ValueError(f"x must be NHWC RGB with 3 channels, got shape {x.shape}")

    def pools_before(index: int) -> int:
      return sum(1 for n in names[:index + 1] if n.startswith("pool"))

    side = min(x.shape[1:3])
    if self.layers is None:
      # Every layer the input size allows (all of them from 32x32 up); a pool needs 2 pixels.
      last = max(i for i in range(len(names)) if side >= 2 ** pools_before(i))
    else:
      last = max(names.index(n) for n in wanted)
    if side < 2 ** pools_before(last):
      raise ValueError(f"x of spatial size {x.shape[1:3]} is too small for layer {names[last]!r}: "
                       f"needs at least {2 ** pools_before(last)} pixels per side")

    mean = jnp.asarray(IMAGENET_MEAN, x.dtype)
    std = jnp.asarray(IMAGENET_STD, x.dtype)
    h = (x - mean) / std
    out = {}

    def emit(name: str, value: jax.Array) -> bool:
      if name in wanted:
        out[name] = value.astype(jnp.promote_types(value.dtype, jnp.float32))
      return name == names[last]

    for block, count in enumerate(BLOCKS[self.depth], start=1):
      for i in range(1, count + 1):
        h = nn.Conv(WIDTHS[block - 1], (3, 3), padding=((1, 1), (1, 1)), precision=self.precision,
                    dtype=self.dtype, param_dtype=jnp.float32, name=f"conv{block}_{i}")(h)
        h = nn.relu(h)
        if emit(f"relu{block}_{i}", h):
          return out
      h = max_pool_2x2(h)
      if emit(f"pool{block}", h):
        return out
    return out


def param_specs(*, depth: int = 16) -> dict[str, weights_lib.ParamSpec]:
  """``{torchvision name: ParamSpec}`` for every VGG parameter we use (conv weights and biases)."""
  specs, cin = {}, 3
  for name, index in torch_indices(depth).items():
    cout = WIDTHS[int(name[4]) - 1]
    specs[f"features.{index}.weight"] = weights_lib.ParamSpec((name, "kernel"), (3, 3, cin, cout))
    specs[f"features.{index}.bias"] = weights_lib.ParamSpec((name, "bias"), (cout,))
    cin = cout
  return specs


def load_params(path: str | os.PathLike, *, depth: int = 16) -> dict:
  """Reads and validates a VGG weights file (``.pth``, ``.safetensors`` or our ``.npz``).

  Returns:
    Flax ``params`` (``{'conv1_1': {'kernel': HWIO, 'bias': ...}, ...}``) as numpy float32.

  Raises:
    FileNotFoundError, ValueError: see `jaxinpaint.weights.port_state_dict`.
  """
  _check_depth(depth)
  state_dict = weights_lib.load_state_dict(path)
  return weights_lib.port_state_dict(state_dict, param_specs(depth=depth), source=path,
                                     arch=f"vgg{depth}")


@functools.lru_cache(maxsize=None)
def _apply_fn(depth: int, layers: tuple[str, ...] | None,
              precision: jax.lax.Precision | None, dtype: Any = None) -> Callable:
  model = VGG(depth=depth, layers=layers, precision=precision, dtype=dtype)

  @jax.jit
  def apply(params, x):
    # Frozen network: the weights never receive gradients; gradients still flow to x.
    params = jax.lax.stop_gradient(params)
    return model.apply({"params": params}, jnp.asarray(x, jnp.float32))

  return apply


def from_params(params, *, depth: int = 16, layers: Sequence[str] | None = None,
                precision: jax.lax.Precision | None = None, dtype: Any = None) -> FeatureFn:
  """Feature function over given Flax params (e.g. from `load_params`); see `pretrained`."""
  layers = None if layers is None else tuple(layers)
  dtype = None if dtype is None else jnp.dtype(dtype)
  params = jax.tree.map(jnp.asarray, params)
  return jax.tree_util.Partial(_apply_fn(depth, layers, precision, dtype), params)


def pretrained(path: str | os.PathLike, *, depth: int = 16, layers: Sequence[str] | None = None,
               precision: jax.lax.Precision | None = None, dtype: Any = None) -> FeatureFn:
  """Frozen, jittable VGG feature function with ImageNet weights ported from ``path``.

  Args:
    path: torchvision VGG weights: ``vgg16-397923af.pth``/``vgg19-dcbb9e9d.pth`` (needs torch), a
      ``.safetensors`` file with torchvision/timm names, or an ``.npz`` from
      ``python -m jaxinpaint.weights convert``.
    depth: 16 or 19; must match the file.
    layers: restrict the outputs (and the computation) to these names; default all.
    precision: convolution precision (None: backend default).
    dtype: convolution compute dtype (None: float32; bfloat16 for mixed precision, see `VGG`).

  Returns:
    ``features(x) -> dict[str, jax.Array]`` for NHWC RGB ``x`` in [0, 1], keys ``relu1_1`` ...
    ``relu5_3``/``relu5_4`` and ``pool1`` ... ``pool5``. It is a ``jax.tree_util.Partial`` over a
    jitted ``apply(params, x)``: usable inside a jitted loss with gradients w.r.t. ``x`` (never
    w.r.t. the weights), and a pytree, so it can also be passed to ``jax.jit`` as an argument
    (then the weights are not baked into the compiled program as constants).

  Raises:
    FileNotFoundError: ``path`` does not exist.
    ValueError: wrong architecture, missing/mis-shaped parameter, truncated or corrupt file.
  """
  return from_params(load_params(path, depth=depth), depth=depth, layers=layers,
                     precision=precision, dtype=dtype)


def missing_weights_message(depth: int, purpose: str, path: str | os.PathLike | None = None) -> str:
  """How to get the VGG weights, for errors raised when none are configured."""
  known = weights_lib.KNOWN_WEIGHTS[f"vgg{depth}"]
  cached = weights_lib.cache_dir() / known.filename
  where = (f"the configured VGG-{depth} weights file {str(path)!r} does not exist"
           if path else f"no VGG-{depth} weights file is configured")
  return (f"{purpose} needs ImageNet VGG-{depth} weights, but {where}. Random VGG features would "
          f"make the perceptual/style terms meaningless, so we refuse to run. Get torchvision's "
          f"{known.filename}: online, `python -m jaxinpaint.weights download vgg{depth}` (saves "
          f"{cached}); offline, download {known.url} elsewhere (SHA-256 {known.sha256}) and copy "
          f"it here. Optionally convert it once so training needs no torch: `python -m "
          f"jaxinpaint.weights convert {known.filename} vgg{depth}.npz`. Then point the config at "
          f"the file (--config.vgg_weights=vgg{depth}.npz), or, for a CPU smoke test only, opt out "
          f"with --config.loss.allow_missing_vgg=True (trains WITHOUT the perceptual/style terms).")


def require_weights(path: str | os.PathLike | None, *, depth: int = 16, purpose: str = "training",
                    layers: Sequence[str] | None = None,
                    precision: jax.lax.Precision | None = None, dtype: Any = None) -> FeatureFn:
  """Like `pretrained`, but with a how-to-get-the-weights error when ``path`` is unset or missing.

  Trainers call this so that a run never silently uses random VGG features.

  Args:
    path: the configured weights file, or None/"" when none is configured.
    depth: 16 (Partial Convolutions) or 19 (EdgeConnect).
    purpose: what needs the weights, e.g. ``"the PConv perceptual/style loss"``; used in the error.
    layers, precision, dtype: see `pretrained`.

  Raises:
    FileNotFoundError: ``path`` is None/empty or does not exist; the message says where to get and
      how to convert the weights.
    ValueError: the file is not valid VGG-``depth`` weights.
  """
  _check_depth(depth)
  if not path or not pathlib.Path(path).expanduser().exists():
    raise FileNotFoundError(missing_weights_message(depth, purpose, path or None))
  return pretrained(pathlib.Path(path).expanduser(), depth=depth, layers=layers, precision=precision,
                    dtype=dtype)


def init_random_params(rng: jax.Array, *, depth: int = 16) -> dict:
  """Randomly initialised params (tests and benchmarks only; never for a real loss)."""
  return VGG(depth=depth).init(rng, jnp.zeros((1, 32, 32, 3), jnp.float32))["params"]


__all__ = ["VGG", "pretrained", "require_weights", "load_params", "from_params", "param_specs",
           "layer_names", "torch_indices", "missing_weights_message", "IMAGENET_MEAN",
           "IMAGENET_STD"]
