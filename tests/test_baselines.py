"""Tests for jaxinpaint.baselines: the classical predictors fill only the hole, and fill it sensibly."""

import sys

import numpy as np
import pytest
from PIL import Image

from jaxinpaint import baselines

SIZE = 64


@pytest.fixture(scope="module")
def batch(shared_data):
  """Two real photos with two real NVIDIA test masks (white = hole in the file -> 0 here)."""
  photos = sorted((shared_data / "places" / "gmcnn_places2_256x256").glob("*.png"))[:2]
  images = np.stack([np.asarray(Image.open(p).convert("RGB").resize((SIZE, SIZE), Image.BICUBIC), np.float32) / 255
                     for p in photos])
  mask_files = [shared_data / "masks_nvidia_test300" / f for f in ("03160.png", "07560.png")]
  masks = np.stack([(np.asarray(Image.open(p).convert("L").resize((SIZE, SIZE), Image.NEAREST)) < 128)
                    .astype(np.float32)[..., None] for p in mask_files])
  assert 0.05 < 1 - masks.mean() < 0.6
  # Holes on the image border: where OpenCV reads unfilled hole pixels (the case that must not leak).
  assert all((m[0] < 0.5).any() or (m[:, 0] < 0.5).any() or (m[-1] < 0.5).any() or (m[:, -1] < 0.5).any()
             for m in masks)
  return images, masks


PREDICTORS = [
    ("telea", baselines.telea),
    ("ns", baselines.navier_stokes),
    ("patchmatch", baselines.patchmatch),
]


@pytest.mark.parametrize("name,fn", PREDICTORS)
def test_fills_only_the_hole(batch, name, fn):
  if name == "patchmatch":
    pytest.importorskip("patchmatch")
  images, masks = batch
  # Garbage in the hole: a baseline must not read it.
  rng = np.random.default_rng(0)
  holed = np.where(masks > 0.5, images, rng.uniform(size=images.shape)).astype(np.float32)
  out = fn(holed, masks)
  assert out.shape == images.shape and out.dtype == np.float32
  known = np.broadcast_to(masks > 0.5, images.shape)
  # Known pixels come back as their 8-bit quantization, untouched.
  np.testing.assert_array_equal(out[known], (np.rint(images * 255) / 255).astype(np.float32)[known])
  # Output does not depend on what was in the hole: not garbage, zeros, nor the ground truth itself.
  np.testing.assert_array_equal(fn(np.where(masks > 0.5, images, 0.0).astype(np.float32), masks), out)
  np.testing.assert_array_equal(fn(images, masks), out)
  # The hole is filled with something closer to the truth than the garbage or a flat gray.
  hole = ~known
  err = np.abs(out[hole] - images[hole]).mean()
  assert err < np.abs(holed[hole] - images[hole]).mean()
  assert err < np.abs(0.5 - images[hole]).mean()


def test_get_predictor_and_single_image(batch):
  images, masks = batch
  predict = baselines.get_predictor("telea")
  np.testing.assert_array_equal(predict(images, masks), baselines.telea(images, masks))
  single = baselines.telea(images[0], masks[0, ..., 0])
  np.testing.assert_array_equal(single, baselines.telea(images[:1], masks[:1])[0])
  assert not np.array_equal(baselines.navier_stokes(images, masks), baselines.telea(images, masks))
  with pytest.raises(ValueError, match="unknown baseline 'foo'"):
    baselines.get_predictor("foo")


def test_bad_shapes(batch):
  images, masks = batch
  with pytest.raises(ValueError, match="masks must be"):
    baselines.telea(images, masks[:, :32])
  with pytest.raises(ValueError, match="images must be"):
    baselines.telea(images[..., :1], masks)


def test_patchmatch_missing_gives_install_hint(monkeypatch, batch):
  monkeypatch.setitem(sys.modules, "patchmatch", None)  # makes `import patchmatch` raise ImportError
  with pytest.raises(ImportError, match="pip install pypatchmatch"):
    baselines.get_predictor("patchmatch")
  with pytest.raises(ImportError, match="pip install pypatchmatch"):
    baselines.patchmatch(*batch)
