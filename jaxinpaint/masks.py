"""Hole masks: loading, procedural generation, augmentation, ratio buckets and mask specs.

Convention everywhere in the package: a mask is float32 HxW with **1 = valid (known) pixel, 0 = hole**.
Files that store holes as white (the PConv paper's NVIDIA irregular mask set, EdgeConnect's masks) are
converted once, here, by `load`.

What this module implements:
  * `load`: mask files -> {0, 1} float32, binarised at 0.5 of the full range, optionally resized with
    nearest neighbour (`resize_nearest`; masks are never interpolated bilinearly).
  * `irregular`: free-form masks (random strokes, ellipses and lines) whose hole fraction lands in a
    requested interval, e.g. one of the PConv paper's six test buckets (0.01, 0.1], (0.1, 0.2], ...,
    (0.5, 0.6] (Liu et al. 2018, Sec. 4.1).
  * `block` / `half`: EdgeConnect's random-block (a W/2 x H/2 rectangle, 25% of the image) and half masks
    (knazeri/edge-connect `src/dataset.py`, `load_mask` types 1 and 2).
  * `augment`: the PConv paper's training augmentation of a mask set (random dilation, rotation,
    translation/crop and flips; Liu et al. 2018, Sec. 4.1 "we randomly dilate, rotate and crop").
  * `hole_ratio`, `hole_ratio_bucket`, `touches_border`, `read_manifest`: bucket bookkeeping matching the
    NVIDIA test set's MANIFEST.csv (`hole_ratio_bucket`, `border_flag_measured` columns).
  * `from_spec`: mask spec strings used by the training/evaluation pipelines:
    `irregular`, `irregular:0.1-0.2`, `irregular@0.7` (smaller shapes), `block`, `half`, a mask folder path
    (white = hole), and
    weighted mixtures `mix:irregular=3,block=1` (EdgeConnect's MASK=4/5 are
    `mix:block=1,FOLDER=1` and `mix:block=1,half=1,FOLDER=1`). `parse_spec` is its syntax check without
    reading any file, so a config is validated by the parser its training uses.

References:
  Liu et al., "Image Inpainting for Irregular Holes Using Partial Convolutions", ECCV 2018.
  Nazeri et al., "EdgeConnect: Generative Image Inpainting with Adversarial Edge Learning", 2019.
"""

from __future__ import annotations

import csv
import os
import pathlib
import threading
from typing import Callable

import cv2
import numpy as np
from PIL import Image
from PIL import ImageOps

__all__ = [
    "BUCKETS", "BUCKET_RANGES", "load", "resize_nearest", "irregular", "block", "half", "augment",
    "hole_ratio", "hole_ratio_bucket", "bucket_range", "touches_border", "border_flag",
    "read_manifest", "list_mask_files", "MaskSampler", "MaskFolder", "parse_spec", "from_spec",
    "IMAGE_EXTENSIONS",
]

# The PConv paper's six hole-to-image-area buckets, as "(lo,hi]" labels.
BUCKET_RANGES: tuple[tuple[float, float], ...] = (
    (0.01, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6))
BUCKETS: tuple[str, ...] = tuple(f"({lo:g},{hi:g}]" for lo, hi in BUCKET_RANGES)
_BELOW, _ABOVE = "[0,0.01]", "(0.6,1]"
# The file types images and masks are read from (PIL decodes all of them); `jaxinpaint.data` lists image
# folders with the same ones.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
BORDER_OFF, BORDER_TOUCH = "holes_off_border", "holes_may_touch_border"


# ----------------------------------------------------------------------------------------------------
# Loading and resizing.

def _as_float01(arr: np.ndarray) -> np.ndarray:
  """Integer/float image array -> float32 scaled so the dtype's full range maps to [0, 1]."""
  if arr.dtype == np.bool_:
    return arr.astype(np.float32)
  if arr.dtype == np.uint8:
    return arr.astype(np.float32) / 255.0
  if arr.dtype == np.uint16 or (np.issubdtype(arr.dtype, np.integer) and arr.max(initial=0) > 255):
    return (arr.astype(np.float32) / 65535.0).clip(0.0, 1.0)
  if np.issubdtype(arr.dtype, np.integer):
    return arr.astype(np.float32) / 255.0
  return arr.astype(np.float32).clip(0.0, 1.0)


def resize_nearest(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
  """Nearest-neighbour resize of a 2-D mask (pixel-centre aligned), so values stay exactly binary.

  Output pixel (i, j) takes input pixel (floor((i + 0.5) * H / h), floor((j + 0.5) * W / w)); this is the
  centre-aligned rule of OpenCV's INTER_NEAREST_EXACT / PIL's NEAREST, never a bilinear blend.

  Args:
    mask: (H, W) array.
    shape: target (h, w).

  Returns:
    (h, w) array of the same dtype.
  """
  mask = np.asarray(mask)
  if mask.ndim != 2:
    raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
  h, w = int(shape[0]), int(shape[1])
  if h <= 0 or w <= 0:
    raise ValueError(f"shape must be two positive ints, got {shape!r}")
  big_h, big_w = mask.shape
  if (h, w) == (big_h, big_w):
    return mask.copy()
  # Integer arithmetic: exact at ties such as (7.5 * 512 / 40 = 96), where float formulations disagree.
  rows = (2 * np.arange(h, dtype=np.int64) + 1) * big_h // (2 * h)
  cols = (2 * np.arange(w, dtype=np.int64) + 1) * big_w // (2 * w)
  return mask[rows[:, None], cols[None, :]]


def load(path: str | os.PathLike, *, hole_value: int = 255,
         shape: tuple[int, int] | None = None) -> np.ndarray:
  """Loads a mask file as float32 HxW with 1 = valid, 0 = hole.

  The file is read as grayscale, scaled to [0, 1] by its dtype's range and binarised at 0.5. With
  `hole_value=255` (the NVIDIA irregular masks, EdgeConnect) white pixels are holes; with `hole_value=0`
  black pixels are holes (files that already store 1/255 = valid).

  Args:
    path: image file (png/jpg/bmp/tif/webp).
    hole_value: 255 (white = hole) or 0 (black = hole).
    shape: optional (h, w); the binary mask is resized with nearest neighbour (`resize_nearest`).

  Returns:
    float32 (H, W) array with values in {0, 1}.
  """
  if hole_value not in (0, 255):
    raise ValueError(f"hole_value must be 255 (white = hole) or 0 (black = hole), got {hole_value!r}")
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"mask file not found: {path}")
  try:
    with Image.open(path) as img:
      img.load()
      img = ImageOps.exif_transpose(img)  # the orientation a viewer shows, as for the images
      if img.mode in ("I", "I;16", "I;16B", "I;16L", "F", "1", "L"):
        arr = np.asarray(img)
      else:
        arr = np.asarray(img.convert("L"))
  except (OSError, SyntaxError, ValueError) as e:
    raise ValueError(f"cannot decode mask file {path}: {e}") from e
  white = _as_float01(arr) > 0.5
  hole = white if hole_value == 255 else ~white
  mask = (~hole).astype(np.float32)
  if shape is not None:
    mask = resize_nearest(mask, shape)
  return mask


def _check_shape(shape) -> tuple[int, int]:
  try:
    h, w = (int(s) for s in shape)
  except (TypeError, ValueError):
    raise ValueError(f"shape must be a (height, width) pair of ints, got {shape!r}") from None
  if h < 2 or w < 2:
    raise ValueError(f"shape must be at least (2, 2), got {shape!r}")
  return h, w


# ----------------------------------------------------------------------------------------------------
# Ratio buckets.

def hole_ratio(mask: np.ndarray) -> float:
  """Fraction of hole pixels (mask <= 0.5) in a (H, W) or (H, W, 1) mask with 1 = valid."""
  mask = np.asarray(mask)
  return float(np.count_nonzero(mask <= 0.5)) / mask.size


def _bucket_of_counts(holes: int, total: int) -> str:
  # Exact integer comparisons, so a ratio of exactly 0.1 is in (0.01,0.1] as the paper's intervals say.
  if holes * 100 <= total:
    return _BELOW
  for (lo, hi), label in zip(BUCKET_RANGES, BUCKETS):
    if holes * 10 <= round(hi * 10) * total:
      return label
  return _ABOVE


def hole_ratio_bucket(mask_or_ratio) -> str:
  """Label of the PConv hole-ratio bucket a mask (1 = valid) or a hole fraction falls in.

  Returns one of `BUCKETS` ('(0.01,0.1]', '(0.1,0.2]', ..., '(0.5,0.6]'), or '[0,0.01]' / '(0.6,1]' for
  fractions outside the six test buckets. Intervals are open below and closed above, as in the paper.
  """
  if np.isscalar(mask_or_ratio):
    r = float(mask_or_ratio)
    if not 0.0 <= r <= 1.0:
      raise ValueError(f"hole ratio must be in [0, 1], got {r}")
    if r <= 0.01:
      return _BELOW
    for (lo, hi), label in zip(BUCKET_RANGES, BUCKETS):
      if r <= hi:
        return label
    return _ABOVE
  mask = np.asarray(mask_or_ratio)
  if mask.ndim == 3 and mask.shape[-1] == 1:
    mask = mask[..., 0]
  if mask.ndim != 2:
    raise ValueError(f"mask must be (H, W) or (H, W, 1), got shape {mask.shape}")
  return _bucket_of_counts(int(np.count_nonzero(mask <= 0.5)), mask.size)


def bucket_range(label: str) -> tuple[float, float]:
  """'(0.1,0.2]', '0.1-0.2' (MANIFEST.csv style) or '0.1,0.2' -> (0.1, 0.2)."""
  s = label.strip().strip("()[]")
  sep = "-" if "-" in s else ","
  try:
    lo, hi = (float(x) for x in s.split(sep))
  except ValueError:
    raise ValueError(f"hole-ratio bucket must look like '0.1-0.2' or '(0.1,0.2]', got {label!r}") from None
  if not 0.0 <= lo < hi <= 1.0:
    raise ValueError(f"hole-ratio bucket needs 0 <= lo < hi <= 1, got {label!r}")
  return lo, hi


def _normalise_bucket_label(label: str) -> str:
  lo, hi = bucket_range(label)
  return f"({lo:g},{hi:g}]"


def touches_border(mask: np.ndarray) -> bool:
  """True when any hole pixel lies on the outermost row/column (MANIFEST's border_flag_measured)."""
  hole = np.asarray(mask) <= 0.5
  return bool(hole[0].any() or hole[-1].any() or hole[:, 0].any() or hole[:, -1].any())


def border_flag(mask: np.ndarray) -> str:
  """'holes_may_touch_border' or 'holes_off_border', the vocabulary of the NVIDIA MANIFEST.csv."""
  return BORDER_TOUCH if touches_border(mask) else BORDER_OFF


def read_manifest(folder: str | os.PathLike) -> dict[str, dict[str, str]]:
  """Reads FOLDER/MANIFEST.csv if present: {file name: {'bucket': '(lo,hi]', 'border': ..., ...}}.

  Columns used: `file`, `hole_ratio_bucket` ('0.01-0.1' style, normalised to '(0.01,0.1]') and
  `border_flag_measured`. Returns {} when there is no manifest.
  """
  path = pathlib.Path(folder) / "MANIFEST.csv"
  if not path.is_file():
    return {}
  out = {}
  with open(path, newline="") as f:
    for row in csv.DictReader(f):
      name = row.get("file")
      if not name:
        continue
      entry = dict(row)
      if row.get("hole_ratio_bucket"):
        entry["bucket"] = _normalise_bucket_label(row["hole_ratio_bucket"])
      if row.get("border_flag_measured"):
        entry["border"] = row["border_flag_measured"]
      out[name] = entry
  return out


# ----------------------------------------------------------------------------------------------------
# Procedural masks.

def _draw_shape(canvas: np.ndarray, rng: np.random.Generator, scale: float) -> None:
  """Draws one random stroke / ellipse / line (value 1 = hole) onto a uint8 canvas in place."""
  h, w = canvas.shape
  side = min(h, w)
  kind = rng.choice(3, p=(0.6, 0.2, 0.2))
  if kind == 0:
    # Free-form brush stroke: a random walk of thick line segments with round joints.
    n = int(rng.integers(2, 7))
    width = max(1, int(rng.uniform(0.02, 0.09) * side * scale))
    y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
    angle = rng.uniform(0, 2 * np.pi)
    for _ in range(n):
      angle += rng.uniform(-np.pi / 2, np.pi / 2)
      length = rng.uniform(0.05, 0.25) * side * scale + 1
      ny = int(np.clip(y + length * np.sin(angle), 0, h - 1))
      nx = int(np.clip(x + length * np.cos(angle), 0, w - 1))
      cv2.line(canvas, (x, y), (nx, ny), 1, width, lineType=cv2.LINE_8)
      cv2.circle(canvas, (nx, ny), width // 2, 1, -1)
      y, x = ny, nx
  elif kind == 1:
    axes = (max(1, int(rng.uniform(0.02, 0.15) * side * scale)),
            max(1, int(rng.uniform(0.02, 0.15) * side * scale)))
    center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
    cv2.ellipse(canvas, center, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
  else:
    width = max(1, int(rng.uniform(0.01, 0.04) * side * scale))
    p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
    p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
    cv2.line(canvas, p0, p1, 1, width, lineType=cv2.LINE_8)


# Upper bound of `stroke_scale`, enforced by `irregular` (direct callers) and `parse_spec` (a config's spec).
MAX_STROKE_SCALE = 4.0


def irregular(rng: np.random.Generator, shape: tuple[int, int], *,
              hole_ratio: tuple[float, float] = (0.01, 0.6), max_tries: int = 20,
              stroke_scale: float = 1.0) -> np.ndarray:
  """Procedural free-form hole mask whose hole fraction lies in the interval (lo, hi].

  A target fraction t ~ U(lo, hi] is drawn; random brush strokes, ellipses and lines are added one by
  one until the hole fraction reaches t. A shape that would push the fraction above hi is undone and
  redrawn smaller (the shape scale shrinks with the remaining gap), so the result lands in (lo, hi]
  essentially always; after `max_tries` failed restarts the closest mask found is returned.

  Args:
    rng: numpy Generator (all randomness comes from it, so a seed reproduces the mask).
    shape: (H, W).
    hole_ratio: (lo, hi) with 0 <= lo < hi <= 1, e.g. one of `BUCKET_RANGES`.
    max_tries: restarts before giving up on hitting the interval.
    stroke_scale: multiplies every shape's size (stroke widths and lengths, ellipse axes), which are
      otherwise proportional to the canvas side: 0.7 at 256x256 draws holes about as wide in pixels as
      the default draws at 180x180 (more shapes then make up the same hole fraction).

  Returns:
    float32 (H, W) mask, 1 = valid, 0 = hole.
  """
  h, w = _check_shape(shape)
  if not (isinstance(stroke_scale, (int, float, np.floating)) and 0 < stroke_scale <= MAX_STROKE_SCALE):
    raise ValueError(f"stroke_scale must be a number in (0, {MAX_STROKE_SCALE:g}], got {stroke_scale!r}")
  try:
    lo, hi = (float(v) for v in hole_ratio)
  except (TypeError, ValueError):
    raise ValueError(f"hole_ratio must be a (lo, hi) pair, got {hole_ratio!r}") from None
  if not 0.0 <= lo < hi <= 1.0:
    raise ValueError(f"hole_ratio must satisfy 0 <= lo < hi <= 1, got {hole_ratio!r}")
  total = h * w
  # Integer pixel-count bounds of (lo, hi].
  lo_n, hi_n = int(np.floor(lo * total)) + 1, int(np.floor(hi * total + 1e-9))
  if lo_n > hi_n:
    raise ValueError(f"hole_ratio {hole_ratio!r} holds no pixel count for shape {(h, w)}")
  best, best_err = None, None
  for _ in range(max_tries):
    target = max(lo_n, min(hi_n, int(np.ceil(rng.uniform(lo, hi) * total))))
    canvas = np.zeros((h, w), np.uint8)
    count = 0
    fails = 0
    while count < target and fails < 60:
      # Shapes shrink as the remaining gap shrinks, so the last strokes can land inside the interval.
      gap = (hi_n - count) / total
      scale = float(np.clip(np.sqrt(gap / 0.1), 0.15, 1.5))
      trial = canvas.copy()
      _draw_shape(trial, rng, scale * stroke_scale)
      new = int(np.count_nonzero(trial))
      if new > hi_n:
        fails += 1
        continue
      canvas, count = trial, new
    err = 0 if lo_n <= count <= hi_n else min(abs(count - lo_n), abs(count - hi_n))
    if best is None or err < best_err:
      best, best_err = canvas, err
    if err == 0:
      break
  return (1 - best).astype(np.float32)


def block(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
  """EdgeConnect's random block: a (H//2) x (W//2) hole at a uniformly random place (25% of the image).

  Follows knazeri/edge-connect `create_mask(imgw, imgh, imgw // 2, imgh // 2)` (mask type 1).

  Returns:
    float32 (H, W) mask, 1 = valid, 0 = hole.
  """
  h, w = _check_shape(shape)
  bh, bw = h // 2, w // 2
  y = int(rng.integers(0, h - bh + 1))
  x = int(rng.integers(0, w - bw + 1))
  mask = np.ones((h, w), np.float32)
  mask[y:y + bh, x:x + bw] = 0.0
  return mask


def half(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
  """EdgeConnect's half mask: the left or the right half (W//2 x H) is a hole, each with p = 0.5.

  Follows knazeri/edge-connect `create_mask(imgw, imgh, imgw // 2, imgh, 0 or imgw // 2, 0)` (type 2).

  Returns:
    float32 (H, W) mask, 1 = valid, 0 = hole.
  """
  h, w = _check_shape(shape)
  x = 0 if rng.random() < 0.5 else w // 2
  mask = np.ones((h, w), np.float32)
  mask[:, x:x + w // 2] = 0.0
  return mask


def augment(mask: np.ndarray, rng: np.random.Generator, shape: tuple[int, int] | None = None, *,
            max_dilation: float = 0.02, min_crop: float = 0.6) -> np.ndarray:
  """The PConv paper's mask augmentation: random dilation, rotation, translation/crop and flips.

  Liu et al. 2018 (Sec. 4.1) augment their occlusion masks by random dilation, rotation and cropping;
  we apply, in order: dilation of the hole with a random elliptical kernel (p = 0.5, up to
  `max_dilation` * side pixels), rotation by a uniform angle (nearest neighbour; areas rotated in from
  outside are valid), a random square-ish crop covering `min_crop`..1 of each side at a random place
  (a translation + zoom), nearest-neighbour resize to `shape`, and horizontal/vertical flips (p = 0.5 each).
  Every geometric step is nearest-neighbour and the result is binarised at 0.5, so it stays in {0, 1}.

  Args:
    mask: (H, W) mask, 1 = valid.
    rng: numpy Generator.
    shape: output (h, w); defaults to the input shape.
    max_dilation: largest dilation radius as a fraction of min(H, W).
    min_crop: smallest crop side as a fraction of the input side.

  Returns:
    float32 (h, w) mask in {0, 1}, 1 = valid.
  """
  mask = np.asarray(mask)
  if mask.ndim != 2:
    raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
  shape = mask.shape if shape is None else _check_shape(shape)
  hole = (mask <= 0.5).astype(np.uint8)
  h, w = hole.shape
  side = min(h, w)
  if rng.random() < 0.5:
    r = int(rng.integers(1, max(2, int(max_dilation * side) + 1)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    hole = cv2.dilate(hole, kernel)
  angle = float(rng.uniform(-180.0, 180.0))
  rot = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
  hole = cv2.warpAffine(hole, rot, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                        borderValue=0)
  ch = int(round(h * rng.uniform(min_crop, 1.0)))
  cw = int(round(w * rng.uniform(min_crop, 1.0)))
  y = int(rng.integers(0, h - ch + 1))
  x = int(rng.integers(0, w - cw + 1))
  hole = resize_nearest(hole[y:y + ch, x:x + cw], shape)
  if rng.random() < 0.5:
    hole = hole[:, ::-1]
  if rng.random() < 0.5:
    hole = hole[::-1, :]
  return (hole <= 0).astype(np.float32)


# ----------------------------------------------------------------------------------------------------
# Mask sources and spec strings.

def find_images(folder: str | os.PathLike) -> list[pathlib.Path]:
  """Sorted image files (`IMAGE_EXTENSIONS`) under `folder`, recursively, following symlinked folders.

  Datasets are often folders of symlinks to photo folders; each real folder is visited once, so a
  symlink pointing back up the tree ends the walk there instead of looping.
  """
  files, seen = [], set()
  for root, dirs, names in os.walk(folder, followlinks=True):
    real = os.path.realpath(root)
    if real in seen:
      dirs[:] = []
      continue
    seen.add(real)
    files.extend(pathlib.Path(root) / n for n in names if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS)
  return sorted(p for p in files if p.is_file())


def list_mask_files(folder: str | os.PathLike) -> list[pathlib.Path]:
  """Sorted mask files (png/jpg/jpeg/bmp/tif/tiff/webp) under `folder`, recursively."""
  folder = pathlib.Path(folder)
  if not folder.exists():
    raise FileNotFoundError(f"mask folder not found: {folder}")
  if not folder.is_dir():
    raise ValueError(f"mask source must be a folder of mask images, got file {folder}")
  files = find_images(folder)
  if not files:
    raise ValueError(f"mask folder {folder} contains no mask images ({', '.join(IMAGE_EXTENSIONS)})")
  return files


class MaskSampler:
  """Draws a training mask: `sampler(rng, shape) -> float32 (H, W)` with 1 = valid.

  Subclasses/instances built by `from_spec`. `spec` is the string it came from.
  """

  def __init__(self, fn: Callable[[np.random.Generator, tuple[int, int]], np.ndarray], spec: str):
    self._fn = fn
    self.spec = spec

  def __call__(self, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return self._fn(rng, shape)

  def __repr__(self) -> str:
    return f"MaskSampler({self.spec!r})"


class MaskFolder(MaskSampler):
  """A folder of mask files (white = hole by default), e.g. the PConv irregular mask set.

  Training draws (`__call__`) pick a uniformly random file, load it, apply `augment` (unless
  `augment=False`) and resize to the requested shape with nearest neighbour. `get(i, shape)` returns
  file i without augmentation (evaluation). `info(i)` returns MANIFEST.csv's bucket/border for file i
  when the folder has a manifest, else measures them. Up to `cache_size` decoded masks are kept in
  memory as packed bits (32 KiB for a 512x512 mask) so PNG decoding is paid once per file.
  """

  def __init__(self, folder: str | os.PathLike, *, hole_value: int = 255, augment: bool = True,
               cache_size: int = 4096):
    self.folder = pathlib.Path(folder)
    self.files = list_mask_files(self.folder)
    self.hole_value = hole_value
    self.augment = augment
    self.manifest = read_manifest(self.folder)
    self.cache_size = int(cache_size)
    self._cache: dict[int, tuple[np.ndarray, tuple[int, int]]] = {}
    self._lock = threading.Lock()
    super().__init__(self._draw, str(folder))

  def __len__(self) -> int:
    return len(self.files)

  def __getstate__(self):
    state = self.__dict__.copy()
    state["_cache"], state["_lock"] = {}, None
    return state

  def __setstate__(self, state):
    self.__dict__.update(state)
    self._lock = threading.Lock()

  def get(self, index: int, shape: tuple[int, int] | None = None) -> np.ndarray:
    """File `index` as float32 (H, W), 1 = valid, resized with nearest neighbour to `shape` if given."""
    hit = self._cache.get(index)
    if hit is None:
      mask = load(self.files[index], hole_value=self.hole_value)
      with self._lock:
        if len(self._cache) < self.cache_size:
          self._cache[index] = (np.packbits(mask > 0.5), mask.shape)
    else:
      bits, full = hit
      mask = np.unpackbits(bits, count=full[0] * full[1]).reshape(full).astype(np.float32)
    return mask if shape is None else resize_nearest(mask, shape)

  def info(self, index: int, mask: np.ndarray | None = None) -> tuple[str, str]:
    """(bucket label, border flag) of file `index`: from MANIFEST.csv when listed, else measured."""
    entry = self.manifest.get(self.files[index].relative_to(self.folder).as_posix())
    if entry is not None and "bucket" in entry and "border" in entry:
      return entry["bucket"], entry["border"]
    if mask is None:
      mask = self.get(index)
    return hole_ratio_bucket(mask), border_flag(mask)

  def _draw(self, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    index = int(rng.integers(0, len(self.files)))
    mask = self.get(index)
    if self.augment:
      return augment(mask, rng, shape)
    return resize_nearest(mask, shape)


def parse_spec(spec: str) -> tuple:
  """Parses a mask spec string (see `from_spec`) without reading any mask file.

  Returns:
    ('irregular', (lo, hi), stroke_scale), ('block',), ('half',), ('folder', path) or ('mix', ((parsed, weight), ...)).

  Raises:
    ValueError / FileNotFoundError naming the spec when it is not understood (a folder that does not
    exist, a file, an unknown generator, a malformed mixture).
  """
  if not isinstance(spec, str) or not spec.strip():
    raise ValueError(f"masks spec must be a non-empty string, got {spec!r}")
  spec = spec.strip()
  if spec.startswith("mix:"):
    parts = [p for p in spec[4:].split(",") if p.strip()]
    entries = []
    for part in parts:
      name, sep, weight = part.rpartition("=")
      if not sep:
        raise ValueError(f"mix spec entries must be NAME=WEIGHT, got {part!r} in {spec!r}")
      try:
        wt = float(weight)
      except ValueError:
        raise ValueError(f"mix weight must be a number, got {weight!r} in {spec!r}") from None
      if wt < 0:
        raise ValueError(f"mix weights must be >= 0, got {wt} in {spec!r}")
      entries.append((parse_spec(name.strip()), wt))
    if not entries or sum(w for _, w in entries) <= 0:
      raise ValueError(f"mix spec needs at least one NAME=WEIGHT with a positive weight, got {spec!r}")
    return ("mix", tuple(entries))
  if spec == "irregular" or spec.startswith(("irregular:", "irregular@")):
    rest, at, scale = spec[len("irregular"):].partition("@")
    ratio = bucket_range(rest[1:]) if rest else (0.01, 0.6)  # rest is '' or ':LO-HI'
    stroke_scale = 1.0
    if at:
      try:
        stroke_scale = float(scale)
      except ValueError:
        raise ValueError(f"masks spec {spec!r}: the stroke scale after '@' must be a number, got {scale!r}") from None
      if not 0 < stroke_scale <= MAX_STROKE_SCALE:
        raise ValueError(f"masks spec {spec!r}: the stroke scale after '@' must be in (0, {MAX_STROKE_SCALE:g}], "
                         f"got {scale!r}")
    return ("irregular", ratio, stroke_scale)
  if spec in ("block", "half"):
    return (spec,)
  path = pathlib.Path(spec).expanduser()
  if path.is_dir():
    return ("folder", path)
  if path.exists():
    raise ValueError(f"masks spec {spec!r} is a file; expected a folder of masks or one of "
                     "'irregular', 'irregular:LO-HI', 'block', 'half', 'mix:A=w,B=w'")
  raise FileNotFoundError(f"masks spec {spec!r} is neither a known generator ('irregular', "
                          "'irregular:LO-HI', 'block', 'half', 'mix:...') nor an existing mask folder")


def _sampler(parsed: tuple, spec: str, augment_folder: bool) -> MaskSampler:
  kind = parsed[0]
  if kind == "mix":
    samplers = [_sampler(sub, spec, augment_folder) for sub, _ in parsed[1]]
    weights = np.asarray([w for _, w in parsed[1]], np.float64)
    probs = weights / weights.sum()

    def draw_mix(rng, shape):
      return samplers[int(rng.choice(len(samplers), p=probs))](rng, shape)
    return MaskSampler(draw_mix, spec)
  if kind == "irregular":
    ratio, stroke_scale = parsed[1], parsed[2]
    return MaskSampler(lambda rng, shape: irregular(rng, shape, hole_ratio=ratio, stroke_scale=stroke_scale), spec)
  if kind == "block":
    return MaskSampler(block, spec)
  if kind == "half":
    return MaskSampler(half, spec)
  return MaskFolder(parsed[1], augment=augment_folder)


def from_spec(spec: str | MaskSampler, *, augment_folder: bool = True) -> MaskSampler:
  """Builds a `MaskSampler` from a mask spec string.

  Specs:
    'irregular'           free-form masks with hole fraction ~ U(0.01, 0.6].
    'irregular:0.1-0.2'   free-form masks in (0.1, 0.2] (also '(0.1,0.2]').
    'irregular@0.7'       free-form masks with shapes 0.7x their default size (`irregular`'s
                          stroke_scale; also 'irregular:0.1-0.2@0.7').
    'block'               EdgeConnect's random W/2 x H/2 block.
    'half'                EdgeConnect's left/right half.
    FOLDER                a mask folder (white = hole), augmented with `augment` unless augment_folder=False.
    'mix:A=wa,B=wb,...'   mixture of the above with weights (e.g. 'mix:irregular=3,block=1').

  Raises:
    ValueError / FileNotFoundError naming the spec when it is not understood (`parse_spec`), or a mask
    folder without mask images.
  """
  if isinstance(spec, MaskSampler):
    return spec
  parsed = parse_spec(spec)
  return _sampler(parsed, spec.strip(), augment_folder)
