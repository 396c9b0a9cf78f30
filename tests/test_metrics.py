"""Tests for jaxinpaint.metrics against scikit-image (PSNR, SSIM), NumPy (L1) and a SciPy FID reference."""

import numpy as np
import pytest
import scipy.linalg
import scipy.ndimage
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from jaxinpaint import metrics


def _photos(shared_data, n=4, size=(96, 80)):
  """Real Places2 photos (RGB, resized) as float32 in [0, 1]."""
  files = sorted(p for p in (shared_data / "places").rglob("*") if p.suffix.lower() in (".png", ".jpg"))
  assert len(files) >= n
  return np.stack([np.asarray(Image.open(f).convert("RGB").resize(size, Image.BICUBIC), np.float32) / 255.0
                   for f in files[:n]])


def _degrade(x, seed=0):
  """A blurred + noised copy (a plausible bad reconstruction)."""
  rng = np.random.default_rng(seed)
  y = scipy.ndimage.gaussian_filter(x, sigma=(0, 1.3, 1.3, 0)) + rng.normal(0, 0.04, x.shape)
  return np.clip(y, 0, 1).astype(np.float32)


def _skimage_ssim(a, b):
  return structural_similarity(a.astype(np.float64), b.astype(np.float64), gaussian_weights=True, sigma=1.5,
                               use_sample_covariance=False, data_range=1, channel_axis=-1)


def test_psnr_ssim_match_skimage_on_real_photos(shared_data):
  x = _photos(shared_data)
  y = _degrade(x)
  got_psnr = np.asarray(metrics.psnr(x, y))
  got_ssim = np.asarray(metrics.ssim(x, y))
  assert got_psnr.shape == got_ssim.shape == (len(x),)
  want_psnr = [peak_signal_noise_ratio(a.astype(np.float64), b.astype(np.float64), data_range=1) for a, b in zip(x, y)]
  want_ssim = [_skimage_ssim(a, b) for a, b in zip(x, y)]
  np.testing.assert_allclose(got_psnr, want_psnr, atol=1e-4, rtol=0)
  np.testing.assert_allclose(got_ssim, want_ssim, atol=1e-4, rtol=0)
  # The images differ, so SSIM is far from 1 (the test can fail).
  assert np.all(got_ssim < 0.9)


def test_ssim_matches_skimage_for_a_composite_like_pair(shared_data):
  # Only a rectangular region differs (an inpainting result): SSIM close to 1, but not equal.
  x = _photos(shared_data, n=2, size=(64, 64))
  y = x.copy()
  y[:, 20:40, 10:50] = _degrade(x, seed=1)[:, 20:40, 10:50]
  np.testing.assert_allclose(np.asarray(metrics.ssim(x, y)), [_skimage_ssim(a, b) for a, b in zip(x, y)], atol=1e-4)


def test_single_image_gives_a_scalar(shared_data):
  x = _photos(shared_data, n=1)[0]
  y = _degrade(x[None])[0]
  for fn in (metrics.l1, metrics.psnr, metrics.ssim):
    assert np.ndim(fn(x, y)) == 0
  np.testing.assert_allclose(float(metrics.ssim(x, y)), _skimage_ssim(x, y), atol=1e-4)


def test_identical_images():
  x = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype(np.float32)
  np.testing.assert_allclose(np.asarray(metrics.ssim(x, x)), 1.0, atol=1e-6)
  np.testing.assert_array_equal(np.asarray(metrics.l1(x, x)), 0.0)
  assert np.all(np.isinf(np.asarray(metrics.psnr(x, x))))


def test_l1_is_percent_mean_absolute_error():
  rng = np.random.default_rng(1)
  a = rng.uniform(size=(3, 8, 12, 3)).astype(np.float32)
  b = rng.uniform(size=(3, 8, 12, 3)).astype(np.float32)
  want = 100.0 * np.abs(a.astype(np.float64) - b).mean(axis=(1, 2, 3))
  np.testing.assert_allclose(np.asarray(metrics.l1(a, b)), want, rtol=1e-5)


def test_gaussian_window_is_scipys():
  w = metrics.gaussian_window()
  assert w.shape == (11,)
  impulse = np.zeros(21)
  impulse[10] = 1.0
  np.testing.assert_allclose(w, scipy.ndimage.gaussian_filter1d(impulse, 1.5, truncate=3.5)[5:16], atol=1e-12)


@pytest.mark.parametrize("fn", [metrics.l1, metrics.psnr, metrics.ssim])
def test_bad_shapes_raise(fn):
  with pytest.raises(ValueError, match="same shape"):
    fn(np.zeros((1, 16, 16, 3)), np.zeros((1, 16, 15, 3)))
  with pytest.raises(ValueError, match="HWC or NHWC"):
    fn(np.zeros((16, 16)), np.zeros((16, 16)))


def test_ssim_rejects_images_smaller_than_window():
  with pytest.raises(ValueError, match="at least 11x11"):
    metrics.ssim(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))


# --------------------------------------------------------------------------------------------- FID


def _reference_fid(fa, fb, eps=1e-6):
  """pytorch-fid's calculate_frechet_distance (scipy.linalg.sqrtm with the eps-offset fallback)."""
  mu1, mu2 = fa.mean(0), fb.mean(0)
  s1, s2 = np.cov(fa, rowvar=False), np.cov(fb, rowvar=False)
  covmean = scipy.linalg.sqrtm(s1.dot(s2))
  if not np.isfinite(covmean).all():
    offset = np.eye(s1.shape[0]) * eps
    covmean = scipy.linalg.sqrtm((s1 + offset).dot(s2 + offset))
  covmean = np.real(covmean)
  diff = mu1 - mu2
  return diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def _correlated_features(seed, d, n_a, n_b, *, loc, scale, mix):
  """Two sets of d-dim features: standard normal rows (the second set's with mean `loc`, std `scale`), each set
  times its own random d x d matrix and `mix`."""
  rng = np.random.default_rng(seed)
  fa = rng.normal(size=(n_a, d)) @ rng.normal(size=(d, d)) * mix
  fb = rng.normal(loc, scale, size=(n_b, d)) @ rng.normal(size=(d, d)) * mix
  return fa, fb


def test_fid_matches_scipy_reference():
  fa, fb = _correlated_features(0, 64, 400, 300, loc=0.2, scale=1.1, mix=0.3)
  got = metrics.fid(fa, fb)
  want = _reference_fid(fa, fb)
  assert want > 1.0
  np.testing.assert_allclose(got, want, rtol=1e-6)


def test_fid_small_sets_route_equals_covariance_route():
  # Sets smaller than the feature dimension take the (n1, n2) singular-value route; it must equal the
  # D x D covariance route and, where sqrtm is still well defined, the SciPy reference.
  fa, fb = _correlated_features(3, 96, 40, 25, loc=0.3, scale=1.0, mix=0.2)
  got = metrics.fid(fa, fb)
  want = metrics.frechet_distance(*metrics.feature_statistics(fa), *metrics.feature_statistics(fb))
  np.testing.assert_allclose(got, want, rtol=1e-7)
  np.testing.assert_allclose(got, _reference_fid(fa, fb), rtol=1e-6)


def test_fid_of_a_set_with_itself_is_zero():
  rng = np.random.default_rng(1)
  f = rng.normal(size=(200, 32)).astype(np.float32)
  assert abs(metrics.fid(f, f)) < 1e-6
  # Also fewer samples than dimensions (singular covariance), where sqrtm is unstable.
  g = rng.normal(size=(10, 64))
  assert abs(metrics.fid(g, g)) < 1e-9


def test_feature_statistics_and_frechet_distance():
  rng = np.random.default_rng(2)
  f = rng.normal(size=(50, 4))
  mu, sigma = metrics.feature_statistics(f)
  np.testing.assert_allclose(mu, f.mean(0))
  np.testing.assert_allclose(sigma, np.cov(f, rowvar=False))
  # 1-D Gaussians: d^2 = (m1 - m2)^2 + (s1 - s2)^2.
  np.testing.assert_allclose(metrics.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]), 4.0 + 1.0, rtol=1e-12)


def test_fid_bad_input():
  with pytest.raises(ValueError, match="features_a and features_b"):
    metrics.fid(np.zeros((5, 3)), np.zeros((5, 4)))
  with pytest.raises(ValueError, match="at least 2 rows"):
    metrics.fid(np.zeros((1, 3)), np.zeros((5, 3)))


def test_edge_counts_against_numpy_loops():
  """EdgeConnect's EdgeAccuracy counts inside the hole, against a per-pixel NumPy loop."""
  rng = np.random.default_rng(3)
  pred = rng.random((3, 9, 7, 1)).astype(np.float32)
  target = (rng.random((3, 9, 7, 1)) > 0.7).astype(np.float32)
  mask = (rng.random((3, 9, 7, 1)) > 0.4).astype(np.float32)
  tp, sel, rel = (np.asarray(c) for c in metrics.edge_counts(pred, target, mask))
  for i in range(3):
    want = [0, 0, 0]
    for y in range(9):
      for x in range(7):
        if mask[i, y, x, 0] <= 0.5:
          p, t = pred[i, y, x, 0] > 0.5, target[i, y, x, 0] > 0.5
          want[0] += int(p and t)
          want[1] += int(p)
          want[2] += int(t)
    assert [tp[i], sel[i], rel[i]] == want
  precision, recall = metrics.edge_precision_recall(tp, sel, rel)
  np.testing.assert_allclose(float(precision), tp.sum() / (sel.sum() + 1e-8), rtol=1e-6)
  np.testing.assert_allclose(float(recall), tp.sum() / (rel.sum() + 1e-8), rtol=1e-6)
  with pytest.raises(ValueError, match="edge_counts"):
    metrics.edge_counts(pred, target, mask[:, :4])
