"""Inception-v3 as pytorch-fid defines it, for FID's 2048-d pool features (Flax linen, NHWC).

Implements pytorch-fid's ``InceptionV3(output_blocks=[3])`` with ``use_fid_inception=True``
(Heusel et al. 2017; the TF "2015-12-05" graph ported by M. Seitzer), i.e. torchvision's
Inception3 trunk (Szegedy et al. 2016) with the FID patches:

* input bilinearly resized to 299x299 exactly like ``F.interpolate(mode='bilinear',
  align_corners=False)`` (half-pixel centres, no antialiasing, also when downsampling), then scaled
  from [0, 1] to [-1, 1];
* ``BasicConv2d`` = conv without bias -> BatchNorm (eval mode, eps 0.001) -> ReLU;
* FIDInceptionA/C/E_1: the pool branch averages with ``count_include_pad=False`` (TF semantics);
* FIDInceptionE_2 (Mixed_7c): the pool branch uses 3x3 max pooling instead;
* output: global average pool of Mixed_7c -> (N, 2048).

Parameter names mirror pytorch-fid's state_dict (``Mixed_5b.branch1x1.conv.weight``,
``....bn.running_mean``, ...), so `param_specs` maps them one to one.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxinpaint import weights as weights_lib

INPUT_SIZE = 299
FEATURE_DIM = 2048
MIN_SIZE = 75  # Smallest input the trunk accepts without resizing (torchvision's note).

Padding = tuple[tuple[int, int], tuple[int, int]]


def _pad(ph: int, pw: int) -> Padding:
  return ((ph, ph), (pw, pw))


class BasicConv2d(nn.Module):
  """torchvision's BasicConv2d: Conv2d(bias=False) -> BatchNorm2d(eps=0.001, eval) -> ReLU."""
  features: int
  kernel_size: tuple[int, int]
  strides: tuple[int, int] = (1, 1)
  padding: Padding = ((0, 0), (0, 0))
  precision: jax.lax.Precision | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = nn.Conv(self.features, self.kernel_size, strides=self.strides, padding=self.padding,
                use_bias=False, precision=self.precision, name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
    return nn.relu(x)


def _avg_pool_3x3(x: jax.Array) -> jax.Array:
  # TF's average pool divides by the number of real (non-padding) pixels in the window.
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=_pad(1, 1), count_include_pad=False)


def _max_pool_3x3_s2(x: jax.Array) -> jax.Array:
  return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class _Block(nn.Module):
  precision: jax.lax.Precision | None = None

  def conv(self, name: str, features: int, kernel, strides=(1, 1), padding=(0, 0)) -> BasicConv2d:
    kernel = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
    strides = (strides, strides) if isinstance(strides, int) else tuple(strides)
    return BasicConv2d(features, kernel, strides, _pad(*padding), self.precision, name=name)


class FIDInceptionA(_Block):
  """Mixed_5b/5c/5d: InceptionA with a padding-excluding average-pool branch."""
  pool_features: int = 32

  @nn.compact
  def __call__(self, x):
    b1 = self.conv("branch1x1", 64, 1)(x)
    b5 = self.conv("branch5x5_1", 48, 1)(x)
    b5 = self.conv("branch5x5_2", 64, 5, padding=(2, 2))(b5)
    b3 = self.conv("branch3x3dbl_1", 64, 1)(x)
    b3 = self.conv("branch3x3dbl_2", 96, 3, padding=(1, 1))(b3)
    b3 = self.conv("branch3x3dbl_3", 96, 3, padding=(1, 1))(b3)
    bp = self.conv("branch_pool", self.pool_features, 1)(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(_Block):
  """Mixed_6a: grid reduction 35 -> 17 (unchanged by pytorch-fid)."""

  @nn.compact
  def __call__(self, x):
    b3 = self.conv("branch3x3", 384, 3, strides=2)(x)
    bd = self.conv("branch3x3dbl_1", 64, 1)(x)
    bd = self.conv("branch3x3dbl_2", 96, 3, padding=(1, 1))(bd)
    bd = self.conv("branch3x3dbl_3", 96, 3, strides=2)(bd)
    return jnp.concatenate([b3, bd, _max_pool_3x3_s2(x)], axis=-1)


class FIDInceptionC(_Block):
  """Mixed_6b..6e: factorised 7x7 convolutions, padding-excluding average-pool branch."""
  channels_7x7: int = 128

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    b1 = self.conv("branch1x1", 192, 1)(x)
    b7 = self.conv("branch7x7_1", c7, 1)(x)
    b7 = self.conv("branch7x7_2", c7, (1, 7), padding=(0, 3))(b7)
    b7 = self.conv("branch7x7_3", 192, (7, 1), padding=(3, 0))(b7)
    bd = self.conv("branch7x7dbl_1", c7, 1)(x)
    bd = self.conv("branch7x7dbl_2", c7, (7, 1), padding=(3, 0))(bd)
    bd = self.conv("branch7x7dbl_3", c7, (1, 7), padding=(0, 3))(bd)
    bd = self.conv("branch7x7dbl_4", c7, (7, 1), padding=(3, 0))(bd)
    bd = self.conv("branch7x7dbl_5", 192, (1, 7), padding=(0, 3))(bd)
    bp = self.conv("branch_pool", 192, 1)(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(_Block):
  """Mixed_7a: grid reduction 17 -> 8 (unchanged by pytorch-fid)."""

  @nn.compact
  def __call__(self, x):
    b3 = self.conv("branch3x3_1", 192, 1)(x)
    b3 = self.conv("branch3x3_2", 320, 3, strides=2)(b3)
    b7 = self.conv("branch7x7x3_1", 192, 1)(x)
    b7 = self.conv("branch7x7x3_2", 192, (1, 7), padding=(0, 3))(b7)
    b7 = self.conv("branch7x7x3_3", 192, (7, 1), padding=(3, 0))(b7)
    b7 = self.conv("branch7x7x3_4", 192, 3, strides=2)(b7)
    return jnp.concatenate([b3, b7, _max_pool_3x3_s2(x)], axis=-1)


class FIDInceptionE(_Block):
  """Mixed_7b (``pool='avg'``, FIDInceptionE_1) and Mixed_7c (``pool='max'``, FIDInceptionE_2)."""
  pool: str = "avg"

  @nn.compact
  def __call__(self, x):
    b1 = self.conv("branch1x1", 320, 1)(x)
    b3 = self.conv("branch3x3_1", 384, 1)(x)
    b3 = jnp.concatenate([self.conv("branch3x3_2a", 384, (1, 3), padding=(0, 1))(b3),
                          self.conv("branch3x3_2b", 384, (3, 1), padding=(1, 0))(b3)], axis=-1)
    bd = self.conv("branch3x3dbl_1", 448, 1)(x)
    bd = self.conv("branch3x3dbl_2", 384, 3, padding=(1, 1))(bd)
    bd = jnp.concatenate([self.conv("branch3x3dbl_3a", 384, (1, 3), padding=(0, 1))(bd),
                          self.conv("branch3x3dbl_3b", 384, (3, 1), padding=(1, 0))(bd)], axis=-1)
    if self.pool == "max":
      # pytorch-fid: the TF graph max-pools here (likely a bug in that graph, kept for FID parity).
      pooled = nn.max_pool(x, (3, 3), strides=(1, 1), padding=_pad(1, 1))
    else:
      pooled = _avg_pool_3x3(x)
    bp = self.conv("branch_pool", 192, 1)(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


def _interp_matrix(in_size: int, out_size: int) -> np.ndarray:
  """(out, in) matrix of torch's 1-D linear interpolation with align_corners=False.

  ATen (``area_pixel_compute_source_index``): ``src = max(0, scale * (dst + 0.5) - 0.5)`` with
  ``scale = float(in) / out``, ``i0 = floor(src)``, ``i1 = min(i0 + 1, in - 1)``, weights
  ``1 - frac`` and ``frac``; no antialiasing, so downsampling only looks at the two nearest input
  pixels. ATen's CPU kernel rounds ``src`` once (a fused multiply-add in float32); we reproduce that
  by evaluating in float64 and rounding to float32, which matches torch's weights bit for bit.
  """
  scale = np.float64(np.float32(in_size) / np.float32(out_size))
  src = ((np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
  src = np.maximum(src, np.float32(0.0))
  i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
  i1 = np.minimum(i0 + 1, in_size - 1)
  frac = (src - i0.astype(np.float32)).astype(np.float32)
  matrix = np.zeros((out_size, in_size), np.float32)
  rows = np.arange(out_size)
  np.add.at(matrix, (rows, i0), np.float32(1.0) - frac)
  np.add.at(matrix, (rows, i1), frac)
  return matrix


def resize_bilinear(x: jax.Array, size: tuple[int, int]) -> jax.Array:
  """Resizes NHWC ``x`` like ``F.interpolate(x, size, mode='bilinear', align_corners=False)``.

  Separable: two small dense interpolation matrices (at most two non-zeros per row) with torch's
  exact weights. ``jax.image.resize(..., 'bilinear', antialias=False)`` agrees to ~1e-7, but its
  default ``antialias=True`` widens the kernel when downsampling and differs by up to ~0.5 on
  random images (measured against torch 2.13), which would change FID.
  """
  h, w = x.shape[1:3]
  if (h, w) == tuple(size):
    return x
  mh = jnp.asarray(_interp_matrix(h, size[0]))
  mw = jnp.asarray(_interp_matrix(w, size[1]))
  hp = jax.lax.Precision.HIGHEST  # Exact fp32 weights; the matrices are tiny.
  x = jnp.einsum("oh,nhwc->nowc", mh, x, precision=hp)
  return jnp.einsum("pw,nowc->nopc", mw, x, precision=hp)


class FIDInceptionV3(nn.Module):
  """pytorch-fid's InceptionV3 up to the final average pool (block index 3).

  Attributes:
    resize_input: resize to 299x299 first (pytorch-fid's default ``resize_input=True``).
    normalize_input: map [0, 1] to [-1, 1] (pytorch-fid's default ``normalize_input=True``).
    precision: convolution precision (None: backend default).

  Call: ``model.apply(variables, x)`` with NHWC RGB ``x`` in [0, 1] -> (N, 2048).
  ``variables`` has ``params`` and ``batch_stats`` (BatchNorm running statistics, eval mode only).
  """
  resize_input: bool = True
  normalize_input: bool = True
  precision: jax.lax.Precision | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if x.ndim != 4 or x.shape[-1] != 3:
      raise ValueError(f"x must be NHWC RGB with 3 channels, got shape {x.shape}")
    if self.resize_input:
      x = resize_bilinear(x, (INPUT_SIZE, INPUT_SIZE))
    elif min(x.shape[1:3]) < MIN_SIZE:
      raise ValueError(f"x must be at least {MIN_SIZE}x{MIN_SIZE} without resizing, got {x.shape}")
    if self.normalize_input:
      x = 2.0 * x - 1.0
    p = self.precision

    def conv(name, features, kernel, strides=1, padding=0):
      return BasicConv2d(features, (kernel, kernel), (strides, strides), _pad(padding, padding), p,
                         name=name)

    # Block 0: stem to maxpool1.
    x = conv("Conv2d_1a_3x3", 32, 3, strides=2)(x)
    x = conv("Conv2d_2a_3x3", 32, 3)(x)
    x = conv("Conv2d_2b_3x3", 64, 3, padding=1)(x)
    x = _max_pool_3x3_s2(x)
    # Block 1: to maxpool2.
    x = conv("Conv2d_3b_1x1", 80, 1)(x)
    x = conv("Conv2d_4a_3x3", 192, 3)(x)
    x = _max_pool_3x3_s2(x)
    # Block 2: 35x35 and 17x17 Inception modules.
    x = FIDInceptionA(p, pool_features=32, name="Mixed_5b")(x)
    x = FIDInceptionA(p, pool_features=64, name="Mixed_5c")(x)
    x = FIDInceptionA(p, pool_features=64, name="Mixed_5d")(x)
    x = InceptionB(p, name="Mixed_6a")(x)
    x = FIDInceptionC(p, channels_7x7=128, name="Mixed_6b")(x)
    x = FIDInceptionC(p, channels_7x7=160, name="Mixed_6c")(x)
    x = FIDInceptionC(p, channels_7x7=160, name="Mixed_6d")(x)
    x = FIDInceptionC(p, channels_7x7=192, name="Mixed_6e")(x)
    # Block 3: 8x8 modules and the adaptive average pool to 1x1.
    x = InceptionD(p, name="Mixed_7a")(x)
    x = FIDInceptionE(p, pool="avg", name="Mixed_7b")(x)
    x = FIDInceptionE(p, pool="max", name="Mixed_7c")(x)
    return jnp.mean(x, axis=(1, 2))


@functools.lru_cache(maxsize=1)
def param_specs() -> dict[str, weights_lib.ParamSpec]:
  """``{pytorch-fid name: ParamSpec}`` for every variable of `FIDInceptionV3`.

  Built from the Flax variable tree (shapes via `jax.eval_shape`, nothing is computed):
  ``.../conv/kernel`` <- ``.conv.weight``, ``bn/scale`` <- ``.bn.weight``, ``bn/bias`` <- ``.bn.bias``,
  ``bn/mean`` <- ``.bn.running_mean``, ``bn/var`` <- ``.bn.running_var``.
  """
  shapes = jax.eval_shape(FIDInceptionV3(resize_input=False).init, jax.random.key(0),
                          jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32))
  leaf_names = {("params", "kernel"): "weight", ("params", "scale"): "weight",
                ("params", "bias"): "bias", ("batch_stats", "mean"): "running_mean",
                ("batch_stats", "var"): "running_var"}
  specs = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(shapes)[0]:
    keys = tuple(k.key for k in path)
    collection, modules, leaf_name = keys[0], keys[1:-1], keys[-1]
    torch_name = ".".join(modules + (leaf_names[(collection, leaf_name)],))
    specs[torch_name] = weights_lib.ParamSpec(keys, tuple(leaf.shape))
  return dict(sorted(specs.items()))


def load_variables(path: str | os.PathLike) -> dict:
  """Reads and validates pytorch-fid Inception weights (``.pth``, ``.safetensors`` or ``.npz``).

  Returns:
    ``{'params': ..., 'batch_stats': ...}`` as numpy float32.

  Raises:
    FileNotFoundError, ValueError: see `jaxinpaint.weights.port_state_dict`.
  """
  state_dict = weights_lib.load_state_dict(path)
  return weights_lib.port_state_dict(state_dict, param_specs(), source=path, arch="inception_fid")


@functools.lru_cache(maxsize=None)
def _apply_fn(resize_input: bool, precision: jax.lax.Precision | None) -> Callable:
  model = FIDInceptionV3(resize_input=resize_input, precision=precision)

  @jax.jit
  def apply(variables, x):
    variables = jax.lax.stop_gradient(variables)
    return model.apply(variables, jnp.asarray(x, jnp.float32))

  return apply


def from_variables(variables, *, resize_input: bool = True,
                   precision: jax.lax.Precision | None = None) -> Callable[[jax.Array], jax.Array]:
  """Feature function over given variables (e.g. from `load_variables`); see `pretrained`."""
  variables = jax.tree.map(jnp.asarray, variables)
  return jax.tree_util.Partial(_apply_fn(resize_input, precision), variables)


def pretrained(path: str | os.PathLike, *, resize_input: bool = True,
               precision: jax.lax.Precision | None = None) -> Callable[[jax.Array], jax.Array]:
  """FID feature function with pytorch-fid's weights ported from ``path``.

  Args:
    path: ``pt_inception-2015-12-05-6726825d.pth`` (needs torch), a ``.safetensors`` with the same
      names, or an ``.npz`` from ``python -m jaxinpaint.weights convert``.
    resize_input: resize inputs to 299x299 as pytorch-fid does (keep True for comparable FID).
    precision: convolution precision (None: backend default; use HIGHEST on TPU for FID parity).

  Returns:
    ``features(x) -> (N, 2048)`` for NHWC RGB ``x`` in [0, 1]; jitted, frozen, and a pytree
    (``jax.tree_util.Partial`` over the variables).

  Raises:
    FileNotFoundError: ``path`` does not exist.
    ValueError: not pytorch-fid Inception weights, missing/mis-shaped parameter, corrupt file.
  """
  return from_variables(load_variables(path), resize_input=resize_input, precision=precision)


__all__ = ["FIDInceptionV3", "pretrained", "load_variables", "from_variables", "param_specs",
           "resize_bilinear", "INPUT_SIZE", "FEATURE_DIM"]

