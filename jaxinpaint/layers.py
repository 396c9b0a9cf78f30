"""Partial convolution (Liu et al., ECCV 2018) as a pure function and as Flax linen Modules.

Implements the semantics of NVIDIA's reference `PartialConv2d(multi_channel=True)`
(https://github.com/NVIDIA/partialconv, `models/partialconv2d.py`), i.e. Eq. (1)-(2) of

  G. Liu, F. A. Reda, K. J. Shih, T.-C. Wang, A. Tao, B. Catanzaro,
  "Image Inpainting for Irregular Holes Using Partial Convolutions", ECCV 2018.

Eq. (1):  x' = W^T (X ⊙ M) * sum(1) / sum(M) + b   if sum(M) > 0,   0 otherwise
Eq. (2):  m' = 1                                      if sum(M) > 0,   0 otherwise

where the sums run over the convolution window **and all input channels** (sum(1) = C_in * kh * kw).
Masks are float arrays with **1 = valid (known) pixel, 0 = hole**, and are expected to be binary.

Reference-compatible details:
  * the mask is zero padded, so image borders count as holes ("partial-convolution padding");
  * padding is symmetric, kernel_size // 2 on each side (as `nn.Conv2d(..., padding=k // 2)`), never
    XLA's 'SAME', which pads asymmetrically for stride 2 and would shift every window;
  * the mask branch is under `stop_gradient` (the reference computes it under `torch.no_grad()`);
  * where no window entry is valid the output is exactly 0, bias included.
Deliberate difference: the reference divides by `sum(M) + 1e-8` and clamps the new mask to [0, 1];
we select with `where(sum(M) > 0, ...)` (same values for binary masks, and finite gradients).

Masks may be given three ways (see `partial_conv`): NHW1 shared by all channels (fast path, one
single-channel window sum), NHWC, or a sequence of `(mask_NHW1, num_channels)` groups describing a
channel-wise concatenation of feature maps with different masks (exact U-Net skip connections).

Convolutions and mask window sums go through `jaxinpaint.convs` (exact fast formulations on CPU, XLA's
native ops on accelerators; `impl`/`conv_impl` selects, see `jaxinpaint.convs.resolve_impl`). The decoder
step `upsample_partial_conv` computes the convolution over the upsampled half of its input, and that
half's mask sums, at the low resolution (`convs.upsample2x_conv`, `convs.upsample2x_window_sum`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxinpaint import convs

Array = jax.Array
MaskGroups = Sequence[tuple[Array, int]]
MaskLike = Union[Array, MaskGroups]
IntPair = Union[int, Sequence[int]]

def _pair(value: IntPair, name: str) -> tuple[int, int]:
  if isinstance(value, int):
    pair = (value, value)
  else:
    pair = tuple(int(v) for v in value)
  if len(pair) != 2 or min(pair) < 1:
    raise ValueError(f"{name} must be a positive int or a pair of positive ints, got {value!r}")
  return pair  # type: ignore[return-value]


def _window_sum(count_map: Array, kernel_hw: tuple[int, int], strides: tuple[int, int]) -> Array:
  """Sums an (N, H, W, 1) map over every kh x kw window, zero padded by k // 2 on each side.

  One single-channel window sum (`convs.window_sum`), the cheap replacement for NVIDIA's convolution of
  the mask with a ones kernel. Binary masks give integer sums, exact in float32, hence identical to the
  multi-channel reference whatever the summation order.
  """
  (kh, kw), (sh, sw) = kernel_hw, strides
  return convs.window_sum(count_map, (kh, kw), strides=(sh, sw), padding=(kh // 2, kw // 2))


def _expand_mask(x: Array, mask: MaskLike) -> tuple[Array, Array]:
  """Returns (mask broadcastable to x, per-pixel count of valid channels (N, H, W, 1) float32)."""
  in_channels = x.shape[-1]
  if isinstance(mask, (list, tuple)):
    groups = list(mask)
    if not groups:
      raise ValueError("mask: a sequence of (mask_NHW1, num_channels) groups must not be empty")
    parts, count, total = [], None, 0
    for i, group in enumerate(groups):
      if not (isinstance(group, (list, tuple)) and len(group) == 2):
        raise ValueError(f"mask group {i}: expected a (mask_NHW1, num_channels) pair, got {type(group).__name__}")
      m, channels = group
      m = jnp.asarray(m)
      channels = int(channels)
      if m.ndim != 4 or m.shape[-1] != 1 or m.shape[:3] != x.shape[:3]:
        raise ValueError(f"mask group {i}: expected shape {x.shape[:3] + (1,)} (N, H, W, 1), got {m.shape}")
      if channels < 1:
        raise ValueError(f"mask group {i}: num_channels must be >= 1, got {channels}")
      m = lax.stop_gradient(m)
      parts.append(jnp.broadcast_to(m.astype(x.dtype), x.shape[:3] + (channels,)))
      term = channels * m.astype(jnp.float32)  # exact: small integers
      count = term if count is None else count + term
      total += channels
    if total != in_channels:
      raise ValueError(f"mask groups cover {total} channels but x has {in_channels} channels")
    return jnp.concatenate(parts, axis=-1), count
  mask = lax.stop_gradient(jnp.asarray(mask))
  if mask.ndim != 4 or mask.shape[:3] != x.shape[:3] or mask.shape[-1] not in (1, in_channels):
    raise ValueError(
        f"mask: expected shape {x.shape[:3] + (1,)} (NHW1) or {x.shape} (NHWC) to match x, got {mask.shape}")
  if mask.shape[-1] == 1:
    # Shared by all channels: count = C_in * m, so sum(M) = C_in * winsum(m).
    return mask.astype(x.dtype), in_channels * mask.astype(jnp.float32)
  return mask.astype(x.dtype), jnp.sum(mask.astype(jnp.float32), axis=-1, keepdims=True)


def partial_conv(
    x: Array,
    mask: MaskLike,
    kernel: Array,
    bias: Array | None = None,
    *,
    strides: IntPair = 1,
    impl: str | None = None,
) -> tuple[Array, Array]:
  """Partial convolution, Eq. (1)-(2) of Liu et al. (2018), NVIDIA `PartialConv2d(multi_channel=True)`.

  `y = conv(x * M, W) * sum(1) / sum(M) + b` where the window holds a valid entry, exactly 0 elsewhere;
  `new_mask = 1[sum(M) > 0]`. `sum(1) = C_in * kh * kw`; `sum(M)` counts valid entries over the window
  and all input channels; the mask is zero padded (borders are holes); padding is k // 2 on each side.

  Args:
    x: (N, H, W, C_in) features.
    mask: binary validity mask, 1 = valid, 0 = hole. One of
      * (N, H, W, 1): shared by all channels (fast path: one single-channel window sum times C_in);
      * (N, H, W, C_in): per-channel mask;
      * a sequence of `(mask_NHW1, num_channels)` pairs whose `num_channels` sum to C_in, describing
        `x = concat([x_1, x_2, ...], axis=-1)` where group g has mask `mask_g` shared by its C_g
        channels; `sum(M) = sum_g C_g * winsum(mask_g)` exactly (U-Net skip connections).
      The mask carries no gradient (`stop_gradient`).
    kernel: (kh, kw, C_in, C_out) weights (HWIO; a torch weight `w` ports as `w.permute(2, 3, 1, 0)`).
    bias: optional (C_out,) bias; it is zeroed with the output where no entry was valid.
    strides: int or (sh, sw).
    impl: convolution formulation, `'fast'`, `'xla'` or None/`'auto'` (`jaxinpaint.convs.resolve_impl`).

  Returns:
    `(y, new_mask)`: y of shape (N, H', W', C_out) in x's dtype (promoted with the kernel's), and
    new_mask of shape (N, H', W', 1), float32, with H' = (H + 2 * (kh // 2) - kh) // sh + 1.

  References:
    Liu et al., "Image Inpainting for Irregular Holes Using Partial Convolutions", ECCV 2018, Eq. (1)-(2);
    https://github.com/NVIDIA/partialconv/blob/master/models/partialconv2d.py
  """
  x = jnp.asarray(x)
  kernel = jnp.asarray(kernel)
  if x.ndim != 4:
    raise ValueError(f"x: expected (N, H, W, C) features, got shape {x.shape}")
  if kernel.ndim != 4 or kernel.shape[2] != x.shape[-1]:
    raise ValueError(f"kernel: expected (kh, kw, {x.shape[-1]}, C_out) (HWIO), got shape {kernel.shape}")
  if bias is not None and jnp.shape(bias) != (kernel.shape[-1],):
    raise ValueError(f"bias: expected shape ({kernel.shape[-1]},), got {jnp.shape(bias)}")
  strides = _pair(strides, "strides")
  kh, kw = kernel.shape[:2]
  dtype = jnp.result_type(x, kernel)
  x, kernel = x.astype(dtype), kernel.astype(dtype)
  mask_x, count = _expand_mask(x, mask)

  raw = convs.conv2d(x * mask_x, kernel, strides=strides, padding=(kh // 2, kw // 2), impl=impl)
  valid_count = _window_sum(count, (kh, kw), strides)  # sum(M), exact small integers
  return _pconv_output(raw, valid_count, x.shape[-1] * kh * kw, bias)


def _pconv_output(raw: Array, valid_count: Array, window_size: int, bias: Array | None,
                  dtype=None) -> tuple[Array, Array]:
  """Eq. (1)-(2) from the raw convolution W^T (X*M) and sum(M): rescale, add bias, zero empty windows.

  The mask branch (ratio, new mask) is under `stop_gradient` and computed once in the forward pass; the
  backward pass only reuses the saved ratio. The renormalisation and bias run in float32 whatever the
  convolution's dtype (a bf16 ratio would be off by up to 2^-9); y is returned in `dtype` (default: raw's).
  """
  has_valid = valid_count > 0
  # Guarded division: a safe denominator keeps both the value and (stopped) gradients finite.
  ratio = jnp.where(has_valid, window_size / jnp.where(has_valid, valid_count, 1.0), 0.0)
  new_mask = has_valid.astype(jnp.float32)
  ratio, new_mask = lax.stop_gradient(ratio), lax.stop_gradient(new_mask)

  y = raw.astype(jnp.float32) * ratio
  if bias is not None:
    y = y + jnp.asarray(bias, jnp.float32) * new_mask
  return y.astype(raw.dtype if dtype is None else dtype), new_mask


def nearest_upsample_2x(x: Array) -> Array:
  """Nearest-neighbour x2 upsampling of an NHWC array (torch `F.interpolate(scale_factor=2)`)."""
  return convs.nearest_upsample_2x(x)


def upsample_partial_conv(
    x: Array,
    mask: Array,
    kernel: Array,
    bias: Array | None = None,
    *,
    skip: Array | None = None,
    skip_mask: Array | None = None,
    impl: str | None = None,
) -> tuple[Array, Array]:
  """One PConv U-Net decoder step: nearest x2 upsampling of `x` and `mask`, channel concatenation with
  `skip` (whose mask is `skip_mask`), then a stride-1 partial convolution (Liu et al. 2018, Sec. 3.3).

  `kernel`'s input channels are ordered `[upsampled x, skip]`. The masks are passed to `partial_conv`
  as channel groups, so the valid counts are exact.

  With the 'fast' formulation (CPU default; NHW1 masks, odd kernel) nothing is materialised at the high
  resolution for the upsampled half: since up(x) * up(m) = up(x * m) and a convolution over a
  concatenation is the sum of the convolutions over its parts,
  `raw = upsample2x_conv(x * m, W_x) + conv2d(skip * skip_m, W_skip)` and
  `sum(M) = C_x * upsample2x_window_sum(m) + C_skip * window_sum(skip_m)` -- the same numbers as the
  reference formulation (upsample, concatenate, `partial_conv`), which 'xla' runs.

  Args:
    x: (N, h, w, C_x) deeper features; mask: (N, h, w, 1) (or (N, h, w, C_x)).
    kernel: (kh, kw, C_x + C_skip, C_out); bias: optional (C_out,).
    skip: optional (N, 2h, 2w, C_skip) encoder features; skip_mask: (N, 2h, 2w, 1), required with skip.
    impl: `'fast'`, `'xla'` or None/`'auto'` (`jaxinpaint.convs.resolve_impl`).

  Returns:
    `(y, new_mask)` at resolution (2h, 2w), as `partial_conv`.
  """
  x, mask, kernel = jnp.asarray(x), jnp.asarray(mask), jnp.asarray(kernel)
  if x.ndim != 4:
    raise ValueError(f"x: expected (N, h, w, C) features, got shape {x.shape}")
  if skip is not None:
    skip = jnp.asarray(skip)
    if skip_mask is None:
      raise ValueError("skip_mask: required when skip is given")
    skip_mask = jnp.asarray(skip_mask)
    expected = (x.shape[0], 2 * x.shape[1], 2 * x.shape[2])
    if skip.ndim != 4 or skip.shape[:3] != expected:
      raise ValueError(f"skip: expected spatial shape {expected} (twice x's), got {skip.shape}")
  fusable = (
      convs.resolve_impl(impl) == "fast" and kernel.ndim == 4 and kernel.shape[0] % 2 == 1
      and kernel.shape[1] % 2 == 1 and mask.ndim == 4 and mask.shape == x.shape[:3] + (1,)
      and (skip is None or (skip_mask.ndim == 4 and skip_mask.shape == skip.shape[:3] + (1,))))
  if not fusable:
    up_x, up_mask = nearest_upsample_2x(x), nearest_upsample_2x(mask)
    if skip is None:
      return partial_conv(up_x, up_mask, kernel, bias, impl=impl)
    dtype = jnp.promote_types(up_x.dtype, skip.dtype)
    features = jnp.concatenate([up_x.astype(dtype), skip.astype(dtype)], axis=-1)
    groups = [(up_mask, up_x.shape[-1]), (skip_mask, skip.shape[-1])]
    return partial_conv(features, groups, kernel, bias, impl=impl)

  cx, cs = x.shape[-1], (0 if skip is None else skip.shape[-1])
  if kernel.shape[2] != cx + cs:
    raise ValueError(f"kernel: expected (kh, kw, {cx + cs}, C_out) (HWIO) for {cx} + {cs} input channels, "
                     f"got shape {kernel.shape}")
  if bias is not None and jnp.shape(bias) != (kernel.shape[-1],):
    raise ValueError(f"bias: expected shape ({kernel.shape[-1]},), got {jnp.shape(bias)}")
  kh, kw = kernel.shape[:2]
  dtype = jnp.result_type(x, kernel) if skip is None else jnp.result_type(x, skip, kernel)
  x, kernel = x.astype(dtype), kernel.astype(dtype)
  m = lax.stop_gradient(mask).astype(jnp.float32)
  raw = convs.upsample2x_conv(x * m.astype(dtype), kernel[:, :, :cx], impl="fast")
  count = cx * convs.upsample2x_window_sum(m, (kh, kw), impl="fast")
  if skip is not None:
    sm = lax.stop_gradient(skip_mask).astype(jnp.float32)
    skip_raw = convs.conv2d(skip.astype(dtype) * sm.astype(dtype), kernel[:, :, cx:],
                            padding=(kh // 2, kw // 2), impl="fast")
    # The two halves' sum in float32 (one rounding to a low-precision dtype at the end, in _pconv_output).
    raw = raw.astype(jnp.float32) + skip_raw.astype(jnp.float32)
    count = count + cs * _window_sum(sm, (kh, kw), (1, 1))
  return _pconv_output(raw, count, (cx + cs) * kh * kw, bias, dtype)


class PartialConv(nn.Module):
  """Partial convolution layer: Eq. (1)-(2) of Liu et al. (2018), NVIDIA `PartialConv2d(multi_channel=True)`.

  `y, new_mask = PartialConv(features, kernel_size, strides)(x, mask)`; see `partial_conv` for the mask
  forms (NHW1, NHWC, or channel groups), padding and the exact semantics.

  Attributes:
    features: output channels C_out.
    kernel_size: int or (kh, kw); odd sizes give the reference's symmetric k // 2 padding.
    strides: int or (sh, sw).
    use_bias: add a bias (zeroed where no input entry was valid).
    dtype: computation dtype of the convolution and the returned features (None: inferred from inputs and
      params); the mask sums, the renormalisation by sum(1)/sum(M) and the bias are float32 whatever it is.
    param_dtype: parameter dtype.
    conv_impl: convolution formulation, `'fast'`, `'xla'` or None (`jaxinpaint.convs.resolve_impl`).
    kernel_init, bias_init: initialisers; params are `kernel` (kh, kw, C_in, C_out) and `bias` (C_out,).
  """
  features: int
  kernel_size: IntPair
  strides: IntPair = 1
  use_bias: bool = True
  dtype: Any = None
  param_dtype: Any = jnp.float32
  conv_impl: str | None = None
  kernel_init: Any = nn.initializers.lecun_normal()
  bias_init: Any = nn.initializers.zeros_init()

  def _kernel_and_bias(self, in_features: int) -> tuple[Array, Array | None]:
    kh, kw = _pair(self.kernel_size, "kernel_size")
    kernel = self.param("kernel", self.kernel_init, (kh, kw, in_features, self.features), self.param_dtype)
    bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
    return kernel, bias

  def _cast(self, *arrays):
    """Features and kernel to the computation dtype (the bias joins the float32 renormalisation)."""
    if self.dtype is None:
      return arrays
    return tuple(None if a is None else jnp.asarray(a, self.dtype) for a in arrays)

  @nn.compact
  def __call__(self, x: Array, mask: MaskLike) -> tuple[Array, Array]:
    """Returns `(y, new_mask)` for NHWC `x` and a mask (1 = valid) as in `partial_conv`."""
    kernel, bias = self._kernel_and_bias(jnp.shape(x)[-1])
    x, kernel = self._cast(x, kernel)
    return partial_conv(x, mask, kernel, bias, strides=self.strides, impl=self.conv_impl)


class UpsamplePartialConv(PartialConv):
  """Decoder layer of the PConv U-Net: `upsample_partial_conv` with PartialConv's parameters.

  `y, new_mask = UpsamplePartialConv(features, kernel_size)(x, mask, skip, skip_mask)`: nearest x2
  upsampling of (x, mask), concatenation with (skip, skip_mask), stride-1 partial convolution.
  Params are named and shaped as `PartialConv` on the concatenated input, so checkpoints are shared.
  """

  @nn.compact
  def __call__(self, x: Array, mask: Array, skip: Array | None = None,  # type: ignore[override]
               skip_mask: Array | None = None) -> tuple[Array, Array]:
    if _pair(self.strides, "strides") != (1, 1):
      raise ValueError(f"strides: UpsamplePartialConv is stride 1, got {self.strides!r}")
    in_features = jnp.shape(x)[-1] + (0 if skip is None else jnp.shape(skip)[-1])
    kernel, bias = self._kernel_and_bias(in_features)
    x, skip, kernel = self._cast(x, skip, kernel)
    return upsample_partial_conv(x, mask, kernel, bias, skip=skip, skip_mask=skip_mask, impl=self.conv_impl)
