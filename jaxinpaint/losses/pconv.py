"""The loss of Partial Convolutions [Liu2018]: L_valid, L_hole, L_perceptual, L_style_out/comp, L_tv.

References:
  [Liu2018] G. Liu, F. A. Reda, K. J. Shih, T.-C. Wang, A. Tao, B. Catanzaro, "Image Inpainting for
  Irregular Holes Using Partial Convolutions", ECCV 2018, arXiv:1804.07723 (updated arXiv version with
  the errata: all L1 terms are size-averaged), section "Loss Functions".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxinpaint.losses._common import (Array, ArrayLike, FeatureFn, Features, as_float, batched_features,
                                       check_images, check_mask, gram_matrix, l1_mean, paired_layers)
from jaxinpaint.losses.ssim import dssim

# [Liu2018]: VGG-16 pool1, pool2, pool3.
PCONV_FEATURE_LAYERS = ("pool1", "pool2", "pool3")


def composite(output: ArrayLike, target: ArrayLike, mask: ArrayLike) -> Array:
  r"""The composite image I_comp of [Liu2018]: the raw output with non-hole pixels set to ground truth.

  .. math:: I_{comp} = M \odot I_{gt} + (1 - M) \odot I_{out}

  Args:
    output: network prediction I_out, (N, H, W, C).
    target: ground truth I_gt, same shape.
    mask: M, 1 = valid, 0 = hole; (N, H, W, 1) or (N, H, W, C).

  Returns:
    I_comp with the shape of `output`. Gradients reach `output` only through the hole pixels.

  References:
    [Liu2018], definition of I_comp in the loss-functions section.
  """
  check_images(output, target, mask)
  m = as_float(mask)
  return m * as_float(target) + (1.0 - m) * as_float(output)


def l1_hole(output: ArrayLike, target: ArrayLike, mask: ArrayLike) -> Array:
  r"""Per-pixel loss on the hole, size-averaged over all elements (the errata of [Liu2018]).

  .. math:: L_{hole} = \frac{1}{N_{I_{gt}}} \| (1 - M) \odot (I_{out} - I_{gt}) \|_1,
            \quad N_{I_{gt}} = C H W

  averaged over the batch, i.e. the mean over all N*C*H*W elements -- *not* divided by the hole area.

  Args:
    output: I_out, (N, H, W, C).
    target: I_gt, same shape.
    mask: M, 1 = valid, 0 = hole; (N, H, W, 1) (broadcast over channels) or (N, H, W, C).

  Returns:
    Scalar loss.

  References:
    [Liu2018] L_hole, with the errata (size-averaged L1).
  """
  check_images(output, target, mask)
  return _weighted_l1(output, target, 1.0 - as_float(mask))


def l1_valid(output: ArrayLike, target: ArrayLike, mask: ArrayLike) -> Array:
  r"""Per-pixel loss on the valid pixels, size-averaged over all elements (the errata of [Liu2018]).

  .. math:: L_{valid} = \frac{1}{N_{I_{gt}}} \| M \odot (I_{out} - I_{gt}) \|_1, \quad N_{I_{gt}} = C H W

  averaged over the batch, i.e. the mean over all N*C*H*W elements.

  Args:
    output: I_out, (N, H, W, C).
    target: I_gt, same shape.
    mask: M, 1 = valid, 0 = hole; (N, H, W, 1) or (N, H, W, C).

  Returns:
    Scalar loss.

  References:
    [Liu2018] L_valid, with the errata (size-averaged L1).
  """
  check_images(output, target, mask)
  return _weighted_l1(output, target, as_float(mask))


def _weighted_l1(output: ArrayLike, target: ArrayLike, weight: Array) -> Array:
  """mean(weight * |output - target|) over all N*H*W*C elements (a (N, H, W, 1) weight broadcasts)."""
  return jnp.mean(weight * jnp.abs(as_float(output) - as_float(target)))


def perceptual(out_features: Features, comp_features: Features, gt_features: Features,
               *, layers: Sequence[str] | None = None) -> Array:
  r"""Perceptual loss of [Liu2018] on I_out and I_comp.

  .. math:: L_{perceptual} = \sum_p \frac{\|\Psi_p^{I_{out}} - \Psi_p^{I_{gt}}\|_1}{N_{\Psi_p^{I_{gt}}}}
            + \sum_p \frac{\|\Psi_p^{I_{comp}} - \Psi_p^{I_{gt}}\|_1}{N_{\Psi_p^{I_{gt}}}}

  where N_Psi = C_p H_p W_p; averaged over the batch, so each layer contributes the mean |difference| over
  all its N*H_p*W_p*C_p elements (torch ``L1Loss()``, as in the reference implementations).

  Args:
    out_features: feature maps of I_out: dict name -> (N, h, w, c), or a list.
    comp_features: feature maps of I_comp, same structure.
    gt_features: feature maps of I_gt, same structure.
    layers: names to use when the features are dicts; default: every key of `gt_features`, in order.

  Returns:
    Scalar loss (sum over layers, both the I_out and the I_comp term).

  References:
    [Liu2018] L_perceptual (pool1, pool2, pool3 of an ImageNet VGG-16).
  """
  if layers is None and isinstance(gt_features, Mapping):
    layers = tuple(gt_features.keys())
  total = jnp.zeros((), jnp.float32)
  for name, feats in (("out_features", out_features), ("comp_features", comp_features)):
    for x, y in paired_layers(feats, gt_features, layers, (name, "gt_features")):
      total = total + l1_mean(x, y)
  return total


def style(features: Features, gt_features: Features, *, layers: Sequence[str] | None = None) -> Array:
  r"""Style loss of [Liu2018] for one image (call it once with I_out and once with I_comp).

  .. math:: L_{style} = \sum_p \frac{1}{C_p C_p}
            \left\| K_p \left( (\Psi_p^{I})^\top \Psi_p^{I} - (\Psi_p^{I_{gt}})^\top \Psi_p^{I_{gt}}
            \right) \right\|_1, \quad K_p = \frac{1}{C_p H_p W_p}

  Normalisation: the 1/(C_p C_p) of the paper over the C_p x C_p entries of the Gram difference is exactly
  the *mean* of its absolute entries, and we also average over the batch; so each layer contributes
  ``mean_{n,c,d} |gram_matrix(f)[n,c,d] - gram_matrix(f_gt)[n,c,d]|`` with ``gram_matrix`` normalised by
  C_p H_p W_p. This equals torch ``L1Loss()(gram(x), gram(y))`` of NVIDIA's and EdgeConnect's code.

  Args:
    features: feature maps of I_out (for L_style_out) or I_comp (for L_style_comp): dict name ->
      (N, h, w, c), or a list.
    gt_features: feature maps of I_gt, same structure.
    layers: names to use when the features are dicts; default: every key of `gt_features`, in order.

  Returns:
    Scalar loss (sum over layers).

  References:
    [Liu2018] L_style_out and L_style_comp.
  """
  if layers is None and isinstance(gt_features, Mapping):
    layers = tuple(gt_features.keys())
  total = jnp.zeros((), jnp.float32)
  for x, y in paired_layers(features, gt_features, layers, ("features", "gt_features")):
    total = total + l1_mean(gram_matrix(x), gram_matrix(y))
  return total


def _tv_region(mask: Array) -> Array:
  """P of [Liu2018]: the hole region dilated by one pixel with a 3x3 square (8-neighbourhood)."""
  hole = (mask < 0.5).astype(jnp.float32)
  # 3x3 max filter with -inf padding: the image border neither adds nor removes region.
  dilated = jax.lax.reduce_window(hole, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 1, 1, 1), "SAME")
  return dilated > 0


def total_variation(comp: ArrayLike, mask: ArrayLike) -> Array:
  r"""Total-variation smoothing penalty of [Liu2018] on I_comp, restricted to the dilated hole region P.

  .. math:: L_{tv} = \sum_{(i,j) \in P, (i,j+1) \in P} \frac{\|I_{comp}^{i,j+1} - I_{comp}^{i,j}\|_1}
                                                            {N_{I_{comp}}}
            + \sum_{(i,j) \in P, (i+1,j) \in P} \frac{\|I_{comp}^{i+1,j} - I_{comp}^{i,j}\|_1}{N_{I_{comp}}}

  Precisely:
    * hole pixels are those with ``mask < 0.5`` (masks are binary; 1 = valid);
    * P = the 1-pixel dilation of the hole region with a 3x3 square structuring element (a pixel is in P
      when it or any of its 8 neighbours is a hole pixel), clipped to the image;
    * a horizontal pair ((i,j), (i,j+1)) counts only when *both* pixels are in P, likewise a vertical
      pair ((i,j), (i+1,j)); each counted pair contributes sum_c |difference| over the channels;
    * N_Icomp = C H W (the number of elements of one I_comp), and the result is averaged over the batch,
      i.e. the sum over all counted pairs, channels and images divided by N*C*H*W.
  With a mask of shape (N, H, W, C), P is computed per channel.

  Note: some re-implementations (e.g. naoto0804/pytorch-inpainting-with-partial-conv) apply TV to the whole
  image with a mean per direction; this follows the paper's region P and normaliser instead.

  Args:
    comp: I_comp, (N, H, W, C) (see `composite`).
    mask: 1 = valid, 0 = hole; (N, H, W, 1) or (N, H, W, C). Carries no gradient.

  Returns:
    Scalar loss.

  References:
    [Liu2018] L_tv.
  """
  shape = np.shape(comp)
  if len(shape) != 4:
    raise ValueError(f"`comp` must be an NHWC batch (rank 4); got shape {shape}.")
  check_mask(mask, shape)
  comp = as_float(comp)
  p = jax.lax.stop_gradient(_tv_region(as_float(mask)))
  pair_h = (p[:, :, :-1, :] & p[:, :, 1:, :]).astype(comp.dtype)
  pair_v = (p[:, :-1, :, :] & p[:, 1:, :, :]).astype(comp.dtype)
  dh = jnp.abs(comp[:, :, 1:, :] - comp[:, :, :-1, :])
  dv = jnp.abs(comp[:, 1:, :, :] - comp[:, :-1, :, :])
  return (jnp.sum(pair_h * dh) + jnp.sum(pair_v * dv)) / comp.size


def pconv_loss(output: ArrayLike, target: ArrayLike, mask: ArrayLike, *,
               feature_fn: FeatureFn | None = None,
               valid_weight: float = 1.0,
               hole_weight: float = 6.0,
               perceptual_weight: float = 0.05,
               style_weight: float = 120.0,
               tv_weight: float = 0.1,
               ssim_weight: float = 0.0,
               mse_weight: float = 0.0,
               feature_layers: Sequence[str] = PCONV_FEATURE_LAYERS) -> tuple[Array, dict[str, Array]]:
  r"""The total loss of [Liu2018].

  .. math:: L_{total} = L_{valid} + 6 L_{hole} + 0.05 L_{perceptual}
            + 120 (L_{style_{out}} + L_{style_{comp}}) + 0.1 L_{tv}

  with I_comp = `composite`(output, target, mask). `feature_fn` is called twice: on the batch
  concatenation [I_out, I_comp] (2N images) and on stop_gradient(I_gt) (N images, no backward pass); since it
  must treat batch elements independently, each term equals the one computed from three separate calls.

  Args:
    output: I_out, (N, H, W, C), in the range `feature_fn` expects ([0, 1] for this package's VGG).
    target: I_gt, same shape.
    mask: 1 = valid, 0 = hole; (N, H, W, 1) or (N, H, W, C).
    feature_fn: ``x -> dict[name, (n, h, w, c)]``, e.g. an ImageNet VGG-16 with pool1..pool3; ``None``
      drops the perceptual and style terms (pixel and TV losses only).
    valid_weight, hole_weight, perceptual_weight, style_weight, tv_weight: term weights (paper values
      by default); `style_weight` multiplies both L_style_out and L_style_comp.
    ssim_weight: weight of `dssim`(I_comp, I_gt), an extra term that is not in [Liu2018] (0, the
      default, leaves it out of the total and of ``terms``).
    mse_weight: weight of the mean squared error of the composite, mean((I_comp - I_gt)^2) over all N*C*H*W
      elements (= the hole pixels' squared error, size-averaged like L_hole): the error PSNR measures, an
      extra term that is not in [Liu2018] (0, the default, leaves it out of the total and of ``terms``).
    feature_layers: keys of `feature_fn`'s output used by the perceptual and style terms.

  Returns:
    ``(total, terms)``: the weighted sum, and the **unweighted** terms ``valid, hole, tv`` plus, with a
    `feature_fn`, ``perceptual, style_out, style_comp`` (so ``total == sum(weight * term)``).

  References:
    [Liu2018] L_total and its terms, with the errata (size-averaged L1).
  """
  check_images(output, target, mask)
  output, target, mask = as_float(output), as_float(target), as_float(mask)
  comp = composite(output, target, mask)
  terms = {
      "valid": l1_valid(output, target, mask),
      "hole": l1_hole(output, target, mask),
      "tv": total_variation(comp, mask),
  }
  total = valid_weight * terms["valid"] + hole_weight * terms["hole"] + tv_weight * terms["tv"]
  if ssim_weight:
    terms["ssim"] = dssim(comp, target)
    total = total + ssim_weight * terms["ssim"]
  if mse_weight:
    terms["mse"] = jnp.mean(jnp.square(comp - target))
    total = total + mse_weight * terms["mse"]
  if feature_fn is not None:
    f_out, f_comp, f_gt = batched_features(feature_fn, [output, comp], "pconv_loss", constant=[target])
    layers = tuple(feature_layers)
    terms["perceptual"] = perceptual(f_out, f_comp, f_gt, layers=layers)
    terms["style_out"] = style(f_out, f_gt, layers=layers)
    terms["style_comp"] = style(f_comp, f_gt, layers=layers)
    total = (total + perceptual_weight * terms["perceptual"]
             + style_weight * (terms["style_out"] + terms["style_comp"]))
  return total, terms
