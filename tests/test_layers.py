"""Tests for jaxinpaint.layers: partial convolution against references written from Eq. (1)-(2).

References: a NumPy loop over windows with a full multi-channel mask (float64), and, with torch, a
re-implementation of NVIDIA's `PartialConv2d(multi_channel=True, return_mask=True)` forward.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxinpaint import layers

N, H, W, C_IN, C_OUT = 2, 9, 10, 3, 4


def np_partial_conv(x, mask, kernel, bias, stride):
  """Eq. (1)-(2) of Liu et al. (2018), loops over windows. `mask` is the full (N, H, W, C_in) mask."""
  x, mask, kernel = (np.asarray(a, np.float64) for a in (x, mask, kernel))
  mask = np.broadcast_to(mask, x.shape)
  kh, kw, c_in, c_out = kernel.shape
  ph, pw = kh // 2, kw // 2
  pad = ((0, 0), (ph, ph), (pw, pw), (0, 0))
  xm, mp = np.pad(x * mask, pad), np.pad(mask, pad)  # zero padding: borders are holes
  n, h, w, _ = x.shape
  ho, wo = (h + 2 * ph - kh) // stride + 1, (w + 2 * pw - kw) // stride + 1
  y = np.zeros((n, ho, wo, c_out))
  new_mask = np.zeros((n, ho, wo, 1))
  for b, i, j in itertools.product(range(n), range(ho), range(wo)):
    window = xm[b, i * stride:i * stride + kh, j * stride:j * stride + kw]
    valid = mp[b, i * stride:i * stride + kh, j * stride:j * stride + kw].sum()
    if valid > 0:
      y[b, i, j] = np.einsum("hwc,hwco->o", window, kernel) * (kh * kw * c_in) / valid
      if bias is not None:
        y[b, i, j] += bias
      new_mask[b, i, j] = 1.0
  return y, new_mask


def random_inputs(seed, kernel_size, c_in=C_IN, per_channel=False):
  rng = np.random.default_rng(seed)
  x = rng.uniform(-1, 1, (N, H, W, c_in)).astype(np.float32)
  mask_shape = (N, H, W, c_in if per_channel else 1)
  mask = (rng.uniform(size=mask_shape) > 0.5).astype(np.float32)
  mask[0, 1:9, 1:9] = 0  # big hole: some windows (even 7x7, stride 2) see no valid entry
  kernel = (rng.normal(size=(kernel_size, kernel_size, c_in, C_OUT)) / np.sqrt(kernel_size ** 2 * c_in))
  bias = rng.normal(size=(C_OUT,))
  return x, mask, kernel.astype(np.float32), bias.astype(np.float32)


@pytest.mark.parametrize("kernel_size", [3, 5, 7])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("per_channel", [False, True], ids=["NHW1", "NHWC"])
def test_matches_numpy_reference(kernel_size, stride, use_bias, per_channel):
  x, mask, kernel, bias = random_inputs(kernel_size * 10 + stride, kernel_size, per_channel=per_channel)
  bias = bias if use_bias else None
  y, new_mask = layers.partial_conv(x, mask, kernel, bias, strides=stride)
  y_ref, new_mask_ref = np_partial_conv(x, mask, kernel, bias, stride)
  assert y.shape == y_ref.shape and new_mask.shape == new_mask_ref.shape
  # The case mix must contain both empty and partially valid windows, or the test proves little.
  assert 0 < new_mask_ref.sum() < new_mask_ref.size
  np.testing.assert_allclose(new_mask, new_mask_ref, rtol=0, atol=0)
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
  # Exactly zero, bias included, where the window held no valid entry.
  assert np.all(np.asarray(y)[new_mask_ref[..., 0] == 0] == 0)


@pytest.mark.parametrize("stride", [1, 2])
def test_grouped_mask_equals_nhwc_mask_and_reference(stride):
  rng = np.random.default_rng(7)
  c1, c2 = 2, 3
  x1 = rng.uniform(-1, 1, (N, H, W, c1)).astype(np.float32)
  x2 = rng.uniform(-1, 1, (N, H, W, c2)).astype(np.float32)
  m1 = (rng.uniform(size=(N, H, W, 1)) > 0.3).astype(np.float32)
  m2 = (rng.uniform(size=(N, H, W, 1)) > 0.7).astype(np.float32)
  m1[0, :6, :6] = 0
  m2[0, :6, :6] = 0
  kernel = rng.normal(size=(3, 3, c1 + c2, C_OUT)).astype(np.float32) / np.sqrt(9 * (c1 + c2))
  bias = rng.normal(size=(C_OUT,)).astype(np.float32)
  x = np.concatenate([x1, x2], axis=-1)
  full_mask = np.concatenate([np.repeat(m1, c1, -1), np.repeat(m2, c2, -1)], axis=-1)

  y_g, nm_g = layers.partial_conv(x, [(m1, c1), (m2, c2)], kernel, bias, strides=stride)
  y_c, nm_c = layers.partial_conv(x, full_mask, kernel, bias, strides=stride)
  y_ref, nm_ref = np_partial_conv(x, full_mask, kernel, bias, stride)
  assert 0 < nm_ref.sum() < nm_ref.size
  np.testing.assert_allclose(nm_g, nm_ref, rtol=0, atol=0)
  np.testing.assert_allclose(nm_c, nm_ref, rtol=0, atol=0)
  np.testing.assert_allclose(y_g, y_ref, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(y_g, y_c, rtol=1e-6, atol=1e-6)
  # A shared-mask shortcut (union or first mask) would be wrong here: the masks really differ.
  y_union, _ = layers.partial_conv(x, np.maximum(m1, m2), kernel, bias, strides=stride)
  assert not np.allclose(y_union, y_ref, atol=1e-3)


def test_nhw1_mask_equals_broadcast_nhwc_mask():
  x, mask, kernel, bias = random_inputs(3, 5)
  y1, nm1 = layers.partial_conv(x, mask, kernel, bias, strides=2)
  yc, nmc = layers.partial_conv(x, np.repeat(mask, C_IN, -1), kernel, bias, strides=2)
  np.testing.assert_array_equal(nm1, nmc)
  np.testing.assert_allclose(y1, yc, rtol=1e-6, atol=1e-6)


def _plain_conv_np(x, kernel):
  """Zero-padded stride-1 convolution, no bias."""
  kh, kw = kernel.shape[:2]
  xp = np.pad(np.asarray(x, np.float64), ((0, 0), (kh // 2,) * 2, (kw // 2,) * 2, (0, 0)))
  n, h, w, _ = x.shape
  out = np.zeros((n, h, w, kernel.shape[-1]))
  for i, j in itertools.product(range(h), range(w)):
    out[:, i, j] = np.einsum("nhwc,hwco->no", xp[:, i:i + kh, j:j + kw], kernel)
  return out


def test_all_ones_mask_interior_is_plain_conv_and_border_ratios():
  x, _, kernel, bias = random_inputs(11, 3)
  mask = np.ones((N, H, W, 1), np.float32)
  y, new_mask = layers.partial_conv(x, mask, kernel, bias)
  y = np.asarray(y, np.float64)
  raw = _plain_conv_np(x, kernel)
  np.testing.assert_array_equal(new_mask, 1.0)
  # Interior: a plain convolution + bias.
  np.testing.assert_allclose(y[:, 1:-1, 1:-1], raw[:, 1:-1, 1:-1] + bias, rtol=1e-5, atol=1e-5)
  # Edges (not corners): 9/6 = 1.5 times the zero-padded convolution; corners 9/4 = 2.25.
  ratio = np.ones((H, W))
  ratio[0, :] = ratio[-1, :] = ratio[:, 0] = ratio[:, -1] = 1.5
  ratio[0, 0] = ratio[0, -1] = ratio[-1, 0] = ratio[-1, -1] = 2.25
  np.testing.assert_allclose(y, raw * ratio[None, :, :, None] + bias, rtol=1e-5, atol=1e-5)
  # The same on numbers one can check by hand: ones in, ones kernel -> 9 * C_in everywhere
  # (corner: 4 * C_in * 2.25, edge: 6 * C_in * 1.5).
  y1, _ = layers.partial_conv(np.ones((1, 4, 5, 2), np.float32), np.ones((1, 4, 5, 1), np.float32),
                              np.ones((3, 3, 2, 1), np.float32))
  np.testing.assert_allclose(y1, 18.0, rtol=1e-6)
  y0, _ = layers.partial_conv(np.ones((1, 4, 5, 2), np.float32), np.ones((1, 4, 5, 1), np.float32),
                              np.ones((3, 3, 2, 1), np.float32) / 18.0)
  assert abs(float(y0[0, 0, 0, 0]) - 4 * 2 / 18 * 2.25) < 1e-6
  assert abs(float(y0[0, 0, 2, 0]) - 6 * 2 / 18 * 1.5) < 1e-6


def test_hole_pixels_have_no_influence_and_zero_gradient():
  x, mask, kernel, bias = random_inputs(5, 5)
  hole = np.broadcast_to(mask == 0, x.shape)
  perturbed = np.where(hole, np.random.default_rng(1).normal(size=x.shape) * 100, x).astype(np.float32)
  y, nm = layers.partial_conv(x, mask, kernel, bias)
  y_p, nm_p = layers.partial_conv(perturbed, mask, kernel, bias)
  np.testing.assert_array_equal(y, y_p)
  np.testing.assert_array_equal(nm, nm_p)
  # ...while a valid pixel does change it (so this test can fail).
  valid_changed = np.where(~hole, x + 1, x).astype(np.float32)
  assert not np.allclose(layers.partial_conv(valid_changed, mask, kernel, bias)[0], y)

  cotangent = np.random.default_rng(2).normal(size=y.shape).astype(np.float32)
  loss = lambda x_, m_: jnp.sum(layers.partial_conv(x_, m_, kernel, bias)[0] * cotangent)
  grad_x, grad_m = jax.grad(loss, argnums=(0, 1))(jnp.asarray(x), jnp.asarray(mask))
  grad_x = np.asarray(grad_x)
  assert np.all(grad_x[hole] == 0)
  assert np.count_nonzero(grad_x[~hole]) > 0.9 * np.count_nonzero(~hole)
  np.testing.assert_array_equal(grad_m, 0)  # the mask branch is under stop_gradient


@pytest.mark.parametrize("kind", ["all_hole", "all_valid", "single_pixel"])
@pytest.mark.parametrize("stride", [1, 2])
def test_finite_values_and_gradients(kind, stride):
  x, _, kernel, bias = random_inputs(9, 3)
  mask = np.zeros((N, H, W, 1), np.float32) if kind != "all_valid" else np.ones((N, H, W, 1), np.float32)
  if kind == "single_pixel":
    mask[:, 4, 4] = 1

  def loss(x_, k_, b_):
    y, _ = layers.partial_conv(x_, mask, k_, b_, strides=stride)
    return jnp.sum(y ** 2)

  y, nm = layers.partial_conv(x, mask, kernel, bias, strides=stride)
  grads = jax.grad(loss, argnums=(0, 1, 2))(x, kernel, bias)
  assert np.all(np.isfinite(y)) and np.all(np.isfinite(nm))
  for g in grads:
    assert np.all(np.isfinite(g))
  if kind == "all_hole":
    np.testing.assert_array_equal(y, 0)  # bias included
    np.testing.assert_array_equal(nm, 0)
    for g in grads:
      np.testing.assert_array_equal(g, 0)
  if kind == "single_pixel":
    y_ref, nm_ref = np_partial_conv(x, mask, kernel, bias, stride)
    np.testing.assert_array_equal(nm, nm_ref)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)


def test_jit_and_vmap():
  x, mask, kernel, bias = random_inputs(13, 3)
  y, nm = layers.partial_conv(x, mask, kernel, bias, strides=2)
  y_j, nm_j = jax.jit(layers.partial_conv, static_argnames="strides")(x, mask, kernel, bias, strides=2)
  np.testing.assert_allclose(y_j, y, rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(nm_j, nm)
  # vmap over an extra leading axis (here: splitting the batch) and over kernels.
  xs, ms = x.reshape(2, 1, H, W, C_IN), mask.reshape(2, 1, H, W, 1)
  y_v, nm_v = jax.vmap(lambda a, b: layers.partial_conv(a, b, kernel, bias, strides=2))(xs, ms)
  np.testing.assert_allclose(y_v.reshape(y.shape), y, rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(nm_v.reshape(nm.shape), nm)
  kernels = np.stack([kernel, 2 * kernel])
  y_k, _ = jax.vmap(lambda k: layers.partial_conv(x, mask, k, None))(kernels)
  y0, _ = layers.partial_conv(x, mask, kernel, None)
  np.testing.assert_allclose(y_k[1], 2 * np.asarray(y0), rtol=1e-5, atol=1e-5)


def test_module_params_and_apply():
  x, mask, _, _ = random_inputs(17, 5, per_channel=True)
  module = layers.PartialConv(features=C_OUT, kernel_size=5, strides=2)
  variables = module.init(jax.random.key(0), x, mask)
  params = variables["params"]
  assert params["kernel"].shape == (5, 5, C_IN, C_OUT) and params["bias"].shape == (C_OUT,)
  params = {"kernel": params["kernel"], "bias": jnp.arange(C_OUT, dtype=jnp.float32)}
  y, nm = jax.jit(module.apply)({"params": params}, x, mask)
  y_ref, nm_ref = np_partial_conv(x, mask, np.asarray(params["kernel"]), np.arange(C_OUT), 2)
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(nm, nm_ref)
  no_bias = layers.PartialConv(features=C_OUT, kernel_size=3, use_bias=False).init(jax.random.key(0), x, mask)
  assert set(no_bias["params"]) == {"kernel"}
  # Gradients flow to the params through the module.
  g = jax.grad(lambda p: jnp.sum(module.apply({"params": p}, x, mask)[0]))(params)
  assert np.all(np.isfinite(g["kernel"])) and np.any(g["kernel"] != 0)


def test_upsample_partial_conv_matches_reference():
  rng = np.random.default_rng(21)
  x = rng.uniform(-1, 1, (N, 4, 5, 3)).astype(np.float32)
  m = (rng.uniform(size=(N, 4, 5, 1)) > 0.5).astype(np.float32)
  skip = rng.uniform(-1, 1, (N, 8, 10, 2)).astype(np.float32)
  skip_m = (rng.uniform(size=(N, 8, 10, 1)) > 0.5).astype(np.float32)
  m[0] = 0
  skip_m[0, :4, :4] = 0
  kernel = rng.normal(size=(3, 3, 5, C_OUT)).astype(np.float32) / np.sqrt(45)
  bias = rng.normal(size=(C_OUT,)).astype(np.float32)
  up = lambda a: np.repeat(np.repeat(a, 2, axis=1), 2, axis=2)
  np.testing.assert_array_equal(layers.nearest_upsample_2x(x), up(x))
  full_x = np.concatenate([up(x), skip], -1)
  full_m = np.concatenate([np.repeat(up(m), 3, -1), np.repeat(skip_m, 2, -1)], -1)
  y_ref, nm_ref = np_partial_conv(full_x, full_m, kernel, bias, 1)
  y, nm = layers.upsample_partial_conv(x, m, kernel, bias, skip=skip, skip_mask=skip_m)
  assert 0 < nm_ref.sum() < nm_ref.size
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(nm, nm_ref)
  module = layers.UpsamplePartialConv(C_OUT, 3)
  variables = module.init(jax.random.key(0), x, m, skip, skip_m)
  assert variables["params"]["kernel"].shape == (3, 3, 5, C_OUT)
  y_mod, _ = module.apply({"params": {"kernel": kernel, "bias": bias}}, x, m, skip, skip_m)
  np.testing.assert_allclose(y_mod, y_ref, rtol=1e-5, atol=1e-5)


def test_bad_arguments_raise_value_error():
  x, mask, kernel, bias = random_inputs(1, 3)
  with pytest.raises(ValueError, match="mask"):
    layers.partial_conv(x, mask[:, :5], kernel, bias)
  with pytest.raises(ValueError, match="mask"):
    layers.partial_conv(x, np.ones((N, H, W, 2), np.float32), kernel, bias)
  with pytest.raises(ValueError, match="kernel"):
    layers.partial_conv(x, mask, kernel[:, :, :2], bias)
  with pytest.raises(ValueError, match="bias"):
    layers.partial_conv(x, mask, kernel, bias[:2])
  with pytest.raises(ValueError, match="channels"):
    layers.partial_conv(x, [(mask, 1), (mask, 1)], kernel, bias)
  with pytest.raises(ValueError, match="x"):
    layers.partial_conv(x[0], mask, kernel, bias)


def test_matches_torch_nvidia_partialconv2d(torch):
  """NVIDIA's PartialConv2d(multi_channel=True, return_mask=True) forward, re-implemented, ported weights."""
  F = torch.nn.functional

  def nvidia_forward(inp, mask_in, weight, bias, stride, padding):
    with torch.no_grad():
      updater = torch.ones_like(weight)  # (out, in, kh, kw): multi_channel weight_maskUpdater
      slide_winsize = updater.shape[1] * updater.shape[2] * updater.shape[3]
      update_mask = F.conv2d(mask_in, updater, bias=None, stride=stride, padding=padding)
      mask_ratio = slide_winsize / (update_mask + 1e-8)
      update_mask = torch.clamp(update_mask, 0, 1)
      mask_ratio = mask_ratio * update_mask
    raw_out = F.conv2d(inp * mask_in, weight, bias, stride=stride, padding=padding)
    if bias is not None:
      bias_view = bias.view(1, -1, 1, 1)
      output = (raw_out - bias_view) * mask_ratio + bias_view
      output = output * update_mask
    else:
      output = raw_out * mask_ratio
    return output, update_mask

  for kernel_size, stride, use_bias in [(7, 2, True), (5, 2, False), (3, 1, True), (3, 2, True)]:
    x, mask, kernel, bias = random_inputs(kernel_size + stride, kernel_size, per_channel=True)
    bias = bias if use_bias else None
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))
    w_torch = t(kernel).permute(3, 2, 0, 1).contiguous()  # our HWIO <- torch (out, in, kh, kw)
    out, update = nvidia_forward(t(x).permute(0, 3, 1, 2), t(mask).permute(0, 3, 1, 2), w_torch,
                                 None if bias is None else t(bias), stride, kernel_size // 2)
    y, nm = layers.partial_conv(x, mask, kernel, bias, strides=stride)
    np.testing.assert_allclose(y, out.permute(0, 2, 3, 1).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(nm[..., 0], update[:, 0].numpy())


def test_nhw1_fast_path_uses_one_window_sum_not_a_mask_convolution():
  x, mask, kernel, bias = random_inputs(23, 3)
  jaxpr = str(jax.make_jaxpr(lambda a, m: layers.partial_conv(a, m, kernel, bias, strides=2))(x, mask))
  assert jaxpr.count("conv_general_dilated") == 1  # only the feature convolution
  assert jaxpr.count("reduce_window_sum") == 1


def test_non_square_kernel_matches_reference():
  rng = np.random.default_rng(29)
  x = rng.uniform(-1, 1, (N, H, W, C_IN)).astype(np.float32)
  mask = (rng.uniform(size=(N, H, W, 1)) > 0.6).astype(np.float32)
  kernel = rng.normal(size=(3, 5, C_IN, C_OUT)).astype(np.float32) / np.sqrt(45)
  bias = rng.normal(size=(C_OUT,)).astype(np.float32)
  y, nm = layers.partial_conv(x, mask, kernel, bias, strides=2)
  y_ref, nm_ref = np_partial_conv(x, mask, kernel, bias, 2)
  np.testing.assert_array_equal(nm, nm_ref)
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)


# --- The fused low-resolution decoder step (jaxinpaint.convs) equals the straightforward formulation. ---

@pytest.mark.parametrize("with_skip", [True, False])
@pytest.mark.parametrize("use_bias", [True, False])
def test_fused_upsample_partial_conv_equals_straightforward(with_skip, use_bias):
  rng = np.random.default_rng(41)
  n, h, w, c_x, c_skip, c_out = 2, 4, 5, 3, 2, 4
  x = rng.uniform(-1, 1, (n, h, w, c_x)).astype(np.float32)
  mask = (rng.uniform(size=(n, h, w, 1)) > 0.5).astype(np.float32)
  mask[0, :3, :4] = 0  # a hole larger than the upsampled 3x3 window
  skip = rng.uniform(-1, 1, (n, 2 * h, 2 * w, c_skip)).astype(np.float32)
  skip_mask = (rng.uniform(size=(n, 2 * h, 2 * w, 1)) > 0.4).astype(np.float32)
  skip_mask[0, :7, :9] = 0  # together with the hole above: windows without any valid entry
  c_in = c_x + (c_skip if with_skip else 0)
  kernel = (rng.normal(size=(3, 3, c_in, c_out)) / np.sqrt(9 * c_in)).astype(np.float32)
  bias = rng.normal(size=(c_out,)).astype(np.float32) if use_bias else None
  extra = dict(skip=skip, skip_mask=skip_mask) if with_skip else {}

  def run(impl, x, kernel, bias, skip):
    kw = dict(extra, skip=skip) if with_skip else {}
    return layers.upsample_partial_conv(x, mask, kernel, bias, impl=impl, **kw)

  (y_fast, m_fast), (y_ref, m_ref) = run("fast", x, kernel, bias, skip), run("xla", x, kernel, bias, skip)
  np.testing.assert_array_equal(m_fast, m_ref)
  assert np.any(np.asarray(m_ref) == 0)  # the all-hole case is exercised
  np.testing.assert_allclose(y_fast, y_ref, rtol=1e-5, atol=1e-5)
  # And both equal the NumPy reference on the explicitly upsampled, concatenated input.
  up = lambda a: np.repeat(np.repeat(a, 2, axis=1), 2, axis=2)
  feats = np.concatenate([up(x), skip], -1) if with_skip else up(x)
  full_mask = np.concatenate([np.broadcast_to(up(mask), up(x).shape),
                              np.broadcast_to(skip_mask, skip.shape)], -1) if with_skip else up(mask)
  y_np, m_np = np_partial_conv(feats, full_mask, kernel, bias, 1)
  np.testing.assert_allclose(y_fast, y_np, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(m_fast, m_np)

  proj = rng.normal(size=y_ref.shape).astype(np.float32)
  bias_arg = np.zeros((c_out,), np.float32) if bias is None else bias
  grads = {}
  for impl in ("fast", "xla"):
    loss = lambda x, k, b, s: jnp.sum(run(impl, x, k, b if use_bias else None, s)[0] * proj)
    grads[impl] = jax.grad(loss, argnums=(0, 1, 2, 3))(x, kernel, bias_arg, skip)
  for name, g_fast, g_ref in zip(("x", "kernel", "bias", "skip"), grads["fast"], grads["xla"]):
    np.testing.assert_allclose(g_fast, g_ref, rtol=1e-4, atol=1e-4, err_msg=f"gradient wrt {name}")


def test_partial_conv_fast_and_xla_impls_agree_with_gradients():
  x, mask, kernel, bias = random_inputs(43, 5)
  proj = np.random.default_rng(44).normal(size=(N, 5, 5, C_OUT)).astype(np.float32)
  grads, outs = [], []
  for impl in ("fast", "xla"):
    f = lambda x, k, b: layers.partial_conv(x, mask, k, b, strides=2, impl=impl)[0]
    outs.append(f(x, kernel, bias))
    grads.append(jax.grad(lambda x, k, b: jnp.sum(f(x, k, b) * proj), argnums=(0, 1, 2))(x, kernel, bias))
  np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-5)
  for g_fast, g_ref in zip(*grads):
    np.testing.assert_allclose(g_fast, g_ref, rtol=1e-4, atol=1e-4)


def test_mask_branch_is_not_differentiated():
  """The backward pass of the fused decoder step holds no mask-sum (reduce_window) computation."""
  x, mask, kernel, bias = random_inputs(45, 3)
  skip_mask = np.ones((N, 2 * H, 2 * W, 1), np.float32)
  skip = np.ones((N, 2 * H, 2 * W, 2), np.float32)
  kernel = np.ones((3, 3, C_IN + 2, C_OUT), np.float32)
  f = lambda x, k: jnp.sum(layers.upsample_partial_conv(x, mask, k, bias, skip=skip, skip_mask=skip_mask,
                                                        impl="fast")[0])
  _, vjp = jax.vjp(f, x, kernel)
  backward_jaxpr = str(jax.make_jaxpr(vjp)(1.0))
  assert "reduce_window" not in backward_jaxpr


# --- Mixed precision: bf16 convolution, float32 mask sums, renormalisation and bias. ---

@pytest.mark.parametrize("fused", [False, True], ids=["partial_conv", "upsample_partial_conv"])
def test_bfloat16_renormalisation_and_bias_are_float32(fused):
  # Integer features and kernel make the bf16 convolution exact (|raw| <= 2 * 9 * 2), so the only
  # rounding left is the output's: y_bf16 must equal the float32 result rounded once. A ratio
  # sum(1)/sum(M) or a bias rounded to bf16 first (e.g. 18/7 -> 2.5703125) would differ.
  rng = np.random.default_rng(51)
  x = rng.integers(0, 2, (N, 4, 5, 2)).astype(np.float32)
  mask = (rng.uniform(size=(N, 4, 5, 1)) > 0.4).astype(np.float32)
  kernel = rng.integers(-1, 2, (3, 3, 2, C_OUT)).astype(np.float32)
  bias = np.asarray([0.1234567, -1.7654321, 3.3333333, 0.0], np.float32)
  if fused:
    skip = rng.integers(0, 2, (N, 8, 10, 1)).astype(np.float32)
    skip_mask = (rng.uniform(size=(N, 8, 10, 1)) > 0.4).astype(np.float32)
    kernel = rng.integers(-1, 2, (3, 3, 3, C_OUT)).astype(np.float32)
    run = lambda x, k, s: layers.upsample_partial_conv(x, mask, k, bias, skip=s, skip_mask=skip_mask, impl="fast")
    args32 = (x, kernel, skip)
  else:
    run = lambda x, k: layers.partial_conv(x, mask, k, bias)
    args32 = (x, kernel)
  y32, m32 = run(*args32)
  y16, m16 = run(*(jnp.asarray(a, jnp.bfloat16) for a in args32))
  assert y16.dtype == jnp.bfloat16 and m16.dtype == jnp.float32
  np.testing.assert_array_equal(m16, m32)
  y32_in_bf16 = np.asarray(jnp.asarray(y32, jnp.bfloat16), np.float32)
  assert np.mean(y32_in_bf16 != np.asarray(y32)) > 0.5  # most outputs are not bf16 numbers: rounding matters
  np.testing.assert_array_equal(np.asarray(y16, np.float32), y32_in_bf16)


def test_partial_conv_module_bfloat16_keeps_float32_params():
  x, mask, _, _ = random_inputs(53, 3)
  module = layers.PartialConv(features=C_OUT, kernel_size=3, dtype=jnp.bfloat16)
  variables = module.init(jax.random.key(0), x, mask)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables))
  y, nm = module.apply(variables, x, mask)
  assert y.dtype == jnp.bfloat16 and nm.dtype == jnp.float32
  y32, _ = layers.PartialConv(features=C_OUT, kernel_size=3).apply(variables, x, mask)
  np.testing.assert_allclose(np.asarray(y, np.float32), y32, rtol=2e-2, atol=2e-2 * float(np.abs(y32).max()))
  g = jax.grad(lambda p: jnp.sum(module.apply({"params": p}, x, mask)[0].astype(jnp.float32)))(variables["params"])
  assert all(leaf.dtype == jnp.float32 and np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(g))
