"""GAN terms of EdgeConnect [Nazeri2019]: the adversarial loss (nsgan / lsgan / hinge) on discriminator
logits, and the discriminator feature-matching loss.

References:
  [Nazeri2019] K. Nazeri, E. Ng, T. Joseph, F. Z. Qureshi, M. Ebrahimi, "EdgeConnect: Generative Image
  Inpainting with Adversarial Edge Learning", ICCV Workshops 2019, arXiv:1901.00212; reference code
  knazeri/edge-connect, ``src/loss.py`` and ``src/models.py``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxinpaint.losses._common import Array, ArrayLike, Features, as_float, l1_mean, paired_layers

# knazeri/edge-connect's GAN_LOSS options.
GAN_TYPES = ("nsgan", "lsgan", "hinge")


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
  x = as_float(logits)
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
  for r, f in paired_layers(real_features, fake_features, None, ("real_features", "fake_features")):
    total = total + l1_mean(f, jax.lax.stop_gradient(r))
  return total
