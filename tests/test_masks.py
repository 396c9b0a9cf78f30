"""Tests for jaxinpaint.masks on the 300 real NVIDIA irregular test masks and generated masks."""

import csv

import cv2
import numpy as np
import pytest
from PIL import Image

from jaxinpaint import masks


@pytest.fixture(scope="module")
def nvidia(shared_data):
  folder = shared_data / "masks_nvidia_test300"
  with open(folder / "MANIFEST.csv", newline="") as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 300
  return folder, rows


def _raw(path):
  return np.asarray(Image.open(path).convert("L"))


def test_load_polarity_and_binary_all_300(nvidia):
  folder, rows = nvidia
  for row in rows:
    raw = _raw(folder / row["file"])
    m = masks.load(folder / row["file"])
    assert m.dtype == np.float32 and m.shape == raw.shape == (512, 512)
    assert set(np.unique(m)) <= {0.0, 1.0}
    # White (255) = hole -> 0; black = valid -> 1.
    np.testing.assert_array_equal(m == 0, raw > 127)


def test_hole_value_zero_inverts(nvidia):
  folder, rows = nvidia
  path = folder / rows[100]["file"]
  np.testing.assert_array_equal(masks.load(path, hole_value=0), 1 - masks.load(path))


def test_bucket_and_border_match_manifest(nvidia):
  folder, rows = nvidia
  for row in rows:
    m = masks.load(folder / row["file"])
    assert masks.hole_ratio(m) == pytest.approx(float(row["measured_white_fraction"]), abs=5.1e-5)
    lo, hi = (float(x) for x in row["hole_ratio_bucket"].split("-"))
    assert masks.hole_ratio_bucket(m) == f"({lo:g},{hi:g}]"
    assert masks.border_flag(m) == row["border_flag_measured"]


def test_read_manifest_normalises_labels(nvidia):
  folder, rows = nvidia
  manifest = masks.read_manifest(folder)
  assert len(manifest) == 300
  assert {e["bucket"] for e in manifest.values()} == set(masks.BUCKETS)
  assert manifest[rows[0]["file"]]["border"] == rows[0]["border_flag_measured"]


def test_bucket_boundaries_are_open_below_closed_above():
  m = np.ones((10, 10), np.float32)
  m.flat[:10] = 0  # exactly 0.1
  assert masks.hole_ratio_bucket(m) == "(0.01,0.1]"
  m.flat[:11] = 0
  assert masks.hole_ratio_bucket(m) == "(0.1,0.2]"
  m.flat[:60] = 0
  assert masks.hole_ratio_bucket(m) == "(0.5,0.6]"
  m.flat[:61] = 0
  assert masks.hole_ratio_bucket(m) == "(0.6,1]"
  assert masks.hole_ratio_bucket(np.ones((10, 10))) == "[0,0.01]"
  assert masks.hole_ratio_bucket(0.35) == "(0.3,0.4]"
  assert masks.hole_ratio_bucket(0.3) == "(0.2,0.3]"
  assert masks.BUCKETS == ("(0.01,0.1]", "(0.1,0.2]", "(0.2,0.3]", "(0.3,0.4]", "(0.4,0.5]", "(0.5,0.6]")
  with pytest.raises(ValueError, match="hole ratio"):
    masks.hole_ratio_bucket(1.5)


@pytest.mark.parametrize("shape", [(128, 128), (200, 300), (700, 513)])
def test_load_resizes_with_nearest_like_pil(nvidia, shape):
  folder, rows = nvidia
  path = folder / rows[250]["file"]
  m = masks.load(path, shape=shape)
  assert m.shape == shape and set(np.unique(m)) <= {0.0, 1.0}
  # Reference from the definition: output pixel i samples input pixel floor((i + 0.5) * H / h).
  raw = _raw(path) <= 127
  rows = [int(np.floor((i + 0.5) * 512 / shape[0])) for i in range(shape[0])]
  cols = [int(np.floor((j + 0.5) * 512 / shape[1])) for j in range(shape[1])]
  np.testing.assert_array_equal(m == 1, raw[np.ix_(rows, cols)])
  # PIL's NEAREST uses the same rule; it may differ only where (i + 0.5) * H / h is an exact integer tie.
  pil = np.asarray(Image.open(path).convert("L").resize(shape[::-1], Image.NEAREST)) <= 127
  assert np.mean(pil != (m == 1)) < 0.005


def test_load_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="nope.png"):
    masks.load(tmp_path / "nope.png")
  bad = tmp_path / "bad.png"
  bad.write_bytes(b"not a png at all")
  with pytest.raises(ValueError, match="bad.png"):
    masks.load(bad)
  with pytest.raises(ValueError, match="hole_value"):
    masks.load(bad, hole_value=128)


@pytest.mark.parametrize("bucket", masks.BUCKET_RANGES)
def test_irregular_lands_in_requested_bucket(bucket):
  rng = np.random.default_rng(123)
  lo, hi = bucket
  ratios = []
  for _ in range(20):
    m = masks.irregular(rng, (128, 128), hole_ratio=bucket)
    assert m.shape == (128, 128) and m.dtype == np.float32
    assert set(np.unique(m)) <= {0.0, 1.0}
    ratios.append(masks.hole_ratio(m))
  hits = np.mean([lo < r <= hi for r in ratios])
  assert hits >= 0.9, (bucket, ratios)
  # Not a constant: the target is spread over the bucket.
  assert np.std(ratios) > 0


def test_irregular_deterministic_and_non_rectangular():
  a = masks.irregular(np.random.default_rng(5), (96, 64), hole_ratio=(0.2, 0.3))
  b = masks.irregular(np.random.default_rng(5), (96, 64), hole_ratio=(0.2, 0.3))
  c = masks.irregular(np.random.default_rng(6), (96, 64), hole_ratio=(0.2, 0.3))
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)
  # Free-form: the holes do not fill their bounding box (unlike a block mask).
  ys, xs = np.nonzero(a == 0)
  box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
  assert (a == 0).sum() < 0.9 * box


def test_irregular_bad_ratio():
  rng = np.random.default_rng(0)
  with pytest.raises(ValueError, match="hole_ratio"):
    masks.irregular(rng, (32, 32), hole_ratio=(0.5, 0.2))
  with pytest.raises(ValueError, match="shape"):
    masks.irregular(rng, (32,), hole_ratio=(0.1, 0.2))


def test_block_is_quarter_square_at_random_place():
  positions = set()
  for seed in range(20):
    m = masks.block(np.random.default_rng(seed), (64, 48))
    hole = m == 0
    ys, xs = np.nonzero(hole)
    assert hole.sum() == 32 * 24  # W/2 x H/2 = 25% of the image
    assert (ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) == (32, 24)
    positions.add((ys.min(), xs.min()))
  assert len(positions) > 5


def test_half_is_left_or_right_half():
  seen = set()
  for seed in range(20):
    m = masks.half(np.random.default_rng(seed), (16, 20))
    left = np.array_equal(m[:, :10], np.zeros((16, 10))) and m[:, 10:].all()
    right = np.array_equal(m[:, 10:], np.zeros((16, 10))) and m[:, :10].all()
    assert left or right
    seen.add(left)
  assert seen == {True, False}


def test_augment_keeps_masks_binary_and_changes_them(nvidia):
  folder, rows = nvidia
  rng = np.random.default_rng(0)
  changed = 0
  for row in rows[::25]:
    m = masks.load(folder / row["file"])
    a = masks.augment(m, rng, (128, 128))
    assert a.shape == (128, 128) and a.dtype == np.float32
    assert set(np.unique(a)) <= {0.0, 1.0}
    changed += not np.array_equal(a, masks.resize_nearest(m, (128, 128)))
  assert changed >= 10


def test_mask_folder_sampler(nvidia):
  folder, rows = nvidia
  sampler = masks.from_spec(str(folder))
  assert isinstance(sampler, masks.MaskFolder) and len(sampler) == 300
  m = sampler(np.random.default_rng(1), (64, 80))
  assert m.shape == (64, 80) and set(np.unique(m)) <= {0.0, 1.0}
  border = {r["file"]: r["border_flag_measured"] for r in rows}
  assert sampler.info(0) == (masks.hole_ratio_bucket(sampler.get(0)), border[sampler.files[0].name])
  # The in-memory cache returns exactly what a fresh load gives.
  for i in (3, 3, 299):
    np.testing.assert_array_equal(sampler.get(i), masks.load(sampler.files[i]))
    np.testing.assert_array_equal(sampler.get(i, (50, 70)), masks.load(sampler.files[i], shape=(50, 70)))


def test_specs_and_mixture_weights():
  rng = np.random.default_rng(0)
  m = masks.from_spec("irregular:0.3-0.4")(rng, (64, 64))
  assert masks.hole_ratio_bucket(m) == "(0.3,0.4]"
  assert masks.from_spec("irregular:(0.1,0.2]")(rng, (64, 64)) is not None
  mix = masks.from_spec("mix:block=3,half=1")
  ratios = np.array([masks.hole_ratio(mix(rng, (8, 8))) for _ in range(400)])
  assert set(np.unique(ratios)) == {0.25, 0.5}
  # Binomial(400, 0.75): mean 300, sd ~8.7.
  assert 265 < (ratios == 0.25).sum() < 335


def _widest_hole(mask: np.ndarray) -> float:
  """The largest distance (px) from a hole pixel to the nearest known pixel (mask: 1 = valid)."""
  return float(cv2.distanceTransform((mask == 0).astype(np.uint8), cv2.DIST_L2, 5).max())


def test_stroke_scale_narrows_holes_at_the_same_hole_fraction():
  """irregular@0.5 draws shapes half their default size: holes about half as wide (the distance from a hole
  pixel to the known region), with the hole fraction still in the requested bucket."""
  rng = np.random.default_rng(0)
  default = [masks.from_spec("irregular:0.2-0.3")(rng, (128, 128)) for _ in range(24)]
  narrow = [masks.from_spec("irregular:0.2-0.3@0.5")(rng, (128, 128)) for _ in range(24)]
  assert all(masks.hole_ratio_bucket(m) == "(0.2,0.3]" for m in default + narrow)
  ratio = np.mean([_widest_hole(m) for m in narrow]) / np.mean([_widest_hole(m) for m in default])
  assert 0.35 < ratio < 0.75, ratio
  with pytest.raises(ValueError, match="stroke_scale must be a number in"):
    masks.irregular(rng, (32, 32), stroke_scale=0)


@pytest.mark.parametrize("spec,err", [
    ("bogus", FileNotFoundError), ("mix:block", ValueError), ("mix:block=x", ValueError),
    ("mix:block=0", ValueError), ("irregular:0.5-0.2", ValueError), ("", ValueError),
    ("irregular@x", ValueError), ("irregular@0", ValueError), ("irregular:0.1-0.2@5", ValueError)])
def test_bad_specs(spec, err):
  """A spec that is not understood is refused with a message naming it."""
  with pytest.raises(err, match="spec|mix|bucket|hole"):
    masks.from_spec(spec)


def test_spec_file_not_folder_and_empty_folder(tmp_path):
  f = tmp_path / "x.png"
  f.write_bytes(b"x")
  with pytest.raises(ValueError, match="folder"):
    masks.from_spec(str(f))
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(ValueError, match="no mask images"):
    masks.from_spec(str(empty))


def test_parse_spec_checks_what_from_spec_builds(tmp_path):
  """The cheap parser config validation runs is the one from_spec uses: same answers, no file read."""
  assert masks.parse_spec("irregular") == ("irregular", (0.01, 0.6), 1.0)
  assert masks.parse_spec(" irregular:0.1-0.2 ") == ("irregular", (0.1, 0.2), 1.0)
  assert masks.parse_spec("irregular@0.7") == ("irregular", (0.01, 0.6), 0.7)
  assert masks.parse_spec("irregular:0.1-0.2@0.5") == ("irregular", (0.1, 0.2), 0.5)
  assert masks.parse_spec("mix:block=3,half=1") == ("mix", ((("block",), 3.0), (("half",), 1.0)))
  (tmp_path / "m").mkdir()
  assert masks.parse_spec(str(tmp_path / "m")) == ("folder", tmp_path / "m")  # empty: not read yet
  for spec in ("center", "random", "mix:center=1"):  # names no generator has
    with pytest.raises(FileNotFoundError, match="neither a known generator"):
      masks.parse_spec(spec)
    with pytest.raises(FileNotFoundError, match="neither a known generator"):
      masks.from_spec(spec)
