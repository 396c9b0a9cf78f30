"""Edge maps and grayscale conversion as EdgeConnect computes them.

EdgeConnect (Nazeri et al. 2019; knazeri/edge-connect `src/dataset.py`) converts the RGB image to gray
with `skimage.color.rgb2gray` and extracts edges with `skimage.feature.canny(gray, sigma=2, mask=...)`,
using scikit-image's default hysteresis thresholds (10% / 20% of the dtype range). At test time it passes
`mask = valid region` so that Canny finds no edges in the holes. This module reproduces that:

  * `rgb_to_gray`: ITU-R BT.709 luma, Y = 0.2125 R + 0.7154 G + 0.0721 B (skimage's rgb2gray weights).
  * `canny`: skimage.feature.canny on float64 gray (rgb2gray's output dtype in EdgeConnect), returned as
    float32 in {0, 1}; with a mask, no edge lies inside a hole or on a valid pixel 8-adjacent to one.
  * `canny_batch`: `canny(rgb_to_gray(image))` for a batch of RGB images (the ground-truth edges of the
    full image, or with masks the known-region edges EdgeConnect's inference starts from).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import feature

__all__ = ["LUMA_WEIGHTS", "rgb_to_gray", "canny", "canny_batch"]

# skimage.color.rgb2gray: Y = 0.2125 R + 0.7154 G + 0.0721 B.
LUMA_WEIGHTS = np.array([0.2125, 0.7154, 0.0721], np.float32)


def rgb_to_gray(image: np.ndarray) -> np.ndarray:
  """RGB -> luma with skimage.color.rgb2gray's weights (0.2125, 0.7154, 0.0721).

  Args:
    image: float array (..., 3) in [0, 1] (HxWx3 or NxHxWx3).

  Returns:
    float32 array (...) — the channel axis is dropped.
  """
  image = np.asarray(image)
  if image.ndim < 2 or image.shape[-1] != 3:
    raise ValueError(f"image must have a trailing RGB axis of size 3, got shape {image.shape}")
  return (image.astype(np.float32) @ LUMA_WEIGHTS).astype(np.float32)


def canny(gray: np.ndarray, *, sigma: float = 2.0, mask: np.ndarray | None = None) -> np.ndarray:
  """EdgeConnect's Canny edge map: `skimage.feature.canny(gray, sigma=sigma, mask=mask)`.

  scikit-image's `mask` marks where edges may be detected (True = use this pixel); EdgeConnect passes the
  valid region, which is our mask convention (1 = valid). skimage smooths with a mask-normalised Gaussian
  (hole pixels do not bleed in) and erodes the mask with a 3x3 square before non-maximum suppression, so
  no edge lies inside a hole nor on a valid pixel touching one; we re-apply that eroded mask explicitly
  so the guarantee holds regardless of the skimage version.

  Args:
    gray: (H, W) float in [0, 1] (e.g. `rgb_to_gray(image)`).
    sigma: Gaussian standard deviation (EdgeConnect's SIGMA, default 2).
    mask: optional (H, W) or (H, W, 1) mask, 1 = valid, 0 = hole.

  Returns:
    float32 (H, W) array in {0, 1}.

  References:
    Canny, "A Computational Approach to Edge Detection", TPAMI 1986; scikit-image `feature.canny`;
    knazeri/edge-connect `Dataset.load_edge`.
  """
  gray = np.asarray(gray)
  if gray.ndim == 3 and gray.shape[-1] == 1:
    gray = gray[..., 0]
  if gray.ndim != 2:
    raise ValueError(f"gray must be a 2-D (H, W) image, got shape {gray.shape}")
  if not np.issubdtype(gray.dtype, np.floating):
    raise ValueError(f"gray must be float in [0, 1], got dtype {gray.dtype}")
  if not sigma > 0:
    raise ValueError(f"sigma must be > 0, got {sigma}")
  gray = gray.astype(np.float64, copy=False)
  if mask is None:
    return feature.canny(gray, sigma=sigma).astype(np.float32)
  valid = np.asarray(mask)
  if valid.ndim == 3 and valid.shape[-1] == 1:
    valid = valid[..., 0]
  if valid.shape != gray.shape:
    raise ValueError(f"mask shape {valid.shape} must match gray shape {gray.shape}")
  valid = valid > 0.5
  edges = feature.canny(gray, sigma=sigma, mask=valid)
  # "No edges inside or at the hole": a valid pixel 8-adjacent to a hole has an "infected" gradient.
  edges &= ndimage.binary_erosion(valid, np.ones((3, 3), bool), border_value=1)
  return edges.astype(np.float32)


def canny_batch(images: np.ndarray, *, sigma: float = 2.0, masks: np.ndarray | None = None) -> np.ndarray:
  """Canny edges of a batch of RGB images: `canny(rgb_to_gray(image), sigma=sigma, mask=mask)` per image.

  Args:
    images: float (N, H, W, 3) in [0, 1].
    sigma: Gaussian standard deviation (EdgeConnect's SIGMA, default 2).
    masks: optional (N, H, W, 1) or (N, H, W), 1 = valid, 0 = hole (edges of the known region only).

  Returns:
    float32 (N, H, W, 1) in {0, 1}.
  """
  images = np.asarray(images)
  if images.ndim != 4:
    raise ValueError(f"images must be a (N, H, W, 3) batch, got shape {images.shape}")
  gray = rgb_to_gray(images)
  if masks is None:
    out = [canny(g, sigma=sigma) for g in gray]
  else:
    masks = np.asarray(masks)
    if masks.shape[0] != images.shape[0]:
      raise ValueError(f"masks must hold one mask per image ({images.shape[0]}), got shape {masks.shape}")
    out = [canny(g, sigma=sigma, mask=m) for g, m in zip(gray, masks)]
  return np.stack(out)[..., None].astype(np.float32)
