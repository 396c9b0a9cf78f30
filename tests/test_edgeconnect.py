"""Tests for jaxinpaint.models.edgeconnect: parameter counts, ranges, torch parity with ported weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxinpaint import weights
from jaxinpaint.models import edgeconnect as ec


def _init_shapes(module, channels, size=64):
  return jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((1, size, size, channels)), train=False))


@pytest.mark.parametrize("module,channels,expected", [
    (ec.EdgeGenerator(), 3, 10_761_089),
    (ec.InpaintGenerator(), 4, 10_774_595),
    (ec.PatchDiscriminator(), 2, 2_762_752),
    (ec.PatchDiscriminator(), 3, 2_763_776),
])
def test_parameter_counts_match_reference(module, channels, expected):
  variables = _init_shapes(module, channels)
  assert ec.count_params(variables["params"]) == expected
  has_sn = getattr(module, "spectral_norm", False)
  assert (ec.SPECTRAL in variables) == has_sn


def test_init_statistics():
  variables = ec.InpaintGenerator(features=16, residual_blocks=1).init(
      jax.random.key(1), jnp.zeros((1, 16, 16, 4)))
  kernel = np.asarray(variables["params"]["net"]["res1"]["conv1"]["kernel"])
  assert abs(kernel.std() - 0.02) < 0.002 and abs(kernel.mean()) < 0.002
  for leaf_path, leaf in jax.tree_util.tree_leaves_with_path(variables["params"]):
    if leaf_path[-1].key == "bias":
      assert not np.any(np.asarray(leaf))


def test_output_ranges_and_shapes():
  rng = np.random.default_rng(0)
  x3 = jnp.asarray(rng.normal(size=(2, 32, 32, 3)) * 20, jnp.float32)  # large inputs saturate the heads
  g1 = ec.EdgeGenerator(features=8, residual_blocks=1)
  v1 = g1.init(jax.random.key(0), x3)
  e, _ = g1.apply(v1, x3, train=True, mutable=[ec.SPECTRAL])
  assert e.shape == (2, 32, 32, 1) and float(e.min()) >= 0.0 and float(e.max()) <= 1.0
  x4 = jnp.asarray(rng.normal(size=(2, 30, 34, 4)) * 20, jnp.float32)
  g2 = ec.InpaintGenerator(features=8, residual_blocks=1)
  v2 = g2.init(jax.random.key(0), x4)
  y = g2.apply(v2, x4, train=True)
  assert y.shape == (2, 30, 34, 3) and float(y.min()) >= 0.0 and float(y.max()) <= 1.0
  d = ec.PatchDiscriminator(features=8)
  vd = d.init(jax.random.key(0), x4[..., :3])
  logits, feats = d.apply(vd, x4[..., :3])
  # 32 -> 16 -> 8 -> 4 (stride 2), then two k4 s1 p1 convs: 3, 2.
  assert logits.shape == (2, 1, 2, 1) and len(feats) == 5 and feats[-1] is logits
  with pytest.raises(ValueError, match="x"):
    g2.apply(v2, x4[0], train=False)


def test_inputs_use_reference_mask_convention():
  gray = jnp.full((1, 2, 2, 1), 0.3)
  edge = jnp.ones((1, 2, 2, 1))
  mask = jnp.asarray([[1.0, 0.0], [1.0, 1.0]]).reshape(1, 2, 2, 1)  # one hole pixel
  x = np.asarray(ec.edge_generator_inputs(gray, edge, mask))[0]
  np.testing.assert_allclose(x[0, 1], [1.0, 0.0, 1.0])
  np.testing.assert_allclose(x[0, 0], [0.3, 1.0, 0.0])
  y = np.asarray(ec.inpaint_generator_inputs(jnp.full((1, 2, 2, 3), 0.3), edge, mask))[0]
  np.testing.assert_allclose(y[0, 1], [1.0, 1.0, 1.0, 1.0])
  np.testing.assert_allclose(y[1, 1], [0.3, 0.3, 0.3, 1.0], rtol=1e-6)


# ------------------------------------------------------------------------------------------------------
# torch reference built from torch.nn with the authors' layer structure (knazeri/edge-connect networks.py).


def _torch_nets(torch, features, blocks):
  nn = torch.nn

  def sn(m, on):
    return nn.utils.spectral_norm(m) if on else m

  class Res(nn.Module):
    def __init__(self, dim, on):
      super().__init__()
      self.conv_block = nn.Sequential(
          nn.ReflectionPad2d(2), sn(nn.Conv2d(dim, dim, 3, padding=0, dilation=2, bias=not on), on),
          nn.InstanceNorm2d(dim, track_running_stats=False), nn.ReLU(True),
          nn.ReflectionPad2d(1), sn(nn.Conv2d(dim, dim, 3, padding=0, bias=not on), on),
          nn.InstanceNorm2d(dim, track_running_stats=False))

    def forward(self, x):
      return x + self.conv_block(x)

  class Gen(nn.Module):
    def __init__(self, cin, cout, on, head):
      super().__init__()
      f = features
      self.head = head
      self.encoder = nn.Sequential(
          nn.ReflectionPad2d(3), sn(nn.Conv2d(cin, f, 7), on), nn.InstanceNorm2d(f), nn.ReLU(True),
          sn(nn.Conv2d(f, 2 * f, 4, 2, 1), on), nn.InstanceNorm2d(2 * f), nn.ReLU(True),
          sn(nn.Conv2d(2 * f, 4 * f, 4, 2, 1), on), nn.InstanceNorm2d(4 * f), nn.ReLU(True))
      self.middle = nn.Sequential(*[Res(4 * f, on) for _ in range(blocks)])
      self.decoder = nn.Sequential(
          sn(nn.ConvTranspose2d(4 * f, 2 * f, 4, 2, 1), on), nn.InstanceNorm2d(2 * f), nn.ReLU(True),
          sn(nn.ConvTranspose2d(2 * f, f, 4, 2, 1), on), nn.InstanceNorm2d(f), nn.ReLU(True),
          nn.ReflectionPad2d(3), nn.Conv2d(f, cout, 7))
      for m in self.modules():  # BaseNetwork.init_weights('normal', 0.02), but biases random to test them
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
          w = m.weight_orig if hasattr(m, "weight_orig") else m.weight
          nn.init.normal_(w.data, 0.0, 0.02)
          if m.bias is not None:
            nn.init.normal_(m.bias.data, 0.0, 0.02)
      # A wide last layer so the sigmoid/tanh head does not squash differences below the tolerance.
      nn.init.normal_(self.decoder[-1].weight.data, 0.0, 0.5)

    def forward(self, x):
      y = self.decoder(self.middle(self.encoder(x)))
      if y.shape[-2:] != x.shape[-2:]:  # output_align
        y = nn.ReplicationPad2d((0, x.shape[-1] - y.shape[-1], 0, x.shape[-2] - y.shape[-2]))(y)
      return torch.sigmoid(y) if self.head == "sigmoid" else (torch.tanh(y) + 1) / 2

  class Dis(nn.Module):
    def __init__(self, cin):
      super().__init__()
      f = features
      chans = [cin, f, 2 * f, 4 * f, 8 * f, 1]
      for i in range(5):
        layers = [sn(nn.Conv2d(chans[i], chans[i + 1], 4, (2, 2, 2, 1, 1)[i], 1, bias=False), True)]
        if i < 4:
          layers.append(nn.LeakyReLU(0.2, inplace=True))
        setattr(self, f"conv{i + 1}", nn.Sequential(*layers))

    def forward(self, x):
      feats = []
      for i in range(5):
        x = getattr(self, f"conv{i + 1}")(x)
        feats.append(x)
      return x, feats

  return Gen, Dis


def _to_nchw(x):
  return np.transpose(np.asarray(x), (0, 3, 1, 2))


@pytest.mark.parametrize("train", [False, True])
def test_edge_generator_torch_parity_with_spectral_norm(torch, train):
  torch.manual_seed(0)
  gen_cls, _ = _torch_nets(torch, features=8, blocks=2)
  ref = gen_cls(3, 1, True, "sigmoid")
  ref.train()
  x = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype(np.float32)
  with torch.no_grad():
    ref(torch.from_numpy(_to_nchw(x)))  # one training call so u, v are not the fresh random ones
  variables = ec.convert_torch_state_dict(ref.state_dict(), kind="edge", residual_blocks=2)
  assert "u" in variables[ec.SPECTRAL]["net"]["res1"]["conv1"]
  ref.train(train)
  with torch.no_grad():
    want = ref(torch.from_numpy(_to_nchw(x))).numpy()
  model = ec.EdgeGenerator(features=8, residual_blocks=2)
  got, updated = model.apply(variables, jnp.asarray(x), train=train, mutable=[ec.SPECTRAL])
  assert want.std() > 0.1
  np.testing.assert_allclose(_to_nchw(got), want, atol=1e-4)
  # The power-iteration state evolves exactly as torch's (and does not move in eval).
  after = ec.convert_torch_state_dict(ref.state_dict(), kind="edge", residual_blocks=2)[ec.SPECTRAL]
  for a, b in zip(jax.tree_util.tree_leaves(updated[ec.SPECTRAL]), jax.tree_util.tree_leaves(after)):
    np.testing.assert_allclose(np.asarray(a), b, atol=1e-5)
  if not train:
    jax.tree_util.tree_map(np.testing.assert_array_equal, updated[ec.SPECTRAL], variables[ec.SPECTRAL])


def test_inpaint_generator_torch_parity_odd_size(torch):
  torch.manual_seed(1)
  gen_cls, _ = _torch_nets(torch, features=8, blocks=2)
  ref = gen_cls(4, 3, False, "tanh").eval()
  x = np.random.default_rng(1).uniform(size=(2, 30, 34, 4)).astype(np.float32)  # exercises output_align
  with torch.no_grad():
    want = ref(torch.from_numpy(_to_nchw(x))).numpy()
  variables = ec.convert_torch_state_dict(ref.state_dict(), kind="inpaint", residual_blocks=2)
  got = ec.InpaintGenerator(features=8, residual_blocks=2).apply(variables, jnp.asarray(x), train=False)
  assert want.std() > 0.1
  np.testing.assert_allclose(_to_nchw(got), want, atol=1e-4)


def test_discriminator_torch_parity(torch):
  torch.manual_seed(2)
  _, dis_cls = _torch_nets(torch, features=8, blocks=1)
  ref = dis_cls(3)
  for m in ref.modules():
    if isinstance(m, torch.nn.Conv2d):
      torch.nn.init.normal_(m.weight_orig.data, 0.0, 0.02)
  ref.train()
  x = np.random.default_rng(2).uniform(size=(2, 32, 32, 3)).astype(np.float32)
  variables = ec.convert_torch_state_dict(ref.state_dict(), kind="discriminator")
  with torch.no_grad():
    want, want_feats = ref(torch.from_numpy(_to_nchw(x)))
  (got, feats), _ = ec.PatchDiscriminator(features=8).apply(
      variables, jnp.asarray(x), train=True, mutable=[ec.SPECTRAL])
  np.testing.assert_allclose(_to_nchw(got), want.numpy(), atol=1e-4)
  for a, b in zip(feats, want_feats):
    np.testing.assert_allclose(_to_nchw(a), b.numpy(), atol=1e-4)


def test_convert_rejects_wrong_state_dict():
  with pytest.raises(ValueError, match="state_dict"):
    ec.convert_torch_state_dict({"foo.weight": np.zeros((1,))}, kind="edge")
  with pytest.raises(ValueError, match="kind"):
    ec.convert_torch_state_dict({}, kind="bogus")


def _random_authors_state_dict(**config):
  rng = np.random.default_rng(3)
  return {name: rng.normal(size=weights.torch_shape(spec)).astype(np.float32)
          for name, spec in ec.param_specs(**config).items()}


def test_convert_uses_authors_names_and_layouts():
  """G1 with spectral norm, 1 residual block: the authors' keys, OIHW convs and IOHW transposed convs."""
  sd = _random_authors_state_dict(kind="edge", in_channels=3, features=8, residual_blocks=1, spectral_norm=True)
  normed = [f"encoder.{i}" for i in (1, 4, 7)] + ["decoder.0", "decoder.3"]
  want = {f"{p}.{n}" for p in normed for n in ("weight_orig", "weight_u", "weight_v", "bias")}
  want |= {f"middle.0.conv_block.{i}.{n}" for i in (1, 5) for n in ("weight_orig", "weight_u", "weight_v")}
  want |= {"decoder.7.weight", "decoder.7.bias"}
  assert set(sd) == want
  variables = ec.convert_torch_state_dict({"module." + k: v for k, v in sd.items()}, kind="edge",
                                          residual_blocks=1)
  net, spectral = variables["params"]["net"], variables[ec.SPECTRAL]["net"]
  assert net["enc1"]["kernel"][1, 2, 0, 5] == sd["encoder.1.weight_orig"][5, 0, 1, 2]  # (out, in, kh, kw)
  assert net["dec1"]["kernel"][1, 2, 3, 4] == sd["decoder.0.weight_orig"][3, 4, 1, 2]  # (in, out, kh, kw)
  assert "bias" not in net["res1"]["conv1"] and "u" not in spectral.get("dec3", {})
  np.testing.assert_array_equal(spectral["dec1"]["v"], sd["decoder.0.weight_v"])
  # The porter copies: the result never aliases the caller's (possibly live torch) buffers.
  sd["decoder.0.weight_u"][0] += 1.0
  assert spectral["dec1"]["u"][0] != sd["decoder.0.weight_u"][0]
  # Checkpoints from torch < 1.1 lack weight_v: normalize(W^T u) with W in torch's (C_out, -1) layout.
  old = {k: v for k, v in sd.items() if not k.endswith("weight_v")}
  v = ec.convert_torch_state_dict(old, kind="edge", residual_blocks=1)[ec.SPECTRAL]["net"]["dec1"]["v"]
  w = np.transpose(sd["decoder.0.weight_orig"], (1, 0, 2, 3)).reshape(16, -1)
  want_v = w.T @ sd["decoder.0.weight_u"]
  np.testing.assert_allclose(v, want_v / np.linalg.norm(want_v), rtol=1e-5)


def test_convert_names_bad_tensors():
  sd = _random_authors_state_dict(kind="inpaint", in_channels=4, features=8, residual_blocks=1,
                                  spectral_norm=False)
  bad = dict(sd, **{"middle.0.conv_block.5.weight": np.zeros((32, 16, 3, 3), np.float32)})
  with pytest.raises(ValueError, match=r"'middle\.0\.conv_block\.5\.weight' has shape \(32, 16, 3, 3\), "
                     r"expected \(32, 32, 3, 3\)"):
    ec.convert_torch_state_dict(bad, kind="inpaint", residual_blocks=1)
  with pytest.raises(ValueError, match=r"unexpected parameters .*middle\.1\.conv_block\.1\.weight"):
    ec.convert_torch_state_dict(dict(sd, **{"middle.1.conv_block.1.weight": sd["middle.0.conv_block.1.weight"]}),
                                kind="inpaint", residual_blocks=1)
  with pytest.raises(ValueError, match=r"missing parameter 'middle\.1\.conv_block\.1\.bias'"):
    ec.convert_torch_state_dict(sd, kind="inpaint", residual_blocks=2)


# ------------------------------------------------------------------------------------------------------
# Mixed precision: bf16 convolutions and activations, float32 parameters, statistics and outputs.


@pytest.mark.parametrize("kind", ["edge", "inpaint", "discriminator"])
def test_bfloat16_compute_matches_float32_and_keeps_float32_state(kind, assert_bf16_output):
  rng = np.random.default_rng(3)
  make = {"edge": (lambda dt: ec.EdgeGenerator(features=8, residual_blocks=2, dtype=dt), 3),
          "inpaint": (lambda dt: ec.InpaintGenerator(features=8, residual_blocks=2, dtype=dt), 4),
          "discriminator": (lambda dt: ec.PatchDiscriminator(features=8, dtype=dt), 3)}[kind]
  build, channels = make
  x = jnp.asarray(rng.uniform(size=(2, 32, 32, channels)), jnp.float32)
  model, ref_model = build(jnp.bfloat16), build(jnp.float32)
  variables = ref_model.init(jax.random.key(0), x)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables))

  def run(m):
    out, state = jax.jit(lambda v: m.apply(v, x, train=True, mutable=[ec.SPECTRAL]))(variables)
    return (out if kind != "discriminator" else out[1]), state
  (out, state), (ref, ref_state) = run(model), run(ref_model)
  outs, refs = (out, ref) if kind == "discriminator" else ([out], [ref])
  for o, r in zip(outs, refs):
    assert_bf16_output(o, r, min_diff=1e-5)
  # Spectral-norm vectors: float32, the power iteration on the float32 kernels (identical to float32's).
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(ref_state)):
    assert a.dtype == jnp.float32
    np.testing.assert_array_equal(a, b)
  assert (ec.SPECTRAL in state) == (kind != "inpaint")
  # Gradients of an L1 loss reach the float32 parameters as float32 and point the float32 model's way. bf16
  # rounds the conv outputs in front of each instance norm, whose backward pass amplifies that (XLA's
  # native bf16 convolutions give the same ~20% relative error on the generators' kernels at this init);
  # biases in front of an instance norm have a zero gradient up to rounding and are left out.
  target = rng.uniform(size=refs[-1].shape).astype(np.float32)

  def grads(m):
    def loss(p):
      out = m.apply({**variables, "params": p}, x, train=True, mutable=[ec.SPECTRAL])[0]
      return jnp.sum(jnp.abs((out[0] if kind == "discriminator" else out) - target))
    return jax.tree.leaves(jax.jit(jax.grad(loss))(variables["params"]))
  got, want = grads(model), grads(ref_model)
  largest = max(float(np.linalg.norm(r)) for r in want)
  checked = 0
  for g, r in zip(got, want):
    assert g.dtype == jnp.float32 and np.all(np.isfinite(g))
    if np.linalg.norm(r) > 1e-2 * largest:
      cosine = float(np.vdot(g, r) / (np.linalg.norm(g) * np.linalg.norm(r)))
      assert cosine > 0.95, cosine
      checked += 1
  assert checked >= 5
