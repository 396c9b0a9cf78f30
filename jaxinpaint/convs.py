"""Fast, exact 2-D convolution building blocks (NHWC features, HWIO kernels).

Every block computes the same function (values and gradients, up to float rounding) as the plain
`lax.conv_general_dilated` formulation; only the way the work is laid out differs. XLA:CPU runs several
convolution shapes far below its matmul rate: the weight gradient of stride-1 convolutions, convolutions
with few input or output channels, and transposed (lhs-dilated) convolutions, whose gradients multiply the
inserted zeros. The formulations here avoid those cases:

* `conv2d`: one core op (`jax.custom_vjp`) whose forward, input gradient and weight gradient are each one
  of a few small exact implementations (`FORWARD`, `INPUT_GRAD`, `WEIGHT_GRAD`), chosen by one planning
  function, `plan_conv`, from the convolution's static description (`ConvGeometry`: shapes, padding,
  strides, dilation, dtype) and the compilation target (`Target`: backend and XLA:CPU settings, fixed per
  process). The implementations: XLA's own convolution; one matmul plus a sum of shifted slices for few
  output (forward) or input (input gradient) channels; the stride-1 input gradient as a *forward*
  convolution with the flipped kernel (what XLA:CPU hands to oneDNN in bf16, unlike autodiff's form); one
  matmul against dy shifted to every tap (weight gradient, few output channels); the sub-pixel transposed
  convolution for strided convolutions' input gradient; one matrix product per kernel tap or kernel row
  (weight gradient, bf16 products accumulated in float32); Winograd's minimal filtering F(4x4, 3x3) in
  float32 (weight gradient of 3x3 stride-1 convolutions with many channels).
* bf16 (mixed precision): every block takes bf16 features and kernels and returns bf16; matrix products
  accumulate in float32, and with XLA's oneDNN convolutions (`jaxinpaint.xla_cpu`, jaxlib 0.12 on CPUs
  with bf16 instructions) the plan makes forward and input gradient forward convolutions that oneDNN runs.
* `conv_transpose2d` (torch `ConvTranspose2d` semantics): `s x s` sub-pixel stride-1 convolutions on
  the low-resolution input, one per output phase, interleaved (for k=4, s=2, p=1: four 2x2 convs).
* `upsample2x_conv`: a k x k convolution over a nearest-x2-upsampled map equals four convolutions on the
  low-resolution map, one per output phase, whose kernels are sums of the original taps (2x2 for k=3):
  2.25x fewer multiply-adds.
* `window_sum` (one single-channel `reduce_window`) and `upsample2x_window_sum` (the upsample trick
  for box sums): partial-convolution mask sums.

Which formulation runs is chosen per call by `impl`: `'fast'` (the above), `'xla'` (XLA's native
convolution ops, the reference formulation) or `'auto'`/None, which reads the environment variable
`JAXINPAINT_CONV_IMPL` and otherwise picks `'fast'` on the CPU backend and `'xla'` on GPU/TPU, where
XLA's native (cuDNN / TPU) convolutions are already the fast path. `forced_plan` overrides the planned
implementations inside a `with` block (tests and benchmarks).

Note: the fast core is a `jax.custom_vjp`, so it supports reverse-mode differentiation (`grad`,
`vjp`), `jit` and `vmap`, but not forward-mode (`jvp`/`jacfwd`); use `impl='xla'` for those.

References:
  W. Shi et al., "Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel
  Convolutional Neural Network", CVPR 2016 (sub-pixel convolution = transposed convolution by phases);
  A. Lavin, S. Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016 (Winograd F(4x4, 3x3));
  F. Yu, V. Koltun, "Multi-Scale Context Aggregation by Dilated Convolutions", ICLR 2016 (dilation);
  torch.nn.ConvTranspose2d / torch.nn.functional.conv_transpose2d (output size and index convention).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import os
from collections.abc import Callable, Sequence
from typing import Union

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxinpaint import xla_cpu

Array = jax.Array
IntPair = Union[int, Sequence[int]]
Padding = Union[int, Sequence[int], Sequence[Sequence[int]]]

DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")
IMPL_ENV_VAR = "JAXINPAINT_CONV_IMPL"
_IMPLS = ("auto", "fast", "xla")


# ----------------------------------------------------------------------------------------------------
# Argument handling and backend switch.

def resolve_impl(impl: str | None = None) -> str:
  """Returns `'fast'` or `'xla'`.

  Args:
    impl: `'fast'`, `'xla'`, `'auto'` or None. None/`'auto'` consult the `JAXINPAINT_CONV_IMPL`
      environment variable (same values) and then the default backend: `'fast'` on CPU, `'xla'` else.
  """
  if impl is None or impl == "auto":
    impl = os.environ.get(IMPL_ENV_VAR, "auto").strip().lower() or "auto"
    if impl not in _IMPLS:
      raise ValueError(f"environment variable {IMPL_ENV_VAR} must be one of {_IMPLS}, got {impl!r}")
    if impl == "auto":
      return "fast" if jax.default_backend() == "cpu" else "xla"
  if impl not in _IMPLS:
    raise ValueError(f"impl must be one of {_IMPLS} or None, got {impl!r}")
  return impl


def _pair(value: IntPair, name: str, minimum: int = 1) -> tuple[int, int]:
  if isinstance(value, (int, np.integer)):
    pair = (int(value), int(value))
  else:
    try:
      pair = tuple(int(v) for v in value)
    except TypeError:
      raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}") from None
  if len(pair) != 2 or min(pair) < minimum:
    raise ValueError(f"{name} must be an int >= {minimum} or a pair of them, got {value!r}")
  return pair  # type: ignore[return-value]


def _padding(padding: Padding, name: str = "padding") -> tuple[tuple[int, int], tuple[int, int]]:
  """int p -> ((p, p), (p, p)); (ph, pw) -> ((ph, ph), (pw, pw)); ((lo, hi), (lo, hi)) as is."""
  if isinstance(padding, (int, np.integer)):
    p = int(padding)
    result = ((p, p), (p, p))
  else:
    try:
      items = list(padding)
      if len(items) != 2:
        raise TypeError
      if all(isinstance(v, (int, np.integer)) for v in items):
        result = ((int(items[0]),) * 2, (int(items[1]),) * 2)
      else:
        result = tuple((int(lo), int(hi)) for lo, hi in items)
    except (TypeError, ValueError):
      raise ValueError(f"{name} must be an int, (ph, pw) or ((top, bottom), (left, right)), got {padding!r}") from None
  if min(min(p) for p in result) < 0:
    raise ValueError(f"{name} must be non-negative, got {padding!r}")
  return result  # type: ignore[return-value]


def _check_conv_args(x: Array, kernel: Array, kernel_layout: str = "(kh, kw, C_in, C_out) (HWIO)") -> None:
  if x.ndim != 4:
    raise ValueError(f"x: expected (N, H, W, C) features, got shape {x.shape}")
  if kernel.ndim != 4 or kernel.shape[2] != x.shape[-1]:
    raise ValueError(f"kernel: expected {kernel_layout} with C_in = {x.shape[-1]}, got shape {kernel.shape}")


def nearest_upsample_2x(x: Array) -> Array:
  """Nearest-neighbour x2 upsampling of an NHWC array (torch `F.interpolate(scale_factor=2)`)."""
  n, h, w, c = x.shape
  x = jnp.broadcast_to(x[:, :, None, :, None, :], (n, h, 2, w, 2, c))
  return x.reshape(n, 2 * h, 2 * w, c)


# ----------------------------------------------------------------------------------------------------
# Static description of a convolution and of the compilation target.

@dataclasses.dataclass(frozen=True)
class ConvGeometry:
  """Everything a plan may depend on about `y = conv(x, kernel)` (static, hashable).

  Attributes:
    x_shape: (N, H, W, C_in).
    kernel_shape: (kh, kw, C_in, C_out).
    padding: ((top, bottom), (left, right)) zero padding.
    strides, dilation: (sh, sw), (dh, dw).
    dtype: the computation dtype's name ('float32', 'bfloat16', ...).
  """
  x_shape: tuple[int, int, int, int]
  kernel_shape: tuple[int, int, int, int]
  padding: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0))
  strides: tuple[int, int] = (1, 1)
  dilation: tuple[int, int] = (1, 1)
  dtype: str = "float32"

  @classmethod
  def of(cls, x: Array, kernel: Array, padding, strides=(1, 1), dilation=(1, 1)) -> "ConvGeometry":
    return cls(tuple(x.shape), tuple(kernel.shape), tuple(tuple(int(v) for v in p) for p in padding),
               tuple(strides), tuple(dilation), jnp.dtype(x.dtype).name)

  @property
  def cin(self) -> int:
    return self.kernel_shape[2]

  @property
  def cout(self) -> int:
    return self.kernel_shape[3]

  @property
  def taps(self) -> int:
    return self.kernel_shape[0] * self.kernel_shape[1]

  @property
  def out_hw(self) -> tuple[int, int]:
    return tuple((size + lo + hi - d * (k - 1) - 1) // s + 1 for size, (lo, hi), k, s, d in
                 zip(self.x_shape[1:3], self.padding, self.kernel_shape[:2], self.strides, self.dilation))


@dataclasses.dataclass(frozen=True)
class Target:
  """What the plan depends on besides the convolution itself; one per process (`current_target`).

  Attributes:
    platform: JAX's default backend, 'cpu', 'gpu' or 'tpu'.
    ynnpack_convolutions: XLA:CPU compiles convolutions into YNNPACK fusions (jaxlib's default; turned
      off by `jaxinpaint.xla_cpu` where measured slower).
    onednn_convolutions: XLA:CPU rewrites convolutions into oneDNN calls (`jaxinpaint.xla_cpu` turns this
      on for bf16 on CPUs with bf16 instructions).
    cpu_bf16: the CPU has bf16 instructions (`avx512_bf16` or `amx_bf16`).
  """
  platform: str = "cpu"
  ynnpack_convolutions: bool = False
  onednn_convolutions: bool = False
  cpu_bf16: bool = False

  def conv_library(self, dtype: str) -> str:
    """The kernels XLA:CPU runs a native convolution of `dtype` with: 'onednn', 'ynnpack' or 'eigen'.

    XLA's oneDNN rewrite takes bf16 convolutions (on bf16-capable CPUs) before YNNPACK does, fp32 ones
    only when YNNPACK's convolutions are off.
    """
    if dtype == "bfloat16" and self.onednn_convolutions and self.cpu_bf16:
      return "onednn"
    if self.ynnpack_convolutions:
      return "ynnpack"
    if dtype == "float32" and self.onednn_convolutions:
      return "onednn"
    return "eigen"


@functools.cache
def current_target() -> Target:
  """This process's `Target`, read once.

  XLA reads `XLA_FLAGS` when JAX creates its backends, which `jax.default_backend()` does if nothing did
  before, so the flags seen here are the ones every later compilation uses.
  """
  platform = jax.default_backend()
  if platform != "cpu":
    return Target(platform=platform)
  settings = xla_cpu.active_settings()
  return Target(platform, settings.ynnpack_convolutions, settings.onednn_convolutions, settings.cpu_bf16)


# ----------------------------------------------------------------------------------------------------
# Implementations. Forward: f(x, kernel, g) -> y. Input / weight gradient: f(x, kernel, dy, g) -> dx / dW.

def _xla_conv(x: Array, kernel: Array, padding, strides=(1, 1), dilation=(1, 1)) -> Array:
  return lax.conv_general_dilated(x, kernel, window_strides=strides, padding=padding,
                                  rhs_dilation=dilation, dimension_numbers=DIMENSION_NUMBERS)


def _conv_shifted_outputs(x: Array, kernel: Array, padding, dilation) -> Array:
  """Stride-1 convolution with few output channels: one product, then a sum of shifted slices.

  z = x_pad @ [W_tap for every tap] gives every tap's contribution at every input pixel
  ((N*Hp*Wp, C_in) x (C_in, kh*kw*C_out), small when C_out is); y[p] = sum_{a,b} z[p + d*(a, b), tap (a, b)].
  XLA's convolution runs skinny-output shapes far below the matmul rate (7x7 64->3 at 256^2: 136 ms
  vs ~50 ms this way).
  """
  (pt, pb), (pl, pr) = padding
  dh, dw = dilation
  xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
  n, hp, wp, cin = xp.shape
  kh, kw, _, cout = kernel.shape
  ho, wo = hp - dh * (kh - 1), wp - dw * (kw - 1)
  taps = jnp.transpose(kernel, (2, 0, 1, 3)).reshape(cin, kh * kw * cout)
  z = lax.dot_general(xp.reshape(n * hp * wp, cin), taps, (((1,), (0,)), ((), ())),
                      preferred_element_type=jnp.float32).reshape(n, hp, wp, kh, kw, cout)
  y = sum(z[:, dh * a:dh * a + ho, dw * b:dw * b + wo, a, b, :] for a in range(kh) for b in range(kw))
  return y.astype(x.dtype)


def _forward_xla(x: Array, kernel: Array, g: ConvGeometry) -> Array:
  return _xla_conv(x, kernel, g.padding, g.strides, g.dilation)


def _forward_shifted_outputs(x: Array, kernel: Array, g: ConvGeometry) -> Array:
  return _conv_shifted_outputs(x, kernel, g.padding, g.dilation)


def _input_grad_xla(x: Array, kernel: Array, dy: Array, g: ConvGeometry) -> Array:
  """XLA's transposed formulation (about forward speed for stride 1; lhs-dilated for strided convs)."""
  _, vjp_x = jax.vjp(lambda x_: _xla_conv(x_, kernel, g.padding, g.strides, g.dilation), x)
  return vjp_x(dy)[0]


def _subpixel_output_padding(g: ConvGeometry) -> tuple[int, int]:
  """The rows/cols a strided convolution's stride skipped at the end: conv_transpose's output_padding."""
  return tuple(size + 2 * lo - k - s * (o - 1) for size, (lo, _), k, s, o in
               zip(g.x_shape[1:3], g.padding, g.kernel_shape[:2], g.strides, g.out_hw))


def _input_grad_subpixel(x: Array, kernel: Array, dy: Array, g: ConvGeometry) -> Array:
  """dx = conv_transpose(dy, W with in/out swapped): s*s stride-1 convolutions on dy (no inserted zeros)."""
  (pt, _), (pl, _) = g.padding
  return conv_transpose2d(dy, jnp.swapaxes(kernel, 2, 3), strides=g.strides, padding=(pt, pl),
                          output_padding=_subpixel_output_padding(g), impl="fast")


def _flipped_padding(g: ConvGeometry):
  """Padding of dy for the stride-1 input gradient as a correlation with the flipped kernel."""
  return tuple((d * (k - 1) - lo, d * (k - 1) - hi)
               for (lo, hi), k, d in zip(g.padding, g.kernel_shape[:2], g.dilation))


def _flipped_kernel(kernel: Array) -> Array:
  """W flipped in both spatial axes, input and output channels swapped: the input gradient's kernel."""
  return jnp.swapaxes(kernel[::-1, ::-1], 2, 3)


def _input_grad_flipped(x: Array, kernel: Array, dy: Array, g: ConvGeometry) -> Array:
  """Stride 1: dx = dy correlated with the flipped, in/out-swapped kernel, as a *forward* convolution.

  Autodiff's form of the same convolution carries the reversal inside the convolution (or as its kernel's
  producer), which XLA:CPU does not hand to oneDNN; this one it does (3x3 256->256 at 64^2, bf16: the
  forward's speed instead of ~2.3x slower).
  """
  return _xla_conv(dy, _flipped_kernel(kernel), _flipped_padding(g), (1, 1), g.dilation)


def _input_grad_shifted_outputs(x: Array, kernel: Array, dy: Array, g: ConvGeometry) -> Array:
  """Stride 1, few input channels: dx = dy correlated with the flipped, in/out-swapped kernel, which has
  few output channels, as the one-matmul form (7x7 64->4 at 256^2: XLA's takes 147 ms, PyTorch 91 ms)."""
  return _conv_shifted_outputs(dy, _flipped_kernel(kernel), _flipped_padding(g), g.dilation)


def _weight_grad_xla(x: Array, kernel: Array, dy: Array, g: ConvGeometry) -> Array:
  _, vjp_w = jax.vjp(lambda k: _xla_conv(x, k, g.padding, g.strides, g.dilation), kernel)
  return vjp_w(dy)[0]


def _tap_operands(x: Array, dy: Array, g: ConvGeometry):
  """Padded x, dy as a (K, C_out) matrix (K = N*H_out*W_out), and the span of one tap's input rows/cols."""
  n, ho, wo, cout = dy.shape
  (pt, pb), (pl, pr) = g.padding
  xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
  (sh, sw) = g.strides
  return xp, dy.reshape(n * ho * wo, cout), (sh * (ho - 1) + 1, sw * (wo - 1) + 1)


def _weight_grad_taps(x: Array, kernel: Array, dy: Array, g: ConvGeometry) -> Array:
  """dW[a, b] = sum_{n,i,j} x_pad[n, s*i + d*a, s*j + d*b, :]^T dy[n, i, j, :]: one dot per kernel tap.

  A plain (K, C_in)^T (K, C_out) product with K = N*H_out*W_out runs near the machine's matmul peak on
  XLA:CPU, while XLA's own weight-gradient convolution (batch as the contracted feature dimension) runs
  several times slower under its YNNPACK convolutions. A loop over the taps keeps one shifted copy of the
  input alive at a time (unrolled, XLA may materialise all kh*kw copies at once: several hundred MB for
  the U-Net's large layers) and measured as fast as the unrolled version.
  """
  kh, kw, cin, cout = g.kernel_shape
  n, ho, wo, _ = dy.shape
  xp, dy2, (span_h, span_w) = _tap_operands(x, dy, g)
  (sh, sw), (dh, dw) = g.strides, g.dilation

  def tap(a, b):
    xt = lax.dynamic_slice(xp, (0, a * dh, b * dw, 0), (n, span_h, span_w, cin))
    if (sh, sw) != (1, 1):
      xt = lax.slice(xt, (0, 0, 0, 0), xt.shape, (1, sh, sw, 1))
    return lax.dot_general(xt.reshape(n * ho * wo, cin), dy2, (((0,), (0,)), ((), ())),
                           preferred_element_type=jnp.float32)

  if kh * kw == 1:
    return tap(0, 0).reshape(1, 1, cin, cout)

  def body(t, acc):
    return lax.dynamic_update_index_in_dim(acc, tap(t // kw, t % kw), t, axis=0)
  acc = lax.fori_loop(0, kh * kw, body, jnp.zeros((kh * kw, cin, cout), jnp.float32))
  return acc.reshape(kh, kw, cin, cout)


def _weight_grad_tap_rows(x: Array, kernel: Array, dy: Array, g: ConvGeometry) -> Array:
  """`_weight_grad_taps` with the kw taps of a kernel row as one (K, kw*C_in)^T (K, C_out) product: few
  input channels make skinny per-tap products."""
  kh, kw, cin, cout = g.kernel_shape
  n, ho, wo, _ = dy.shape
  xp, dy2, (span_h, span_w) = _tap_operands(x, dy, g)
  (sh, sw), (dh, dw) = g.strides, g.dilation

  def row(a):
    xt = lax.dynamic_slice(xp, (0, a * dh, 0, 0), (n, span_h, xp.shape[2], cin))
    parts = [lax.slice(xt, (0, 0, b * dw, 0), (n, span_h, b * dw + span_w, cin), (1, sh, sw, 1))
             for b in range(kw)]
    cols = jnp.concatenate(parts, axis=-1).reshape(n * ho * wo, kw * cin)
    return lax.dot_general(cols, dy2, (((0,), (0,)), ((), ())), preferred_element_type=jnp.float32)

  def body(a, acc):
    return lax.dynamic_update_index_in_dim(acc, row(a), a, axis=0)
  acc = lax.fori_loop(0, kh, body, jnp.zeros((kh, kw * cin, cout), jnp.float32))
  return acc.reshape(kh, kw, cin, cout)


def _weight_grad_shifted_dy(x: Array, kernel: Array, dy: Array, g: ConvGeometry) -> Array:
  """Stride-1 dW for few output channels: one product `x_pad^T @ [dy shifted to every tap]`.

  dW[a, b] = sum_p x_pad[p]^T dy[p - d*(a, b)]: placing dy at each tap's offset in the padded frame
  builds a (N*Hp*Wp, kh*kw*C_out) matrix, small when C_out is, and one dot with the padded input gives
  every tap at once (a 7x7 64->3 layer otherwise makes 49 skinny (K, 64)^T (K, 3) products).
  """
  kh, kw, cin, cout = g.kernel_shape
  n, ho, wo, _ = dy.shape
  (pt, pb), (pl, pr) = g.padding
  dh, dw = g.dilation
  xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
  hp, wp = xp.shape[1:3]
  shifted = [jnp.pad(dy, ((0, 0), (dh * a, hp - ho - dh * a), (dw * b, wp - wo - dw * b), (0, 0)))
             for a in range(kh) for b in range(kw)]
  cols = jnp.concatenate(shifted, axis=-1).reshape(n * hp * wp, kh * kw * cout)
  grad = lax.dot_general(xp.reshape(n * hp * wp, cin), cols, (((0,), (0,)), ((), ())),
                         preferred_element_type=jnp.float32)
  return grad.reshape(cin, kh, kw, cout).transpose(1, 2, 0, 3)


# Winograd F(4x4, 3x3) (Lavin & Gray 2016, interpolation points 0, +-1, +-2, inf): B^T, G, A^T.
_WINOGRAD_BT = ((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
                (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1))
_WINOGRAD_G = ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
               (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1))
_WINOGRAD_AT = ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))
_WINOGRAD_M = 4  # output tile side


def _linear_combination(coefficients, parts):
  """sum_i coefficients[i] * parts[i], skipping zero coefficients (the transforms are sparse)."""
  acc = None
  for c, part in zip(coefficients, parts):
    if c == 0:
      continue
    term = part if c == 1 else (-part if c == -1 else part * float(c))
    acc = term if acc is None else acc + term
  return acc


def _winograd_tile_rows(x: Array, axis: int, size: int, tiles: int, d: int) -> list[Array]:
  """`size` arrays, one per tile element q: `axis` becomes (tiles, d), entry (t, r) = x[4*d*t + r + d*q].

  A dilated axis splits into d interleaved sub-grids (r), each tiled undilated; out-of-range rows are 0.
  """
  m = _WINOGRAD_M
  blocks = tiles + (size - 1) // m + 1
  need = blocks * m * d
  pad = [(0, 0)] * x.ndim
  pad[axis] = (0, max(0, need - x.shape[axis]))
  x = lax.slice_in_dim(jnp.pad(x, pad), 0, need, axis=axis)
  b = x.reshape(x.shape[:axis] + (blocks, m, d) + x.shape[axis + 1:])
  return [lax.index_in_dim(lax.slice_in_dim(b, q // m, q // m + tiles, axis=axis), q % m, axis=axis + 1,
                           keepdims=False) for q in range(size)]


def _winograd_transform(x: Array, matrix, size: int, tiles: tuple[int, int], dilation) -> list[Array]:
  """`matrix` applied to both sides of every size x size tile of x (N, H, W, C): len(matrix)**2 (N*tiles, C)."""
  rows = _winograd_tile_rows(x, 1, size, tiles[0], dilation[0])
  out = []
  for row in (_linear_combination(r, rows) for r in matrix):
    cols = _winograd_tile_rows(row, 3, size, tiles[1], dilation[1])
    out.extend(_linear_combination(c, cols).reshape(-1, x.shape[-1]) for c in matrix)
  return out


def _winograd_weight_grad(x: Array, dy: Array, padding, dilation) -> Array:
  """Exact 3x3 stride-1 (dilated) weight gradient by Winograd's minimal filtering F(4x4, 3x3).

  The forward conv is, per 4x4 output tile, y = A^T [(G g G^T) * (B^T d B)] A (d: the 6x6 input tile,
  `*` elementwise over the 36 positions, a C_in x C_out product at each); its gradient is therefore
  dg = G^T [sum_tiles (B^T d B)^T (A dy A^T)] G: 36 products (tiles, C_in)^T (tiles, C_out) instead of
  9 over every pixel, 4x fewer multiply-adds, plus cheap linear transforms. Dilation d tiles the d x d
  interleaved sub-grids (an undilated convolution each). Rounding differs from the direct sum by
  ~1e-5 relative (the transforms' coefficients are small integers and 1/24 .. 1/4).

  Reference: A. Lavin, S. Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016.
  """
  m = _WINOGRAD_M
  n, ho, wo, cout = dy.shape
  (pt, pb), (pl, pr) = padding
  tiles = (-(-ho // (m * dilation[0])), -(-wo // (m * dilation[1])))
  xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
  v = _winograd_transform(xp, _WINOGRAD_BT, m + 2, tiles, dilation)
  a = tuple(zip(*_WINOGRAD_AT))  # A: 6 x 4, applied to the (zero-padded) 4x4 tiles of dy
  dm = _winograd_transform(dy, a, m, tiles, dilation)
  du = [lax.dot_general(vi, mi, (((0,), (0,)), ((), ())), preferred_element_type=jnp.float32)
        for vi, mi in zip(v, dm)]
  g = _WINOGRAD_G
  taps = [_linear_combination([g[p][i] * g[q][j] for p in range(m + 2) for q in range(m + 2)], du)
          for i in range(3) for j in range(3)]
  return jnp.stack(taps).reshape(3, 3, x.shape[-1], cout)


def _weight_grad_winograd(x: Array, kernel: Array, dy: Array, g: ConvGeometry) -> Array:
  """The Winograd weight gradient in float32 (bf16 inputs are upcast exactly: its transforms would lose
  about one digit in bf16, and XLA:CPU keeps float32 for a product whose bf16 operands it can see are
  float32 values rounded)."""
  return _winograd_weight_grad(x.astype(jnp.float32), dy.astype(jnp.float32), g.padding, g.dilation)


# ----------------------------------------------------------------------------------------------------
# The planning table.

@dataclasses.dataclass(frozen=True)
class Implementation:
  """One exact way to compute a stage: `fn` and the geometries it is defined for (`applies`)."""
  fn: Callable
  applies: Callable[[ConvGeometry], bool]


def _always(g: ConvGeometry) -> bool:
  del g
  return True


def _stride1(g: ConvGeometry) -> bool:
  return g.strides == (1, 1)


def _subpixel_applies(g: ConvGeometry) -> bool:
  (pt, pb), (pl, pr) = g.padding
  return (g.strides != (1, 1) and g.dilation == (1, 1) and pt == pb and pl == pr
          and all(0 <= op < s for op, s in zip(_subpixel_output_padding(g), g.strides)))


def _flipped_applies(g: ConvGeometry) -> bool:
  return g.strides == (1, 1) and min(min(p) for p in _flipped_padding(g)) >= 0


FORWARD = {
    "xla": Implementation(_forward_xla, _always),
    "shifted_outputs": Implementation(_forward_shifted_outputs, _stride1),
}
INPUT_GRAD = {
    "xla": Implementation(_input_grad_xla, _always),
    "subpixel": Implementation(_input_grad_subpixel, _subpixel_applies),
    "shifted_outputs": Implementation(_input_grad_shifted_outputs, _flipped_applies),
    "flipped": Implementation(_input_grad_flipped, _flipped_applies),
}
WEIGHT_GRAD = {
    "xla": Implementation(_weight_grad_xla, _always),
    "taps": Implementation(_weight_grad_taps, _always),
    "tap_rows": Implementation(_weight_grad_tap_rows, _always),
    "shifted_dy": Implementation(_weight_grad_shifted_dy, _stride1),
    "winograd": Implementation(_weight_grad_winograd,
                               lambda g: g.kernel_shape[:2] == (3, 3) and g.strides == (1, 1)),
}
STAGES = {"forward": FORWARD, "input_grad": INPUT_GRAD, "weight_grad": WEIGHT_GRAD}


@dataclasses.dataclass(frozen=True)
class ConvPlan:
  """Names of the implementations (keys of `FORWARD`, `INPUT_GRAD`, `WEIGHT_GRAD`) of one convolution."""
  forward: str = "xla"
  input_grad: str = "xla"
  weight_grad: str = "xla"


# Thresholds of the table. Each was chosen by timing the candidate implementations of a stage on the
# PConv U-Net and EdgeConnect layer shapes (batch 4) on a 2-core AVX-512 (avx512_bf16) machine with
# `python bench/bench_convs.py --layer NAME | --x ... --kernel ... [--dtype bfloat16]` (every implementation
# of every stage of one shape, interleaved; Eigen: jaxlib 0.10, oneDNN: jaxlib 0.12 with the settings of
# `jaxinpaint.xla_cpu`) and checked on whole layers with `python bench/bench_layers.py [--dtype bfloat16]`.
#   <= SMALL_CHANNELS output channels: forward and weight gradient as one matmul (7x7 64->3 at 256^2:
#   forward 2.7x, weight gradient 1.2x faster than XLA's); <= SMALL_CHANNELS input channels: the same for
#   the input gradient.
SMALL_CHANNELS = 4
#   >= SUBPIXEL_MIN_CIN input channels: a strided convolution's input gradient as the sub-pixel transposed
#   convolution (4x4/2 64->128 at 256^2: 210 vs 372 ms); with 3 input channels XLA's is faster (13 vs 24 ms).
SUBPIXEL_MIN_CIN = 16
#   < ROW_GROUPING_MAX_CIN input channels: per-tap weight-gradient products grouped by kernel row.
ROW_GROUPING_MAX_CIN = 32
#   Winograd weight gradient (3x3, stride 1, computed in float32) from WINOGRAD_MIN_CHANNELS channels and for
#   WINOGRAD_MIN_TILES..WINOGRAD_MAX_TILES output tiles of 4x4 (4x64^2 256->256: 49-52 vs 72 ms;
#   4x32^2 512->512: 36 vs 58 ms); with fewer tiles its 36 small products lose (4x16^2 512->512: 17 vs
#   14 ms), with more the transforms' memory traffic does (4x256^2 64->64: 208 vs 138 ms).
WINOGRAD_MIN_CHANNELS = 64
WINOGRAD_MIN_TILES, WINOGRAD_MAX_TILES = 256, 2048
#   With XLA's oneDNN convolutions: in bf16 the one-matmul forms for few output channels only while the
#   matmul is narrow, at most ONEDNN_SMALL_WINDOW kh*kw*C_out columns (4x4 512->1: forward 3 vs 8 ms, weight
#   gradient 3 vs 52 ms; 7x7 64->3, 147 columns: oneDNN's convolution wins, forward 0.51 vs 0.76 s on a
#   loaded machine); and the input gradient as XLA's own form when the flipped kernel has few input
#   channels and more than ONEDNN_SMALL_WINDOW taps (7x7 64->3: 0.34 vs 1.8 s, oneDNN's slow case).
ONEDNN_SMALL_WINDOW = 16

_FORCED: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("jaxinpaint_forced_plan", default={})


def _winograd_tiles(g: ConvGeometry) -> int:
  ho, wo = g.out_hw
  return g.x_shape[0] * -(-ho // _WINOGRAD_M) * -(-wo // _WINOGRAD_M)


def _planned(g: ConvGeometry, target: Target) -> ConvPlan:
  if target.platform != "cpu":
    return ConvPlan()  # cuDNN / TPU convolutions are the fast path there
  library = target.conv_library(g.dtype)
  if library == "ynnpack":
    # Under XLA's YNNPACK convolutions only their weight gradient is slow; per-tap products measured 2-4x
    # faster.
    return ConvPlan(weight_grad="tap_rows" if g.cin < ROW_GROUPING_MAX_CIN and g.kernel_shape[1] > 1 else "taps")
  if library == "onednn":
    return _planned_onednn(g)
  return _planned_eigen(g)


def _planned_eigen(g: ConvGeometry) -> ConvPlan:
  stride1 = g.strides == (1, 1)
  forward = "shifted_outputs" if stride1 and g.cout <= SMALL_CHANNELS and g.taps > 1 else "xla"
  if _subpixel_applies(g) and g.cin >= SUBPIXEL_MIN_CIN:
    input_grad = "subpixel"
  elif _flipped_applies(g) and g.cin <= SMALL_CHANNELS:
    input_grad = "shifted_outputs"
  else:
    input_grad = "xla"
  if stride1 and g.cout <= SMALL_CHANNELS:
    weight_grad = "shifted_dy"
  elif (WEIGHT_GRAD["winograd"].applies(g) and min(g.cin, g.cout) >= WINOGRAD_MIN_CHANNELS
        and WINOGRAD_MIN_TILES <= _winograd_tiles(g) <= WINOGRAD_MAX_TILES):
    weight_grad = "winograd"
  else:
    weight_grad = "xla"  # XLA's (Eigen) weight gradient wins on every other measured shape
  return ConvPlan(forward, input_grad, weight_grad)


def _planned_onednn(g: ConvGeometry) -> ConvPlan:
  """XLA:CPU hands forward convolutions to oneDNN (not autodiff's input gradient, see `_input_grad_flipped`)."""
  stride1 = g.strides == (1, 1)
  few_out = stride1 and g.cout <= SMALL_CHANNELS
  small_shifted = few_out and g.taps * g.cout <= ONEDNN_SMALL_WINDOW
  bf16 = g.dtype == "bfloat16"
  forward = "shifted_outputs" if g.taps > 1 and (small_shifted if bf16 else few_out) else "xla"
  if _subpixel_applies(g) and g.cin >= SUBPIXEL_MIN_CIN:
    input_grad = "subpixel"
  elif _flipped_applies(g) and few_out and g.taps > ONEDNN_SMALL_WINDOW:
    input_grad = "xla"  # the flipped kernel has few input channels and many taps: oneDNN's slow case
  elif _flipped_applies(g) and (bf16 or few_out or g.cin <= SMALL_CHANNELS):
    input_grad = "flipped"
  else:
    input_grad = "xla"  # fp32: XLA's own input gradient reaches oneDNN as well
  winograd = WEIGHT_GRAD["winograd"].applies(g) and min(g.cin, g.cout) >= WINOGRAD_MIN_CHANNELS
  if few_out and (small_shifted or not bf16):
    weight_grad = "shifted_dy"
  elif bf16 and winograd and WINOGRAD_MIN_TILES <= _winograd_tiles(g) <= WINOGRAD_MAX_TILES:
    weight_grad = "winograd"  # float32 Winograd beats oneDNN's bf16 weight gradient (3x3 256->256: 0.63x time)
  elif bf16 and stride1:
    # oneDNN's bf16 weight gradient of stride-1 convolutions is wrong on some CPUs (relative error ~1 against
    # float32 on AMX-bf16 Xeons with jaxlib 0.12), so it is never planned: exact per-tap bf16 products with
    # float32 accumulation instead.
    weight_grad = "tap_rows" if g.cin < ROW_GROUPING_MAX_CIN and g.kernel_shape[1] > 1 else "taps"
  elif bf16:
    weight_grad = "xla"  # strided: oneDNN's bf16 weight gradient is right and beats per-tap products
  elif winograd and _winograd_tiles(g) >= WINOGRAD_MIN_TILES:
    weight_grad = "winograd"  # no upper bound: the alternative, oneDNN's fp32 weight gradient, is slower
  else:
    # oneDNN's fp32 weight gradient is slower than per-tap products on most shapes.
    weight_grad = "tap_rows" if g.cin < ROW_GROUPING_MAX_CIN and g.kernel_shape[1] > 1 else "taps"
  return ConvPlan(forward, input_grad, weight_grad)


def plan_conv(g: ConvGeometry, target: Target | None = None) -> ConvPlan:
  """The implementations of the forward pass, input gradient and weight gradient of one convolution.

  Args:
    g: the convolution's static description.
    target: backend and XLA:CPU settings; default `current_target()`.

  Returns:
    A `ConvPlan`; inside `forced_plan(...)`, the forced names where they apply to `g`.
  """
  plan = _planned(g, current_target() if target is None else target)
  forced = {stage: name for stage, name in _FORCED.get().items() if STAGES[stage][name].applies(g)}
  return dataclasses.replace(plan, **forced) if forced else plan


@contextlib.contextmanager
def forced_plan(**names: str):
  """Within the block, convolutions use these implementations where they apply (tests, benchmarks).

  `with forced_plan(weight_grad="taps"): ...`. Takes effect when a convolution is traced; `jax.jit` caches
  a trace per Python function, so jit a new function object inside the block.
  """
  for stage, name in names.items():
    if stage not in STAGES or name not in STAGES[stage]:
      raise ValueError(f"forced_plan: unknown {stage}={name!r}; stages and implementations are "
                       f"{ {s: sorted(t) for s, t in STAGES.items()} }")
  token = _FORCED.set({**_FORCED.get(), **names})
  try:
    yield
  finally:
    _FORCED.reset(token)


# ----------------------------------------------------------------------------------------------------
# The core op.

@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_core(x: Array, kernel: Array, g: ConvGeometry, plan: ConvPlan) -> Array:
  return FORWARD[plan.forward].fn(x, kernel, g)


def _conv_core_fwd(x, kernel, g, plan):
  return FORWARD[plan.forward].fn(x, kernel, g), (x, kernel)


def _conv_core_bwd(g, plan, res, dy):
  x, kernel = res
  dx = INPUT_GRAD[plan.input_grad].fn(x, kernel, dy, g)
  dw = WEIGHT_GRAD[plan.weight_grad].fn(x, kernel, dy, g)
  return dx.astype(x.dtype), dw.astype(kernel.dtype)


_conv_core.defvjp(_conv_core_fwd, _conv_core_bwd)


def _conv_fast(x: Array, kernel: Array, padding, strides=(1, 1), dilation=(1, 1)) -> Array:
  """The custom-VJP core with the planned implementations."""
  g = ConvGeometry.of(x, kernel, padding, strides, dilation)
  return _conv_core(x, kernel, g, plan_conv(g))


# ----------------------------------------------------------------------------------------------------
# Public blocks.

def conv2d(
    x: Array,
    kernel: Array,
    *,
    strides: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    impl: str | None = None,
) -> Array:
  """2-D cross-correlation with zero padding, as `torch.nn.functional.conv2d` (NHWC / HWIO, no bias).

  `y[n, i, j, o] = sum_{a, b, c} x_pad[n, s*i + d*a, s*j + d*b, c] * kernel[a, b, c, o]`. Padding is
  explicit and symmetric by default (an int p pads p on every side, as torch's `padding=p`), unlike
  XLA's 'SAME', which pads asymmetrically for stride 2.

  Args:
    x: (N, H, W, C_in).
    kernel: (kh, kw, C_in, C_out); a torch weight `w` ports as `w.permute(2, 3, 1, 0)`.
    strides: int or (sh, sw).
    padding: int, (ph, pw), or ((top, bottom), (left, right)).
    dilation: int or (dh, dw) (kernel dilation, torch `dilation`).
    impl: `'fast'`, `'xla'`, or None/`'auto'` (see `resolve_impl`). 'fast': the `jax.custom_vjp` core
      with the implementations `plan_conv` picks for this shape (module docstring).

  Returns:
    (N, H_out, W_out, C_out) with H_out = (H + top + bottom - dh*(kh-1) - 1) // sh + 1.
  """
  x, kernel = jnp.asarray(x), jnp.asarray(kernel)
  _check_conv_args(x, kernel)
  strides = _pair(strides, "strides")
  dilation = _pair(dilation, "dilation")
  padding = _padding(padding)
  kh, kw = kernel.shape[:2]
  for axis, (size, (lo, hi), k, d) in enumerate(zip(x.shape[1:3], padding, (kh, kw), dilation)):
    if size + lo + hi < d * (k - 1) + 1:
      raise ValueError(f"x: spatial dim {axis} of size {size} (+ padding {lo}+{hi}) is smaller than the "
                       f"dilated kernel extent {d * (k - 1) + 1}")
  dtype = jnp.result_type(x, kernel)
  x, kernel = x.astype(dtype), kernel.astype(dtype)
  if resolve_impl(impl) == "xla":
    return _xla_conv(x, kernel, padding, strides, dilation)
  return _conv_fast(x, kernel, padding, strides, dilation)


def _transpose_phase_taps(k: int, s: int, p: int, r: int) -> tuple[list[int], int]:
  """For output phase r of a transposed conv: kernel taps (as a correlation) and input offset.

  torch: y[s*i + a - p] += x[i] * w[a]. For m = s*q + r, taps a = a0 + s*j with a0 = (r + p) mod s read
  x[q + c - j], c = (r + p - a0) // s. As a correlation over x[q + off + t], t = 0..J-1:
  tap t uses w[a0 + s*(J-1-t)] and off = c - J + 1.
  """
  a0 = (r + p) % s
  num = max(0, -(-(k - a0) // s))
  c = (r + p - a0) // s
  return [a0 + s * (num - 1 - t) for t in range(num)], c - num + 1


def conv_transpose2d(
    x: Array,
    kernel: Array,
    *,
    strides: IntPair = 2,
    padding: IntPair = 1,
    output_padding: IntPair = 0,
    impl: str | None = None,
) -> Array:
  """Transposed convolution with the semantics of `torch.nn.functional.conv_transpose2d` (no bias).

  `y[n, s*i + a - p, s*j + b - p, o] += x[n, i, j, c] * kernel[a, b, c, o]`, output size
  `(H - 1)*s - 2p + k + output_padding`. The 'fast' formulation computes each of the s*s output phases
  as a stride-1 convolution on the low-resolution input with the phase's sub-sampled, flipped taps
  (four 2x2 convolutions for k=4, s=2, p=1) and interleaves them; 'xla' is the lhs-dilated convolution.

  Args:
    x: (N, H, W, C_in).
    kernel: (kh, kw, C_in, C_out); a torch ConvTranspose2d weight `w` of shape (C_in, C_out, kh, kw)
      ports as `w.permute(2, 3, 0, 1)`.
    strides, padding, output_padding: ints or pairs, torch's `stride`, `padding`, `output_padding`
      (output_padding < stride).
    impl: `'fast'`, `'xla'`, or None/`'auto'` (see `resolve_impl`).

  Returns:
    (N, H_out, W_out, C_out).
  """
  x, kernel = jnp.asarray(x), jnp.asarray(kernel)
  _check_conv_args(x, kernel, "(kh, kw, C_in, C_out) (torch (C_in, C_out, kh, kw) permuted (2, 3, 0, 1))")
  strides = _pair(strides, "strides")
  padding = _pair(padding, "padding", minimum=0)
  output_padding = _pair(output_padding, "output_padding", minimum=0)
  n, h, w, cin = x.shape
  kh, kw, _, cout = kernel.shape
  out_size = []
  for axis, (size, k, s, p, op) in enumerate(zip((h, w), (kh, kw), strides, padding, output_padding)):
    if op >= s:
      raise ValueError(f"output_padding must be smaller than strides, got {output_padding} with {strides}")
    size_out = (size - 1) * s - 2 * p + k + op
    if size_out < 1:
      raise ValueError(f"x: spatial dim {axis} of size {size} gives an empty output with kernel {k}, "
                       f"stride {s}, padding {p}")
    out_size.append(size_out)
  ho, wo = out_size
  dtype = jnp.result_type(x, kernel)
  x, kernel = x.astype(dtype), kernel.astype(dtype)

  if resolve_impl(impl) == "xla":
    pads = [(k - 1 - p, k - 1 - p + op) for k, p, op in zip((kh, kw), padding, output_padding)]
    if min(min(pp) for pp in pads) >= 0:
      return lax.conv_general_dilated(x, kernel[::-1, ::-1], window_strides=(1, 1), padding=pads,
                                      lhs_dilation=strides, dimension_numbers=DIMENSION_NUMBERS)
    # padding > k - 1: negative conv padding; compute the full output and crop.
    full = lax.conv_general_dilated(x, kernel[::-1, ::-1], window_strides=(1, 1),
                                    padding=[(k - 1, k - 1 + op) for k, op in zip((kh, kw), output_padding)],
                                    lhs_dilation=strides, dimension_numbers=DIMENSION_NUMBERS)
    return full[:, padding[0]:padding[0] + ho, padding[1]:padding[1] + wo]

  (sh, sw), (ph, pw) = strides, padding
  qh, qw = -(-ho // sh), -(-wo // sw)  # outputs per phase (last phases may need cropping)
  rows = [_transpose_phase_taps(kh, sh, ph, r) for r in range(sh)]
  cols = [_transpose_phase_taps(kw, sw, pw, r) for r in range(sw)]
  phase_rows = []
  for taps_h, off_h in rows:
    phase_cols = []
    for taps_w, off_w in cols:
      if not taps_h or not taps_w:
        phase_cols.append(jnp.zeros((n, qh, qw, cout), dtype))
        continue
      sub = kernel[np.array(taps_h)][:, np.array(taps_w)]
      # Phase output q reads x[q + off + t], t < len(taps): zero padding (lo, hi) of x, or a crop when
      # negative. Padding inside the convolution lets every phase share x as its saved residual.
      pads = [(-off, off + q + len(taps) - 1 - size) for off, q, taps, size in
              ((off_h, qh, taps_h, h), (off_w, qw, taps_w, w))]
      xs = x
      for axis, (lo, hi) in zip((1, 2), pads):
        if min(lo, hi) < 0:
          xs = lax.slice_in_dim(xs, max(0, -lo), xs.shape[axis] - max(0, -hi), axis=axis)
      pads = [(max(0, lo), max(0, hi)) for lo, hi in pads]
      phase_cols.append(_conv_fast(xs, sub, pads, (1, 1), (1, 1)))
    phase_rows.append(jnp.stack(phase_cols, axis=3))  # (n, qh, qw, sw, cout)
  y = jnp.stack(phase_rows, axis=2)  # (n, qh, sh, qw, sw, cout)
  return y.reshape(n, qh * sh, qw * sw, cout)[:, :ho, :wo]


def _upsample_phase_taps(k: int, r: int) -> tuple[int, np.ndarray]:
  """Output phase r of a k-tap conv (padding k//2) over a nearest-x2 upsampled signal.

  y[2q + r] = sum_a w[a] u[2q + r + a - k//2], u[t] = x[t // 2], so tap a reads x[q + (r + a - k//2) // 2].
  Returns (first offset d0, matrix M of shape (J, k)) with phase kernel w_r[t] = sum_a M[t, a] w[a]
  reading x[q + d0 + t].
  """
  offsets = [(r + a - k // 2) // 2 for a in range(k)]
  d0 = min(offsets)
  mat = np.zeros((max(offsets) - d0 + 1, k), np.float32)
  for a, d in enumerate(offsets):
    mat[d - d0, a] = 1.0
  return d0, mat


def upsample2x_conv(x: Array, kernel: Array, *, impl: str | None = None) -> Array:
  """`conv2d(nearest_upsample_2x(x), kernel, padding=k // 2)` computed at the low resolution.

  For output phase (r, c) in {0, 1}^2, the k x k kernel over the upsampled map touches only a few
  distinct low-resolution pixels; taps that read the same pixel are summed into one, giving per-phase
  kernels of size 2x2 for k = 3 (2.25x fewer multiply-adds than the 3x3 conv at high resolution). The
  four phase outputs are interleaved. Exact for any odd kernel size (zero padding of the upsampled map
  is zero padding of the low-resolution one).

  Args:
    x: (N, h, w, C_in) low-resolution features.
    kernel: (kh, kw, C_in, C_out), odd kh and kw.
    impl: `'fast'`, `'xla'` (upsample then convolve), or None/`'auto'`.

  Returns:
    (N, 2h, 2w, C_out).
  """
  x, kernel = jnp.asarray(x), jnp.asarray(kernel)
  _check_conv_args(x, kernel)
  kh, kw = kernel.shape[:2]
  if kh % 2 == 0 or kw % 2 == 0:
    raise ValueError(f"kernel: upsample2x_conv needs odd kernel sizes (padding k // 2), got {kernel.shape[:2]}")
  dtype = jnp.result_type(x, kernel)
  x, kernel = x.astype(dtype), kernel.astype(dtype)
  if resolve_impl(impl) == "xla":
    return _xla_conv(nearest_upsample_2x(x), kernel, ((kh // 2,) * 2, (kw // 2,) * 2))
  n, h, w, _ = x.shape
  cout = kernel.shape[-1]
  rows = [_upsample_phase_taps(kh, r) for r in range(2)]
  cols = [_upsample_phase_taps(kw, c) for c in range(2)]
  phase_rows = []
  for d0h, mh in rows:
    phase_cols = []
    for d0w, mw in cols:
      sub = jnp.einsum("ta,ub,abio->tuio", jnp.asarray(mh, dtype), jnp.asarray(mw, dtype), kernel)
      pad = ((-d0h, d0h + mh.shape[0] - 1), (-d0w, d0w + mw.shape[0] - 1))
      phase_cols.append(_conv_fast(x, sub, pad))
    phase_rows.append(jnp.stack(phase_cols, axis=3))  # (n, h, w, 2, cout)
  return jnp.stack(phase_rows, axis=2).reshape(n, 2 * h, 2 * w, cout)


def window_sum(
    x: Array,
    kernel_size: IntPair,
    *,
    strides: IntPair = 1,
    padding: Padding | None = None,
) -> Array:
  """Per-channel sum of `x` over every kh x kw window with zero padding (a depthwise ones-kernel conv).

  This is sum(M) of a partial convolution (Liu et al. 2018, Eq. 1) for a mask shared by the channels,
  times C_in: one `lax.reduce_window` sum, memory-bound and cheap on every backend for the single-channel
  maps it is used on. Binary inputs give small integers, exact in float32 in any summation order.

  Args:
    x: (N, H, W, C).
    kernel_size: int or (kh, kw).
    strides: int or (sh, sw).
    padding: int, (ph, pw) or ((top, bottom), (left, right)); default k // 2 on each side.

  Returns:
    (N, H_out, W_out, C), H_out = (H + top + bottom - kh) // sh + 1.
  """
  x = jnp.asarray(x)
  if x.ndim != 4:
    raise ValueError(f"x: expected (N, H, W, C), got shape {x.shape}")
  kh, kw = _pair(kernel_size, "kernel_size")
  sh, sw = _pair(strides, "strides")
  padding = _padding(((kh // 2,) * 2, (kw // 2,) * 2) if padding is None else padding)
  (pt, pb), (pl, pr) = padding
  h, w = x.shape[1:3]
  if h + pt + pb < kh or w + pl + pr < kw:
    raise ValueError(f"x: spatial size {(h, w)} (+ padding) is smaller than kernel_size {(kh, kw)}")
  # numpy init value: lowers to the reduce_window_sum primitive (differentiable, no generic reducer).
  return lax.reduce_window(x, np.zeros((), x.dtype), lax.add, (1, kh, kw, 1), (1, sh, sw, 1),
                           ((0, 0), (pt, pb), (pl, pr), (0, 0)))


def upsample2x_window_sum(x: Array, kernel_size: IntPair, *, impl: str | None = None) -> Array:
  """`window_sum(nearest_upsample_2x(x), kernel_size)` (padding k // 2) computed at the low resolution.

  Per output phase the k taps over the upsampled map read a few low-resolution pixels with integer
  multiplicities (for k = 3: weights (1, 2) and (2, 1)); the phase sums are separable weighted sums of
  shifted slices, interleaved. Exact for binary (integer-valued) masks in float32.

  Args:
    x: (N, h, w, C) low-resolution map (e.g. a mask).
    kernel_size: int or (kh, kw), odd.
    impl: `'fast'`, `'xla'`, or None/`'auto'`.

  Returns:
    (N, 2h, 2w, C).
  """
  x = jnp.asarray(x)
  if x.ndim != 4:
    raise ValueError(f"x: expected (N, H, W, C), got shape {x.shape}")
  kh, kw = _pair(kernel_size, "kernel_size")
  if kh % 2 == 0 or kw % 2 == 0:
    raise ValueError(f"kernel_size: upsample2x_window_sum needs odd sizes, got {(kh, kw)}")
  if resolve_impl(impl) == "xla":
    return window_sum(nearest_upsample_2x(x), (kh, kw))
  n, h, w, c = x.shape

  def phases(x, k, axis):
    size = x.shape[axis]
    out = []
    for r in range(2):
      d0, mat = _upsample_phase_taps(k, r)
      weights = mat.sum(axis=1)
      pad = [(0, 0)] * 4
      pad[axis] = (-d0, d0 + len(weights) - 1)
      xp = jnp.pad(x, pad)
      total = None
      for t, wt in enumerate(weights):
        piece = lax.slice_in_dim(xp, t, t + size, axis=axis)
        piece = piece if wt == 1 else piece * jnp.asarray(wt, x.dtype)
        total = piece if total is None else total + piece
      out.append(total)
    return jnp.stack(out, axis=axis + 1)

  rows = phases(x, kh, 1)  # (n, h, 2, w, c)
  rows = rows.reshape(n, 2 * h, w, c)
  cols = phases(rows, kw, 2)  # (n, 2h, w, 2, c)
  return cols.reshape(n, 2 * h, 2 * w, c)
