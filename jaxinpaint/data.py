"""Image sources and the deterministic, resumable input pipeline for inpainting.

Sources (one interface, `open_source(spec)`; `parse_source_spec` checks a spec without listing or
decoding anything, so a config is validated by the parser its training uses):
  * a folder, searched recursively for jpg/jpeg/png/bmp/tif/tiff/webp, sorted for determinism;
  * an EdgeConnect-style `.flist` file: one path per line (spaces inside paths are fine), relative paths
    are relative to the flist's folder;
  * `tfds:NAME[:SPLIT]` (split defaults to 'train'): any TensorFlow Datasets dataset with an `image`
    feature, read through `tfds.data_source` (array_record, random access; TensorFlow is not needed).
    The dataset must already be prepared in TFDS's data_dir (`TFDS_DATA_DIR`);
  * `builtin` / `builtin:train` / `builtin:heldout` / `builtin:all`: real photographs shipped inside
    scikit-image's wheel (`skimage/data`), with a fixed split so a quickstart can evaluate on photos it
    never trained on.

Decoding (`pil_to_array`, shared with `jaxinpaint.inpaint` and the demo): PIL, EXIF orientation applied,
transparent pixels composited on white; grayscale, 16-bit (scaled by 65535), palette, CMYK and float
images become float32 RGB in [0, 1]. Folders are searched through symlinked sub-folders too. A corrupt or
truncated image is skipped with one `CorruptImageWarning` ("skipping unreadable image FILE (reason)")
naming it and counted (`ImageSource.num_corrupt`, `TrainPipeline.num_skipped`); it never crashes an epoch.

Preprocessing (`preprocess`): 'random' crop (resizing first when the image is smaller than the crop, or
to a given shorter side, `shorter_side`) plus horizontal flip for training (Liu et al. 2018); 'center' =
EdgeConnect's square centre crop then resize (knazeri/edge-connect `Dataset.resize`); 'celeba' = EdgeConnect's CelebA protocol, a 178x178
centre crop then resize; 'resize' = plain resize. Evaluation is deterministic (centre crop + resize).

Pipeline (`create_train_pipeline`): an infinite iterator of numpy batches
  {'image': (B,H,W,3) f32, 'mask': (B,H,W,1) f32 with 1 = valid,
   and with_edges: 'gray': (B,H,W,1) f32, 'edge': (B,H,W,1) f32 Canny of the full ground-truth gray}.
Each epoch visits the source in a fresh seeded permutation; every random choice for an example
(crop, flip, mask) comes from a generator seeded by (seed, epoch, index), so the stream is a pure
function of the seed and the iteration state is the small JSON dict `{'epoch', 'position', ...}`
(`get_state` / `set_state`): a restored pipeline continues with identical batches. Examples are decoded
by `num_workers` threads (PIL, OpenCV and scipy release the GIL) with a look-ahead of `prefetch`
batches, consumed strictly in order, so parallelism never changes the result.

Evaluation (`create_eval_pairs`): fixed, seeded one-to-one image/mask pairs; for a mask folder the masks
are interleaved over (hole-ratio bucket, border) groups so any prefix covers all buckets evenly; the
bucket/border come from the folder's MANIFEST.csv when present, else are measured.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import importlib.resources
import os
import pathlib
import threading
import warnings
from typing import Any, Iterator, Sequence

import cv2
import numpy as np
from PIL import Image, ImageOps

from jaxinpaint import edges as edges_lib
from jaxinpaint import masks as masks_lib

__all__ = [
    "IMAGE_EXTENSIONS", "BUILTIN_TRAIN", "BUILTIN_HELDOUT", "CROP_MODES", "CorruptImageError",
    "CorruptImageWarning", "ImageSource", "FileSource", "TfdsSource", "parse_source_spec", "open_source",
    "load_image", "pil_to_array", "to_rgb_float", "to_uint8", "check_crop", "check_shorter_side",
    "check_mask_size", "check_min_mask_size", "preprocess", "TrainPipeline", "create_train_pipeline",
    "EvalPair", "create_eval_pairs",
]

IMAGE_EXTENSIONS = masks_lib.IMAGE_EXTENSIONS  # one list for images and masks
# Real photographs bundled in scikit-image's wheel (skimage/data). Grayscale ones are replicated to RGB.
# Synthetic/diagram images (logo, colorwheel, checkerboards, text, phantom, horse) are excluded, and so
# is motorcycle_right (a near-duplicate stereo view of motorcycle_left).
BUILTIN_TRAIN = ("astronaut.png", "motorcycle_left.png", "hubble_deep_field.jpg", "retina.jpg",
                 "ihc.png", "camera.png", "coins.png", "moon.png", "brick.png", "grass.png",
                 "gravel.png")
BUILTIN_HELDOUT = ("chelsea.png", "coffee.png", "rocket.jpg")
CROP_MODES = ("random", "center", "celeba", "resize")
CELEBA_CROP = 178  # EdgeConnect / common CelebA protocol: centre 178x178 of the 218x178 aligned faces.

# Seed-sequence tags keep the different random streams of one seed independent.
_TAG_ORDER, _TAG_IMAGE, _TAG_MASK, _TAG_EVAL, _TAG_EDGE = 1, 2, 3, 4, 5


class CorruptImageError(ValueError):
  """An image file could not be decoded (corrupt, truncated or not an image); `reason` says why."""

  def __init__(self, message: str, *, reason: str | None = None):
    super().__init__(message)
    self.reason = reason or message


class CorruptImageWarning(UserWarning):
  """Emitted once per skipped (corrupt/unreadable) image."""


# ----------------------------------------------------------------------------------------------------
# Decoding.

def to_rgb_float(array: np.ndarray) -> np.ndarray:
  """Any HxW / HxWxC uint8, uint16 or float image array -> float32 HxWx3 RGB in [0, 1].

  Grayscale and single-channel images are replicated, gray+alpha keeps the gray, RGBA drops alpha.
  uint16 (and wider ints holding values > 255) is scaled by 65535, uint8 by 255, floats are clipped.
  """
  arr = np.asarray(array)
  if arr.ndim == 3 and arr.shape[-1] in (2, 4):
    arr = arr[..., :1] if arr.shape[-1] == 2 else arr[..., :3]
  if arr.ndim == 3 and arr.shape[-1] == 1:
    arr = arr[..., 0]
  if arr.ndim == 2:
    arr = np.repeat(arr[..., None], 3, axis=-1)
  if arr.ndim != 3 or arr.shape[-1] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
    raise ValueError(f"image must be HxW or HxWxC with C in 1..4, got shape {np.shape(array)}")
  if arr.dtype == np.uint8:
    return arr.astype(np.float32) * np.float32(1 / 255)
  if arr.dtype == np.bool_:
    return arr.astype(np.float32)
  if np.issubdtype(arr.dtype, np.integer):
    scale = 65535.0 if (arr.dtype == np.uint16 or arr.max(initial=0) > 255) else 255.0
    return (arr.astype(np.float32) / np.float32(scale)).clip(0.0, 1.0)
  if np.issubdtype(arr.dtype, np.floating):
    return np.nan_to_num(arr.astype(np.float32)).clip(0.0, 1.0)
  raise ValueError(f"unsupported image dtype {arr.dtype}")


_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def pil_to_array(img: Image.Image, *, exif_transpose: bool = True) -> np.ndarray:
  """A decoded PIL image -> HxWx3 RGB array as a viewer shows it: uint8, uint16 (16-bit files) or float32.

  EXIF orientation is applied (`ImageOps.exif_transpose`) unless `exif_transpose=False`; transparent pixels (RGBA, LA, PA, and palette
  or grayscale images with a transparency key) are composited on white, as a browser shows them on a
  white page; 16-bit grayscale (PNG/TIFF modes I;16 and I) stays 16-bit so `to_rgb_float` scales it by
  65535; palette, bilevel, CMYK (JPEG), YCbCr and LAB images are converted to RGB by PIL; 32-bit float
  images (mode F) are taken as [0, 1] when their maximum is at most 1, else as [0, 255].
  """
  if exif_transpose:
    img = ImageOps.exif_transpose(img)
  mode = img.mode
  if mode in _ALPHA_MODES or "transparency" in img.info:
    white = Image.new("RGBA", img.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, img.convert("RGBA")).convert("RGB"))
  if mode.startswith("I;16") or mode == "I":
    gray = np.asarray(img).astype(np.int64).clip(0, 65535).astype(np.uint16)
    return np.repeat(gray[..., None], 3, axis=-1)
  if mode == "F":
    gray = np.asarray(img, np.float32)
    gray = gray / 255.0 if gray.max(initial=0) > 1.0 else gray
    return np.repeat(gray[..., None], 3, axis=-1)
  return np.asarray(img.convert("RGB"))


def to_uint8(array: np.ndarray) -> np.ndarray:
  """A `pil_to_array` result as uint8 (16-bit and float images rounded to the nearest 8-bit level)."""
  if array.dtype == np.uint8:
    return array
  return np.rint(to_rgb_float(array) * np.float32(255)).astype(np.uint8)


def load_image(path: str | os.PathLike) -> np.ndarray:
  """Decodes an image file with PIL into float32 HxWx3 RGB in [0, 1].

  Raises:
    FileNotFoundError: the file does not exist.
    CorruptImageError: PIL cannot decode it (corrupt, truncated, not an image).
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"image file not found: {path}")
  try:
    with Image.open(path) as img:
      img.load()  # forces a full decode so truncation is detected here
      arr = pil_to_array(img)
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    raise CorruptImageError(f"cannot decode image {path}: {e}", reason=str(e)) from e
  return to_rgb_float(arr)


# ----------------------------------------------------------------------------------------------------
# Sources.

class ImageSource:
  """Random-access image source: `len(src)`, `src.name(i)`, `src.load(i) -> float32 HxWx3 in [0, 1]`.

  `load` raises `CorruptImageError` for an undecodable item; `try_load` returns None instead, warning
  once per item (`CorruptImageWarning`) and counting it in `num_corrupt` / `corrupt_names`.
  """

  spec: str = ""

  def __init__(self):
    self._lock = threading.Lock()
    self.corrupt_names: set[str] = set()

  def __len__(self) -> int:
    raise NotImplementedError

  def name(self, index: int) -> str:
    raise NotImplementedError

  def load(self, index: int) -> np.ndarray:
    raise NotImplementedError

  @property
  def num_corrupt(self) -> int:
    """Number of distinct items found undecodable so far."""
    return len(self.corrupt_names)

  def try_load(self, index: int) -> np.ndarray | None:
    try:
      return self.load(index)
    except (CorruptImageError, FileNotFoundError) as e:
      name = self.name(index)
      with self._lock:
        first = name not in self.corrupt_names
        self.corrupt_names.add(name)
      if first:
        reason = getattr(e, "reason", None) or ("file not found" if isinstance(e, FileNotFoundError) else str(e))
        warnings.warn(f"skipping unreadable image {name} ({reason})", CorruptImageWarning, stacklevel=2)
      return None


class FileSource(ImageSource):
  """Image files on disk (a folder, a .flist or the built-in photos)."""

  def __init__(self, paths: Sequence[pathlib.Path], spec: str, *, cache: bool = False):
    """`cache=True` keeps decoded images in memory (read-only arrays): for small sets such as the built-in
    photos, whose PNG decoding (~80 ms each) would otherwise starve a small model's train step."""
    super().__init__()
    self.paths = list(paths)
    self.spec = spec
    self._cache: dict[int, np.ndarray] | None = {} if cache else None

  def __len__(self) -> int:
    return len(self.paths)

  def name(self, index: int) -> str:
    return str(self.paths[index])

  def load(self, index: int) -> np.ndarray:
    if self._cache is None:
      return load_image(self.paths[index])
    image = self._cache.get(index)
    if image is None:
      image = load_image(self.paths[index])
      image.setflags(write=False)  # shared between batches: an in-place edit downstream must fail loudly
      self._cache[index] = image
    return image


class TfdsSource(ImageSource):
  """`tfds:NAME[:SPLIT]` via `tfds.data_source` (array_record random access, no TensorFlow needed)."""

  def __init__(self, name: str, split: str = "train", *, data_dir: str | None = None):
    super().__init__()
    try:
      import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ValueError("image source 'tfds:...' needs tensorflow-datasets "
                       "(pip install tensorflow-datasets)") from e
    self.spec = f"tfds:{name}:{split}"
    try:
      self._ds = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
    except Exception as e:  # tfds raises many types (DatasetNotFoundError, AssertionError, ...)
      raise FileNotFoundError(
          f"cannot open TFDS dataset {name!r} split {split!r} for random access: {e}. Prepare it in "
          f"array_record format first, e.g. `tfds build {name} --file_format=array_record` "
          "(TFDS_DATA_DIR sets where tfds looks).") from e
    self._len = len(self._ds)
    if self._len == 0:
      raise ValueError(f"TFDS dataset {name!r} split {split!r} is empty")

  def __len__(self) -> int:
    return self._len

  def name(self, index: int) -> str:
    return f"{self.spec}[{index}]"

  def load(self, index: int) -> np.ndarray:
    try:
      record = self._ds[int(index)]
    except Exception as e:  # a bad record must not end the epoch
      raise CorruptImageError(f"cannot read {self.name(index)}: {e}", reason=str(e)) from e
    if not isinstance(record, dict) or "image" not in record:
      raise ValueError(f"{self.spec} has no 'image' feature (got {type(record).__name__} "
                       f"{sorted(record) if isinstance(record, dict) else ''})")
    return to_rgb_float(np.asarray(record["image"]))


def _list_folder(folder: pathlib.Path) -> list[pathlib.Path]:
  files = masks_lib.find_images(folder)
  if not files:
    raise ValueError(f"image folder {folder} contains no images ({', '.join(IMAGE_EXTENSIONS)})")
  return files


def _read_flist(path: pathlib.Path) -> list[pathlib.Path]:
  files = []
  with open(path, encoding="utf-8") as f:
    for line in f:
      entry = line.strip()  # only the line ends/outer blanks: spaces inside a path are kept
      if not entry or entry.startswith("#"):
        continue
      p = pathlib.Path(entry).expanduser()
      files.append(p if p.is_absolute() else path.parent / p)
  if not files:
    raise ValueError(f"flist {path} lists no image paths")
  # Stat only a few entries: a Places2 flist has 1.8M lines. Later missing files are skipped with a warning.
  for p in files[:8]:
    if not p.is_file():
      raise FileNotFoundError(f"flist {path} lists {p}, which does not exist (relative paths are "
                              f"resolved against {path.parent})")
  return files


def _builtin_paths(names: Sequence[str]) -> list[pathlib.Path]:
  root = pathlib.Path(str(importlib.resources.files("skimage") / "data"))
  paths = [root / n for n in names]
  missing = [str(p) for p in paths if not p.is_file()]
  if missing:
    raise FileNotFoundError(f"scikit-image's bundled photos are missing: {missing}")
  return paths


def parse_source_spec(spec: str | os.PathLike) -> tuple:
  """Parses an image source spec (see `open_source`) without listing a folder or opening a dataset.

  Returns:
    ('tfds', name, split), ('builtin', file names), ('folder', path), ('flist', path) or ('file', path).

  Raises:
    FileNotFoundError: a missing path.
    ValueError: a malformed spec, an unknown builtin split, or a file that is neither a list nor an image.
  """
  if not isinstance(spec, (str, os.PathLike)) or not str(spec).strip():
    raise ValueError(f"images spec must be a folder, a .flist file, 'tfds:NAME[:SPLIT]' or "
                     f"'builtin[:train|heldout|all]', got {spec!r}")
  spec = str(spec).strip()
  if spec.startswith("tfds:"):
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[1]:
      raise ValueError(f"images spec must look like 'tfds:NAME' or 'tfds:NAME:SPLIT', got {spec!r}")
    return ("tfds", parts[1], parts[2] if len(parts) == 3 and parts[2] else "train")
  if spec == "builtin" or spec.startswith("builtin:"):
    which = spec.partition(":")[2] or "train"
    names = {"train": BUILTIN_TRAIN, "heldout": BUILTIN_HELDOUT,
             "all": BUILTIN_TRAIN + BUILTIN_HELDOUT}.get(which)
    if names is None:
      raise ValueError(f"builtin split must be 'train', 'heldout' or 'all', got {spec!r}")
    return ("builtin", names)
  path = pathlib.Path(spec).expanduser()
  if not path.exists():
    raise FileNotFoundError(f"image source {spec!r} does not exist (expected a folder, a .flist file, "
                            "'tfds:NAME[:SPLIT]' or 'builtin')")
  if path.is_dir():
    return ("folder", path)
  if path.suffix.lower() in (".flist", ".txt"):
    return ("flist", path)
  if path.suffix.lower() in IMAGE_EXTENSIONS:
    return ("file", path)
  raise ValueError(f"image source {spec!r} is a file but not a .flist list or an image")


def open_source(spec: str | ImageSource) -> ImageSource:
  """Opens an image source from a spec string.

  Specs: a folder path (recursive); a `.flist` file; `tfds:NAME[:SPLIT]`; `builtin` (= `builtin:train`),
  `builtin:train`, `builtin:heldout`, `builtin:all`. An `ImageSource` is returned unchanged.

  Raises:
    FileNotFoundError: a missing path / unprepared TFDS dataset.
    ValueError: an empty folder or flist, or an unknown spec.
  """
  if isinstance(spec, ImageSource):
    return spec
  parsed = parse_source_spec(spec)
  spec = str(spec).strip()
  kind = parsed[0]
  if kind == "tfds":
    return TfdsSource(parsed[1], parsed[2])
  if kind == "builtin":
    return FileSource(_builtin_paths(parsed[1]), spec, cache=True)
  if kind == "folder":
    return FileSource(_list_folder(parsed[1]), spec)
  if kind == "flist":
    return FileSource(_read_flist(parsed[1]), spec)
  return FileSource([parsed[1]], spec)


# ----------------------------------------------------------------------------------------------------
# Preprocessing.

def _resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
  if img.shape[:2] == (h, w):
    return img
  # Area averaging when shrinking (anti-aliased, like PIL's bilinear reduce), bilinear when enlarging.
  shrink = h < img.shape[0] or w < img.shape[1]
  out = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
  return out.clip(0.0, 1.0)


def _center_crop(img: np.ndarray, ch: int, cw: int) -> np.ndarray:
  h, w = img.shape[:2]
  ch, cw = min(ch, h), min(cw, w)
  y, x = (h - ch) // 2, (w - cw) // 2
  return img[y:y + ch, x:x + cw]


def check_shorter_side(shorter_side: int, *, image_size: int, crop: str) -> int:
  """`shorter_side` if it is 0 (native resolution) or an int >= image_size with crop 'random'; else ValueError."""
  if shorter_side is None or shorter_side == 0:
    return 0
  if not isinstance(shorter_side, (int, np.integer)) or shorter_side < image_size:
    raise ValueError(f"shorter_side must be 0 (crop at native resolution) or an int >= image_size "
                     f"({image_size}), got {shorter_side!r}")
  if crop != "random":
    raise ValueError(f"shorter_side applies to crop='random' only, got crop={crop!r}")
  return int(shorter_side)


def check_mask_size(mask_size: int, *, image_size: int) -> int:
  """`mask_size` if it is 0 (masks drawn at the crop size) or an int >= image_size; else ValueError."""
  if mask_size is None or mask_size == 0:
    return 0
  if not isinstance(mask_size, (int, np.integer)) or mask_size < image_size:
    raise ValueError(f"mask_size must be 0 (masks drawn at the crop size) or an int >= image_size "
                     f"({image_size}), got {mask_size!r}")
  return int(mask_size)


def check_min_mask_size(min_mask_size: int, *, mask_size: int, image_size: int) -> int:
  """`min_mask_size` if it is 0 (every mask drawn at mask_size) or an int in [image_size, mask_size]; else
  ValueError (also when mask_size is 0: a range needs its upper end)."""
  if min_mask_size is None or min_mask_size == 0:
    return 0
  if not mask_size:
    raise ValueError(f"min_mask_size={min_mask_size!r} needs mask_size > 0 (the largest side drawn)")
  if (not isinstance(min_mask_size, (int, np.integer)) or min_mask_size < image_size
      or min_mask_size > mask_size):
    raise ValueError(f"min_mask_size must be 0 (every mask drawn at mask_size) or an int in [image_size, "
                     f"mask_size] = [{image_size}, {mask_size}], got {min_mask_size!r}")
  return int(min_mask_size)


def check_crop(crop: str) -> str:
  """`crop` if it is one of `CROP_MODES`; ValueError naming the modes otherwise."""
  if crop not in CROP_MODES:
    raise ValueError(f"crop must be one of {CROP_MODES}, got {crop!r}")
  return crop


def preprocess(image: np.ndarray, *, image_size: int, crop: str = "random",
               rng: np.random.Generator | None = None, flip: bool = False, shorter_side: int = 0) -> np.ndarray:
  """Crops/resizes an HxWx3 float image to image_size x image_size (and optionally flips it).

  Modes:
    'random': random image_size crop; an image whose shorter side is smaller is first resized so that
      side equals image_size (aspect kept). With `shorter_side` > 0 every image is first resized so that
      its shorter side is `shorter_side` (aspect kept): crops then show the scene at the pixel scale of an
      evaluation at that size (a 128x128 crop of a photo resized to 256 looks like part of a 256x256
      evaluation image; a crop at native resolution of a 768x512 photo is a 2x close-up). Needs `rng`.
    'center': EdgeConnect's `Dataset.resize`: centre square crop of the shorter side, then resize.
    'celeba': EdgeConnect's CelebA protocol: centre 178x178 crop, then resize.
    'resize': resize the whole image (aspect not kept).
  `flip=True` flips horizontally with probability 0.5 (needs `rng`).

  Returns:
    float32 (image_size, image_size, 3) in [0, 1], C-contiguous.
  """
  check_crop(crop)
  if not isinstance(image_size, (int, np.integer)) or image_size < 1:
    raise ValueError(f"image_size must be a positive int, got {image_size!r}")
  check_shorter_side(shorter_side, image_size=image_size, crop=crop)
  if (crop == "random" or flip) and rng is None:
    raise ValueError("preprocess with crop='random' or flip=True needs rng")
  s = int(image_size)
  h, w = image.shape[:2]
  if crop == "random":
    if shorter_side or min(h, w) < s:
      scale = (shorter_side or s) / min(h, w)
      image = _resize(image, max(s, int(round(h * scale))), max(s, int(round(w * scale))))
      h, w = image.shape[:2]
    y = int(rng.integers(0, h - s + 1))
    x = int(rng.integers(0, w - s + 1))
    image = image[y:y + s, x:x + s]
  elif crop == "center":
    side = min(h, w)
    image = _resize(_center_crop(image, side, side), s, s)
  elif crop == "celeba":
    image = _resize(_center_crop(image, CELEBA_CROP, CELEBA_CROP), s, s)
  else:
    image = _resize(image, s, s)
  if flip and rng.random() < 0.5:
    image = image[:, ::-1]
  return np.ascontiguousarray(image, dtype=np.float32)


# ----------------------------------------------------------------------------------------------------
# Training pipeline.

def _seed_rng(seed: int, *key: int) -> np.random.Generator:
  return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(int(k) for k in key)))


class TrainPipeline:
  """Infinite, deterministic, resumable iterator of training batches (see `create_train_pipeline`).

  Attributes:
    source: the `ImageSource`.
    mask_sampler: the `masks.MaskSampler`.
    num_skipped: undecodable examples skipped so far (each also warned once by the source).
  """

  STATE_VERSION = 1

  def __init__(self, source: ImageSource, mask_sampler: masks_lib.MaskSampler, *, image_size: int,
               batch_size: int, seed: int, with_edges: bool = False, edge_sigma: float = 2.0,
               crop: str = "random", flip: bool = True, channel_shuffle: bool = False, num_workers: int = 0,
               prefetch: int = 2, shorter_side: int = 0, mask_size: int = 0, min_mask_size: int = 0):
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
      raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not isinstance(image_size, (int, np.integer)) or image_size < 1:
      raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
      raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    check_crop(crop)
    check_shorter_side(shorter_side, image_size=image_size, crop=crop)
    mask_size = check_mask_size(mask_size, image_size=image_size)
    min_mask_size = check_min_mask_size(min_mask_size, mask_size=mask_size, image_size=image_size)
    if not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
      raise ValueError(f"num_workers must be an int >= 0, got {num_workers!r}")
    if not edge_sigma >= 0:
      raise ValueError("edge_sigma must be > 0 (or 0 for EdgeConnect's random sigma in 1..4), "
                       f"got {edge_sigma!r}")
    self.source = source
    self.mask_sampler = mask_sampler
    self.image_size = int(image_size)
    self.batch_size = int(batch_size)
    self.seed = int(seed)
    self.with_edges = bool(with_edges)
    self.edge_sigma = float(edge_sigma)
    self.crop = crop
    self.shorter_side = int(shorter_side)
    self.mask_size = mask_size
    self.min_mask_size = min_mask_size
    self.flip = bool(flip)
    self.channel_shuffle = bool(channel_shuffle)
    self.num_workers = int(num_workers)
    self._n = len(source)
    if self._n == 0:
      raise ValueError(f"image source {source.spec!r} is empty")
    self._orders: dict[int, np.ndarray] = {}
    self._lookahead = self.batch_size * (max(0, int(prefetch)) + 1)
    self._executor = (concurrent.futures.ThreadPoolExecutor(self.num_workers, "jaxinpaint-data")
                      if self.num_workers > 0 else None)
    self._queue: collections.deque = collections.deque()
    self.num_skipped = 0
    self._cursor = (0, 0)  # (epoch, position) of the next example to consume
    self._submit = (0, 0)  # next example to hand to a worker

  # -- state ------------------------------------------------------------------------------------------
  def get_state(self) -> dict[str, Any]:
    """JSON-serialisable iteration state: the next batch starts at `position` of epoch `epoch`."""
    epoch, position = self._cursor
    return {"version": self.STATE_VERSION, "epoch": int(epoch), "position": int(position),
            "seed": self.seed, "num_examples": self._n}

  def set_state(self, state: dict[str, Any]) -> None:
    """Restores a `get_state()` dict; the next batch is the one that followed when it was taken."""
    if not isinstance(state, dict) or "epoch" not in state or "position" not in state:
      raise ValueError(f"state must be a dict from get_state() with 'epoch' and 'position', got {state!r}")
    epoch, position = int(state["epoch"]), int(state["position"])
    if epoch < 0 or not 0 <= position < self._n:
      raise ValueError(f"state {state!r} is out of range for a source of {self._n} images")
    if state.get("num_examples", self._n) != self._n:
      raise ValueError(f"state was saved for a source of {state['num_examples']} images, but "
                       f"{self.source.spec!r} has {self._n}")
    if state.get("seed", self.seed) != self.seed:
      raise ValueError(f"state was saved with seed {state['seed']}, this pipeline has seed {self.seed}")
    self._drain()
    self._cursor = self._submit = (epoch, position)

  # -- iteration --------------------------------------------------------------------------------------
  def _order(self, epoch: int) -> np.ndarray:
    order = self._orders.get(epoch)
    if order is None:
      order = _seed_rng(self.seed, _TAG_ORDER, epoch).permutation(self._n)
      if len(self._orders) > 4:
        self._orders.pop(min(self._orders))
      self._orders[epoch] = order
    return order

  def _advance(self, pos: tuple[int, int]) -> tuple[int, int]:
    epoch, position = pos
    position += 1
    return (epoch + 1, 0) if position == self._n else (epoch, position)

  def make_example(self, epoch: int, index: int) -> dict[str, np.ndarray] | None:
    """The example for source item `index` in `epoch` (None if it cannot be decoded)."""
    image = self.source.try_load(index)
    if image is None:
      return None
    s = self.image_size
    image_rng = _seed_rng(self.seed, _TAG_IMAGE, epoch, index)
    image = preprocess(image, image_size=s, crop=self.crop, rng=image_rng, flip=self.flip,
                       shorter_side=self.shorter_side)
    if self.channel_shuffle:  # after the crop/flip draws, so the other augmentations stay the same
      image = np.ascontiguousarray(image[..., image_rng.permutation(3)])
    mask_rng = _seed_rng(self.seed, _TAG_MASK, epoch, index)
    m = self.mask_size or s
    if self.min_mask_size:  # a side per mask, drawn only here so the other settings' streams are unchanged
      m = int(mask_rng.integers(self.min_mask_size, self.mask_size + 1))
    mask = self.mask_sampler(mask_rng, (m, m)).astype(np.float32)
    if m > s:  # a random s x s window of the larger mask (drawn after the mask, so mask_size=0 is unchanged)
      y, x = (int(v) for v in mask_rng.integers(0, m - s + 1, size=2))
      mask = np.ascontiguousarray(mask[y:y + s, x:x + s])
    example = {"image": image, "mask": mask[..., None]}
    if self.with_edges:
      gray = edges_lib.rgb_to_gray(image)
      example["gray"] = gray[..., None]
      sigma = self.edge_sigma
      if sigma == 0:  # EdgeConnect's SIGMA=0: a random integer sigma in 1..4 per example
        sigma = float(_seed_rng(self.seed, _TAG_EDGE, epoch, index).integers(1, 5))
      example["edge"] = edges_lib.canny(gray, sigma=sigma)[..., None]
    return example

  def _fill(self) -> None:
    while len(self._queue) < self._lookahead:
      epoch, position = self._submit
      index = int(self._order(epoch)[position])
      self._queue.append(self._executor.submit(self.make_example, epoch, index))
      self._submit = self._advance(self._submit)

  def _drain(self) -> None:
    for fut in self._queue:
      fut.cancel()
    self._queue.clear()

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    examples = []
    misses = 0
    while len(examples) < self.batch_size:
      if self._executor is not None:
        self._fill()
        example = self._queue.popleft().result()
      else:
        epoch, position = self._cursor
        example = self.make_example(epoch, int(self._order(epoch)[position]))
      self._cursor = self._advance(self._cursor)
      if example is None:
        self.num_skipped += 1
        misses += 1
        if misses >= self._n:
          raise RuntimeError(f"no image of {self.source.spec!r} could be decoded "
                             f"({self.source.num_corrupt} unreadable)")
        continue
      misses = 0
      examples.append(example)
    return {k: np.stack([e[k] for e in examples]) for k in examples[0]}

  def close(self) -> None:
    """Stops the worker threads (also done at interpreter exit)."""
    self._drain()
    if self._executor is not None:
      self._executor.shutdown(wait=False, cancel_futures=True)
      self._executor = None

  def __del__(self):
    try:
      self.close()
    except Exception:  # pylint: disable=broad-except  (interpreter shutdown)
      pass

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def create_train_pipeline(*, images: str, masks: str, image_size: int, batch_size: int, seed: int,
                          with_edges: bool = False, edge_sigma: float = 2.0, crop: str = "random",
                          num_workers: int = 0, flip: bool = True, channel_shuffle: bool = False,
                          prefetch: int = 2, shorter_side: int = 0, mask_size: int = 0,
                          min_mask_size: int = 0) -> TrainPipeline:
  """The training input pipeline: an infinite iterator of numpy batch dicts.

  Args:
    images: image source spec (folder, .flist, 'tfds:NAME[:SPLIT]', 'builtin[:train|heldout|all]').
    masks: mask spec ('irregular', 'irregular:0.1-0.2', 'block', 'half', a mask folder with
      white = hole — augmented as in the PConv paper —, or 'mix:irregular=3,block=1').
    image_size: output side (square).
    batch_size: examples per batch.
    seed: non-negative int; same seed -> same batches.
    with_edges: also emit 'gray' (skimage luma) and 'edge' (Canny of the full ground-truth gray, as
      EdgeConnect trains its edge model).
    edge_sigma: Canny Gaussian sigma (EdgeConnect SIGMA=2; 0 = EdgeConnect's random sigma in 1..4).
    crop: 'random' (+ resize when smaller), 'center' (EdgeConnect), 'celeba' (178 centre crop) or 'resize'.
    num_workers: decoding threads (0 = decode in the calling thread).
    flip: random horizontal flips.
    channel_shuffle: a random permutation of the RGB channels per example (not in either paper). On a
      handful of photos with a common colour cast (scikit-image's are warm), a network learns that cast as
      a prior and paints it into holes; permuting the channels makes every colour direction equally likely
      while keeping each photo's structure.
    prefetch: batches decoded ahead by the workers.
    shorter_side: with crop 'random', resize every image to this shorter side before cropping (0 = crop at
      native resolution).
    mask_size: draw each mask at mask_size x mask_size and take a random image_size x image_size window of it
      (0 = draw at image_size). Mask generators scale their strokes with the canvas, so a model trained on
      128x128 crops with mask_size=256 sees holes as wide, in pixels, as a 256x256 evaluation's; drawn at
      128 they are half as wide.
    min_mask_size: with mask_size, draw each mask's side uniformly from [min_mask_size, mask_size] instead
      (0 = always mask_size): holes of every width in between, as a test mask set has (e.g. 128..256 for
      128x128 crops evaluated at 256x256).

  Returns:
    `TrainPipeline`: `next(p)` -> {'image': (B,S,S,3), 'mask': (B,S,S,1) 1 = valid[, 'gray', 'edge':
    (B,S,S,1)]}, all float32; `p.get_state()` -> JSON dict; `p.set_state(d)`; `p.num_skipped`.
  """
  return TrainPipeline(open_source(images), masks_lib.from_spec(masks), image_size=image_size,
                       batch_size=batch_size, seed=seed, with_edges=with_edges, edge_sigma=edge_sigma,
                       crop=crop, flip=flip, channel_shuffle=channel_shuffle, num_workers=num_workers,
                       prefetch=prefetch, shorter_side=shorter_side, mask_size=mask_size,
                       min_mask_size=min_mask_size)


# ----------------------------------------------------------------------------------------------------
# Evaluation pairs.

@dataclasses.dataclass(frozen=True)
class EvalPair:
  """One fixed evaluation example.

  image: float32 (S, S, 3) in [0, 1]; mask: float32 (S, S), 1 = valid; bucket: hole-ratio bucket label
  ('(0.1,0.2]', ...); border: 'holes_off_border' / 'holes_may_touch_border' (None when unknown);
  image_path / mask_path: where they came from (mask_path None for generated masks).
  """
  image: np.ndarray
  mask: np.ndarray
  bucket: str
  border: str | None
  image_path: str
  mask_path: str | None


def _balanced_mask_order(folder: masks_lib.MaskFolder, seed: int) -> tuple[list[int], list[tuple[str, str]]]:
  infos = [folder.info(i) for i in range(len(folder))]
  groups: dict[tuple[str, str], list[int]] = collections.defaultdict(list)
  for i, key in enumerate(infos):
    groups[key].append(i)
  rank = {b: r for r, b in enumerate(masks_lib.BUCKETS)}
  keys = sorted(groups, key=lambda k: (rank.get(k[0], len(rank)), k[0], k[1]))
  rng = _seed_rng(seed, _TAG_EVAL)
  shuffled = [list(rng.permutation(groups[k])) for k in keys]
  order = []
  for r in range(max(len(g) for g in shuffled)):
    order.extend(int(g[r]) for g in shuffled if r < len(g))
  return order, infos


def create_eval_pairs(*, images: str, masks: str, image_size: int, seed: int = 0,
                      limit: int | None = None, crop: str = "center") -> list[EvalPair]:
  """Fixed, deterministic one-to-one image/mask pairs for evaluation.

  Images are taken in source order (folders sorted), preprocessed deterministically (`crop`, default
  EdgeConnect's centre square crop + resize, no flip). Image k gets:
    * for a mask folder (white = hole, NOT augmented): mask number k of a seeded order that interleaves
      the (bucket, border) groups, so any prefix covers the six buckets evenly; the mask is resized
      with nearest neighbour; bucket/border come from MANIFEST.csv when the folder has one (measured at
      the file's resolution), else are measured on the file. With more images than masks the order
      repeats (a warning says so).
    * for a generator spec ('irregular:0.1-0.2', 'block', ...): a mask drawn from a generator seeded by
      (seed, k); bucket/border measured.
  Undecodable images are skipped with a `CorruptImageWarning`.

  Args:
    images: image source spec (see `open_source`).
    masks: mask spec (see `masks.from_spec`).
    image_size: output side.
    seed: pairing seed.
    limit: at most this many pairs.
    crop: 'center' (default), 'celeba' or 'resize' ('random' is not deterministic and is refused).

  Returns:
    list of `EvalPair`.
  """
  if crop == "random" or crop not in CROP_MODES:
    raise ValueError(f"eval crop must be one of 'center', 'celeba', 'resize', got {crop!r}")
  if not isinstance(image_size, (int, np.integer)) or image_size < 1:
    raise ValueError(f"image_size must be a positive int, got {image_size!r}")
  if limit is not None and (not isinstance(limit, (int, np.integer)) or limit < 0):
    raise ValueError(f"limit must be None or an int >= 0, got {limit!r}")
  if not isinstance(seed, (int, np.integer)) or seed < 0:
    raise ValueError(f"seed must be a non-negative int, got {seed!r}")
  source = open_source(images)
  sampler = masks_lib.from_spec(masks, augment_folder=False)
  s = int(image_size)
  folder = sampler if isinstance(sampler, masks_lib.MaskFolder) else None
  if folder is not None:
    order, infos = _balanced_mask_order(folder, seed)
    wanted = len(source) if limit is None else min(limit, len(source))
    if wanted > len(order):
      warnings.warn(f"{wanted} eval images but only {len(order)} masks in {folder.folder}: masks are reused",
                    stacklevel=2)
  pairs: list[EvalPair] = []
  for k in range(len(source)):
    if limit is not None and len(pairs) >= limit:
      break
    image = source.try_load(k)
    if image is None:
      continue
    image = preprocess(image, image_size=s, crop=crop)
    if folder is not None:
      j = order[k % len(order)]
      mask = folder.get(j, (s, s))
      bucket, border = infos[j]
      mask_path = str(folder.files[j])
    else:
      mask = sampler(_seed_rng(seed, _TAG_EVAL, k), (s, s)).astype(np.float32)
      bucket, border, mask_path = masks_lib.hole_ratio_bucket(mask), masks_lib.border_flag(mask), None
    pairs.append(EvalPair(image=image, mask=mask, bucket=bucket, border=border,
                          image_path=source.name(k), mask_path=mask_path))
  if not pairs:
    raise ValueError(f"no decodable image in {source.spec!r}")
  return pairs
