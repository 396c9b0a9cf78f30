"""Tests for jaxinpaint.losses against NumPy written from the equations (and torch where it has the op).

Every loss is called jitted. Expected values come from independent NumPy code (loops and explicit pixel
sets where the definition is about regions) or from hand computation on tiny arrays.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxinpaint import losses

RTOL = 1e-5
ATOL = 1e-6


def _rng(seed=0):
  return np.random.default_rng(seed)


def _images(n=2, h=6, w=5, c=3, seed=0):
  rng = _rng(seed)
  out = rng.uniform(size=(n, h, w, c)).astype(np.float32)
  gt = rng.uniform(size=(n, h, w, c)).astype(np.float32)
  mask = (rng.uniform(size=(n, h, w, 1)) > 0.4).astype(np.float32)
  return out, gt, mask


# ---------------------------------------------------------------------------------------------------
# NumPy references, written from the equations.


def np_gram(f):
  n, h, w, c = f.shape
  f = f.astype(np.float64)
  return np.einsum("nhwc,nhwd->ncd", f, f) / (c * h * w)


def np_tv(comp, mask):
  """L_tv by explicit pixel sets: P = hole pixels and their 8 neighbours; pairs with both ends in P."""
  n, h, w, c = comp.shape
  total = 0.0
  for b in range(n):
    for ch in range(c):
      m = mask[b, :, :, ch if mask.shape[-1] == c else 0]
      holes = {(i, j) for i in range(h) for j in range(w) if m[i, j] < 0.5}
      region = set()
      for i, j in holes:
        for di in (-1, 0, 1):
          for dj in (-1, 0, 1):
            if 0 <= i + di < h and 0 <= j + dj < w:
              region.add((i + di, j + dj))
      for i, j in region:
        if (i, j + 1) in region:
          total += abs(float(comp[b, i, j + 1, ch]) - float(comp[b, i, j, ch]))
        if (i + 1, j) in region:
          total += abs(float(comp[b, i + 1, j, ch]) - float(comp[b, i, j, ch]))
  return total / (n * c * h * w)


def _avgpool2(x):
  """2x2 average pooling of an NHWC NumPy or JAX array."""
  n, h, w, c = x.shape
  return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _fake_features(x, xp):
  """A tiny stand-in for VGG-16 (avg pools + point-wise nonlinearities, per-example) in array module `xp`."""
  f1 = _avgpool2(xp.concatenate([x, x ** 2], axis=-1))
  f2 = _avgpool2(xp.tanh(3.0 * f1 - 1.0))
  f3 = _avgpool2(f2 ** 2)
  return {"pool1": f1, "pool2": f2, "pool3": f3, "unused": xp.full_like(f3, 7.0)}


def np_fake_features(x):
  return _fake_features(x, np)


def fake_features(x):
  return _fake_features(x, jnp)


def np_l1(a, b):
  return np.mean(np.abs(a.astype(np.float64) - b.astype(np.float64)))


def np_pconv_terms(out, gt, mask, layers=("pool1", "pool2", "pool3")):
  out, gt, mask = (a.astype(np.float64) for a in (out, gt, mask))
  comp = mask * gt + (1 - mask) * out
  n, h, w, c = out.shape
  terms = {
      "valid": np.sum(np.abs(mask * (out - gt))) / (n * c * h * w),
      "hole": np.sum(np.abs((1 - mask) * (out - gt))) / (n * c * h * w),
      "tv": np_tv(comp, mask),
  }
  fo, fc, fg = np_fake_features(out), np_fake_features(comp), np_fake_features(gt)
  terms["perceptual"] = sum(np_l1(fo[k], fg[k]) + np_l1(fc[k], fg[k]) for k in layers)
  # Paper: sum_p 1/(C_p C_p) || K_p (Psi^T Psi - Psi_gt^T Psi_gt) ||_1, averaged over the batch.
  def style_np(fa):
    total = 0.0
    for k in layers:
      cp = fa[k].shape[-1]
      total += np.sum(np.abs(np_gram(fa[k]) - np_gram(fg[k]))) / (cp * cp) / n
    return total
  terms["style_out"] = style_np(fo)
  terms["style_comp"] = style_np(fc)
  return terms


# ---------------------------------------------------------------------------------------------------
# PConv pixel losses.


@pytest.mark.parametrize("mask_channels", [1, 3])
def test_l1_valid_and_hole_match_numpy(mask_channels):
  out, gt, _ = _images()
  mask = (_rng(5).uniform(size=out.shape[:3] + (mask_channels,)) > 0.5).astype(np.float32)
  n, h, w, c = out.shape
  diff = np.abs(out.astype(np.float64) - gt)
  want_valid = np.sum(mask * diff) / (n * c * h * w)
  want_hole = np.sum((1 - mask) * diff) / (n * c * h * w)
  got_valid = jax.jit(losses.l1_valid)(out, gt, mask)
  got_hole = jax.jit(losses.l1_hole)(out, gt, mask)
  np.testing.assert_allclose(got_valid, want_valid, rtol=RTOL)
  np.testing.assert_allclose(got_hole, want_hole, rtol=RTOL)
  np.testing.assert_allclose(got_valid + got_hole, diff.mean(), rtol=RTOL)


def test_l1_hole_is_size_averaged_not_hole_averaged():
  # 1x2x2x1 image, one hole pixel off by 1: errata value 1/4 (all elements), not 1/1 (hole area).
  out = np.zeros((1, 2, 2, 1), np.float32)
  gt = np.zeros_like(out)
  gt[0, 0, 0, 0] = 1.0
  mask = np.ones_like(out)
  mask[0, 0, 0, 0] = 0.0
  assert float(jax.jit(losses.l1_hole)(out, gt, mask)) == pytest.approx(0.25)
  assert float(jax.jit(losses.l1_valid)(out, gt, mask)) == 0.0


def test_composite():
  out, gt, mask = _images()
  got = jax.jit(losses.composite)(out, gt, mask)
  want = np.where(mask > 0.5, gt, out)
  np.testing.assert_allclose(got, want, rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------------
# Gram, perceptual, style.


def test_gram_matrix_matches_einsum():
  f = _rng(1).normal(size=(2, 3, 5, 4)).astype(np.float32)
  got = jax.jit(losses.gram_matrix)(f)
  assert got.shape == (2, 4, 4)
  want = np.einsum("nhwc,nhwd->ncd", f.astype(np.float64), f.astype(np.float64)) / (4 * 3 * 5)
  np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_gram_matrix_hand_value():
  # One pixel with features (1, 2): F^T F = [[1, 2], [2, 4]], K = 1/(C H W) = 1/2.
  f = np.array([1.0, 2.0], np.float32).reshape(1, 1, 1, 2)
  np.testing.assert_allclose(losses.gram_matrix(f)[0], [[0.5, 1.0], [1.0, 2.0]])


def test_perceptual_and_style_match_numpy():
  rng = _rng(2)
  shapes = {"a": (2, 4, 4, 3), "b": (2, 2, 2, 5)}
  fo = {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
  fc = {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
  fg = {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
  want_p = sum(np_l1(fo[k], fg[k]) + np_l1(fc[k], fg[k]) for k in shapes)
  np.testing.assert_allclose(jax.jit(losses.perceptual)(fo, fc, fg), want_p, rtol=RTOL)
  want_s = sum(np.sum(np.abs(np_gram(fo[k]) - np_gram(fg[k]))) / (s[-1] ** 2) / s[0]
               for k, s in shapes.items())
  np.testing.assert_allclose(jax.jit(losses.style)(fo, fg), want_s, rtol=RTOL)
  # Lists work too, and `layers` selects.
  np.testing.assert_allclose(losses.style([fo["a"], fo["b"]], [fg["a"], fg["b"]]), want_s, rtol=RTOL)
  want_b = np_l1(fo["b"], fg["b"]) + np_l1(fc["b"], fg["b"])
  np.testing.assert_allclose(losses.perceptual(fo, fc, fg, layers=("b",)), want_b, rtol=RTOL)
  with pytest.raises(ValueError, match="no layer"):
    losses.style(fo, fg, layers=("c",))


# ---------------------------------------------------------------------------------------------------
# Total variation on the dilated hole region.


def _hand_image(h, w, c=1):
  i, j = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  img = (j ** 2 + 100 * i).astype(np.float32)  # horizontal steps 2j+1, vertical steps 100
  return np.repeat(img[None, :, :, None], c, axis=-1)


def test_tv_hand_computed_2x2_hole_in_6x6():
  comp = _hand_image(6, 6)
  mask = np.ones((1, 6, 6, 1), np.float32)
  mask[0, 2:4, 2:4, 0] = 0.0
  # P = rows 1..4 x cols 1..4 (4x4). Horizontal pairs: 4 rows x cols (1,2),(2,3),(3,4): steps 3+5+7 = 15
  # per row -> 60. Vertical pairs: 4 cols x 3 row pairs x 100 = 1200. N_Icomp = 1*6*6 = 36.
  want = (60 + 1200) / 36
  got = jax.jit(losses.total_variation)(comp, mask)
  np.testing.assert_allclose(got, want, rtol=RTOL)
  assert want == pytest.approx(35.0)
  # Two channels (second = 2 x first): 3x the sum, 2x the normaliser.
  comp2 = np.concatenate([comp, 2 * comp], axis=-1)
  np.testing.assert_allclose(jax.jit(losses.total_variation)(comp2, mask), 3 * 1260 / 72, rtol=RTOL)


def test_tv_hand_computed_corner_hole_clipped_by_border():
  comp = _hand_image(4, 4)
  mask = np.ones((1, 4, 4, 1), np.float32)
  mask[0, 0, 0, 0] = 0.0
  # P = {(0,0),(0,1),(1,0),(1,1)}: horizontal pairs (0,0)-(0,1), (1,0)-(1,1) step 1 each; vertical pairs
  # (0,0)-(1,0), (0,1)-(1,1) step 100 each. (2 + 200) / 16.
  np.testing.assert_allclose(jax.jit(losses.total_variation)(comp, mask), 202 / 16, rtol=RTOL)


def test_tv_matches_pixel_set_reference_on_random_masks():
  for seed, mask_channels in [(3, 1), (4, 3)]:
    rng = _rng(seed)
    comp = rng.uniform(size=(2, 7, 6, 3)).astype(np.float32)
    mask = (rng.uniform(size=(2, 7, 6, mask_channels)) > 0.7).astype(np.float32)
    np.testing.assert_allclose(jax.jit(losses.total_variation)(comp, mask), np_tv(comp, mask),
                               rtol=RTOL)


def test_tv_zero_without_holes_and_no_gradient_outside_region():
  comp = _rng(6).uniform(size=(1, 6, 6, 2)).astype(np.float32)
  assert float(losses.total_variation(comp, np.ones((1, 6, 6, 1), np.float32))) == 0.0
  mask = np.ones((1, 6, 6, 1), np.float32)
  mask[0, 2:4, 2:4, 0] = 0.0
  g = jax.grad(losses.total_variation)(comp, mask)
  region = np.zeros((6, 6), bool)
  region[1:5, 1:5] = True
  assert np.all(g[0][~region] == 0)
  # Inside P the gradient is the finite-difference gradient of the pixel-set reference.
  eps, fd = 1e-4, np.zeros(comp.shape)
  c64 = comp.astype(np.float64)
  for idx in np.ndindex(comp.shape):
    plus, minus = c64.copy(), c64.copy()
    plus[idx] += eps
    minus[idx] -= eps
    fd[idx] = (np_tv(plus, mask) - np_tv(minus, mask)) / (2 * eps)
  np.testing.assert_allclose(g, fd, atol=1e-5)
  assert np.any(g[0][region] != 0)


# ---------------------------------------------------------------------------------------------------
# pconv_loss.


def _pconv_inputs():
  rng = _rng(7)
  out = rng.uniform(size=(2, 16, 16, 3)).astype(np.float32)
  gt = rng.uniform(size=(2, 16, 16, 3)).astype(np.float32)
  mask = np.ones((2, 16, 16, 1), np.float32)
  mask[0, 3:9, 4:12] = 0.0
  mask[1, 10:16, 0:5] = 0.0
  mask[1, 2:4, 2:4] = 0.0
  return out, gt, mask


def test_pconv_loss_terms_match_numpy_and_total_is_weighted_sum():
  out, gt, mask = _pconv_inputs()
  loss = jax.jit(functools.partial(losses.pconv_loss, feature_fn=fake_features))
  total, terms = loss(out, gt, mask)
  want = np_pconv_terms(out, gt, mask)
  assert set(terms) == {"valid", "hole", "tv", "perceptual", "style_out", "style_comp"}
  for k in want:
    np.testing.assert_allclose(terms[k], want[k], rtol=1e-4, atol=1e-7, err_msg=k)
  weighted = (want["valid"] + 6 * want["hole"] + 0.05 * want["perceptual"]
              + 120 * (want["style_out"] + want["style_comp"]) + 0.1 * want["tv"])
  np.testing.assert_allclose(total, weighted, rtol=1e-4)
  # Non-default weights.
  w = dict(valid_weight=2.0, hole_weight=3.0, perceptual_weight=0.5, style_weight=7.0, tv_weight=0.25)
  total_w, terms_w = jax.jit(functools.partial(losses.pconv_loss, feature_fn=fake_features, **w))(
      out, gt, mask)
  expect = (2 * terms_w["valid"] + 3 * terms_w["hole"] + 0.5 * terms_w["perceptual"]
            + 7 * (terms_w["style_out"] + terms_w["style_comp"]) + 0.25 * terms_w["tv"])
  np.testing.assert_allclose(total_w, expect, rtol=1e-5)


def test_pconv_loss_batched_features_equal_separate_calls():
  out, gt, mask = _pconv_inputs()
  calls = []

  def counting_features(x):
    calls.append(x.shape)
    return fake_features(x)

  _, terms = losses.pconv_loss(out, gt, mask, feature_fn=counting_features)
  # One call on [out, comp], a separate one on gt: a zero cotangent would not spare gt its backward pass.
  assert calls == [(4, 16, 16, 3), (2, 16, 16, 3)]
  comp = losses.composite(out, gt, mask)
  fo, fc, fg = fake_features(out), fake_features(comp), fake_features(gt)
  layers = ("pool1", "pool2", "pool3")
  np.testing.assert_allclose(terms["perceptual"], losses.perceptual(fo, fc, fg, layers=layers), rtol=1e-6)
  np.testing.assert_allclose(terms["style_out"], losses.style(fo, fg, layers=layers), rtol=1e-6)
  np.testing.assert_allclose(terms["style_comp"], losses.style(fc, fg, layers=layers), rtol=1e-6)


def test_pconv_loss_without_features_and_errors():
  out, gt, mask = _pconv_inputs()
  total, terms = jax.jit(losses.pconv_loss)(out, gt, mask)
  assert set(terms) == {"valid", "hole", "tv"}
  np.testing.assert_allclose(total, terms["valid"] + 6 * terms["hole"] + 0.1 * terms["tv"], rtol=1e-6)
  with pytest.raises(ValueError, match="no layer"):
    losses.pconv_loss(out, gt, mask, feature_fn=fake_features, feature_layers=("pool9",))
  with pytest.raises(ValueError, match="`mask`"):
    losses.pconv_loss(out, gt, mask[:, :8])
  with pytest.raises(ValueError, match="`output` and `target`"):
    losses.pconv_loss(out, gt[:1], mask)
  with pytest.raises(ValueError, match="dict"):
    losses.pconv_loss(out, gt, mask, feature_fn=lambda x: [x])


def test_pconv_loss_gradients_finite_and_valid_pixels_do_not_enter_comp():
  out, gt, mask = _pconv_inputs()

  def only_comp_terms(o):
    _, t = losses.pconv_loss(o, gt, mask, feature_fn=fake_features)
    return t["style_comp"] + t["tv"]

  g = jax.jit(jax.grad(only_comp_terms))(out)
  assert np.all(np.isfinite(g))
  # I_comp takes ground truth on valid pixels, so its terms give the output no gradient there.
  assert np.all(np.asarray(g)[np.broadcast_to(mask, g.shape) > 0.5] == 0)
  assert np.any(np.asarray(g) != 0)


def test_pconv_loss_low_precision_inputs_are_computed_in_float32():
  out, gt, mask = _pconv_inputs()
  total16, terms16 = jax.jit(functools.partial(losses.pconv_loss, feature_fn=fake_features))(
      jnp.asarray(out, jnp.bfloat16), gt, mask)
  assert total16.dtype == jnp.float32 and all(t.dtype == jnp.float32 for t in terms16.values())
  # Same value as float32 on the bfloat16-rounded output.
  out_rounded = np.asarray(jnp.asarray(out, jnp.bfloat16).astype(jnp.float32))
  total32, _ = losses.pconv_loss(out_rounded, gt, mask, feature_fn=fake_features)
  np.testing.assert_allclose(total16, total32, rtol=1e-6)


# ---------------------------------------------------------------------------------------------------
# GAN losses (EdgeConnect).


def np_sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def np_adversarial(x, is_real, is_disc, gan_type):
  x = x.astype(np.float64)
  t = 1.0 if is_real else 0.0
  if gan_type == "nsgan":
    p = np_sigmoid(x)
    return np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p)))
  if gan_type == "lsgan":
    return np.mean((np_sigmoid(x) - t) ** 2)
  if is_disc:
    return np.mean(np.maximum(0, 1 - x)) if is_real else np.mean(np.maximum(0, 1 + x))
  return -np.mean(x)


CASES = [(g, r, d) for g in losses.GAN_TYPES for r in (True, False) for d in (True, False)]


@pytest.mark.parametrize("gan_type,is_real,is_disc", CASES)
def test_adversarial_matches_numpy(gan_type, is_real, is_disc):
  x = _rng(8).normal(scale=3.0, size=(2, 5, 5, 1)).astype(np.float32)
  fn = jax.jit(functools.partial(losses.adversarial, is_real=is_real, is_discriminator=is_disc,
                                 gan_type=gan_type))
  np.testing.assert_allclose(fn(x), np_adversarial(x, is_real, is_disc, gan_type), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("gan_type,is_real,is_disc", CASES)
def test_adversarial_matches_torch_reference_semantics(torch, gan_type, is_real, is_disc):
  # Re-statement of knazeri/edge-connect AdversarialLoss on the sigmoid output (float64 so that torch's
  # BCELoss is not limited by float32 rounding of sigmoid near 0/1).
  x = _rng(9).normal(scale=4.0, size=(3, 4, 4, 1)).astype(np.float32)
  xt = torch.from_numpy(x.astype(np.float64))
  if gan_type == "hinge":
    if is_disc:
      want = torch.relu(1 + (-xt if is_real else xt)).mean()
    else:
      want = (-xt).mean()
  else:
    crit = torch.nn.BCELoss() if gan_type == "nsgan" else torch.nn.MSELoss()
    label = torch.full_like(xt, 1.0 if is_real else 0.0)
    want = crit(torch.sigmoid(xt), label)
  got = jax.jit(functools.partial(losses.adversarial, is_real=is_real, is_discriminator=is_disc,
                                  gan_type=gan_type))(x)
  np.testing.assert_allclose(got, want.item(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("gan_type,is_real,is_disc", CASES)
def test_adversarial_extreme_logits_finite(gan_type, is_real, is_disc):
  x = np.array([-100.0, 100.0, -100.0, 100.0], np.float32)
  fn = functools.partial(losses.adversarial, is_real=is_real, is_discriminator=is_disc,
                         gan_type=gan_type)
  value, grad = jax.jit(jax.value_and_grad(fn))(x)
  assert np.isfinite(value) and np.all(np.isfinite(grad))
  if gan_type == "nsgan":
    # Two of four logits are confidently wrong by 100: loss = 2 * 100 / 4; the wrong ones keep a
    # gradient of magnitude 1/4 (mean over 4), the right ones ~0.
    np.testing.assert_allclose(value, 50.0, rtol=1e-6)
    wrong = (x < 0) if is_real else (x > 0)
    np.testing.assert_allclose(np.abs(grad[wrong]), 0.25, rtol=1e-6)
    np.testing.assert_allclose(grad[~wrong], 0.0, atol=1e-30)


def test_adversarial_argument_errors():
  x = np.zeros((2, 2), np.float32)
  with pytest.raises(ValueError, match="gan_type"):
    losses.adversarial(x, is_real=True, is_discriminator=True, gan_type="wgan")
  with pytest.raises(ValueError, match="is_real"):
    losses.adversarial(x, is_real=jnp.array(True), is_discriminator=True)


def test_feature_matching_value_and_no_gradient_to_real():
  rng = _rng(10)
  real = [rng.normal(size=(2, 8, 8, 4)).astype(np.float32), rng.normal(size=(2, 4, 4, 8)).astype(np.float32)]
  fake = [rng.normal(size=r.shape).astype(np.float32) for r in real]
  want = sum(np_l1(f, r) for f, r in zip(fake, real))
  np.testing.assert_allclose(jax.jit(losses.feature_matching)(real, fake), want, rtol=RTOL)
  g_real, g_fake = jax.jit(jax.grad(losses.feature_matching, argnums=(0, 1)))(real, fake)
  assert all(np.all(np.asarray(g) == 0) for g in g_real)
  for g, f, r in zip(g_fake, fake, real):
    np.testing.assert_allclose(g, np.sign(f - r) / f.size, rtol=1e-6)
  # Dicts are matched by name, not by insertion order.
  d_real = {"a": real[0], "b": real[1]}
  d_fake = {"b": fake[1], "a": fake[0]}
  np.testing.assert_allclose(losses.feature_matching(d_real, d_fake), want, rtol=RTOL)
  with pytest.raises(ValueError, match="fake_features"):
    losses.feature_matching(real, fake[:1])


def test_edgeconnect_l1():
  out, gt, mask = _images(seed=11)
  want = np_l1(out, gt) / np.mean(1 - mask)
  np.testing.assert_allclose(jax.jit(losses.edgeconnect_l1)(out, gt, mask), want, rtol=RTOL)
  # Hand value: 1x2x2x1, one hole of four, every pixel off by 0.5 -> 0.5 / 0.25 = 2.
  o = np.full((1, 2, 2, 1), 0.5, np.float32)
  g = np.zeros_like(o)
  m = np.ones_like(o)
  m[0, 1, 1, 0] = 0
  assert float(losses.edgeconnect_l1(o, g, m)) == pytest.approx(2.0)
  # No hole at all: stays finite (plain mean).
  assert float(losses.edgeconnect_l1(o, g, np.ones_like(o))) == pytest.approx(0.5)


def _vgg19_fake(x, xp):
  """A tiny stand-in for VGG-19's relu features in array module `xp`."""
  p1 = _avgpool2(xp.concatenate([x, x ** 2], axis=-1))
  p2 = _avgpool2(xp.tanh(2.0 * p1))
  return {
      "relu1_1": xp.maximum(x - 0.3, 0), "relu1_2": x,
      "relu2_1": p1, "relu2_2": xp.maximum(p1 - 0.2, 0),
      "relu3_1": xp.tanh(p1), "relu3_4": p1 ** 2,
      "relu4_1": p2, "relu4_4": xp.sqrt(p2 + 1.5),
      "relu5_1": p2 ** 3, "relu5_2": xp.cos(p2),
  }


def np_vgg19_fake(x):
  return _vgg19_fake(x, np)


def vgg19_fake(x):
  return _vgg19_fake(x, jnp)


def test_edgeconnect_perceptual():
  out, gt, _ = _images(n=2, h=8, w=8, seed=12)
  fo, fg = np_vgg19_fake(out.astype(np.float64)), np_vgg19_fake(gt.astype(np.float64))
  weights = (1.0, 0.5, 2.0, 0.25, 3.0)
  names = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
  want = sum(wt * np_l1(fo[k], fg[k]) for wt, k in zip(weights, names))
  fn = jax.jit(functools.partial(losses.edgeconnect_perceptual, feature_fn=vgg19_fake, weights=weights))
  np.testing.assert_allclose(fn(out, gt), want, rtol=RTOL)
  want1 = sum(np_l1(fo[k], fg[k]) for k in names)
  np.testing.assert_allclose(losses.edgeconnect_perceptual(out, gt, feature_fn=vgg19_fake), want1,
                             rtol=RTOL)
  with pytest.raises(ValueError, match="weights"):
    losses.edgeconnect_perceptual(out, gt, feature_fn=vgg19_fake, weights=(1.0, 1.0))


def test_edgeconnect_style_numpy_and_masking():
  out, gt, mask = _images(n=2, h=8, w=8, seed=13)
  names = ("relu2_2", "relu3_4", "relu4_4", "relu5_2")
  hole = 1.0 - mask.astype(np.float64)
  for m, (xo, xg) in [(None, (out.astype(np.float64), gt.astype(np.float64))),
                      (mask, (out * hole, gt * hole))]:
    fo, fg = np_vgg19_fake(xo), np_vgg19_fake(xg)
    want = sum(np.mean(np.abs(np_gram(fo[k]) - np_gram(fg[k]))) for k in names)
    fn = jax.jit(functools.partial(losses.edgeconnect_style, feature_fn=vgg19_fake))
    got = fn(out, gt) if m is None else fn(out, gt, mask=m)
    np.testing.assert_allclose(got, want, rtol=RTOL)


def test_edgeconnect_style_matches_torch_compute_gram(torch):
  # knazeri/edge-connect StyleLoss: compute_gram on NCHW, f.bmm(f^T) / (h*w*ch), L1Loss, summed.
  out, gt, mask = _images(n=2, h=8, w=8, seed=14)
  hole = 1.0 - mask

  def compute_gram(x):
    b, ch, h, w = x.size()
    f = x.view(b, ch, w * h)
    return f.bmm(f.transpose(1, 2)) / (h * w * ch)

  fo, fg = np_vgg19_fake(out * hole), np_vgg19_fake(gt * hole)
  want = 0.0
  for k in ("relu2_2", "relu3_4", "relu4_4", "relu5_2"):
    to = torch.from_numpy(np.ascontiguousarray(fo[k].transpose(0, 3, 1, 2)).astype(np.float64))
    tg = torch.from_numpy(np.ascontiguousarray(fg[k].transpose(0, 3, 1, 2)).astype(np.float64))
    want += torch.nn.L1Loss()(compute_gram(to), compute_gram(tg)).item()
  got = jax.jit(functools.partial(losses.edgeconnect_style, feature_fn=vgg19_fake))(out, gt, mask=mask)
  np.testing.assert_allclose(got, want, rtol=RTOL)


def test_edgeconnect_feature_losses_give_target_no_gradient():
  out, gt, mask = _images(n=1, h=8, w=8, seed=15)
  for fn in (functools.partial(losses.edgeconnect_perceptual, feature_fn=vgg19_fake),
             functools.partial(losses.edgeconnect_style, feature_fn=vgg19_fake, mask=mask)):
    g_out, g_gt = jax.grad(fn, argnums=(0, 1))(out, gt)
    assert np.all(np.asarray(g_gt) == 0) and np.any(np.asarray(g_out) != 0)


# ---------------------------------------------------------------------------------------------------
# dssim: an optional extra term (1 - SSIM of the composite), checked against scikit-image.


def test_dssim_equals_one_minus_skimage_ssim_and_enters_pconv_loss():
  from skimage.metrics import structural_similarity  # pylint: disable=import-outside-toplevel
  out, gt, mask = _images(n=2, h=16, w=14)
  gt = np.clip(out + 0.1 * _rng(3).standard_normal(out.shape), 0, 1).astype(np.float32)  # correlated pair
  want = 1.0 - np.mean([structural_similarity(o.astype(np.float64), g.astype(np.float64), gaussian_weights=True,
                                              sigma=1.5, use_sample_covariance=False, data_range=1.0,
                                              channel_axis=-1) for o, g in zip(out, gt)])
  np.testing.assert_allclose(jax.jit(losses.dssim)(out, gt), want, rtol=1e-4, atol=1e-5)
  assert float(losses.dssim(gt, gt)) == pytest.approx(0.0, abs=1e-6)
  # In pconv_loss: on the composite, weighted into the total; absent (not zero-valued) by default.
  total, terms = jax.jit(functools.partial(losses.pconv_loss, ssim_weight=2.5))(out, gt, mask)
  comp = np.asarray(losses.composite(out, gt, mask))
  np.testing.assert_allclose(terms["ssim"], losses.dssim(comp, gt), rtol=1e-6)
  np.testing.assert_allclose(total, terms["valid"] + 6 * terms["hole"] + 0.1 * terms["tv"] + 2.5 * terms["ssim"],
                             rtol=1e-6)
  assert "ssim" not in losses.pconv_loss(out, gt, mask)[1]
  # Gradient: finite, only through hole pixels (the composite's), and descending it raises SSIM.
  g = jax.grad(lambda o: losses.pconv_loss(o, gt, mask, ssim_weight=1.0)[1]["ssim"])(jnp.asarray(out))
  assert np.all(np.isfinite(g)) and np.all(np.asarray(g)[np.broadcast_to(mask, g.shape) > 0.5] == 0)
  stepped = out - 0.5 * np.asarray(g) / np.abs(np.asarray(g)).max()
  assert float(losses.pconv_loss(stepped, gt, mask, ssim_weight=1.0)[1]["ssim"]) < float(terms["ssim"])
  with pytest.raises(ValueError, match="11x11"):
    losses.dssim(out[:, :8], gt[:, :8])


def test_mse_term_is_the_composite_squared_error_and_enters_pconv_loss():
  out, gt, mask = _images(n=2, h=9, w=7)
  comp = mask * gt + (1.0 - mask) * out  # the composite, written out (M = 1 valid)
  want = np.mean(np.square(np.broadcast_to(comp, gt.shape) - gt, dtype=np.float64))
  assert want > 0
  total, terms = jax.jit(functools.partial(losses.pconv_loss, mse_weight=40.0))(out, gt, mask)
  np.testing.assert_allclose(terms["mse"], want, rtol=1e-5)
  np.testing.assert_allclose(total, terms["valid"] + 6 * terms["hole"] + 0.1 * terms["tv"] + 40.0 * want, rtol=1e-5)
  assert "mse" not in losses.pconv_loss(out, gt, mask)[1]
  # Its gradient is 2 (I_out - I_gt) / (N C H W) on the hole pixels and 0 on the valid ones.
  g = jax.grad(lambda o: losses.pconv_loss(o, gt, mask, mse_weight=1.0)[1]["mse"])(jnp.asarray(out))
  hole = np.broadcast_to(1.0 - mask, out.shape)
  np.testing.assert_allclose(g, 2.0 * hole * (out - gt) / out.size, rtol=1e-5, atol=1e-9)


def test_edgeconnect_feature_losses_call_features_on_output_and_target_apart():
  out, gt, mask = _pconv_inputs()
  seen = []

  def recording_features(x):
    seen.append(np.asarray(x))
    return fake_features(x)

  losses.edgeconnect_perceptual(out, gt, feature_fn=recording_features, layers=("pool1",), weights=(1.0,))
  losses.edgeconnect_style(out, gt, feature_fn=recording_features, mask=mask, layers=("pool1",))
  hole = 1.0 - np.asarray(mask)
  expected = [out, gt, np.asarray(out) * hole, np.asarray(gt) * hole]
  assert len(seen) == 4
  for got, want in zip(seen, expected):
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_one_namespace_over_the_family_modules():
  families = {"pconv": ("composite", "l1_valid", "l1_hole", "perceptual", "style", "total_variation",
                        "pconv_loss", "PCONV_FEATURE_LAYERS"),
              "edgeconnect": ("edgeconnect_l1", "edgeconnect_perceptual", "edgeconnect_style",
                              "EDGECONNECT_PERCEPTUAL_LAYERS", "EDGECONNECT_STYLE_LAYERS"),
              "gan": ("adversarial", "feature_matching", "GAN_TYPES"), "ssim": ("dssim",)}
  for module, names in families.items():
    for name in names:
      assert getattr(losses, name) is getattr(getattr(losses, module), name), name
  assert set(losses.__all__) == {n for names in families.values() for n in names} | {"gram_matrix"}


def test_losses_import_no_package_module_but_metrics(modules_loaded_by):
  """The documented dependencies: JAX, NumPy and `jaxinpaint.metrics` (no network, no training code)."""
  loaded = modules_loaded_by("jaxinpaint.losses")
  assert "jaxinpaint.losses.gan" in loaded
  assert [m for m in loaded if not m.startswith("jaxinpaint.losses")] == ["jaxinpaint.metrics"]
