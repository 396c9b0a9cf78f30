"""Tests for jaxinpaint.models.inception: the exact torch bilinear resize, and parity of the 2048-d
features with pytorch-fid's FID Inception-v3 rebuilt in torch (random weights, same names)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import save_file

from jaxinpaint import weights
from jaxinpaint.models import inception


def build_torch_fid_inception(torch):
  """pytorch-fid's ``fid_inception_v3()`` + ``InceptionV3`` block order, written with torch.nn only
  (torchvision is not installed): same module names, so the state_dict keys match the real file."""
  nn, F = torch.nn, torch.nn.functional

  class BasicConv2d(nn.Module):
    def __init__(self, cin, cout, **kw):
      super().__init__()
      self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
      self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
      return F.relu(self.bn(self.conv(x)))

  def avg(x):
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)

  class A(nn.Module):
    def __init__(self, cin, pool_features):
      super().__init__()
      self.branch1x1 = BasicConv2d(cin, 64, kernel_size=1)
      self.branch5x5_1 = BasicConv2d(cin, 48, kernel_size=1)
      self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
      self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
      self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
      self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
      self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)

    def forward(self, x):
      b5 = self.branch5x5_2(self.branch5x5_1(x))
      b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
      return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(avg(x))], 1)

  class B(nn.Module):
    def __init__(self, cin):
      super().__init__()
      self.branch3x3 = BasicConv2d(cin, 384, kernel_size=3, stride=2)
      self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
      self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
      self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
      bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
      return torch.cat([self.branch3x3(x), bd, F.max_pool2d(x, kernel_size=3, stride=2)], 1)

  class C(nn.Module):
    def __init__(self, cin, c7):
      super().__init__()
      self.branch1x1 = BasicConv2d(cin, 192, kernel_size=1)
      self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
      self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
      self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
      self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
      self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
      self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
      self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
      self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
      self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
      b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
      bd = x
      for i in range(1, 6):
        bd = getattr(self, f"branch7x7dbl_{i}")(bd)
      return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(avg(x))], 1)

  class D(nn.Module):
    def __init__(self, cin):
      super().__init__()
      self.branch3x3_1 = BasicConv2d(cin, 192, kernel_size=1)
      self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
      self.branch7x7x3_1 = BasicConv2d(cin, 192, kernel_size=1)
      self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
      self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
      self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
      b3 = self.branch3x3_2(self.branch3x3_1(x))
      b7 = x
      for i in range(1, 5):
        b7 = getattr(self, f"branch7x7x3_{i}")(b7)
      return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)

  class E(nn.Module):
    def __init__(self, cin, use_max_pool):
      super().__init__()
      self.use_max_pool = use_max_pool
      self.branch1x1 = BasicConv2d(cin, 320, kernel_size=1)
      self.branch3x3_1 = BasicConv2d(cin, 384, kernel_size=1)
      self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
      self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
      self.branch3x3dbl_1 = BasicConv2d(cin, 448, kernel_size=1)
      self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
      self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
      self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
      self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
      b3 = self.branch3x3_1(x)
      b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
      bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
      bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
      # FIDInceptionE_2 (Mixed_7c) max-pools; FIDInceptionE_1 averages without the padding.
      pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.use_max_pool else avg(x)
      return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pooled)], 1)

  class FIDInception(nn.Module):
    def __init__(self):
      super().__init__()
      self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
      self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
      self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
      self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
      self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
      self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = A(192, 32), A(256, 64), A(288, 64)
      self.Mixed_6a = B(288)
      self.Mixed_6b, self.Mixed_6c = C(768, 128), C(768, 160)
      self.Mixed_6d, self.Mixed_6e = C(768, 160), C(768, 192)
      self.Mixed_7a = D(768)
      self.Mixed_7b, self.Mixed_7c = E(1280, False), E(2048, True)
      self.fc = nn.Linear(2048, 1008)  # In the real file; unused for FID features.

    def trunk(self, x):
      x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
      x = F.max_pool2d(x, kernel_size=3, stride=2)
      x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
      x = F.max_pool2d(x, kernel_size=3, stride=2)
      for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
        x = getattr(self, f"Mixed_{name}")(x)
      return F.adaptive_avg_pool2d(x, (1, 1)).flatten(1)

    def forward(self, x):
      # pytorch-fid InceptionV3(resize_input=True, normalize_input=True), block 3.
      x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
      return self.trunk(2 * x - 1)

  return FIDInception()


def randomise(torch, model):
  """Random conv/BN weights, with BN running statistics calibrated on a random batch so the
  activations keep a sane scale through 94 layers (then perturbed so they are not exact)."""
  torch.manual_seed(0)
  for m in model.modules():
    if isinstance(m, torch.nn.Conv2d):
      torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    elif isinstance(m, torch.nn.BatchNorm2d):
      m.momentum = None  # Cumulative average: one batch sets the running stats to its statistics.
      torch.nn.init.uniform_(m.weight, 0.5, 1.5)
      torch.nn.init.normal_(m.bias, std=0.1)
  model.train()
  with torch.no_grad():
    model.trunk(torch.rand(2, 3, 107, 93) * 2 - 1)
    for m in model.modules():
      if isinstance(m, torch.nn.BatchNorm2d):
        m.running_mean.add_(0.05 * torch.randn_like(m.running_mean))
        m.running_var.mul_(torch.empty_like(m.running_var).uniform_(0.8, 1.25))
  return model.eval()


@pytest.mark.parametrize("in_shape", [(37, 64), (299, 299), (420, 512), (300, 150)])
def test_resize_matches_torch_bilinear_align_corners_false(torch, in_shape):
  x = np.random.default_rng(0).normal(size=(2, *in_shape, 3)).astype(np.float32)
  ref = torch.nn.functional.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2), size=(299, 299),
                                        mode="bilinear", align_corners=False)
  ours = np.asarray(inception.resize_bilinear(jnp.asarray(x), (299, 299)))
  np.testing.assert_allclose(ours, ref.permute(0, 2, 3, 1).numpy(), rtol=0, atol=2e-6)


def test_interp_matrix_rows_are_two_tap_and_sum_to_one():
  # Downsampling without antialiasing: each output pixel mixes at most two input pixels.
  m = inception._interp_matrix(512, 299)  # pylint: disable=protected-access
  assert np.all((m != 0).sum(axis=1) <= 2)
  np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-6)


def test_features_match_pytorch_fid_inception(torch, tmp_path):
  """The only expensive test: one batch of 2 through both networks at 299x299."""
  model = randomise(torch, build_torch_fid_inception(torch))
  state = model.state_dict()
  assert "Conv2d_1a_3x3.bn.num_batches_tracked" in state and "fc.weight" in state
  pth = tmp_path / "pt_inception.pth"
  torch.save(state, pth)

  x = np.random.default_rng(1).uniform(0, 1, (2, 64, 80, 3)).astype(np.float32)
  with torch.no_grad():
    ref = model(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
  assert ref.shape == (2, inception.FEATURE_DIM) and np.std(ref) > 1e-3

  features = inception.pretrained(pth)
  ours = np.asarray(features(jnp.asarray(x)))
  assert ours.shape == (2, 2048)
  err = np.max(np.abs(ours - ref))
  assert err <= 1e-4 * np.max(np.abs(ref)), (err, np.max(np.abs(ref)))

  # The same weights through .safetensors (no torch at load time) give the same function.
  st = tmp_path / "pt_inception.safetensors"
  save_file({k: v.numpy() for k, v in state.items()}, str(st))
  variables_st = inception.load_variables(st)
  variables_pth = features.args[0]
  for a, b in zip(jax.tree.leaves(variables_st), jax.tree.leaves(variables_pth)):
    np.testing.assert_array_equal(a, np.asarray(b))


def random_inception_state_dict():
  rng = np.random.default_rng(0)
  return {name: rng.normal(size=weights.torch_shape(spec)).astype(np.float32)
          for name, spec in inception.param_specs().items()}


def test_param_specs_cover_pytorch_fid_names():
  specs = inception.param_specs()
  assert len(specs) == 94 * 5  # 94 BasicConv2d: conv.weight + bn weight/bias/running_mean/var.
  assert weights.torch_shape(specs["Conv2d_1a_3x3.conv.weight"]) == (32, 3, 3, 3)
  assert weights.torch_shape(specs["Mixed_6b.branch7x7_2.conv.weight"]) == (128, 128, 1, 7)
  assert weights.torch_shape(specs["Mixed_7c.branch_pool.conv.weight"]) == (192, 2048, 1, 1)
  assert specs["Mixed_7c.branch_pool.bn.running_var"].path[0] == "batch_stats"


def test_errors_name_file_parameter_and_shape(tmp_path):
  state = random_inception_state_dict()
  state["Mixed_6e.branch7x7dbl_3.conv.weight"] = np.zeros((192, 192, 7, 1), np.float32)
  bad = tmp_path / "swapped.npz"
  np.savez(bad, **state)
  with pytest.raises(ValueError, match=r"swapped\.npz.*'Mixed_6e\.branch7x7dbl_3\.conv\.weight'.*"
                     r"\(192, 192, 7, 1\), expected \(192, 192, 1, 7\)"):
    inception.load_variables(bad)

  vgg_like = tmp_path / "vgg.npz"
  np.savez(vgg_like, **{f"features.{i}.weight": np.zeros((4, 4, 3, 3), np.float32)
                        for i in range(13)})
  with pytest.raises(ValueError, match=r"vgg\.npz.*holds VGG-16 weights, expected pytorch-fid"):
    inception.load_variables(vgg_like)

  torchvision_like = random_inception_state_dict()
  torchvision_like["fc.weight"] = np.zeros((1000, 2048), np.float32)
  tv = tmp_path / "inception_v3_google.npz"
  np.savez(tv, **torchvision_like)
  with pytest.raises(ValueError, match=r"inception_v3_google\.npz' holds torchvision's ImageNet "
                     r"Inception-v3 \(not the FID network"):
    inception.load_variables(tv)

  with pytest.raises(FileNotFoundError, match="pt_inception-missing.pth"):
    inception.pretrained(tmp_path / "pt_inception-missing.pth")
