"""Tests for jaxinpaint.edges against scikit-image (EdgeConnect's own Canny) on real photos and masks."""

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from skimage import color, feature

from jaxinpaint import edges, masks


@pytest.fixture(scope="module")
def photo(shared_data):
  # A real photo, cropped small to keep the test fast.
  img = np.asarray(Image.open(shared_data / "natural" / "Kodak24" / "kodim05.png").convert("RGB"))
  return img[100:228, 150:278]  # uint8 128x128x3


@pytest.fixture(scope="module")
def hole_mask(shared_data):
  return masks.load(shared_data / "masks_nvidia_test300" / "04000.png", shape=(128, 128))


def test_rgb_to_gray_matches_skimage_and_formula(photo):
  x = photo.astype(np.float32) / 255
  g = edges.rgb_to_gray(x)
  assert g.dtype == np.float32 and g.shape == (128, 128)
  np.testing.assert_allclose(g, color.rgb2gray(x), atol=1e-6)
  np.testing.assert_allclose(g, 0.2125 * x[..., 0] + 0.7154 * x[..., 1] + 0.0721 * x[..., 2], atol=1e-6)
  # Batched input keeps leading axes.
  assert edges.rgb_to_gray(np.stack([x, x])).shape == (2, 128, 128)


def test_canny_equals_skimage_on_real_photo(photo):
  gray = edges.rgb_to_gray(photo.astype(np.float32) / 255)
  e = edges.canny(gray, sigma=2.0)
  assert e.dtype == np.float32 and set(np.unique(e)) == {0.0, 1.0}
  np.testing.assert_array_equal(e, feature.canny(gray.astype(np.float64), sigma=2.0))
  # EdgeConnect's own chain (rgb2gray on the uint8 image, float64) agrees up to float32 rounding.
  ref = feature.canny(color.rgb2gray(photo), sigma=2.0)
  assert np.mean(e != ref) < 1e-3
  # sigma matters: more smoothing, fewer edges.
  assert edges.canny(gray, sigma=4.0).sum() < e.sum()


def test_canny_with_mask_is_empty_in_and_at_holes(photo, hole_mask):
  gray = edges.rgb_to_gray(photo.astype(np.float32) / 255)
  hole = hole_mask == 0
  assert 0.05 < hole.mean() < 0.6
  e = edges.canny(gray, sigma=2.0, mask=hole_mask)
  assert set(np.unique(e)) <= {0.0, 1.0}
  assert e[hole].sum() == 0
  # "At the hole": no edge on valid pixels 8-adjacent to a hole.
  near = ndimage.binary_dilation(hole, np.ones((3, 3), bool)) & ~hole
  assert near.any() and e[near].sum() == 0
  # Still edges away from holes, and equal to skimage with EdgeConnect's mask argument (valid = True).
  assert e.sum() > 50
  np.testing.assert_array_equal(e, feature.canny(gray.astype(np.float64), sigma=2.0, mask=~hole))
  # Accepts (H, W, 1) masks too.
  np.testing.assert_array_equal(edges.canny(gray, mask=hole_mask[..., None]), e)


def test_canny_hole_pixels_do_not_create_edges(photo, hole_mask):
  # Filling the hole with anything (here black) must not change the edge map: the mask-normalised
  # smoothing ignores hole pixels.
  gray = edges.rgb_to_gray(photo.astype(np.float32) / 255)
  holed = np.where(hole_mask == 0, 0.0, gray).astype(np.float32)
  np.testing.assert_array_equal(edges.canny(holed, mask=hole_mask), edges.canny(gray, mask=hole_mask))


def test_canny_bad_input():
  with pytest.raises(ValueError, match="gray"):
    edges.canny(np.zeros((4, 4, 3), np.float32))
  with pytest.raises(ValueError, match="float"):
    edges.canny(np.zeros((8, 8), np.uint8))
  with pytest.raises(ValueError, match="mask shape"):
    edges.canny(np.zeros((8, 8), np.float32), mask=np.ones((4, 4)))
  with pytest.raises(ValueError, match="sigma"):
    edges.canny(np.zeros((8, 8), np.float32), sigma=0)
  with pytest.raises(ValueError, match="RGB"):
    edges.rgb_to_gray(np.zeros((4, 4)))


def test_canny_batch_is_canny_per_image():
  rng = np.random.default_rng(0)
  images = rng.random((3, 24, 20, 3)).astype(np.float32)
  masks = (rng.random((3, 24, 20, 1)) > 0.3).astype(np.float32)
  want = np.stack([feature.canny(edges.rgb_to_gray(im).astype(np.float64), sigma=1.5) for im in images])
  got = edges.canny_batch(images, sigma=1.5)
  assert got.shape == (3, 24, 20, 1) and got.dtype == np.float32
  np.testing.assert_array_equal(got[..., 0], want.astype(np.float32))
  masked = edges.canny_batch(images, sigma=1.5, masks=masks)
  for i in range(3):
    np.testing.assert_array_equal(masked[i, ..., 0],
                                  edges.canny(edges.rgb_to_gray(images[i]), sigma=1.5, mask=masks[i]))
  with pytest.raises(ValueError, match="one mask per image"):
    edges.canny_batch(images, masks=masks[:2])
