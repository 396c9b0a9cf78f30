"""Pure inpainting losses: Partial Convolutions (Liu et al. 2018) and EdgeConnect (Nazeri et al. 2019).

Every function here is a pure, jittable JAX function in the style of `optax.losses`: arrays in, a scalar
out, hyper-parameters keyword-only. One namespace over one module per family:

* `pconv`: `composite`, `l1_valid`, `l1_hole`, `perceptual`, `style`, `total_variation`, `pconv_loss`
  ([Liu2018]);
* `edgeconnect`: `edgeconnect_l1`, `edgeconnect_perceptual`, `edgeconnect_style` ([Nazeri2019]);
* `gan`: `adversarial` (nsgan / lsgan / hinge, `GAN_TYPES`) and `feature_matching` ([Nazeri2019]);
* `ssim`: `dssim`, 1 - SSIM (an optional extra term of `pconv_loss`, `ssim_weight`; its other optional extra
  term, `mse_weight`, is the composite's mean squared error; neither is in [Liu2018]);
* `gram_matrix`, shared by both papers' style losses.

The losses depend on JAX, NumPy and one lower building block of this package, `jaxinpaint.metrics`
(`dssim` trains on exactly the SSIM the evaluator reports); no network is imported::

  from jaxinpaint import losses
  total, terms = losses.pconv_loss(out, gt, mask, feature_fn=vgg16_features)

Conventions (shared with the rest of jaxinpaint):
  * images are NHWC floats (RGB in [0, 1] for the models of this package);
  * masks are **1 = valid/known pixel, 0 = hole**, shape (N, H, W, 1) (shared by all channels) or the
    image's own shape (N, H, W, C). EdgeConnect's reference code uses the opposite convention
    (1 = hole); the EdgeConnect functions take *our* convention and convert internally.
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

from jaxinpaint.losses._common import gram_matrix
from jaxinpaint.losses.edgeconnect import (EDGECONNECT_PERCEPTUAL_LAYERS, EDGECONNECT_STYLE_LAYERS,
                                           edgeconnect_l1, edgeconnect_perceptual, edgeconnect_style)
from jaxinpaint.losses.gan import GAN_TYPES, adversarial, feature_matching
from jaxinpaint.losses.pconv import (PCONV_FEATURE_LAYERS, composite, l1_hole, l1_valid, pconv_loss,
                                     perceptual, style, total_variation)
from jaxinpaint.losses.ssim import dssim

__all__ = [
    "l1_valid",
    "l1_hole",
    "composite",
    "gram_matrix",
    "perceptual",
    "style",
    "total_variation",
    "dssim",
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
