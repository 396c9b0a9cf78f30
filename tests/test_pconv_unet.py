"""Tests for jaxinpaint.models.pconv_unet: the PConv U-Net of Liu et al. (2018).

Small models (3 levels, few channels, 16x16 images) keep these cheap; the paper-sized models are only
shape-traced with `jax.eval_shape`.
"""

import math

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

from jaxinpaint.models.pconv_unet import PConvUNet

SMALL = dict(num_levels=3, features=(4, 8, 8), kernel_sizes=(7, 5, 5))


def _inputs(seed=0, n=2, size=16):
  rng = np.random.default_rng(seed)
  image = rng.uniform(size=(n, size, size, 3)).astype(np.float32)
  mask = np.ones((n, size, size, 1), np.float32)
  mask[0, 3:11, 4:13] = 0
  mask[1, 8:, :5] = 0
  mask[1, 0:2, 10:14] = 0
  return image, mask


@pytest.fixture(scope="module")
def small_model():
  model = PConvUNet(**SMALL)
  image, mask = _inputs()
  variables = jax.jit(lambda k: model.init(k, image, mask, train=False))(jax.random.key(0))
  return model, variables


def _count(tree):
  return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(tree))


def _abstract_variables(num_levels, size):
  model = PConvUNet(num_levels=num_levels)
  image = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
  mask = jax.ShapeDtypeStruct((1, size, size, 1), jnp.float32)
  return jax.eval_shape(lambda i, m: model.init(jax.random.key(0), i, m, train=False), image, mask)


def test_output_shape_and_structure(small_model):
  model, variables = small_model
  image, mask = _inputs()
  out = model.apply(variables, image, mask, train=False)
  assert out.shape == image.shape and out.dtype == jnp.float32
  assert np.all(np.isfinite(out))
  params = variables["params"]
  assert sorted(params) == ["dec4", "dec5", "dec6", "enc1", "enc2", "enc3"]
  assert set(params["enc1"]) == {"pconv"} and set(params["dec6"]) == {"pconv"}
  for name in ("enc2", "enc3", "dec4", "dec5"):
    assert set(params[name]) == {"pconv", "bn"}
  shapes = {k: v["pconv"]["kernel"].shape for k, v in params.items()}
  assert shapes == {"enc1": (7, 7, 3, 4), "enc2": (5, 5, 4, 8), "enc3": (5, 5, 8, 8),
                    "dec4": (3, 3, 8 + 8, 8), "dec5": (3, 3, 8 + 4, 4), "dec6": (3, 3, 4 + 3, 3)}
  # Biases only where there is no BatchNorm after the convolution.
  assert {k for k, v in params.items() if "bias" in v["pconv"]} == {"enc1", "dec6"}
  assert model.required_multiple == 8
  # train=True runs and returns updated batch statistics.
  out_t, updates = model.apply(variables, image, mask, train=True, mutable=["batch_stats"])
  assert out_t.shape == image.shape and np.all(np.isfinite(out_t))
  assert set(updates["batch_stats"]) == {"enc2", "enc3", "dec4", "dec5"}


def test_parameter_counts_of_paper_models():
  # Layer table (Liu et al. 2018, supplementary), kernels HWIO; BN has scale+offset (2C params) plus
  # mean+var (2C batch_stats); biases only on enc1 and the last decoder layer:
  #   enc1  7*7*3*64        =   9,408 + 64 bias                   =     9,472
  #   enc2  5*5*64*128      =   204,800 + 256 BN                  =   205,056
  #   enc3  5*5*128*256     =   819,200 + 512 BN                  =   819,712
  #   enc4  3*3*256*512     = 1,179,648 + 1,024 BN                = 1,180,672
  #   enc5..8 3*3*512*512   = 2,359,296 + 1,024 BN = 2,360,320 x4 = 9,441,280
  #   dec9..12 3*3*(512+512)*512 = 4,718,592 + 1,024 = 4,719,616 x4 = 18,878,464
  #   dec13 3*3*(512+256)*256 = 1,769,472 + 512 BN               = 1,769,984
  #   dec14 3*3*(256+128)*128 =   442,368 + 256 BN               =   442,624
  #   dec15 3*3*(128+64)*64   =   110,592 + 128 BN               =   110,720
  #   dec16 3*3*(64+3)*3      =     1,809 + 3 bias               =     1,812
  #   total 8 levels (512x512): 11,656,192 encoder + 21,203,604 decoder = 32,859,796
  # 7 levels (256x256) drops enc8 (2,360,320) and one 1024->512 decoder layer (4,719,616):
  #   32,859,796 - 2,360,320 - 4,719,616 = 25,779,860
  # batch_stats: 2 * (128+256+512*5 + 512*4+256+128+64) = 10,880 (8 levels);
  #              10,880 - 2 * 512 * 2 = 8,832 (7 levels).
  v8 = _abstract_variables(8, 512)
  v7 = _abstract_variables(7, 256)
  assert _count(v8["params"]) == 32_859_796
  assert _count(v7["params"]) == 25_779_860
  assert _count(v8["batch_stats"]) == 10_880
  assert _count(v7["batch_stats"]) == 8_832
  p8 = v8["params"]
  assert sorted(p8) == sorted([f"enc{i}" for i in range(1, 9)] + [f"dec{i}" for i in range(9, 17)])
  assert p8["enc1"]["pconv"]["kernel"].shape == (7, 7, 3, 64)
  assert p8["dec9"]["pconv"]["kernel"].shape == (3, 3, 1024, 512)
  assert p8["dec13"]["pconv"]["kernel"].shape == (3, 3, 768, 256)
  assert p8["dec16"]["pconv"]["kernel"].shape == (3, 3, 67, 3)
  assert sorted(v7["params"]) == sorted([f"enc{i}" for i in range(1, 8)] + [f"dec{i}" for i in range(8, 15)])


@pytest.mark.parametrize("train", [False, True])
def test_hole_only_change_does_not_change_output(small_model, train):
  model, variables = small_model
  image, mask = _inputs()
  noise = np.random.default_rng(3).uniform(-5, 5, image.shape).astype(np.float32)
  changed = np.where(mask == 0, noise, image).astype(np.float32)
  apply = jax.jit(lambda img: model.apply(variables, img, mask, train=train, mutable=["batch_stats"])[0])
  out, out_changed = apply(image), apply(changed)
  np.testing.assert_allclose(out_changed, out, rtol=0, atol=1e-6)
  # Changing a valid pixel must change the output (the test can fail).
  valid_changed = image.copy()
  valid_changed[0, 0, 0] += 1.0
  assert not np.allclose(apply(valid_changed), out, atol=1e-6)


def test_freeze_encoder_bn_changes_batch_norm_behaviour(small_model):
  _, variables = small_model
  image, mask = _inputs()
  before = variables["batch_stats"]
  outputs = {}
  for frozen in (False, True):
    model = PConvUNet(**SMALL, freeze_encoder_bn=frozen)
    out, updates = model.apply(variables, image, mask, train=True, mutable=["batch_stats"])
    outputs[frozen] = out
    after = updates["batch_stats"]
    for name in ("enc2", "enc3"):
      unchanged = all(np.array_equal(after[name]["bn"][k], before[name]["bn"][k]) for k in ("mean", "var"))
      assert unchanged == frozen, (name, frozen)
    for name in ("dec4", "dec5"):  # decoder BN always uses and updates batch statistics
      assert not np.array_equal(after[name]["bn"]["mean"], before[name]["bn"]["mean"])
  assert not np.allclose(outputs[True], outputs[False], atol=1e-4)
  # Frozen + train=False equals unfrozen + train=False (the flag only matters in training).
  frozen_eval = PConvUNet(**SMALL, freeze_encoder_bn=True).apply(variables, image, mask, train=False)
  plain_eval = PConvUNet(**SMALL).apply(variables, image, mask, train=False)
  np.testing.assert_array_equal(frozen_eval, plain_eval)


def test_gradients_are_finite_and_skip_hole_pixels(small_model):
  model, variables = small_model
  image, mask = _inputs()

  def loss(img, params):
    out, _ = model.apply({"params": params, "batch_stats": variables["batch_stats"]}, img, mask,
                         train=True, mutable=["batch_stats"])
    return jnp.mean(out ** 2)

  g_img, g_params = jax.jit(jax.grad(loss, argnums=(0, 1)))(image, variables["params"])
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(g_params))
  g_img = np.asarray(g_img)
  assert np.all(g_img[np.broadcast_to(mask == 0, g_img.shape)] == 0)
  assert np.any(g_img != 0)


def test_bad_sizes_raise_value_error():
  model = PConvUNet(**SMALL)
  image, mask = _inputs()
  key = jax.random.key(0)
  with pytest.raises(ValueError, match=r"H=20.*W=16.*2\*\*num_levels = 8"):
    model.init(key, np.zeros((1, 20, 16, 3), np.float32), np.ones((1, 20, 16, 1), np.float32))
  with pytest.raises(ValueError, match=r"H=16, W=12"):
    model.init(key, np.zeros((1, 16, 12, 3), np.float32), np.ones((1, 16, 12, 1), np.float32))
  with pytest.raises(ValueError, match="mask"):
    model.init(key, image, mask[..., 0])
  with pytest.raises(ValueError, match="features"):
    PConvUNet(num_levels=4, features=(4, 8, 8), kernel_sizes=(7, 5, 5, 3)).init(key, image, mask)
  assert PConvUNet(num_levels=8).required_multiple == 256


def test_fast_conv_formulation_equals_xla_formulation(small_model):
  """The CPU-fast convolutions (jaxinpaint.convs, fused low-resolution decoder) compute the same model."""
  model, variables = small_model
  image, mask = _inputs()
  fast = PConvUNet(**SMALL, conv_impl="fast")
  ref = PConvUNet(**SMALL, conv_impl="xla")

  def loss(params, m):
    out, _ = m.apply({"params": params, "batch_stats": variables["batch_stats"]}, image, mask, train=True,
                     mutable=["batch_stats"])
    return jnp.sum(out * image), out

  (l_fast, out_fast), g_fast = jax.value_and_grad(loss, has_aux=True)(variables["params"], fast)
  (l_ref, out_ref), g_ref = jax.value_and_grad(loss, has_aux=True)(variables["params"], ref)
  np.testing.assert_allclose(out_fast, out_ref, rtol=1e-4, atol=1e-4)
  for a, b in zip(jax.tree.leaves(g_fast), jax.tree.leaves(g_ref)):
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def _conv_operand_dtypes(fn, *args):
  """The operand dtypes of every convolution / matrix product in fn's jaxpr (custom-VJP bodies included)."""
  found = []

  def walk(jaxpr):
    for eqn in jaxpr.eqns:
      if eqn.primitive.name in ("conv_general_dilated", "dot_general"):
        found.append(tuple(str(v.aval.dtype) for v in eqn.invars))
      for sub in jax.extend.core.jaxprs_in_params(eqn.params):
        walk(sub)
  walk(jax.make_jaxpr(fn)(*args).jaxpr)
  return found


def test_bfloat16_compute_matches_float32_and_keeps_float32_state(small_model, assert_bf16_output):
  _, variables = small_model
  image, mask = _inputs()
  model = PConvUNet(**SMALL, dtype=jnp.bfloat16)
  ref_model = PConvUNet(**SMALL)
  for train in (False, True):
    apply = lambda m: jax.jit(lambda v: m.apply(v, image, mask, train=train, mutable=["batch_stats"]))(variables)
    (out, state), (ref, ref_state) = apply(model), apply(ref_model)
    # bf16 keeps 8 significant bits: a few of its roundings (2^-9 each) per layer, 6 layers deep (3%).
    assert_bf16_output(out, ref, min_diff=1e-4)
    # BatchNorm statistics stay float32 and close to the float32 model's.
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(ref_state)):
      assert a.dtype == jnp.float32
      np.testing.assert_allclose(a, b, rtol=0.03, atol=0.03 * float(np.abs(b).max()))
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables))
  # Every convolution of the model runs on bf16 operands (the mask sums are reduce-windows, not convs).
  dtypes = _conv_operand_dtypes(lambda v: model.apply(v, image, mask, train=False), variables)
  assert dtypes and all(d == ("bfloat16", "bfloat16") for d in dtypes), dtypes
  grad = lambda m: jax.jit(jax.grad(lambda p: jnp.sum(m.apply(
      {"params": p, "batch_stats": variables["batch_stats"]}, image, mask, train=False))))(variables["params"])
  errors = []
  for g, r in zip(jax.tree.leaves(grad(model)), jax.tree.leaves(grad(ref_model))):
    assert g.dtype == jnp.float32
    errors.append(float(np.linalg.norm(g - r) / np.linalg.norm(r)))
  # Gradients of a sum over every output pixel cancel a lot; bf16 rounding shows as a few percent of
  # each parameter's gradient norm.
  assert max(errors) < 0.1, errors
