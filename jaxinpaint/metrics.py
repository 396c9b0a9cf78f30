"""Image-quality metrics of the inpainting papers: L1 (%), PSNR, SSIM, FID and edge precision/recall.

`l1`, `psnr` and `ssim` are jitted JAX functions on float images in [0, 1], NHWC (one value per image,
shape (N,)) or HWC (a scalar). `fid` is computed on the host in float64 from two sets of Inception
features (`jaxinpaint.models.inception.pretrained`), as in Heusel et al. 2017 / pytorch-fid.

The evaluator (`jaxinpaint.evaluation`) always scores the *composite* `mask * target + (1 - mask) * output`
(`jaxinpaint.losses.composite`); the image metrics are plain full-image metrics and know nothing about
masks. The edge metrics (EdgeConnect's `EdgeAccuracy`) count inside the hole: `edge_counts` per image, so
an evaluator can pool the counts over a group of images, and `edge_precision_recall` from pooled counts.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "l1",
    "psnr",
    "ssim",
    "gaussian_window",
    "feature_statistics",
    "frechet_distance",
    "fid",
    "edge_counts",
    "edge_precision_recall",
]

# Wang et al. 2004's SSIM constants; truncate 3.5 gives scikit-image's 11-tap window for sigma 1.5.
_SSIM_SIGMA = 1.5
_SSIM_TRUNCATE = 3.5
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03


def _check_pair(a, b, fn: str) -> tuple[jax.Array, jax.Array, bool]:
  """Validates a pair of images; returns NHWC float32 arrays and whether the input was a single image."""
  a = jnp.asarray(a)
  b = jnp.asarray(b)
  if a.shape != b.shape:
    raise ValueError(f"{fn}: a and b must have the same shape, got {a.shape} and {b.shape}")
  if a.ndim not in (3, 4):
    raise ValueError(f"{fn}: expected HWC or NHWC images, got an array of shape {a.shape}")
  single = a.ndim == 3
  if single:
    a, b = a[None], b[None]
  return a.astype(jnp.float32), b.astype(jnp.float32), single


def _per_image_metric(kernel):
  """The public form of a jitted metric `kernel(a, b)` of two NHWC float32 batches returning (N,).

  The wrapper validates the pair (`_check_pair`) and gives a scalar for a single HWC image.
  """
  @functools.wraps(kernel)
  def metric(a, b) -> jax.Array:
    a, b, single = _check_pair(a, b, kernel.__name__)
    out = kernel(a, b)
    return out[0] if single else out
  return metric


@_per_image_metric
@jax.jit
def l1(a, b) -> jax.Array:
  """Mean absolute error in percent, per image: `100 * mean |a - b|`.

  The "L1 (%)" column of Liu et al. 2018 (Partial Convolutions, Table 1) and Nazeri et al. 2019
  (EdgeConnect, Table 1), for images in [0, 1].

  Args:
    a: images, (N, H, W, C) or (H, W, C), values in [0, 1].
    b: images of the same shape.

  Returns:
    (N,) float32 array, or a scalar for a single HWC image.
  """
  return 100.0 * jnp.mean(jnp.abs(a - b), axis=(1, 2, 3))


@_per_image_metric
@jax.jit
def psnr(a, b) -> jax.Array:
  """Peak signal-to-noise ratio in dB with data range 1, per image: `10 log10(1 / MSE)`.

  Equals `skimage.metrics.peak_signal_noise_ratio(b, a, data_range=1)`; identical images give inf.

  Args:
    a: images, (N, H, W, C) or (H, W, C), values in [0, 1].
    b: images of the same shape.

  Returns:
    (N,) float32 array, or a scalar for a single HWC image.
  """
  mse = jnp.mean(jnp.square(a - b), axis=(1, 2, 3))
  # data range is 1: PSNR = 10 log10(1 / MSE); identical images give +inf, like scikit-image.
  return -10.0 * jnp.log10(mse)


def gaussian_window(*, sigma: float = _SSIM_SIGMA, truncate: float = _SSIM_TRUNCATE) -> np.ndarray:
  """The normalized 1-D Gaussian taps `scipy.ndimage.gaussian_filter` uses (radius `int(truncate*sigma+.5)`)."""
  radius = int(truncate * sigma + 0.5)
  x = np.arange(-radius, radius + 1, dtype=np.float64)
  w = np.exp(-0.5 * (x / sigma) ** 2)
  return w / w.sum()


def _filter_valid(x: jax.Array, taps: jax.Array) -> jax.Array:
  """Separable 'valid' filtering over H and W of NHWC `x` (each output sees only real pixels)."""
  k = taps.shape[0]
  h, w = x.shape[1], x.shape[2]
  y = sum(taps[i] * x[:, i:h - k + 1 + i] for i in range(k))
  return sum(taps[i] * y[:, :, i:w - k + 1 + i] for i in range(k))


@functools.partial(jax.jit, static_argnames=("sigma", "k1", "k2"))
def _ssim_nhwc(a: jax.Array, b: jax.Array, *, sigma: float, k1: float, k2: float) -> jax.Array:
  taps = jnp.asarray(gaussian_window(sigma=sigma), jnp.float32)
  c1 = (k1 * 1.0) ** 2
  c2 = (k2 * 1.0) ** 2
  # (Co)variances are shift invariant; subtracting each channel's mean first avoids the float32
  # cancellation in E[x^2] - E[x]^2 (scikit-image computes this in float64).
  ca = jnp.mean(a, axis=(1, 2), keepdims=True)
  cb = jnp.mean(b, axis=(1, 2), keepdims=True)
  a0, b0 = a - ca, b - cb
  mu_a0 = _filter_valid(a0, taps)
  mu_b0 = _filter_valid(b0, taps)
  var_a = _filter_valid(a0 * a0, taps) - mu_a0 * mu_a0
  var_b = _filter_valid(b0 * b0, taps) - mu_b0 * mu_b0
  cov = _filter_valid(a0 * b0, taps) - mu_a0 * mu_b0
  mu_a = mu_a0 + ca
  mu_b = mu_b0 + cb
  s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
  # Mean over the valid window positions per channel, then over channels (= scikit-image's crop of
  # (win_size - 1) // 2 pixels per side; inside that crop its 'reflect' padding is never read).
  return jnp.mean(jnp.mean(s, axis=(1, 2)), axis=-1)


def ssim(a, b, *, sigma: float = _SSIM_SIGMA, k1: float = _SSIM_K1, k2: float = _SSIM_K2) -> jax.Array:
  """Structural similarity (Wang et al. 2004, Eq. 13) with a Gaussian window, per image.

  Equals `skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1, channel_axis=-1)`: 11-tap Gaussian (sigma 1.5, truncated at
  3.5 sigma), population (co)variances, C1 = (0.01)^2, C2 = (0.03)^2, the SSIM map averaged over the
  window positions that lie fully inside the image, per channel, then averaged over channels.

  Args:
    a: images, (N, H, W, C) or (H, W, C), values in [0, 1]; H and W at least the window size (11).
    b: images of the same shape.
    sigma: Gaussian window standard deviation.
    k1: luminance stabilizer constant.
    k2: contrast stabilizer constant.

  Returns:
    (N,) float32 array, or a scalar for a single HWC image.
  """
  a, b, single = _check_pair(a, b, "ssim")
  win = gaussian_window(sigma=sigma).shape[0]
  if a.shape[1] < win or a.shape[2] < win:
    raise ValueError(f"ssim: images must be at least {win}x{win} pixels, got {a.shape[1]}x{a.shape[2]}")
  out = _ssim_nhwc(a, b, sigma=float(sigma), k1=float(k1), k2=float(k2))
  return out[0] if single else out


# ----------------------------------------------------------------------------------------------- FID


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
  """Mean and sample covariance (float64) of a (N, D) feature matrix, as pytorch-fid.

  Args:
    features: (N, D) array, N >= 2 (e.g. Inception-v3 pool3 features, D = 2048).

  Returns:
    `(mu (D,), sigma (D, D))` with `sigma = np.cov(features, rowvar=False)` (divides by N - 1).
  """
  f = np.asarray(features, dtype=np.float64)
  if f.ndim != 2:
    raise ValueError(f"features must be a (N, D) matrix, got shape {f.shape}")
  if f.shape[0] < 2:
    raise ValueError(f"features needs at least 2 rows to estimate a covariance, got {f.shape[0]}")
  return f.mean(axis=0), np.cov(f, rowvar=False)


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
  """Symmetric square root of a symmetric positive semi-definite matrix (negative round-off clipped)."""
  w, v = np.linalg.eigh((m + m.T) / 2)
  return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
  """Frechet distance between two Gaussians (Dowson & Landau 1982; FID of Heusel et al. 2017).

  `d^2 = |mu1 - mu2|^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr((sigma1 sigma2)^(1/2))`, in float64.

  The trace of the matrix square root is the nuclear norm of `A = sigma1^(1/2) sigma2^(1/2)`: `A A^T =
  sigma1^(1/2) sigma2 sigma1^(1/2)` is similar to `sigma1 sigma2`, so the singular values of `A` are the
  square roots of the eigenvalues of `sigma1 sigma2` and `Tr((sigma1 sigma2)^(1/2)) = sum_i s_i(A)`. Unlike
  `scipy.linalg.sqrtm(sigma1 @ sigma2)` (pytorch-fid's route, retried with `eps * I` added when it fails)
  this is real-valued and stable for the singular covariances of sets smaller than the feature dimension
  (a set against itself gives 0 to ~1e-12 relative); for well-conditioned inputs both agree to round-off.

  Args:
    mu1: (D,) mean of the first set.
    sigma1: (D, D) covariance of the first set.
    mu2: (D,) mean of the second set.
    sigma2: (D, D) covariance of the second set.

  Returns:
    The squared Frechet distance (a Python float, >= 0 up to round-off).
  """
  mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
  sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
  if mu1.shape != mu2.shape:
    raise ValueError(f"mu1 and mu2 must have the same shape, got {mu1.shape} and {mu2.shape}")
  d = mu1.shape[0]
  if sigma1.shape != (d, d) or sigma2.shape != (d, d):
    raise ValueError(f"sigma1 and sigma2 must be ({d}, {d}) matrices, got {sigma1.shape} and {sigma2.shape}")
  diff = mu1 - mu2
  # Singular values directly (not sqrt of eigenvalues, which would amplify round-off near zero).
  tr_covmean = np.sum(np.linalg.svd(_sqrt_psd(sigma1) @ _sqrt_psd(sigma2), compute_uv=False))
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def fid(features_a, features_b) -> float:
  """Frechet Inception Distance between two feature sets (Heusel et al. 2017), as pytorch-fid.

  Same value as `frechet_distance(*feature_statistics(a), *feature_statistics(b))`. When a set is smaller
  than the feature dimension (e.g. one hole-ratio bucket of 50 images against 2048-d Inception features)
  it is computed without forming D x D matrices: with centred, scaled features `X_i = (F_i - mu_i) /
  sqrt(n_i - 1)` (so `sigma_i = X_i^T X_i`), `Tr(sigma_i) = |X_i|_F^2` and the non-zero eigenvalues of
  `sigma1 sigma2` are those of `(X_1 X_2^T)(X_1 X_2^T)^T`, hence `Tr((sigma1 sigma2)^(1/2))` is the sum of
  the singular values of the small (n_1, n_2) matrix `X_1 X_2^T`. Exact, in float64.

  Args:
    features_a: (N, D) features of the first image set (e.g. completed images).
    features_b: (M, D) features of the second set (e.g. ground truth); same D.

  Returns:
    FID as a Python float (0 for a set with itself, up to round-off).
  """
  fa = np.asarray(features_a, np.float64)
  fb = np.asarray(features_b, np.float64)
  if fa.ndim != 2 or fb.ndim != 2 or fa.shape[1] != fb.shape[1]:
    raise ValueError(f"features_a and features_b must be (N, D) and (M, D) matrices, got {fa.shape} and {fb.shape}")
  for name, f in (("features_a", fa), ("features_b", fb)):
    if f.shape[0] < 2:
      raise ValueError(f"{name} needs at least 2 rows to estimate a covariance, got {f.shape[0]}")
  d = fa.shape[1]
  if max(fa.shape[0], fb.shape[0]) > d:
    return frechet_distance(*feature_statistics(fa), *feature_statistics(fb))
  mu_a, mu_b = fa.mean(axis=0), fb.mean(axis=0)
  xa = (fa - mu_a) / np.sqrt(fa.shape[0] - 1)
  xb = (fb - mu_b) / np.sqrt(fb.shape[0] - 1)
  diff = mu_a - mu_b
  tr_covmean = np.sum(np.linalg.svd(xa @ xb.T, compute_uv=False))
  return float(diff @ diff + np.sum(xa * xa) + np.sum(xb * xb) - 2.0 * tr_covmean)


# ------------------------------------------------------------------------------------------ edges


def edge_counts(pred, target, mask, *, threshold: float = 0.5) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Per-image pixel counts of EdgeConnect's `EdgeAccuracy` inside the hole.

  An edge pixel is a value above `threshold` (the reference binarises both maps at 0.5); only hole pixels
  (mask <= 0.5) are counted, as the reference passes `edges * masks` with masks 1 = hole.

  Args:
    pred: predicted edge maps (N, H, W, 1) in [0, 1].
    target: ground-truth edge maps, same shape.
    mask: (N, H, W, 1), 1 = valid, 0 = hole.

  Returns:
    `(true_positives, selected, relevant)`, each (N,) int32: predicted-and-true edge pixels, predicted
    edge pixels and true edge pixels inside the hole.

  References:
    knazeri/edge-connect `src/metrics.py` (EdgeAccuracy).
  """
  pred, target, mask = jnp.asarray(pred), jnp.asarray(target), jnp.asarray(mask)
  if pred.shape != target.shape or pred.ndim != 4 or mask.shape != pred.shape[:3] + (1,):
    raise ValueError(f"edge_counts: pred and target must be (N, H, W, 1) edge maps and mask (N, H, W, 1), got "
                     f"{pred.shape}, {target.shape} and {mask.shape}")
  hole = mask <= 0.5
  selected = (pred > threshold) & hole
  relevant = (target > threshold) & hole
  axes = (1, 2, 3)
  return (jnp.sum(selected & relevant, axis=axes, dtype=jnp.int32), jnp.sum(selected, axis=axes, dtype=jnp.int32),
          jnp.sum(relevant, axis=axes, dtype=jnp.int32))


def edge_precision_recall(true_positives, selected, relevant) -> tuple[jax.Array, jax.Array]:
  """EdgeConnect's `EdgeAccuracy` (precision, recall) from pixel counts pooled over a batch.

  Both are 1 when neither map has an edge in the hole, as in the reference; otherwise `tp / (selected +
  1e-8)` and `tp / (relevant + 1e-8)`.

  Args:
    true_positives, selected, relevant: counts from `edge_counts`, summed here over all their elements.

  Returns:
    (precision, recall) as float32 scalars.
  """
  tp = jnp.sum(jnp.asarray(true_positives)).astype(jnp.float32)
  n_sel = jnp.sum(jnp.asarray(selected)).astype(jnp.float32)
  n_rel = jnp.sum(jnp.asarray(relevant)).astype(jnp.float32)
  empty = (n_rel == 0) & (n_sel == 0)
  return (jnp.where(empty, 1.0, tp / (n_sel + 1e-8)), jnp.where(empty, 1.0, tp / (n_rel + 1e-8)))
