"""Tests for jaxinpaint.models.vgg: parity with a torchvision-layout VGG built in torch, freezing,
jit/grad use inside a loss, and clear errors for bad weight files."""

from flax import linen
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import save_file

from jaxinpaint import losses, weights
from jaxinpaint.models import vgg

# Every named layer a loss in this project uses: PConv (VGG-16) pool1-3; EdgeConnect (VGG-19)
# perceptual relu1_1..relu5_1 and style relu2_2, relu3_4, relu4_4, relu5_2.
LOSS_LAYERS = {16: ("pool1", "pool2", "pool3"),
               19: ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1", "relu2_2", "relu3_4",
                    "relu4_4", "relu5_2")}
# Non-square, and 48 -> 24 -> 12 -> 6 -> 3 -> 1 exercises floor pooling on an odd size.
INPUT_SHAPE = (2, 32, 48, 3)


def torch_vgg_features(torch, depth):
  """torchvision's ``vgg{depth}().features`` written out with torch.nn layers (no torchvision)."""
  nn = torch.nn
  layers, cin = [], 3
  for block, count in enumerate(vgg.BLOCKS[depth]):
    for _ in range(count):
      layers += [nn.Conv2d(cin, vgg.WIDTHS[block], kernel_size=3, padding=1), nn.ReLU(inplace=True)]
      cin = vgg.WIDTHS[block]
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
  return nn.Sequential(*layers)


def make_torch_vgg(torch, depth, seed):
  """A torchvision-named VGG (``features.N``, a small stand-in ``classifier``) with random weights."""
  torch.manual_seed(seed)
  model = torch.nn.Module()
  model.features = torch_vgg_features(torch, depth)
  model.classifier = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
  for m in model.features:
    if isinstance(m, torch.nn.Conv2d):
      torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
      torch.nn.init.normal_(m.bias, std=0.1)  # Non-zero so a dropped bias fails the test.
  return model.eval()


def torch_named_activations(torch, model, depth, x_nhwc):
  """Runs the torch VGG on the normalised input and names each ReLU/MaxPool output."""
  mean = torch.tensor(vgg.IMAGENET_MEAN).view(1, 3, 1, 1)
  std = torch.tensor(vgg.IMAGENET_STD).view(1, 3, 1, 1)
  h = (torch.from_numpy(x_nhwc).permute(0, 3, 1, 2) - mean) / std
  names = iter(vgg.layer_names(depth))
  out = {}
  with torch.no_grad():
    for layer in model.features:
      h = layer(h)
      if isinstance(layer, (torch.nn.ReLU, torch.nn.MaxPool2d)):
        out[next(names)] = h.permute(0, 2, 3, 1).numpy().copy()
  return out


def assert_close_relative(ours, ref, name, rtol=1e-4):
  ours = np.asarray(ours)
  assert ours.shape == ref.shape, (name, ours.shape, ref.shape)
  scale = float(np.max(np.abs(ref)))
  assert scale > 0, f"{name}: reference is all zeros; the test would not discriminate"
  err = float(np.max(np.abs(ours - ref)))
  assert err <= rtol * scale, f"{name}: max abs err {err:.3g} > {rtol} * max|ref| {scale:.3g}"


@pytest.fixture(scope="module")
def torch_vggs(torch, tmp_path_factory):
  """VGG-16 and VGG-19 torch models saved as .pth, torchvision-named .safetensors (VGG-16) and
  timm-named .safetensors (VGG-19: ``pre_logits``/``head`` keys, ``model.`` prefix)."""
  root = tmp_path_factory.mktemp("vgg")
  out = {}
  for depth, seed in ((16, 0), (19, 1)):
    model = make_torch_vgg(torch, depth, seed)
    state = model.state_dict()
    pth = root / f"vgg{depth}.pth"
    torch.save(state, pth)
    arrays = {k: v.numpy() for k, v in state.items()}
    if depth == 19:
      arrays = {("model." + k.replace("classifier.0", "pre_logits.fc1")
                 .replace("classifier.2", "head.fc")): v for k, v in arrays.items()}
    st = root / f"vgg{depth}.safetensors"
    save_file(arrays, str(st))
    out[depth] = dict(model=model, pth=pth, safetensors=st)
  return out


@pytest.mark.parametrize("depth", [16, 19])
@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_matches_torch_on_every_named_layer(torch, torch_vggs, depth, fmt):
  entry = torch_vggs[depth]
  x = np.random.default_rng(depth).uniform(0, 1, INPUT_SHAPE).astype(np.float32)
  ref = torch_named_activations(torch, entry["model"], depth, x)
  features = vgg.pretrained(entry[fmt], depth=depth)
  ours = features(jnp.asarray(x))
  assert set(ours) == set(vgg.layer_names(depth))
  for name in vgg.layer_names(depth):
    assert_close_relative(ours[name], ref[name], f"vgg{depth}/{fmt}/{name}")
  assert set(LOSS_LAYERS[depth]) <= set(ours)


def test_gradient_wrt_input_matches_torch_and_weights_are_frozen(torch, torch_vggs):
  entry = torch_vggs[16]
  x = np.random.default_rng(3).uniform(0, 1, (1, 32, 32, 3)).astype(np.float32)
  features = vgg.pretrained(entry["pth"], depth=16)

  @jax.jit
  def loss(img):  # A jitted loss closing over the feature function, as the losses do.
    f = features(img)
    return jnp.sum(f["pool3"] ** 2) + jnp.sum(f["relu2_2"])

  grad = np.asarray(jax.grad(loss)(jnp.asarray(x)))

  xt = torch.from_numpy(x).requires_grad_(True)
  mean = torch.tensor(vgg.IMAGENET_MEAN).view(1, 3, 1, 1)
  std = torch.tensor(vgg.IMAGENET_STD).view(1, 3, 1, 1)
  h = (xt.permute(0, 3, 1, 2) - mean) / std
  acts = {}
  names = iter(vgg.layer_names(16))
  for layer in entry["model"].features:
    h = layer(h.clone() if isinstance(layer, torch.nn.ReLU) else h)
    if isinstance(layer, (torch.nn.ReLU, torch.nn.MaxPool2d)):
      acts[next(names)] = h
  (torch.sum(acts["pool3"] ** 2) + torch.sum(acts["relu2_2"])).backward()
  assert_close_relative(grad, xt.grad.numpy(), "d loss / d x", rtol=1e-4)

  # The partial's first argument is the weights; the jitted apply must give them zero gradient.
  apply_fn, params = features.func, features.args[0]
  g = jax.grad(lambda p: jnp.sum(apply_fn(p, jnp.asarray(x))["pool2"]))(params)
  assert all(float(jnp.max(jnp.abs(leaf))) == 0.0 for leaf in jax.tree.leaves(g))


def test_feature_fn_is_a_pytree_and_layers_option_truncates(torch_vggs):
  features = vgg.pretrained(torch_vggs[16]["safetensors"], depth=16)
  only = vgg.pretrained(torch_vggs[16]["safetensors"], depth=16, layers=("relu1_2", "pool2"))
  x = jnp.asarray(np.random.default_rng(5).uniform(0, 1, (1, 16, 24, 3)).astype(np.float32))
  full = features(x)
  part = only(x)
  assert set(part) == {"relu1_2", "pool2"}
  # Same layers, same weights; two different XLA programs may round differently (Eigen's convolutions pick
  # their kernels per program), so equal to float32 rounding rather than bit for bit.
  np.testing.assert_allclose(np.asarray(part["pool2"]), np.asarray(full["pool2"]), rtol=1e-5, atol=1e-5)

  # Passed as a jit argument (weights become arguments, not baked-in constants).
  @jax.jit
  def pooled_mean(fn, img):
    return jnp.mean(fn(img)["pool2"])

  np.testing.assert_allclose(float(pooled_mean(only, x)), float(jnp.mean(full["pool2"])), rtol=1e-5)


def test_bfloat16_features_and_input_gradient_match_float32():
  """Mixed precision: bf16 convolutions, float32 weights and float32 outputs, within bf16 rounding of fp32."""
  params = vgg.init_random_params(jax.random.PRNGKey(0), depth=19)
  layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
  f32 = vgg.from_params(params, depth=19, layers=layers)
  bf16 = vgg.from_params(params, depth=19, layers=layers, dtype=jnp.bfloat16)
  x = jnp.asarray(np.random.default_rng(1).uniform(0, 1, (2, 32, 32, 3)).astype(np.float32))
  want, got = f32(x), bf16(x)
  for name in layers:
    assert got[name].dtype == jnp.float32, name
    scale = float(jnp.max(jnp.abs(want[name])))
    err = float(jnp.max(jnp.abs(got[name] - want[name]))) / scale
    # bf16 keeps 8 bits of mantissa (relative rounding 2**-9 per value); errors grow with depth but stay
    # within a few percent of the layer's range. A float32 network (dtype ignored) would give ~1e-7.
    assert 1e-5 < err < 0.05, (name, err)
  # The perceptual/style losses back-propagate into the image through the frozen network.
  loss = lambda fn, img: sum(jnp.mean(v ** 2) for v in fn(img).values())
  g32, g16 = jax.grad(lambda img: loss(f32, img))(x), jax.grad(lambda img: loss(bf16, img))(x)
  cos = float(jnp.sum(g32 * g16) / (jnp.linalg.norm(g32) * jnp.linalg.norm(g16)))
  assert g16.dtype == jnp.float32 and cos > 0.99, cos


# ------------------------------------------------------------------------ errors (no torch needed)


def random_state_dict(depth, seed=0):
  """He-scaled random torchvision-named weights (activations stay finite through 16 layers)."""
  rng = np.random.default_rng(seed)
  out = {}
  for name, spec in vgg.param_specs(depth=depth).items():
    shape = weights.torch_shape(spec)
    std = np.sqrt(2.0 / np.prod(shape[1:])) if len(shape) == 4 else 0.1
    out[name] = (std * rng.normal(size=shape)).astype(np.float32)
  return out


def test_missing_file_names_the_file(tmp_path):
  path = tmp_path / "nope.npz"
  with pytest.raises(FileNotFoundError, match="nope.npz"):
    vgg.pretrained(path, depth=16)


def test_vgg19_file_for_depth16_is_rejected(tmp_path):
  path = tmp_path / "vgg19.safetensors"
  save_file(random_state_dict(19), str(path))
  with pytest.raises(ValueError, match=r"vgg19\.safetensors.*holds VGG-19 weights, expected VGG-16"):
    vgg.pretrained(path, depth=16)
  assert set(vgg.pretrained(path, depth=19)(jnp.zeros((1, 32, 32, 3)))) == set(vgg.layer_names(19))


def test_wrong_shape_names_parameter_and_expected_shape(tmp_path):
  state = random_state_dict(16)
  state["features.5.weight"] = np.zeros((128, 32, 3, 3), np.float32)
  path = tmp_path / "bad_shape.npz"
  np.savez(path, **state)
  with pytest.raises(ValueError, match=r"bad_shape\.npz.*'features\.5\.weight'.*\(128, 32, 3, 3\)"
                     r".*expected \(128, 64, 3, 3\)"):
    vgg.load_params(path, depth=16)


def test_missing_parameter_names_it_and_its_shape(tmp_path):
  state = random_state_dict(16)
  del state["features.28.bias"]
  path = tmp_path / "incomplete.safetensors"
  save_file(state, str(path))
  with pytest.raises(ValueError, match=r"incomplete\.safetensors.*missing parameter "
                     r"'features\.28\.bias' \(expected shape \(512,\)\)"):
    vgg.load_params(path, depth=16)


def test_non_finite_values_are_rejected(tmp_path):
  state = random_state_dict(16)
  state["features.0.weight"][0, 0, 0, 0] = np.nan
  path = tmp_path / "nan.npz"
  np.savez(path, **state)
  with pytest.raises(ValueError, match=r"nan\.npz.*'features\.0\.weight'.*NaN"):
    vgg.load_params(path, depth=16)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_truncated_file_is_a_clear_error(tmp_path, suffix):
  path = tmp_path / f"full{suffix}"
  if suffix == ".npz":
    np.savez(path, **random_state_dict(16))
  else:
    save_file(random_state_dict(16), str(path))
  data = path.read_bytes()
  cut = tmp_path / f"cut{suffix}"
  cut.write_bytes(data[: len(data) // 2])
  with pytest.raises(ValueError, match=rf"cut\{suffix}.*truncated or corrupt"):
    vgg.pretrained(cut, depth=16)


def test_truncated_pth_is_a_clear_error(torch, tmp_path):
  path = tmp_path / "full.pth"
  torch.save({k: torch.from_numpy(v) for k, v in random_state_dict(16).items()}, path)
  data = path.read_bytes()
  cut = tmp_path / "cut.pth"
  cut.write_bytes(data[: len(data) // 3])
  with pytest.raises(ValueError, match=r"cut\.pth.*truncated or corrupt"):
    vgg.pretrained(cut, depth=16)


def test_require_weights_refuses_without_a_file(tmp_path):
  with pytest.raises(FileNotFoundError) as info:
    vgg.require_weights(None, depth=16, purpose="the PConv perceptual/style loss")
  msg = str(info.value)
  assert "the PConv perceptual/style loss" in msg
  assert "python -m jaxinpaint.weights download vgg16" in msg
  assert "python -m jaxinpaint.weights convert vgg16-397923af.pth vgg16.npz" in msg
  assert "https://download.pytorch.org/models/vgg16-397923af.pth" in msg

  missing = tmp_path / "vgg19.npz"
  with pytest.raises(FileNotFoundError, match=r"vgg19\.npz.*does not exist.*vgg19-dcbb9e9d"):
    vgg.require_weights(str(missing), depth=19, purpose="EdgeConnect")

  path = tmp_path / "ok.npz"
  np.savez(path, **random_state_dict(16))
  assert "pool3" in vgg.require_weights(path, depth=16)(jnp.zeros((1, 32, 32, 3)))


def test_bad_arguments():
  with pytest.raises(ValueError, match="depth must be 16 or 19"):
    vgg.param_specs(depth=11)
  params = weights.port_state_dict(random_state_dict(16), vgg.param_specs(depth=16), source="mem",
                                   arch="vgg16")
  # jax.eval_shape traces without compiling: these checks happen at trace time.
  with pytest.raises(ValueError, match="unknown VGG-16 layer"):
    jax.eval_shape(vgg.from_params(params, depth=16, layers=("relu3_4",)), jnp.zeros((1, 32, 32, 3)))
  with pytest.raises(ValueError, match="too small for layer 'pool4'"):
    jax.eval_shape(vgg.from_params(params, depth=16, layers=("pool4",)), jnp.zeros((1, 8, 16, 3)))
  # Without `layers`, small inputs get every layer that fits: 8x16 -> up to relu4_3.
  small = jax.eval_shape(vgg.from_params(params, depth=16), jnp.zeros((1, 8, 16, 3)))
  assert "relu4_3" in small and "pool4" not in small
  assert small["pool3"].shape == (1, 1, 2, 256)
  with pytest.raises(ValueError, match="NHWC RGB"):
    jax.eval_shape(vgg.from_params(params, depth=16), jnp.zeros((1, 3, 32, 32)))


def test_torchvision_indices():
  # torchvision's features Sequential: conv indices before the first pool are 0, 2; then 5, 7 ...
  assert vgg.torch_indices(16)["conv5_3"] == 28
  assert vgg.torch_indices(19)["conv5_4"] == 34


def test_losses_run_with_ported_vgg(tmp_path):
  """Wiring: pconv_loss runs with the ported VGG-16 (jitted, gradients reach the generator output,
  never the VGG weights) and the EdgeConnect terms accept the VGG-19 feature function."""
  paths = {}
  for depth in (16, 19):
    paths[depth] = tmp_path / f"vgg{depth}.npz"
    np.savez(paths[depth], **random_state_dict(depth, seed=depth))
  vgg16 = vgg.require_weights(paths[16], depth=16, purpose="test")
  vgg19 = vgg.require_weights(paths[19], depth=19, purpose="test")
  rng = np.random.default_rng(0)
  target = jnp.asarray(rng.uniform(0, 1, (2, 16, 16, 3)).astype(np.float32))
  output = jnp.asarray(rng.uniform(0, 1, (2, 16, 16, 3)).astype(np.float32))
  mask = jnp.asarray((rng.uniform(size=(2, 16, 16, 1)) > 0.3).astype(np.float32))

  @jax.jit
  def total(out):
    return losses.pconv_loss(out, target, mask, feature_fn=vgg16)

  (value, terms), grad = jax.value_and_grad(total, has_aux=True)(output)
  assert np.isfinite(float(value)) and float(terms["perceptual"]) > 0 and float(terms["style_out"]) > 0
  assert np.all(np.isfinite(np.asarray(grad))) and float(jnp.max(jnp.abs(grad))) > 0

  # EdgeConnect's layers (relu1_1..relu5_2) exist at 16x16; traced only, to keep the test cheap.
  edge = jax.eval_shape(lambda out: losses.edgeconnect_perceptual(out, target, feature_fn=vgg19)
                        + losses.edgeconnect_style(out, target, feature_fn=vgg19), output)
  assert edge.shape == ()


@pytest.mark.parametrize("shape", [(2, 8, 8, 3), (1, 7, 9, 2)])  # even and odd (floor) sizes
def test_max_pool_2x2_matches_torch_and_xla_including_ties(torch, shape):
  # Values from {0, 1, 2}: most windows have tied maxima, where the gradient rule matters.
  rng = np.random.default_rng(0)
  x = rng.integers(0, 3, shape).astype(np.float32)
  g = rng.normal(size=(shape[0], shape[1] // 2, shape[2] // 2, shape[3])).astype(np.float32)
  y, vjp = jax.vjp(jax.jit(vgg.max_pool_2x2), jnp.asarray(x))
  (dx,) = vjp(jnp.asarray(g))

  xt = torch.from_numpy(x).permute(0, 3, 1, 2).requires_grad_(True)
  yt = torch.nn.MaxPool2d(2, 2)(xt)
  yt.backward(torch.from_numpy(g).permute(0, 3, 1, 2))
  np.testing.assert_array_equal(np.asarray(y), yt.detach().permute(0, 2, 3, 1).numpy())
  np.testing.assert_array_equal(np.asarray(dx), xt.grad.permute(0, 2, 3, 1).numpy())
  # Every window's gradient lands on exactly one element (the first maximum), none on a dropped row.
  assert np.count_nonzero(np.asarray(dx)) == np.count_nonzero(g)

  # XLA's reduce-window gradient (flax's max_pool) agrees too.
  y_ref, vjp_ref = jax.vjp(lambda v: linen.max_pool(v, (2, 2), strides=(2, 2), padding="VALID"), jnp.asarray(x))
  np.testing.assert_array_equal(np.asarray(y), np.asarray(y_ref))
  np.testing.assert_array_equal(np.asarray(dx), np.asarray(vjp_ref(jnp.asarray(g))[0]))
