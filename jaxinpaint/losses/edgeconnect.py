"""The image-completion terms of EdgeConnect [Nazeri2019] besides the GAN terms (`gan`): L1 over the
mean hole fraction, and the VGG-19 perceptual and style losses.

References:
  [Nazeri2019] K. Nazeri, E. Ng, T. Joseph, F. Z. Qureshi, M. Ebrahimi, "EdgeConnect: Generative Image
  Inpainting with Adversarial Edge Learning", ICCV Workshops 2019, arXiv:1901.00212; reference code
  knazeri/edge-connect, ``src/loss.py`` and ``src/models.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxinpaint.losses._common import (Array, ArrayLike, FeatureFn, as_float, batched_features,
                                       check_images, check_mask, gram_matrix, l1_mean, paired_layers)

# knazeri/edge-connect src/loss.py: PerceptualLoss and StyleLoss layers of VGG-19.
EDGECONNECT_PERCEPTUAL_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
EDGECONNECT_STYLE_LAYERS = ("relu2_2", "relu3_4", "relu4_4", "relu5_2")


def edgeconnect_l1(output: ArrayLike, target: ArrayLike, mask: ArrayLike) -> Array:
  r"""EdgeConnect's completion L1: mean |I_out - I_gt| divided by the mean hole fraction.

  .. math:: L_{\ell_1} = \frac{\operatorname{mean}|I_{out} - I_{gt}|}{\operatorname{mean}(1 - M)}

  over the whole raw output (not the composite). The reference's masks are 1 = hole, so its
  ``torch.mean(masks)`` is our ``mean(1 - mask)`` (over the mask tensor, i.e. N*H*W for an (N,H,W,1)
  mask). When a batch has no hole at all the reference divides by zero; here the denominator is
  then 1 (plain L1 mean), so the loss stays finite.

  Args:
    output: I_out, (N, H, W, C).
    target: I_gt, same shape.
    mask: ours, 1 = valid, 0 = hole; (N, H, W, 1) or (N, H, W, C).

  Returns:
    Scalar loss (the reference multiplies it by L1_LOSS_WEIGHT = 1).

  References:
    knazeri/edge-connect ``src/models.py`` ``InpaintingModel.process`` (``gen_l1_loss``).
  """
  check_images(output, target, mask)
  hole_fraction = jnp.mean(1.0 - as_float(mask))
  denom = jnp.where(hole_fraction > 0, hole_fraction, 1.0)
  return l1_mean(output, target) / denom


def _check_feature_pair(output: ArrayLike, target: ArrayLike, feature_fn: Any) -> None:
  check_images(output, target)
  if not callable(feature_fn):
    raise ValueError(f"`feature_fn` must be a callable x -> dict of feature maps; got {type(feature_fn)}.")


def edgeconnect_perceptual(output: ArrayLike, target: ArrayLike, *, feature_fn: FeatureFn,
                           weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0, 1.0),
                           layers: Sequence[str] = EDGECONNECT_PERCEPTUAL_LAYERS) -> Array:
  r"""EdgeConnect's VGG-19 perceptual (content) loss.

  .. math:: L_{perc} = \sum_i w_i \frac{1}{N_i} \| \phi_i(I_{out}) - \phi_i(I_{gt}) \|_1

  on relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (L1 mean of each, weighted sum; w = 1). `feature_fn` is
  called on the output and on stop_gradient(target) separately (no backward pass for the target).
  Note: the reference feeds [0, 1] images to torchvision's VGG-19 without ImageNet normalisation; that
  choice belongs to `feature_fn`.

  Args:
    output: I_out (raw generator output), (N, H, W, C).
    target: I_gt, same shape.
    feature_fn: ``x -> dict`` with at least the `layers` keys (VGG-19).
    weights: one weight per layer.
    layers: feature names (default EdgeConnect's).

  Returns:
    Scalar loss (the reference multiplies it by CONTENT_LOSS_WEIGHT = 0.1).

  References:
    [Nazeri2019] L_perc; knazeri/edge-connect ``src/loss.py`` ``PerceptualLoss``.
  """
  _check_feature_pair(output, target, feature_fn)
  layers, weights = tuple(layers), tuple(weights)
  if len(weights) != len(layers):
    raise ValueError(f"`weights` needs one weight per layer {layers}; got {len(weights)} weights.")
  f_out, f_gt = batched_features(feature_fn, [as_float(output)], "edgeconnect_perceptual",
                                  constant=[as_float(target)])
  total = jnp.zeros((), jnp.float32)
  for w, (x, y) in zip(weights, paired_layers(f_out, f_gt, layers, ("feature_fn(output)",
                                                                    "feature_fn(target)"))):
    total = total + w * l1_mean(x, y)
  return total


def edgeconnect_style(output: ArrayLike, target: ArrayLike, *, feature_fn: FeatureFn,
                      mask: ArrayLike | None = None,
                      layers: Sequence[str] = EDGECONNECT_STYLE_LAYERS) -> Array:
  r"""EdgeConnect's VGG-19 style loss.

  .. math:: L_{style} = \sum_j \frac{1}{C_j^2} \| G_j(x) - G_j(y) \|_1,
            \quad G_j(x) = \frac{\phi_j(x)^\top \phi_j(x)}{C_j H_j W_j}

  on relu2_2, relu3_4, relu4_4, relu5_2: the L1 mean over (N, C_j, C_j) of the Gram differences, summed
  over layers, with EdgeConnect's Gram normalisation f f^T / (h*w*ch) (= `gram_matrix`).

  The reference evaluates it on the *hole-masked* images, ``style_loss(outputs * masks, images * masks)``
  with its masks 1 = hole. Pass our `mask` (1 = valid) to get exactly that: x = output * (1 - mask),
  y = target * (1 - mask). Without `mask` the images are used as given. `feature_fn` is called on x and
  on stop_gradient(y) separately (no backward pass for the target).

  Args:
    output: I_out (raw generator output), (N, H, W, C).
    target: I_gt, same shape.
    feature_fn: ``x -> dict`` with at least the `layers` keys (VGG-19).
    mask: optional, ours (1 = valid, 0 = hole), (N, H, W, 1) or (N, H, W, C).
    layers: feature names (default EdgeConnect's).

  Returns:
    Scalar loss (the reference multiplies it by STYLE_LOSS_WEIGHT = 250).

  References:
    [Nazeri2019] L_style; knazeri/edge-connect ``src/loss.py`` ``StyleLoss`` and ``src/models.py``
    ``InpaintingModel.process``.
  """
  _check_feature_pair(output, target, feature_fn)
  x, y = as_float(output), as_float(target)
  if mask is not None:
    check_mask(mask, np.shape(output))
    hole = 1.0 - as_float(mask)
    x, y = x * hole, y * hole
  f_out, f_gt = batched_features(feature_fn, [x], "edgeconnect_style", constant=[y])
  total = jnp.zeros((), jnp.float32)
  for a, b in paired_layers(f_out, f_gt, tuple(layers), ("feature_fn(output)", "feature_fn(target)")):
    total = total + l1_mean(gram_matrix(a), gram_matrix(b))
  return total
