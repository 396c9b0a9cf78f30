"""Structural dissimilarity, 1 - SSIM, as a training loss (the SSIM of `jaxinpaint.metrics`)."""

from __future__ import annotations

import jax.numpy as jnp

from jaxinpaint import metrics
from jaxinpaint.losses._common import Array, ArrayLike, as_float, check_images


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
  check_images(output, target)
  return 1.0 - jnp.mean(metrics.ssim(as_float(output), as_float(target)))
