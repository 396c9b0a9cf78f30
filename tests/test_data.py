"""Tests for jaxinpaint.data: sources, decoding, preprocessing, the resumable pipeline and eval pairs."""

import csv
import itertools
import importlib.util
import json
import shutil
import warnings

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import color, feature

from jaxinpaint import data, masks


def _png(path, arr):
  Image.fromarray(arr).save(path)
  return path


def _batches(p, n):
  return [next(p) for _ in range(n)]


def _assert_same(b1, b2):
  assert len(b1) == len(b2)
  for x, y in zip(b1, b2):
    assert x.keys() == y.keys()
    for k in x:
      np.testing.assert_array_equal(x[k], y[k], err_msg=k)


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory, shared_data):
  """8 real photos (copied to tmp, repository untouched), in nested folders with mixed extensions."""
  root = tmp_path_factory.mktemp("photos")
  srcs = sorted((shared_data / "natural" / "BSDS500" / "train").glob("*.jpg"))[:5]
  srcs += sorted((shared_data / "places" / "gmcnn_places2_256x256").glob("*.png"))[:3]
  for i, s in enumerate(srcs):
    sub = root / ("a" if i % 2 else "b/c")
    sub.mkdir(parents=True, exist_ok=True)
    shutil.copy(s, sub / (s.stem + (s.suffix.upper() if i == 0 else s.suffix)))
  (root / "notes.txt").write_text("not an image")
  return root


# -- sources -----------------------------------------------------------------------------------------

def test_folder_source_recursive_sorted(small_folder):
  src = data.open_source(str(small_folder))
  assert len(src) == 8
  names = [src.name(i) for i in range(len(src))]
  assert names == sorted(names) and not any(n.endswith(".txt") for n in names)
  assert any(n.endswith(".JPG") for n in names)
  img = src.load(0)
  assert img.dtype == np.float32 and img.ndim == 3 and img.shape[2] == 3
  assert 0 <= img.min() and img.max() <= 1


def test_flist_with_spaces_and_relative_paths(tmp_path, shared_data):
  kodak = shared_data / "natural" / "Kodak24"
  spaced = tmp_path / "dir with space" / "my photo 1.png"
  spaced.parent.mkdir()
  shutil.copy(kodak / "kodim01.png", spaced)
  flist = tmp_path / "train.flist"
  flist.write_text(f"dir with space/my photo 1.png\n\n{kodak / 'kodim02.png'}\r\n")
  src = data.open_source(str(flist))
  assert len(src) == 2
  assert src.name(0) == str(spaced)
  np.testing.assert_array_equal(src.load(0), data.load_image(kodak / "kodim01.png"))
  bad = tmp_path / "bad.flist"
  bad.write_text("missing file.png\n")
  with pytest.raises(FileNotFoundError, match="missing file.png"):
    data.open_source(str(bad))
  empty = tmp_path / "empty.flist"
  empty.write_text("\n")
  with pytest.raises(ValueError, match="no image paths"):
    data.open_source(str(empty))


def test_builtin_split_is_fixed_and_disjoint():
  train, held = data.open_source("builtin:train"), data.open_source("builtin:heldout")
  assert data.open_source("builtin").paths == train.paths
  assert len(held) == 3 and len(train) >= 8
  assert not {p.name for p in train.paths} & {p.name for p in held.paths}
  assert len(data.open_source("builtin:all")) == len(train) + len(held)
  for src in (train, held):
    for i in range(len(src)):
      img = src.load(i)
      assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.float32
  with pytest.raises(ValueError, match="builtin"):
    data.open_source("builtin:test")


def test_missing_and_empty_sources(tmp_path):
  with pytest.raises(FileNotFoundError, match="does_not_exist"):
    data.open_source(str(tmp_path / "does_not_exist"))
  (tmp_path / "empty").mkdir()
  (tmp_path / "empty" / "readme.md").write_text("x")
  with pytest.raises(ValueError, match="no images"):
    data.open_source(str(tmp_path / "empty"))
  with pytest.raises(ValueError, match="images spec"):
    data.open_source("")
  with pytest.raises(ValueError, match="tfds"):
    data.open_source("tfds:")


# -- decoding ----------------------------------------------------------------------------------------

def test_decoding_converts_modes_to_rgb_float(tmp_path):
  rng = np.random.default_rng(0)
  rgb = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
  gray = rgb[..., 0]
  ref_gray = np.repeat(gray[..., None], 3, -1) / 255
  # Grayscale.
  np.testing.assert_allclose(data.load_image(_png(tmp_path / "g.png", gray)), ref_gray, atol=1e-6)
  # RGBA: composited on white, as a viewer shows it: rgb * a + 1 * (1 - a).
  alpha = rng.integers(0, 256, (6, 5, 1), dtype=np.uint8)
  rgba = np.concatenate([rgb, alpha], -1)
  on_white = (rgb / 255) * (alpha / 255) + (1 - alpha / 255)
  np.testing.assert_allclose(data.load_image(_png(tmp_path / "a.png", rgba)), on_white, atol=1.01 / 255)
  # Palette.
  pal = Image.fromarray(rgb).quantize(8)
  pal.save(tmp_path / "p.png")
  np.testing.assert_allclose(data.load_image(tmp_path / "p.png"), np.asarray(pal.convert("RGB")) / 255,
                             atol=1e-6)
  # 16-bit grayscale.
  g16 = rng.integers(0, 65536, (6, 5), dtype=np.uint16)
  Image.fromarray(g16).save(tmp_path / "g16.png")
  out = data.load_image(tmp_path / "g16.png")
  np.testing.assert_allclose(out, np.repeat(g16[..., None], 3, -1) / 65535, atol=1e-6)
  # BMP / TIFF / WEBP (lossless) round trips.
  for ext in ("bmp", "tiff", "webp"):
    p = tmp_path / f"x.{ext}"
    Image.fromarray(rgb).save(p, **({"lossless": True} if ext == "webp" else {}))
    np.testing.assert_allclose(data.load_image(p), rgb / 255, atol=1e-6, err_msg=ext)


def test_to_rgb_float_arrays():
  assert data.to_rgb_float(np.zeros((3, 4), np.uint8)).shape == (3, 4, 3)
  np.testing.assert_allclose(data.to_rgb_float(np.full((2, 2, 1), 65535, np.uint16)), 1.0)
  with pytest.raises(ValueError, match="image"):
    data.to_rgb_float(np.zeros((2, 2, 5), np.uint8))


# -- preprocessing -----------------------------------------------------------------------------------

def test_preprocess_modes():
  img = np.random.default_rng(0).random((218, 178, 3), dtype=np.float32)
  # CelebA: the centre 178x178 of a 218x178 face is rows 20..198.
  np.testing.assert_array_equal(data.preprocess(img, image_size=178, crop="celeba"), img[20:198])
  np.testing.assert_array_equal(data.preprocess(img, image_size=178, crop="center"), img[20:198])
  assert data.preprocess(img, image_size=64, crop="center").shape == (64, 64, 3)
  # Random crop: a window of the image.
  out = data.preprocess(img, image_size=50, crop="random", rng=np.random.default_rng(3))
  hits = [(y, x) for y in range(218 - 49) for x in range(178 - 49)
          if np.array_equal(img[y:y + 50, x:x + 50], out)]
  assert len(hits) == 1
  # Smaller than the crop: resized up first.
  small = img[:40, :30]
  out = data.preprocess(small, image_size=64, crop="random", rng=np.random.default_rng(0))
  assert out.shape == (64, 64, 3)
  # Flip: same rng stream, so the output is the unflipped crop or its mirror, and both happen.
  kinds = set()
  for seed in range(10):
    a = data.preprocess(img, image_size=50, rng=np.random.default_rng(seed))
    b = data.preprocess(img, image_size=50, rng=np.random.default_rng(seed), flip=True)
    assert np.array_equal(a, b) or np.array_equal(a[:, ::-1], b)
    kinds.add(np.array_equal(a, b))
  assert kinds == {True, False}
  with pytest.raises(ValueError, match="crop"):
    data.preprocess(img, image_size=8, crop="zoom")
  with pytest.raises(ValueError, match="rng"):
    data.preprocess(img, image_size=8)


def test_preprocess_shorter_side_crops_the_resized_image():
  img = np.random.default_rng(1).random((90, 120, 3), dtype=np.float32)
  # Shrunk so the shorter side is 60 (area averaging, OpenCV), then a 32x32 window of that.
  resized = cv2.resize(img, (80, 60), interpolation=cv2.INTER_AREA).clip(0, 1)
  out = data.preprocess(img, image_size=32, rng=np.random.default_rng(5), shorter_side=60)
  hits = [(y, x) for y in range(60 - 31) for x in range(80 - 31) if np.array_equal(resized[y:y + 32, x:x + 32], out)]
  assert len(hits) == 1
  # Enlarged as well: 180 x 240 (bilinear).
  out = data.preprocess(img, image_size=32, rng=np.random.default_rng(5), shorter_side=180)
  big = cv2.resize(img, (240, 180), interpolation=cv2.INTER_LINEAR).clip(0, 1)
  assert any(np.array_equal(big[y:y + 32, x:x + 32], out) for y in range(180 - 31) for x in range(240 - 31))
  # 0 = native resolution: the same crop as without the argument.
  np.testing.assert_array_equal(data.preprocess(img, image_size=32, rng=np.random.default_rng(5), shorter_side=0),
                                data.preprocess(img, image_size=32, rng=np.random.default_rng(5)))
  with pytest.raises(ValueError, match="shorter_side.*>= image_size"):
    data.preprocess(img, image_size=32, rng=np.random.default_rng(5), shorter_side=16)
  with pytest.raises(ValueError, match="crop='random' only"):
    data.preprocess(img, image_size=32, crop="center", shorter_side=64)


def test_pipeline_shorter_side_changes_the_scale(small_folder, shared_data):
  kw = dict(images=str(small_folder), masks="irregular", image_size=16, batch_size=2, seed=0)
  native = next(data.create_train_pipeline(**kw))["image"]
  scaled = next(data.create_train_pipeline(shorter_side=16, **kw))["image"]
  # With the shorter side at the crop size a crop is (almost) the whole photo, so it differs from a window
  # at native resolution.
  assert native.shape == scaled.shape == (2, 16, 16, 3)
  assert not np.array_equal(native, scaled)
  with pytest.raises(ValueError, match="shorter_side"):
    data.create_train_pipeline(shorter_side=8, **kw)


def test_pipeline_mask_size_draws_masks_large_and_crops_a_window(small_folder):
  """mask_size=m: each training mask is a window of the mask the generator draws at m x m, so its holes have
  the pixel width of an m x m mask; mask_size=0 draws at the crop size, as before the option existed."""
  kw = dict(images=str(small_folder), masks="irregular", image_size=16, batch_size=8, seed=2)
  sampler = masks.from_spec("irregular")
  small = next(data.create_train_pipeline(**kw))["mask"][..., 0]
  large = next(data.create_train_pipeline(mask_size=48, **kw))["mask"][..., 0]
  assert small.shape == large.shape == (8, 16, 16)
  with data.create_train_pipeline(**kw) as pipe:
    order = pipe._order(0)  # pylint: disable=protected-access
  offsets = set()
  for i in range(8):
    rng = lambda: data._seed_rng(2, data._TAG_MASK, 0, int(order[i]))  # pylint: disable=protected-access
    np.testing.assert_array_equal(small[i], sampler(rng(), (16, 16)))  # mask_size=0: drawn at the crop size
    full = sampler(rng(), (48, 48))
    found = [(y, x) for y in range(33) for x in range(33) if np.array_equal(full[y:y + 16, x:x + 16], large[i])]
    assert found, i  # a 16 x 16 window of the 48 x 48 mask
    offsets.add(found[0])
  assert len(offsets) > 1  # the window moves
  with pytest.raises(ValueError, match=r"mask_size must be 0 \(masks drawn at the crop size\) or an int >= "
                                       r"image_size \(16\), got 8"):
    data.create_train_pipeline(mask_size=8, **kw)


def test_pipeline_min_mask_size_draws_each_mask_at_a_side_in_the_range(small_folder):
  """min_mask_size=lo with mask_size=hi: each mask's side m is drawn from [lo, hi] by the example's mask
  generator before the mask itself, and the crop-sized window is taken from that m x m mask."""
  kw = dict(images=str(small_folder), masks="irregular", image_size=16, batch_size=8, seed=3)
  sampler = masks.from_spec("irregular")
  batch = next(data.create_train_pipeline(mask_size=40, min_mask_size=20, **kw))["mask"][..., 0]
  assert batch.shape == (8, 16, 16)
  with data.create_train_pipeline(**kw) as pipe:
    order = pipe._order(0)  # pylint: disable=protected-access
  sides = set()
  for i in range(8):
    rng = data._seed_rng(3, data._TAG_MASK, 0, int(order[i]))  # pylint: disable=protected-access
    m = int(rng.integers(20, 41))
    assert 20 <= m <= 40
    full = sampler(rng, (m, m))
    assert any(np.array_equal(full[y:y + 16, x:x + 16], batch[i])
               for y in range(m - 15) for x in range(m - 15)), i
    sides.add(m)
  assert len(sides) > 1  # the side varies per mask
  fixed = next(data.create_train_pipeline(mask_size=40, **kw))["mask"][..., 0]
  assert not np.array_equal(fixed, batch)
  with pytest.raises(ValueError, match=r"min_mask_size must be 0 \(every mask drawn at mask_size\) or an int in "
                                       r"\[image_size, mask_size\] = \[16, 40\], got 41"):
    data.create_train_pipeline(mask_size=40, min_mask_size=41, **kw)
  with pytest.raises(ValueError, match=r"min_mask_size=20 needs mask_size > 0"):
    data.create_train_pipeline(min_mask_size=20, **kw)


# -- pipeline ----------------------------------------------------------------------------------------

def test_pipeline_batches_determinism_and_content(small_folder, shared_data):
  kw = dict(images=str(small_folder), masks=str(shared_data / "masks_nvidia_test300"), image_size=48,
            batch_size=3, with_edges=True)
  b1 = _batches(data.create_train_pipeline(seed=7, **kw), 3)
  b2 = _batches(data.create_train_pipeline(seed=7, **kw), 3)
  b3 = _batches(data.create_train_pipeline(seed=8, **kw), 3)
  _assert_same(b1, b2)
  assert not np.array_equal(b1[0]["image"], b3[0]["image"])
  b = b1[0]
  assert {k: v.shape for k, v in b.items()} == {"image": (3, 48, 48, 3), "mask": (3, 48, 48, 1),
                                                "gray": (3, 48, 48, 1), "edge": (3, 48, 48, 1)}
  assert all(v.dtype == np.float32 for v in b.values())
  assert set(np.unique(b["mask"])) <= {0.0, 1.0} and (b["mask"] == 0).any()
  for i in range(3):
    np.testing.assert_allclose(b["gray"][i, ..., 0], color.rgb2gray(b["image"][i]), atol=1e-6)
    # Edges of the full ground truth (no mask), exactly skimage's Canny.
    np.testing.assert_array_equal(b["edge"][i, ..., 0],
                                  feature.canny(b["gray"][i, ..., 0].astype(np.float64), sigma=2.0))


def test_channel_shuffle_permutes_each_example_and_keeps_the_rest(small_folder):
  kw = dict(images=str(small_folder), masks="irregular", image_size=32, batch_size=8, seed=3)
  plain = next(data.create_train_pipeline(**kw))
  shuffled = next(data.create_train_pipeline(channel_shuffle=True, **kw))
  np.testing.assert_array_equal(shuffled["mask"], plain["mask"])  # masks, crops and flips unchanged
  used = set()
  for i in range(8):
    perms = [p for p in itertools.permutations(range(3))
             if np.array_equal(shuffled["image"][i], plain["image"][i][..., list(p)])]
    assert perms, i  # the same crop with its channels permuted
    used.add(perms[0])
  assert len(used) > 1  # a different permutation per example, not one fixed swap


def test_random_edge_sigma_like_edgeconnect(small_folder):
  kw = dict(images=str(small_folder), masks="block", image_size=48, batch_size=8, seed=0, with_edges=True,
            edge_sigma=0.0)
  b = next(data.create_train_pipeline(**kw))
  _assert_same([b], [next(data.create_train_pipeline(**kw))])
  used = set()
  for i in range(8):
    g = b["gray"][i, ..., 0].astype(np.float64)
    match = [s for s in (1, 2, 3, 4) if np.array_equal(b["edge"][i, ..., 0], feature.canny(g, sigma=s))]
    assert match
    used.update(match)
  assert len(used) > 1


def test_pipeline_workers_do_not_change_batches(small_folder):
  kw = dict(images=str(small_folder), masks="mix:irregular=1,block=1", image_size=32, batch_size=4, seed=1)
  with data.create_train_pipeline(num_workers=2, **kw) as p:
    threaded = _batches(p, 4)
  _assert_same(threaded, _batches(data.create_train_pipeline(num_workers=0, **kw), 4))


@pytest.mark.parametrize("workers", [0, 2])
def test_restored_iterator_continues_identically(small_folder, workers):
  kw = dict(images=str(small_folder), masks="irregular", image_size=32, batch_size=3, seed=3,
            num_workers=workers)
  p = data.create_train_pipeline(**kw)
  _batches(p, 2)
  state = json.loads(json.dumps(p.get_state()))  # must survive a JSON checkpoint
  expected = _batches(p, 4)  # crosses the epoch boundary (8 images, batches of 3)
  assert p.get_state()["epoch"] == 2
  q = data.create_train_pipeline(**kw)
  q.set_state(state)
  _assert_same(_batches(q, 4), expected)
  # Restoring on the same (already advanced) iterator works too.
  p.set_state(state)
  _assert_same(_batches(p, 4), expected)
  p.close()
  q.close()


def test_each_epoch_visits_every_image_once(shared_data):
  src = data.open_source("builtin:heldout")
  p = data.create_train_pipeline(images="builtin:heldout", masks="block", image_size=16, batch_size=1,
                                 seed=0, crop="resize", flip=False)
  refs = [data.preprocess(src.load(i), image_size=16, crop="resize") for i in range(3)]
  seen = []
  for _ in range(6):
    img = next(p)["image"][0]
    seen.append(next(i for i, r in enumerate(refs) if np.array_equal(r, img)))
  assert sorted(seen[:3]) == sorted(seen[3:]) == [0, 1, 2]


def test_set_state_validation(small_folder):
  p = data.create_train_pipeline(images=str(small_folder), masks="block", image_size=16, batch_size=2, seed=0)
  with pytest.raises(ValueError, match="state"):
    p.set_state({"epoch": 0})
  with pytest.raises(ValueError, match="out of range"):
    p.set_state({"epoch": 0, "position": 99})
  with pytest.raises(ValueError, match="seed"):
    p.set_state({"epoch": 0, "position": 0, "seed": 1})


def test_corrupt_images_are_skipped_with_one_warning(tmp_path, shared_data):
  folder = tmp_path / "imgs"
  folder.mkdir()
  kodak = shared_data / "natural" / "Kodak24"
  for name in ("kodim01.png", "kodim02.png", "kodim03.png"):
    shutil.copy(kodak / name, folder / name)
  jpg = sorted((shared_data / "natural" / "BSDS500" / "train").glob("*.jpg"))[0].read_bytes()
  (folder / "truncated.jpg").write_bytes(jpg[: len(jpg) // 2])
  (folder / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"junk" * 50)
  p = data.create_train_pipeline(images=str(folder), masks="block", image_size=32, batch_size=2, seed=0)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    batches = _batches(p, 9)  # 18 good examples = 6 epochs of 3 good images
  msgs = [str(w.message) for w in caught if issubclass(w.category, data.CorruptImageWarning)]
  assert len(msgs) == 2  # once per file, not once per epoch
  assert any("truncated.jpg" in m for m in msgs) and any("garbage.png" in m for m in msgs)
  assert p.source.num_corrupt == 2
  assert p.num_skipped == 12  # 2 bad files x 6 epochs
  assert all(b["image"].shape == (2, 32, 32, 3) for b in batches)


def test_all_corrupt_raises_instead_of_spinning(tmp_path):
  (tmp_path / "bad.png").write_bytes(b"nope")
  p = data.create_train_pipeline(images=str(tmp_path), masks="block", image_size=8, batch_size=2, seed=0)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    with pytest.raises(RuntimeError, match="could be decoded"):
      next(p)


@pytest.mark.parametrize("kwargs,match", [
    (dict(batch_size=0), "batch_size"), (dict(image_size=-1), "image_size"), (dict(seed=-1), "seed"),
    (dict(crop="zoom"), "crop"), (dict(edge_sigma=-1.0), "edge_sigma"), (dict(num_workers=-2), "num_workers"),
    (dict(masks="nowhere/x"), "masks"),
])
def test_pipeline_bad_arguments(small_folder, kwargs, match):
  kw = dict(images=str(small_folder), masks="block", image_size=16, batch_size=2, seed=0)
  kw.update(kwargs)
  with pytest.raises((ValueError, FileNotFoundError), match=match):
    data.create_train_pipeline(**kw)


def test_other_size_masks_are_resized_nearest(tmp_path, shared_data):
  # A mask folder at 512 feeding a 40x40 pipeline without augmentation: exactly the nearest resize.
  src = shared_data / "masks_nvidia_test300" / "04000.png"
  folder = tmp_path / "m"
  folder.mkdir()
  shutil.copy(src, folder / "only.png")
  sampler = masks.MaskFolder(folder, augment=False)
  got = sampler(np.random.default_rng(0), (40, 40))
  raw = np.asarray(Image.open(src)) <= 127  # True = valid
  idx = [int(np.floor((i + 0.5) * 512 / 40)) for i in range(40)]  # nearest pixel centre
  np.testing.assert_array_equal(got == 1, raw[np.ix_(idx, idx)])
  assert set(np.unique(got)) <= {0.0, 1.0}


# -- tfds ----------------------------------------------------------------------------------------------

def test_tfds_source_offline_with_mock_data():
  tfds = pytest.importorskip("tensorflow_datasets")
  tf_installed = importlib.util.find_spec("tensorflow") is not None
  with tfds.testing.mock_data(num_examples=5, policy=tfds.testing.MockPolicy.USE_CODE):
    src = data.open_source("tfds:celeb_a:train")
    assert len(src) == 5
    img = src.load(0)
    assert img.shape == (218, 178, 3) and img.dtype == np.float32
    p = data.create_train_pipeline(images="tfds:celeb_a", masks="irregular:0.1-0.2", image_size=32,
                                   batch_size=2, seed=0, crop="celeba", with_edges=True)
    b = _batches(p, 3)  # crosses an epoch of 5
    assert b[0]["image"].shape == (2, 32, 32, 3) and b[0]["edge"].shape == (2, 32, 32, 1)
    state = p.get_state()
    more = _batches(p, 2)
    q = data.create_train_pipeline(images="tfds:celeb_a", masks="irregular:0.1-0.2", image_size=32,
                                   batch_size=2, seed=0, crop="celeba", with_edges=True)
    q.set_state(state)
    _assert_same(_batches(q, 2), more)
  if not tf_installed:
    # The data_source path ran without TensorFlow being installed at all.
    import sys
    assert "tensorflow" not in sys.modules


def test_tfds_real_array_record_round_trip_without_tensorflow(tmp_path):
  """Builds a tiny array_record TFDS dataset on disk and reads it back through the pipeline.

  The builder is not registered, so reading relies only on the prepared files in data_dir (as for a
  dataset prepared elsewhere); tfds decodes the PNG bytes with OpenCV/PIL, not TensorFlow.
  """
  tfds = pytest.importorskip("tensorflow_datasets")
  import io

  rng = np.random.default_rng(0)
  arrays = [rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8) for i in range(4)]

  class JaxinpaintTinyImages(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
      return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
          {"image": tfds.features.Image(shape=(None, None, 3))}))

    def _split_generators(self, dl_manager):
      return {"train": self._generate_examples()}

    def _generate_examples(self):
      for i, a in enumerate(arrays):
        buf = io.BytesIO()  # PNG-encode with PIL: tfds' own array encoder needs TensorFlow
        Image.fromarray(a).save(buf, format="PNG")
        buf.seek(0)
        yield i, {"image": buf}

  JaxinpaintTinyImages(data_dir=str(tmp_path), file_format="array_record").download_and_prepare()
  src = data.TfdsSource("jaxinpaint_tiny_images", "train", data_dir=str(tmp_path))
  assert len(src) == 4
  got = sorted((src.load(i) for i in range(4)), key=lambda x: x.shape[0])
  for a, g in zip(arrays, got):
    np.testing.assert_allclose(g, a / 255, atol=1e-6)
  p = data.TrainPipeline(src, masks.from_spec("block"), image_size=16, batch_size=3, seed=0)
  assert next(p)["image"].shape == (3, 16, 16, 3)


def test_tfds_unprepared_dataset_is_a_clear_error(tmp_path):
  pytest.importorskip("tensorflow_datasets")
  with pytest.raises(FileNotFoundError, match="tfds build"):
    data.TfdsSource("mnist", "train", data_dir=str(tmp_path))


# -- evaluation pairs ----------------------------------------------------------------------------------

def test_eval_pairs_fixed_one_to_one_with_manifest_buckets(shared_data):
  mask_dir = shared_data / "masks_nvidia_test300"
  with open(mask_dir / "MANIFEST.csv", newline="") as f:
    manifest = {r["file"]: r for r in csv.DictReader(f)}
  kw = dict(images=str(shared_data / "places"), masks=str(mask_dir), image_size=64, limit=12)
  pairs = data.create_eval_pairs(seed=0, **kw)
  again = data.create_eval_pairs(seed=0, **kw)
  other = data.create_eval_pairs(seed=1, **kw)
  assert len(pairs) == 12
  assert [p.mask_path for p in pairs] == [p.mask_path for p in again]
  assert [p.mask_path for p in pairs] != [p.mask_path for p in other]
  assert len({p.mask_path for p in pairs}) == 12 and len({p.image_path for p in pairs}) == 12
  # The first 12 cover every (bucket, border) group once.
  assert {(p.bucket, p.border) for p in pairs} == {(b, f) for b in masks.BUCKETS
                                                   for f in ("holes_off_border", "holes_may_touch_border")}
  for p in pairs:
    row = manifest[p.mask_path.rsplit("/", 1)[1]]
    lo, hi = row["hole_ratio_bucket"].split("-")
    assert p.bucket == f"({float(lo):g},{float(hi):g}]" and p.border == row["border_flag_measured"]
    assert p.image.shape == (64, 64, 3) and p.mask.shape == (64, 64)
    assert set(np.unique(p.mask)) <= {0.0, 1.0}
    np.testing.assert_array_equal(p.mask, masks.load(p.mask_path, shape=(64, 64)))
    np.testing.assert_array_equal(pairs[0].image, again[0].image)


def test_eval_pairs_measure_without_manifest_and_generate(tmp_path, shared_data):
  src = shared_data / "masks_nvidia_test300"
  folder = tmp_path / "m"
  folder.mkdir()
  with open(src / "MANIFEST.csv", newline="") as f:
    rows = list(csv.DictReader(f))[::50][:3]
  for r in rows:
    shutil.copy(src / r["file"], folder / r["file"])
  pairs = data.create_eval_pairs(images="builtin:heldout", masks=str(folder), image_size=32)
  by_file = {r["file"]: r for r in rows}
  for p in pairs:
    r = by_file[p.mask_path.rsplit("/", 1)[1]]
    lo, hi = r["hole_ratio_bucket"].split("-")
    assert p.bucket == f"({float(lo):g},{float(hi):g}]" and p.border == r["border_flag_measured"]
  gen = data.create_eval_pairs(images="builtin:heldout", masks="irregular:0.4-0.5", image_size=32, seed=2)
  assert all(p.mask_path is None and p.bucket == "(0.4,0.5]" == masks.hole_ratio_bucket(p.mask) for p in gen)
  with pytest.raises(ValueError, match="crop"):
    data.create_eval_pairs(images="builtin:heldout", masks="block", image_size=32, crop="random")


def test_parse_source_spec_without_listing(tmp_path):
  """The cheap parser config validation runs is the one open_source uses."""
  assert data.parse_source_spec("tfds:celeb_a") == ("tfds", "celeb_a", "train")
  assert data.parse_source_spec("tfds:celeb_a:test") == ("tfds", "celeb_a", "test")
  assert data.parse_source_spec("builtin") == ("builtin", data.BUILTIN_TRAIN)
  assert data.parse_source_spec("builtin:heldout") == ("builtin", data.BUILTIN_HELDOUT)
  (tmp_path / "empty").mkdir()
  assert data.parse_source_spec(str(tmp_path / "empty")) == ("folder", tmp_path / "empty")  # not listed yet
  (tmp_path / "list.flist").write_text("a.png\n")
  assert data.parse_source_spec(str(tmp_path / "list.flist")) == ("flist", tmp_path / "list.flist")
  (tmp_path / "notes.md").write_text("x")
  for spec, err in (("builtin:test", ValueError), ("tfds:", ValueError), ("", ValueError),
                    (str(tmp_path / "nope"), FileNotFoundError), (str(tmp_path / "notes.md"), ValueError)):
    with pytest.raises(err):
      data.parse_source_spec(spec)
    with pytest.raises(err):
      data.open_source(spec)
  assert data.IMAGE_EXTENSIONS is masks.IMAGE_EXTENSIONS
  with pytest.raises(ValueError, match="crop must be one of"):
    data.check_crop("middle")
