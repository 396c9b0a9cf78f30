"""Pure inpainting losses: Partial Convolutions (Liu et al. 2018) and EdgeConnect (Nazeri et al. 2019).

Every function here is a pure, jittable JAX function in the style of `optax.losses`: arrays in, a scalar
out, hyper-parameters keyword-only. The module depends only on JAX and NumPy, so it can be imported alone::

  from jaxinpaint import losses
  total, terms = losses.pconv_loss(out, gt, mask, feature_fn=vgg16_features)

Conventions (shared with the rest of jaxinpaint):
  * images are NHWC floats (RGB in [0, 1] for the models of this package);
  * masks are **1 = valid/known pixel, 0 = hole**, shape (N, H, W, 1) (shared by all channels) or the
    image's own shape (N, H, W, C). EdgeConnect's reference code uses the opposite convention
    (1 = hole); the EdgeConnect functions below take *our* convention and convert internally.
  * perceptual networks are passed as ``feature_fn(x NHWC) -> dict[str, array NHWC]`` ("losses take
    features, not networks"). ``feature_fn`` must treat batch elements independently (e.g. VGG in
    inference mode), because the losses evaluate several images in one batched call.
  * losses are computed in at least float32, whatever the input dtype (e.g. bfloat16 network outputs).

References:
  * [Liu2018] G. Liu, F. A. Reda, K. J. Shih, T.-C. Wang, A. Tao, B. Catanzaro, "Image Inpainting for
    Irregular Holes Using Partial Convolutions", ECCV 2018, arXiv:1804.07723 (updated arXiv version with
    the errata: all L1 terms are size-averaged), section "Loss Functions".
  * [Nazeri2019] K. Nazeri, E. Ng, T. Joseph, F. Z. Qureshi, M. Ebrahimi, "EdgeConnect: Generative Image
    Inpainting with Adversarial Edge Learning", ICCV Workshops 2019, arXiv:1901.00212; reference code
    knazeri/edge-connect, ``src/loss.py`` and ``src/models.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
ArrayLike = Union[jax.Array, np.ndarray]
Features = Union[Mapping[str, ArrayLike], Sequence[ArrayLike]]
FeatureFn = Callable[[Array], Mapping[str, Array]]

__all__ = [
    "l1_valid",
    "l1_hole",
    "composite",
    "gram_matrix",
    "perceptual",
    "style",
    "total_variation",
    "pconv_loss",
    "PCONV_FEATURE_LAYERS",
    "adversarial",
    "feature_matching",
    "edgeconnect_l1",
    "edgeconnect_perceptual",
    "edgeconnect_style",
    "EDGECONNECT_PERCEPTUAL_LAYERS",
    "EDGECONNECT_STYLE_LAYERS",
    "GAN_TYPES",
]

# [Liu2018]: VGG-16 pool1, pool2, pool3.
PCONV_FEATURE_LAYERS = ("pool1", "pool2", "pool3")
# knazeri/edge-connect src/loss.py: PerceptualLoss and StyleLoss layers of VGG-19.
EDGECONNECT_PERCEPTUAL_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
EDGECONNECT_STYLE_LAYERS = ("relu2_2", "relu3_4", "relu4_4", "relu5_2")
GAN_TYPES = ("nsgan", "lsgan", "hinge")


# ----------------------------------------------------------------------------------------------------
# Input checking (shapes are static under jit, so these checks cost nothing at run time).


def _float(x: ArrayLike) -> Array:
  """At least float32, so bfloat16/float16 inputs do not lose the loss's precision."""
  x = jnp.asarray(x)
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _check_images(output: ArrayLike, target: ArrayLike, mask: ArrayLike | None = None,
                  *, names: tuple[str, str] = ("output", "target")) -> None:
  out_shape, gt_shape = np.shape(output), np.shape(target)
  if len(out_shape) != 4:
    raise ValueError(f"`{names[0]}` must be an NHWC batch (rank 4); got shape {out_shape}.")
  if out_shape != gt_shape:
    raise ValueError(f"`{names[0]}` and `{names[1]}` must have the same shape; got {out_shape} and "
                     f"{gt_shape}.")
  if mask is not None:
    _check_mask(mask, out_shape)


def _check_mask(mask: ArrayLike, image_shape: tuple[int, ...]) -> None:
  m_shape = np.shape(mask)
  n, h, w, c = image_shape
  if m_shape not in ((n, h, w, 1), (n, h, w, c)):
    raise ValueError(f"`mask` must have shape (N, H, W, 1) = {(n, h, w, 1)} or the image shape "
                     f"{tuple(image_shape)} (1 = valid, 0 = hole); got {m_shape}.")


def _layer_list(features: Features, layers: Sequence[str] | None, name: str) -> list[Array]:
  """Selects feature maps from a dict (by `layers`, default all keys in order) or a sequence."""
  if isinstance(features, Mapping):
    keys = list(features.keys()) if layers is None else list(layers)
    missing = [k for k in keys if k not in features]
    if missing:
      raise ValueError(f"`{name}` has no layer(s) {missing}; available: {list(features.keys())}.")
    return [jnp.asarray(features[k]) for k in keys]
  if isinstance(features, (list, tuple)):
    if layers is not None:
      raise ValueError(f"`layers` selects by name, so `{name}` must be a dict; got a {type(features)}.")
    return [jnp.asarray(f) for f in features]
  raise ValueError(f"`{name}` must be a dict name -> feature map or a list of feature maps; got "
                   f"{type(features)}.")


def _paired_layers(a: Features, b: Features, layers: Sequence[str] | None,
                   names: tuple[str, str]) -> list[tuple[Array, Array]]:
  if layers is None and isinstance(a, Mapping):
    layers = tuple(a.keys())  # pair dicts by name, never by insertion order
  fa, fb = _layer_list(a, layers, names[0]), _layer_list(b, layers, names[1])
  if len(fa) != len(fb):
    raise ValueError(f"`{names[0]}` has {len(fa)} feature maps but `{names[1]}` has {len(fb)}.")
  for i, (x, y) in enumerate(zip(fa, fb)):
    if x.shape != y.shape:
      raise ValueError(f"feature map {i} of `{names[0]}` has shape {x.shape} but that of `{names[1]}` "
                       f"has {y.shape}.")
  return list(zip(fa, fb))


def _l1_mean(x: Array, y: Array) -> Array:
  """torch.nn.L1Loss() (reduction='mean'): mean |x - y| over every element."""
  return jnp.mean(jnp.abs(_float(x) - _float(y)))


def _batched_features(feature_fn: FeatureFn, images: Sequence[Array], what: str, *,
                      constant: Sequence[Array] = ()) -> list[dict[str, Array]]:
  """Features of `images` then of `constant`, one list entry per image, in that order.

  `images` (the ones gradients flow through) go through `feature_fn` in one call on their batch
  concatenation; `constant` (targets, no gradient) in a second call on their `stop_gradient`. One call per
  group is cheaper than one per image (larger matmuls per layer), but the groups must stay apart: a
  convolution's backward pass computes every batch row even where the cotangent is zero, so a target in
  the differentiated call would cost a full extra VGG backward (measured: EdgeConnect's stage-2 step went
  from 12.8 s to 11.35 s at 256x256, batch 4). `feature_fn` treats batch elements independently, so every
  split equals the features of a separate call.
  """
  groups = [list(images)] + ([[jax.lax.stop_gradient(c) for c in constant]] if constant else [])
  out: list[dict[str, Array]] = []
  for group in groups:
    n = group[0].shape[0]
    feats = feature_fn(jnp.concatenate(group, axis=0) if len(group) > 1 else group[0])
    if not isinstance(feats, Mapping):
      raise ValueError(f"`feature_fn` must return a dict name -> (N, h, w, c) feature map ({what}); got "
                       f"{type(feats)}.")
    split: list[dict[str, Array]] = [{} for _ in group]
    for k, v in feats.items():
      if v.ndim < 1 or v.shape[0] != n * len(group):
        raise ValueError(f"`feature_fn` output {k!r} has shape {v.shape}; expected a leading batch "
                         f"dimension of {n * len(group)} (its input's batch size).")
      for i in range(len(group)):
        split[i][k] = v[i * n:(i + 1) * n]
    out.extend(split)
  return out


# ----------------------------------------------------------------------------------------------------
# Partial Convolutions [Liu2018].


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
  _check_images(output, target, mask)
  m = _float(mask)
  return m * _float(target) + (1.0 - m) * _float(output)


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
  _check_images(output, target, mask)
  diff = jnp.abs(_float(output) - _float(target))
  return jnp.mean((1.0 - _float(mask)) * diff)


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
  _check_images(output, target, mask)
  diff = jnp.abs(_float(output) - _float(target))
  return jnp.mean(_float(mask) * diff)


def gram_matrix(f: ArrayLike) -> Array:
  r"""Normalised Gram (auto-correlation) matrix of NHWC feature maps.

  With Psi the (H W) x C matrix of one image's features,

  .. math:: G = K \, \Psi^\top \Psi, \quad K = \frac{1}{C H W}

  i.e. ``G[n, c, d] = sum_{h,w} f[n,h,w,c] f[n,h,w,d] / (C*H*W)``. This is [Liu2018]'s K_p Psi^T Psi and
  equals EdgeConnect's ``compute_gram`` (``f f^T / (h*w*ch)``) and NVIDIA's ``gram_matrix``. Computed in
  at least float32 at the highest matmul precision (TPU/GPU default precisions would round the sums).

  Args:
    f: feature maps, (N, H, W, C).

  Returns:
    (N, C, C) Gram matrices.

  References:
    [Liu2018] K_p (Psi_p)^T (Psi_p) in L_style_out / L_style_comp; knazeri/edge-connect
    ``StyleLoss.compute_gram``.
  """
  shape = np.shape(f)
  if len(shape) != 4:
    raise ValueError(f"`f` must be NHWC feature maps (rank 4); got shape {shape}.")
  _, h, w, c = shape
  f = _float(f)
  g = jnp.einsum("nhwc,nhwd->ncd", f, f, precision=jax.lax.Precision.HIGHEST)
  return g / (c * h * w)


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
    for x, y in _paired_layers(feats, gt_features, layers, (name, "gt_features")):
      total = total + _l1_mean(x, y)
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
  for x, y in _paired_layers(features, gt_features, layers, ("features", "gt_features")):
    total = total + _l1_mean(gram_matrix(x), gram_matrix(y))
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
  _check_mask(mask, shape)
  comp = _float(comp)
  p = jax.lax.stop_gradient(_tv_region(_float(mask)))
  pair_h = (p[:, :, :-1, :] & p[:, :, 1:, :]).astype(comp.dtype)
  pair_v = (p[:, :-1, :, :] & p[:, 1:, :, :]).astype(comp.dtype)
  dh = jnp.abs(comp[:, :, 1:, :] - comp[:, :, :-1, :])
  dv = jnp.abs(comp[:, 1:, :, :] - comp[:, :-1, :, :])
  return (jnp.sum(pair_h * dh) + jnp.sum(pair_v * dv)) / comp.size


def dssim(output: ArrayLike, target: ArrayLike) -> Array:
  r"""Structural dissimilarity :math:`1 - \mathrm{SSIM}(I_{out}, I_{gt})`, batch mean [Zhao2017].

  SSIM is `jaxinpaint.metrics.ssim` (Wang et al. 2004, Gaussian window sigma 1.5, data range 1, equal to
  scikit-image's `structural_similarity(..., gaussian_weights=True, use_sample_covariance=False)`), so
  training on this term optimises exactly the SSIM the evaluator reports. Not a term of [Liu2018]: an
  optional extra (`pconv_loss(ssim_weight=...)`) for runs without VGG weights, where the perceptual and
  style terms that normally suppress blotchy fills are unavailable.

  Args:
    output: (N, H, W, C) in [0, 1], H and W >= 11; pass the composite to score only what the evaluator sees.
    target: same shape.

  Returns:
    Scalar mean over the batch of 1 - SSIM.

  References:
    [Zhao2017] H. Zhao, O. Gallo, I. Frosio, J. Kautz, "Loss Functions for Image Restoration with Neural
    Networks", IEEE TCI 2017 (SSIM and mixed L1 + SSIM training losses).
  """
  # Imported here so that importing the losses stays free of package imports (one SSIM implementation).
  from jaxinpaint import metrics  # pylint: disable=import-outside-toplevel
  _check_images(output, target)
  return 1.0 - jnp.mean(metrics.ssim(_float(output), _float(target)))


def pconv_loss(output: ArrayLike, target: ArrayLike, mask: ArrayLike, *,
               feature_fn: FeatureFn | None = None,
               valid_weight: float = 1.0,
               hole_weight: float = 6.0,
               perceptual_weight: float = 0.05,
               style_weight: float = 120.0,
               tv_weight: float = 0.1,
               ssim_weight: float = 0.0,
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
    feature_layers: keys of `feature_fn`'s output used by the perceptual and style terms.

  Returns:
    ``(total, terms)``: the weighted sum, and the **unweighted** terms ``valid, hole, tv`` plus, with a
    `feature_fn`, ``perceptual, style_out, style_comp`` (so ``total == sum(weight * term)``).

  References:
    [Liu2018] L_total and its terms, with the errata (size-averaged L1).
  """
  _check_images(output, target, mask)
  output, target, mask = _float(output), _float(target), _float(mask)
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
  if feature_fn is not None:
    f_out, f_comp, f_gt = _batched_features(feature_fn, [output, comp], "pconv_loss", constant=[target])
    layers = tuple(feature_layers)
    terms["perceptual"] = perceptual(f_out, f_comp, f_gt, layers=layers)
    terms["style_out"] = style(f_out, f_gt, layers=layers)
    terms["style_comp"] = style(f_comp, f_gt, layers=layers)
    total = (total + perceptual_weight * terms["perceptual"]
             + style_weight * (terms["style_out"] + terms["style_comp"]))
  return total, terms


# ----------------------------------------------------------------------------------------------------
# EdgeConnect [Nazeri2019] / knazeri/edge-connect.


def _check_bool(value: Any, name: str) -> bool:
  if not isinstance(value, (bool, np.bool_)):
    raise ValueError(f"`{name}` must be a Python bool (it selects the formula at trace time); got "
                     f"{type(value).__name__}.")
  return bool(value)


def adversarial(logits: ArrayLike, *, is_real: bool, is_discriminator: bool,
                gan_type: str = "nsgan") -> Array:
  r"""EdgeConnect's ``AdversarialLoss`` on discriminator **logits**.

  The reference discriminator ends in a sigmoid for 'nsgan'/'lsgan' (``use_sigmoid=GAN_LOSS != 'hinge'``)
  and the loss compares its output with the label t = 1 (`is_real`) or 0; ours return logits x, so:

  * 'nsgan': ``BCELoss(sigmoid(x), t)`` computed stably as ``mean(softplus(-x))`` for t = 1 and
    ``mean(softplus(x))`` for t = 0 (= -log sigmoid(x), -log(1 - sigmoid(x))). Equal to torch's value
    wherever torch's float result is not clamped (torch clamps log at -100 and rounds sigmoid to 0/1 for
    |x| >~ 17 in float32); finite values and gradients for any finite logit.
  * 'lsgan': ``MSELoss(sigmoid(x), t)`` = mean((sigmoid(x) - t)^2).
  * 'hinge' (raw outputs, no sigmoid in the reference either): discriminator real ``mean(relu(1 - x))``,
    discriminator fake ``mean(relu(1 + x))``, generator ``-mean(x)`` (`is_real` is ignored for the
    generator, as in the reference).

  For 'nsgan'/'lsgan' `is_discriminator` does not change the formula (the generator passes
  ``is_real=True``: the non-saturating loss). The reference's discriminator loss is
  ``(adversarial(real, is_real=True, ...) + adversarial(fake, is_real=False, ...)) / 2``.

  Args:
    logits: discriminator outputs before any sigmoid, any shape (e.g. PatchGAN (N, h, w, 1)).
    is_real: target label 1 (True) or 0 (False). Python bool.
    is_discriminator: whether the loss is for the discriminator update. Python bool.
    gan_type: 'nsgan' | 'lsgan' | 'hinge'.

  Returns:
    Scalar loss (mean over every element of `logits`).

  References:
    [Nazeri2019]; knazeri/edge-connect ``src/loss.py`` ``AdversarialLoss``; Mao et al. 2017 (LSGAN);
    Miyato et al. 2018 (hinge).
  """
  is_real = _check_bool(is_real, "is_real")
  is_discriminator = _check_bool(is_discriminator, "is_discriminator")
  if gan_type not in GAN_TYPES:
    raise ValueError(f"`gan_type` must be one of {GAN_TYPES}; got {gan_type!r}.")
  x = _float(logits)
  if gan_type == "nsgan":
    return jnp.mean(jax.nn.softplus(-x if is_real else x))
  if gan_type == "lsgan":
    target = 1.0 if is_real else 0.0
    return jnp.mean(jnp.square(jax.nn.sigmoid(x) - target))
  # hinge
  if is_discriminator:
    return jnp.mean(jax.nn.relu(1.0 - x if is_real else 1.0 + x))
  return -jnp.mean(x)


def feature_matching(real_features: Features, fake_features: Features) -> Array:
  r"""EdgeConnect's discriminator feature-matching loss.

  .. math:: L_{FM} = \sum_i \frac{1}{N_i} \| D^{(i)}(\text{fake}) - \mathrm{sg}(D^{(i)}(\text{real})) \|_1

  the L1 mean over every element of each intermediate discriminator activation, summed over layers;
  ``sg`` = stop_gradient (the reference's ``.detach()``), so no gradient reaches the real features.
  The reference weights it by FM_LOSS_WEIGHT = 10 in the edge model; apply the weight yourself. In the
  reference the compared activations are the discriminator's [conv1, ..., conv5], conv5 being the
  pre-sigmoid output (our logits).

  Args:
    real_features: discriminator activations on real inputs: list of arrays (or dict, matched by key).
    fake_features: activations on generated inputs, same structure and shapes.

  Returns:
    Scalar loss.

  References:
    [Nazeri2019] Eq. for L_FM; knazeri/edge-connect ``src/models.py`` ``EdgeModel.process``.
  """
  total = jnp.zeros((), jnp.float32)
  for r, f in _paired_layers(real_features, fake_features, None, ("real_features", "fake_features")):
    total = total + _l1_mean(f, jax.lax.stop_gradient(r))
  return total


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
  _check_images(output, target, mask)
  hole_fraction = jnp.mean(1.0 - _float(mask))
  denom = jnp.where(hole_fraction > 0, hole_fraction, 1.0)
  return _l1_mean(output, target) / denom


def _check_feature_pair(output: ArrayLike, target: ArrayLike, feature_fn: Any) -> None:
  _check_images(output, target)
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
  f_out, f_gt = _batched_features(feature_fn, [_float(output)], "edgeconnect_perceptual",
                                  constant=[_float(target)])
  total = jnp.zeros((), jnp.float32)
  for w, (x, y) in zip(weights, _paired_layers(f_out, f_gt, layers, ("feature_fn(output)",
                                                                    "feature_fn(target)"))):
    total = total + w * _l1_mean(x, y)
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
  x, y = _float(output), _float(target)
  if mask is not None:
    _check_mask(mask, np.shape(output))
    hole = 1.0 - _float(mask)
    x, y = x * hole, y * hole
  f_out, f_gt = _batched_features(feature_fn, [x], "edgeconnect_style", constant=[y])
  total = jnp.zeros((), jnp.float32)
  for a, b in _paired_layers(f_out, f_gt, tuple(layers), ("feature_fn(output)", "feature_fn(target)")):
    total = total + _l1_mean(gram_matrix(a), gram_matrix(b))
  return total
