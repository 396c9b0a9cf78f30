"""The PConv U-Net of Liu et al., "Image Inpainting for Irregular Holes Using Partial Convolutions" (ECCV 2018).

Architecture (paper, Sec. 3.3 and the supplementary layer table), for `num_levels = L` (8 at 512x512):
  * encoder PConv1..PConvL (`enc1..encL`): stride-2 partial convolutions with kernels 7,5,5,3,3,3,3,3 and
    64,128,256,512,512,512,512,512 channels; BatchNorm on all but PConv1; ReLU;
  * decoder PConv(L+1)..PConv(2L) (`dec{L+1}..dec{2L}`): nearest x2 upsampling of the features **and** the
    mask, channel concatenation with the matching encoder output and its mask (dec{L+i} with enc{L-i};
    the last decoder layer with the input image and input mask), 3x3 stride-1 partial convolution whose
    output channels mirror the encoder (dec{L+i} has the channels of enc{L-i}, the last one the image's);
    BatchNorm on all but the last; LeakyReLU(0.2); no activation on the output.

Masks are 1 = valid, 0 = hole. Skip concatenations pass the masks to the partial convolution as channel
groups, so each decoder layer counts valid entries exactly. Weights use He initialisation (the paper's
reference [11]). Convolutions followed by BatchNorm carry no bias (BN's offset replaces it, as in the
common PyTorch reproduction); enc1 and the last decoder layer have a bias. BatchNorm matches torch's
`BatchNorm2d(momentum=0.1, eps=1e-5)` except that flax updates the running variance with the biased batch
variance (torch uses the unbiased one); ported running statistics are used as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxinpaint.layers import PartialConv, UpsamplePartialConv

Array = jax.Array

PAPER_FEATURES = (64, 128, 256, 512, 512, 512, 512, 512)
PAPER_KERNEL_SIZES = (7, 5, 5, 3, 3, 3, 3, 3)
# torch's BatchNorm2d(momentum=0.1) updates running = 0.9 * running + 0.1 * batch, i.e. flax momentum 0.9.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
LEAKY_SLOPE = 0.2


def _batch_norm(use_running_average: bool, dtype: Any) -> nn.BatchNorm:
  return nn.BatchNorm(use_running_average=use_running_average, momentum=BN_MOMENTUM,
                      epsilon=BN_EPSILON, dtype=dtype, name="bn")


class EncoderBlock(nn.Module):
  """PConv U-Net encoder layer: stride-2 `PartialConv` (`pconv`), optional BatchNorm (`bn`), ReLU."""
  features: int
  kernel_size: int
  use_bn: bool = True
  dtype: Any = jnp.float32
  conv_impl: str | None = None

  @nn.compact
  def __call__(self, x: Array, mask: Array, *, use_running_average: bool) -> tuple[Array, Array]:
    x, mask = PartialConv(self.features, self.kernel_size, strides=2, use_bias=not self.use_bn,
                          dtype=self.dtype, conv_impl=self.conv_impl, kernel_init=nn.initializers.he_normal(),
                          name="pconv")(x, mask)
    if self.use_bn:
      x = _batch_norm(use_running_average, self.dtype)(x)
    return nn.relu(x), mask


class DecoderBlock(nn.Module):
  """PConv U-Net decoder layer: `UpsamplePartialConv` (`pconv`: nearest x2 upsampling of features and mask,
  concatenation with the skip features/mask, 3x3 partial convolution), optional BatchNorm (`bn`) and
  LeakyReLU(0.2); the last layer (`last=True`) has neither BN nor activation."""
  features: int
  kernel_size: int = 3
  last: bool = False
  dtype: Any = jnp.float32
  conv_impl: str | None = None

  @nn.compact
  def __call__(self, x: Array, mask: Array, skip: Array, skip_mask: Array, *,
               use_running_average: bool) -> tuple[Array, Array]:
    x, mask = UpsamplePartialConv(self.features, self.kernel_size, use_bias=self.last, dtype=self.dtype,
                                  conv_impl=self.conv_impl, kernel_init=nn.initializers.he_normal(), name="pconv")(
                                      x, mask, skip, skip_mask)
    if self.last:
      return x, mask
    x = _batch_norm(use_running_average, self.dtype)(x)
    return nn.leaky_relu(x, LEAKY_SLOPE), mask


class PConvUNet(nn.Module):
  """The PConv U-Net of Liu et al. (2018); see the module docstring for the layer table.

  `out = PConvUNet(num_levels=7).apply(variables, image, mask, train=False)` with NHWC `image` and
  NHW1 `mask` (1 = valid, 0 = hole); BatchNorm statistics live in the `batch_stats` collection (pass
  `mutable=['batch_stats']` when `train=True`). The output has the image's channels and no activation.

  Attributes:
    num_levels: encoder depth L (8 for 512x512 as in the paper, 7 for 256x256, fewer for tiny tests);
      H and W must be divisible by 2**L (`required_multiple`).
    features: encoder channels; the first `num_levels` are used (smaller widths allowed for tests).
    kernel_sizes: encoder kernel sizes; the first `num_levels` are used. Decoder kernels are 3x3.
    freeze_encoder_bn: fine-tuning phase of the paper: encoder BN uses its running averages even when
      `train=True` (decoder BN still uses and updates batch statistics).
    dtype: computation dtype of the convolutions and activations, e.g. `jnp.bfloat16` (on CPUs with bf16
      instructions XLA:CPU runs bf16 convolutions through oneDNN, see `jaxinpaint.xla_cpu`). Parameters,
      BatchNorm statistics and normalisation arithmetic, the partial convolutions' mask sums,
      renormalisation and biases, and the returned output are float32.
    conv_impl: convolution formulation for every layer, `'fast'`, `'xla'` or None (default: the
      `JAXINPAINT_CONV_IMPL` environment variable, else 'fast' on CPU and 'xla' on accelerators; see
      `jaxinpaint.convs`). The decoder's 'fast' path convolves the upsampled features at low resolution.
  """
  num_levels: int = 7
  features: Sequence[int] = PAPER_FEATURES
  kernel_sizes: Sequence[int] = PAPER_KERNEL_SIZES
  freeze_encoder_bn: bool = False
  dtype: Any = jnp.float32
  conv_impl: str | None = None

  @property
  def required_multiple(self) -> int:
    """H and W of the input must be multiples of this (2**num_levels)."""
    return 2 ** self.num_levels

  def _check_config(self) -> None:
    if not isinstance(self.num_levels, int) or self.num_levels < 1:
      raise ValueError(f"num_levels must be a positive int, got {self.num_levels!r}")
    for name, values in (("features", self.features), ("kernel_sizes", self.kernel_sizes)):
      if len(values) < self.num_levels:
        raise ValueError(f"{name} has {len(values)} entries but num_levels={self.num_levels} needs at least that many")

  @nn.compact
  def __call__(self, image: Array, mask: Array, train: bool = False) -> Array:
    self._check_config()
    if image.ndim != 4:
      raise ValueError(f"image: expected (N, H, W, C), got shape {image.shape}")
    if mask.ndim != 4 or mask.shape != image.shape[:3] + (1,):
      raise ValueError(f"mask: expected shape {image.shape[:3] + (1,)} (N, H, W, 1; 1 = valid), got {mask.shape}")
    height, width = image.shape[1:3]
    multiple = self.required_multiple
    if height % multiple or width % multiple:
      raise ValueError(
          f"image H={height}, W={width} must both be divisible by 2**num_levels = {multiple} "
          f"(num_levels={self.num_levels})")

    levels = self.num_levels
    features = tuple(self.features[:levels])
    kernel_sizes = tuple(self.kernel_sizes[:levels])
    x, m = image.astype(self.dtype), mask.astype(jnp.float32)

    # Encoder. skips[i] is the input of enc{i+1}: skips[0] = (image, mask).
    skips = []
    for i in range(levels):
      skips.append((x, m))
      x, m = EncoderBlock(features[i], kernel_sizes[i], use_bn=i > 0, dtype=self.dtype, conv_impl=self.conv_impl,
                          name=f"enc{i + 1}")(
          x, m, use_running_average=(not train) or self.freeze_encoder_bn)

    # Decoder: dec{L+j} upsamples and concatenates with enc{L-j}'s output (the input for the last layer)
    # and outputs that many channels.
    for j in range(1, levels + 1):
      skip_x, skip_m = skips[levels - j]
      x, m = DecoderBlock(skip_x.shape[-1], 3, last=j == levels, dtype=self.dtype, conv_impl=self.conv_impl,
                          name=f"dec{levels + j}")(
          x, m, skip_x, skip_m, use_running_average=not train)
    return x.astype(jnp.float32)
