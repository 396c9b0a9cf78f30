"""Inference: fill the holes of one image of any size with a trained model or a classical baseline.

Python API::

  from jaxinpaint.inpaint import Inpainter
  inpainter = Inpainter.from_pretrained('pconv_cpu_hour')    # a shipped model (jaxinpaint.pretrained)
  inpainter = Inpainter.from_workdir('runs/quickstart')      # whatever model the workdir trained
  result = inpainter(image, mask)                             # same type and size as `image`
  result = Inpainter.from_method('telea')(image, mask)        # classical: telea | ns | patchmatch

Command line (see `python -m jaxinpaint.inpaint --help`)::

  python -m jaxinpaint.inpaint --image photo.png --mask holes.png --out filled.png   # the shipped PConv model
  python -m jaxinpaint.inpaint --workdir runs/quickstart --image photo.png --mask holes.png --out filled.png
  python -m jaxinpaint.inpaint --method telea --image images/ --mask masks/ --out results/

How an image of any size is handled (the networks need sizes divisible by their downsampling factor, the
task's `required_multiple()`: PConv U-Net 2**num_levels, EdgeConnect 4): the image and mask are
reflect-padded at the bottom/right to a *shape bucket* -- each side rounded up to a multiple of
`lcm(bucket, multiple)` (bucket 64 by default) -- run through the jitted network, cropped back, and
composited (Liu et al. 2018, Eq. 'I_comp'): known pixels are copied from the input unchanged (bit-exact in
the input's own dtype: uint8 stays uint8, float stays float), hole pixels come from the network. Differently
sized images that fall into the same bucket reuse one compilation.

Mask rule (one rule everywhere: API, CLI, demo): a mask is a *picture of the holes*.

  * Boolean arrays: True = hole.
  * Everything else (PIL images, uint8 / float arrays) is a grayscale picture, scaled to [0, 1] by its
    dtype (uint8 / 255, floats as they are, colour images averaged over RGB) and thresholded at 0.5;
    `hole_value=255` (the default, as in the NVIDIA and EdgeConnect mask files) means white = hole,
    `hole_value=0` means black = hole. A float mask in the package's own convention (1 = valid, 0 = hole)
    is therefore passed with `hole_value=0`.

The mask must have the image's height and width (the API raises `ValueError` otherwise; the CLI's
`--resize-mask` resizes it nearest-neighbour with a warning instead).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import pathlib
import sys
import threading
import warnings
from typing import Any, Callable

import jax
import numpy as np
from PIL import Image

from jaxinpaint import baselines
from jaxinpaint import data
from jaxinpaint import masks as masks_lib
from jaxinpaint import predictor
from jaxinpaint import pretrained

__all__ = [
    'MAX_MODEL_PIXELS',
    'MAX_PIXELS',
    'InpaintResult',
    'Inpainter',
    'hole_mask',
    'load_image',
    'main',
]

_LOSSY_EXTENSIONS = ('.jpg', '.jpeg', '.webp')


@dataclasses.dataclass(frozen=True)
class InpaintResult:
  """What `Inpainter.inpaint` returns.

  Attributes:
    image: the composited result, same type (PIL / uint8 / float array) and size as the input image.
    edge: the edge map (H, W) float32 in [0, 1] a model with `predicts_edges` conditioned its output on
      (EdgeConnect: known-region Canny + predicted edges in the holes); None for other methods.
    hole: (H, W) bool, True where pixels were filled.
  """
  image: Any
  edge: np.ndarray | None
  hole: np.ndarray


# -------------------------------------------------------------------------------------------- inputs

# Largest images the CLI (and the demo) fill: the networks' activations grow with the image (PConv's first
# layer alone holds 64 x H x W floats, ~1 GB at 4 megapixels), the classical methods' memory much less so.
MAX_MODEL_PIXELS = 4_000_000
MAX_PIXELS = 16_000_000


def load_image(path: str | os.PathLike, *, max_pixels: int | None = None) -> np.ndarray:
  """Reads an image file as uint8 (H, W, 3) RGB, as a viewer shows it (`jaxinpaint.data.pil_to_array`).

  EXIF orientation applied (the CLI applies it to the mask file too, and writes the result in that
  orientation); transparent pixels composited on white; 16-bit files rounded to 8 bits; palette, CMYK and
  grayscale converted to RGB.

  Args:
    path: the image file.
    max_pixels: refuse larger images (checked on the file header, before decoding).

  Raises:
    FileNotFoundError: `path` does not exist.
    ValueError: the file is not a decodable image, or has more than `max_pixels` pixels.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f'image file not found: {path}')
  try:
    with Image.open(path) as img:
      w, h = img.size
      if max_pixels is not None and w * h > max_pixels:
        raise ValueError(f'image {path} is {w}x{h} = {w * h / 1e6:.1f} megapixels, above the limit of '
                         f'{max_pixels / 1e6:g} (--max-megapixels raises it; memory grows with the image)')
      try:
        img.load()
        return data.to_uint8(data.pil_to_array(img))
      except ValueError as e:
        raise OSError(e) from None
  except (OSError, SyntaxError, Image.DecompressionBombError) as e:
    raise ValueError(f'cannot decode image file {path}: {e}') from None


def _image_to_float(image) -> tuple[np.ndarray, str, Any]:
  """Image -> (float32 (H, W, 3) in [0, 1], kind, original array); kind is 'pil', 'uint8' or 'float'."""
  if isinstance(image, Image.Image):
    arr = data.to_uint8(data.pil_to_array(image, exif_transpose=False))  # same size as the image given
    return arr.astype(np.float32) / 255.0, 'pil', arr
  if isinstance(image, jax.Array):
    image = np.asarray(image)
  if not isinstance(image, np.ndarray):
    raise ValueError(f'image: expected a PIL image or a numpy array (H, W, 3), got {type(image).__name__}')
  if image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError(f'image: expected an RGB array of shape (H, W, 3), got shape {image.shape} '
                     '(convert grayscale/RGBA first, e.g. PIL.Image.convert("RGB"))')
  if image.shape[0] < 1 or image.shape[1] < 1:
    raise ValueError(f'image: empty image of shape {image.shape}')
  if image.dtype == np.uint8:
    return image.astype(np.float32) / 255.0, 'uint8', image
  if np.issubdtype(image.dtype, np.floating):
    if not np.all(np.isfinite(image)) or image.min() < 0.0 or image.max() > 1.0:
      raise ValueError('image: float images must be finite and in [0, 1] '
                       f'(got range [{np.nanmin(image):g}, {np.nanmax(image):g}])')
    return image.astype(np.float32), 'float', image
  raise ValueError(f'image: expected dtype uint8 or float in [0, 1], got {image.dtype}')


def hole_mask(mask, *, hole_value: int = 255, shape: tuple[int, int] | None = None,
              resize: bool = False) -> np.ndarray:
  """Converts a mask picture to a boolean (H, W) hole map (True = hole) by the module's mask rule.

  Args:
    mask: PIL image, or numpy array (H, W), (H, W, 1), (H, W, 3|4); bool arrays are True = hole.
    hole_value: 255 (white = hole) or 0 (black = hole); ignored for bool arrays.
    shape: the image's (H, W); a different mask size raises ValueError unless `resize`.
    resize: resize a mask of another size nearest-neighbour to `shape` (with a warning).

  Returns:
    bool (H, W) array, True = hole.
  """
  if hole_value not in (0, 255):
    raise ValueError(f'hole_value must be 255 (white = hole) or 0 (black = hole), got {hole_value!r}')
  if isinstance(mask, Image.Image):
    mask = np.asarray(mask.convert('L'))
  if not isinstance(mask, np.ndarray):
    mask = np.asarray(mask)
  if mask.ndim == 3 and mask.shape[-1] in (1, 3, 4):
    mask = mask[..., :3]
  elif mask.ndim == 2:
    mask = mask[..., None]
  else:
    raise ValueError(f'mask: expected shape (H, W), (H, W, 1) or (H, W, 3), got {mask.shape}')
  if mask.dtype == np.bool_:
    hole = mask.any(axis=-1)
  else:
    if np.issubdtype(mask.dtype, np.integer):
      if mask.size and (mask.min() < 0 or mask.max() > 255):
        raise ValueError(f'mask: integer masks must be in [0, 255], got range [{mask.min()}, {mask.max()}]')
      level = mask.astype(np.float32) / 255.0
    elif np.issubdtype(mask.dtype, np.floating):
      if not np.all(np.isfinite(mask)):
        raise ValueError('mask: contains NaN or inf')
      level = mask.astype(np.float32)
    else:
      raise ValueError(f'mask: unsupported dtype {mask.dtype}; expected bool, uint8 or float')
    white = level.mean(axis=-1) > 0.5
    hole = white if hole_value == 255 else ~white
  if shape is not None and hole.shape != tuple(shape):
    if not resize:
      raise ValueError(f'mask size {hole.shape[1]}x{hole.shape[0]} (WxH) differs from the image size '
                       f'{shape[1]}x{shape[0]}; pass a mask of the same size (or resize=True / --resize-mask)')
    warnings.warn(f'resizing mask from {hole.shape[1]}x{hole.shape[0]} to {shape[1]}x{shape[0]} '
                  '(nearest neighbour)', stacklevel=2)
    hole = masks_lib.resize_nearest(hole, tuple(shape))
  return hole


def _round_up(n: int, m: int) -> int:
  return -(-n // m) * m


class Inpainter:
  """Fills holes in single images of any size; see the module docstring for padding and the mask rule.

  Build one with `from_pretrained` (a shipped model), `from_workdir` / `from_checkpoint` (a trained model,
  through `jaxinpaint.predictor`) or `from_method` (classical baselines), then call it:
  `inpainter(image, mask) -> image`. Thread-safe (calls are serialised).
  """

  def __init__(self, predict: Callable[[np.ndarray, np.ndarray], dict], *, name: str, multiple: int = 1,
               bucket: int | None = 64, info: dict | None = None):
    """Low-level constructor.

    Args:
      predict: `predict(images (1, H, W, 3) float32, masks (1, H, W, 1) float32 1 = valid) -> dict` with
        'image' (1, H, W, 3) in [0, 1] and optionally 'edge' (1, H, W, 1); H, W are multiples of
        `lcm(multiple, bucket)`.
      name: method name (a task name or one of `baselines.METHODS`).
      multiple: the model's required size multiple (1 = any size, no padding).
      bucket: pad sides up to multiples of `lcm(bucket, multiple)` so sizes share compilations; None
        pads only to `multiple`.
      info: metadata (`jaxinpaint.predictor.Loaded.info` for a model) exposed as `self.info`.
    """
    if multiple < 1 or (bucket is not None and bucket < 1):
      raise ValueError(f'multiple and bucket must be positive, got multiple={multiple}, bucket={bucket}')
    self._predict = predict
    self.name = name
    self.multiple = int(multiple)
    self.bucket = bucket
    self.info = dict(info or {})
    self._lock = threading.Lock()
    self._traces = 0

  # ------------------------------------------------------------------------------- constructors
  @classmethod
  def from_checkpoint(cls, path: str | os.PathLike, *, model: str | None = None, bucket: int | None = 64) -> Inpainter:
    """Loads a trained model from a workdir, its `checkpoints/` dir or one `checkpoints/<step>` dir.

    Args:
      path: checkpoint location (the latest step is used for a workdir), or any source
        `jaxinpaint.predictor.load` resolves.
      model: expected task name (e.g. 'pconv'); a model of another kind raises ValueError.
      bucket: shape-bucket granularity in pixels (see the module docstring).

    Raises:
      FileNotFoundError: no checkpoint at `path`.
      ValueError: the checkpoint is not a jaxinpaint checkpoint, or not of kind `model`.
    """
    return cls._from_loaded(predictor.load(path, model=model), bucket=bucket)

  @classmethod
  def from_pretrained(cls, name: str = pretrained.DEFAULT, *, bucket: int | None = 64) -> Inpainter:
    """A model shipped with the package, by name (`jaxinpaint.pretrained.names()`; its card:
    `jaxinpaint.pretrained.card(name)`), or the path of a .npz written by `python -m jaxinpaint.pretrained export`.

    Raises:
      FileNotFoundError: an unknown name (the message lists the shipped ones) or a missing file.
    """
    return cls._from_loaded(predictor.from_pretrained(name), bucket=bucket)

  @classmethod
  def _from_loaded(cls, loaded: predictor.Loaded, *, bucket: int | None) -> Inpainter:
    inpainter: Inpainter

    def count_trace():
      inpainter._traces += 1  # runs once per compilation (jit traces each new shape once)

    jitted = predictor.jit_predict(loaded.task, on_trace=count_trace)

    def predict(images, masks):
      out = jitted(loaded.state, images, masks)
      return {k: np.asarray(v) for k, v in out.items()}

    inpainter = cls(predict, name=loaded.info['model'], multiple=loaded.info['required_multiple'], bucket=bucket,
                    info=loaded.info)
    return inpainter

  @classmethod
  def from_workdir(cls, workdir: str | os.PathLike, *, model: str | None = None, bucket: int | None = 64) -> Inpainter:
    """Latest checkpoint of a training workdir (`python train.py ... --workdir DIR`); see `from_checkpoint`."""
    return cls.from_checkpoint(workdir, model=model, bucket=bucket)

  @classmethod
  def from_method(cls, method: str, **kwargs) -> Inpainter:
    """A classical baseline: 'telea', 'ns' (Navier-Stokes) or 'patchmatch' (`jaxinpaint.baselines`).

    Keyword arguments go to the baseline (`radius`, `patch_size`, `seed`). These run at the native image
    size (no padding).

    Raises:
      ValueError: unknown method. ImportError: patchmatch without pypatchmatch installed.
    """
    if method not in baselines.METHODS:
      raise ValueError(f'method must be one of {", ".join(baselines.METHODS)}, got {method!r}')
    baseline = baselines.get_predictor(method, **kwargs)
    return cls(lambda images, masks: {'image': baseline(images, masks)}, name=method, multiple=1, bucket=None)

  # ------------------------------------------------------------------------------------- calls
  @property
  def is_model(self) -> bool:
    """True for trained networks (padded to shape buckets), False for classical methods."""
    return self.name not in baselines.METHODS

  @property
  def predicts_edges(self) -> bool:
    """True when results carry the edge map the model conditioned on (`InpaintResult.edge`)."""
    return bool(self.info.get('predicts_edges'))

  @property
  def num_compilations(self) -> int:
    """How many times the network was traced (one per distinct padded shape); 0 for classical methods."""
    return self._traces

  def padded_shape(self, height: int, width: int) -> tuple[int, int]:
    """The (H, W) the network runs at for an image of this size (its shape bucket)."""
    if not self.is_model:
      return height, width
    step = self.multiple if self.bucket is None else math.lcm(self.multiple, int(self.bucket))
    return _round_up(height, step), _round_up(width, step)

  def __call__(self, image, mask, *, hole_value: int = 255, resize_mask: bool = False):
    """Fills the holes of `image`; returns an image of the same type, dtype and size (see `inpaint`)."""
    return self.inpaint(image, mask, hole_value=hole_value, resize_mask=resize_mask).image

  def inpaint(self, image, mask, *, hole_value: int = 255, resize_mask: bool = False) -> InpaintResult:
    """Fills the holes of one image.

    Args:
      image: PIL image (any mode, used as RGB), uint8 (H, W, 3) array, or float (H, W, 3) array in [0, 1].
      mask: the holes, by the module's mask rule (bool True = hole; otherwise `hole_value` says which
        colour marks holes).
      hole_value: 255 (white = hole, default) or 0 (black = hole).
      resize_mask: resize a differently sized mask nearest-neighbour (with a warning) instead of raising.

    Returns:
      `InpaintResult(image, edge, hole)`; `image` has the input's type and size, and every known pixel is
      bit-identical to the input. A mask without holes returns a copy of the input.

    Raises:
      ValueError: bad image or mask, size mismatch, or a mask that leaves no known pixel.
    """
    x, kind, original = _image_to_float(image)
    h, w = x.shape[:2]
    hole = hole_mask(mask, hole_value=hole_value, shape=(h, w), resize=resize_mask)
    if hole.all():
      raise ValueError('mask: every pixel is a hole; leave some known pixels for the method to fill from')
    edge = None
    if not hole.any():
      filled = x
    else:
      valid = (~hole).astype(np.float32)
      ph, pw = self.padded_shape(h, w)
      # Reflect padding (bottom/right) continues the image and its holes naturally; the padding is cropped.
      pad = ((0, ph - h), (0, pw - w))
      xp = np.pad(x * valid[..., None], pad + ((0, 0),), mode='reflect')
      mp = np.pad(valid, pad, mode='reflect')
      with self._lock:
        out = self._predict(xp[None], mp[None, ..., None])
      filled = np.clip(np.asarray(out['image'], np.float32)[0, :h, :w], 0.0, 1.0)
      if out.get('edge') is not None:
        edge = np.asarray(out['edge'], np.float32)[0, :h, :w, 0]
    return InpaintResult(image=_composite(original, filled, hole, kind), edge=edge, hole=hole)


def _composite(original, filled: np.ndarray, hole: np.ndarray, kind: str):
  """Known pixels from `original` (exact, its own dtype), hole pixels from `filled` (float [0, 1])."""
  if kind in ('pil', 'uint8'):
    fill = np.clip(np.rint(filled * 255.0), 0, 255).astype(np.uint8)
    out = np.where(hole[..., None], fill, original)
    return Image.fromarray(out) if kind == 'pil' else out
  return np.where(hole[..., None], filled.astype(original.dtype), original)


# ---------------------------------------------------------------------------------------------- CLI

def _list_images(folder: pathlib.Path) -> list[pathlib.Path]:
  return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in masks_lib.IMAGE_EXTENSIONS)


def _pairs(image: pathlib.Path, mask: pathlib.Path, out: pathlib.Path) -> list[tuple[pathlib.Path, pathlib.Path, pathlib.Path]]:
  """(image, mask, output) triples; folders are paired by file name stem (extensions may differ)."""
  if not image.exists():
    raise FileNotFoundError(f'--image: no such file or directory: {image}')
  if not mask.exists():
    raise FileNotFoundError(f'--mask: no such file or directory: {mask}')
  if image.is_file():
    if not mask.is_file():
      raise ValueError(f'--image is a file but --mask {mask} is a directory; pass one mask file')
    if out.is_dir():
      out = out / (image.stem + '.png')
    return [(image, mask, out)]
  if not mask.is_dir():
    raise ValueError(f'--image is a directory but --mask {mask} is a file; pass a directory of masks '
                     'with the same file names')
  if out.exists() and not out.is_dir():
    raise ValueError(f'--out {out} is a file; with an image directory --out must be a directory')
  images = _list_images(image)
  if not images:
    raise FileNotFoundError(f'--image: no images ({", ".join(masks_lib.IMAGE_EXTENSIONS)}) in {image}')
  masks_by_stem: dict[str, pathlib.Path] = {}
  for m in _list_images(mask):
    masks_by_stem.setdefault(m.stem, m)
  missing = [p.name for p in images if p.stem not in masks_by_stem]
  if missing:
    shown = ', '.join(missing[:5]) + (f' and {len(missing) - 5} more' if len(missing) > 5 else '')
    raise FileNotFoundError(f'--mask: no mask with the same file name (stem) in {mask} for: {shown}')
  return [(p, masks_by_stem[p.stem], out / (p.stem + '.png')) for p in images]


def cli_parser(module: str, *, description: str, epilog: str) -> argparse.ArgumentParser:
  """The parser of the command `python -m jaxinpaint.<module>`; its epilog is printed as written (examples)."""
  return argparse.ArgumentParser(prog=f'python -m jaxinpaint.{module}', description=description, epilog=epilog,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)


def _parser() -> argparse.ArgumentParser:
  parser = cli_parser(
      'inpaint',
      description='Fill the holes of images with a trained PConv / EdgeConnect model or a classical method. '
                  'Known pixels are returned unchanged; any image size works (padded internally).',
      epilog='Examples:\n'
             '  python -m jaxinpaint.inpaint --image photo.png --mask holes.png --out out.png   (shipped model)\n'
             '  python -m jaxinpaint.inpaint --workdir runs/quickstart --image photo.png --mask holes.png --out out.png\n'
             '  python -m jaxinpaint.inpaint --method telea --image images/ --mask masks/ --out results/\n'
             'Folders: each image is paired with the mask of the same file name (extension may differ); '
             'results are written as PNG under --out.\n'
             'No model yet? python train.py --config configs/quickstart.py --workdir runs/quickstart')
  source = parser.add_mutually_exclusive_group()
  source.add_argument('--workdir', help='training workdir (latest checkpoint) or a checkpoints/<step> directory')
  source.add_argument('--checkpoint', help='alias of --workdir')
  source.add_argument('--pretrained', metavar='NAME', help='a model shipped with the package (python -m '
                      f'jaxinpaint.pretrained list); the default without any model flag is {pretrained.DEFAULT}')
  source.add_argument('--method', choices=baselines.METHODS, help='classical method instead of a trained model')
  parser.add_argument('--image', required=True, help='input image file, or a directory of images')
  parser.add_argument('--mask', required=True, help='mask file, or a directory of masks named like the images')
  parser.add_argument('--out', required=True, help='output file (with --image FILE) or directory')
  parser.add_argument('--mask-hole-value', type=int, choices=(255, 0), default=255,
                      help='which mask colour marks holes: 255 = white (default; NVIDIA/EdgeConnect masks), 0 = black')
  parser.add_argument('--resize-mask', action='store_true',
                      help='resize a mask of another size to its image (nearest neighbour, with a warning) '
                           'instead of failing')
  parser.add_argument('--edges-out', help='models that predict edges (EdgeConnect) only: directory to also write '
                      'the edge maps to')
  parser.add_argument('--bucket', type=int, default=64, help='shape-bucket size in pixels (default 64)')
  parser.add_argument('--max-megapixels', type=float, default=None,
                      help=f'refuse larger images (default {MAX_MODEL_PIXELS / 1e6:g} for trained models, '
                           f'{MAX_PIXELS / 1e6:g} for the classical methods; memory grows with the image)')
  return parser


_COLOUR = {255: 'white', 0: 'black'}


def _read_pair(image_path: pathlib.Path, mask_path: pathlib.Path, *, hole_value: int, resize_mask: bool,
               max_pixels: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
  """Decodes and checks one CLI pair: (uint8 image, bool hole map, warning lines); ValueError naming the files."""
  image = load_image(image_path, max_pixels=max_pixels)
  try:
    hole = masks_lib.load(mask_path, hole_value=hole_value) < 0.5  # 1 = valid -> True = hole
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter('always')
      hole = hole_mask(hole, shape=image.shape[:2], resize=resize_mask)
  except ValueError as e:
    raise ValueError(f'{image_path} / {mask_path}: {e}') from None
  other = 255 - hole_value
  if not hole.any():  # the demo refuses the same input: nothing to fill
    raise ValueError(f'the mask {mask_path} is empty: no pixel is {_COLOUR[hole_value]} (= hole with '
                     f'--mask-hole-value {hole_value}); if its holes are {_COLOUR[other]}, pass '
                     f'--mask-hole-value {other}')
  if hole.all():
    raise ValueError(f'the mask {mask_path} covers the whole image ({_COLOUR[hole_value]} = hole with '
                     f'--mask-hole-value {hole_value}); leave some known pixels to fill from, or, if its holes are '
                     f'{_COLOUR[other]}, pass --mask-hole-value {other}')
  return image, hole, [f'{mask_path.name}: {w.message}' for w in caught]


def _check_outputs(triples, edges_out: str | None) -> None:
  """Every output path: a known image type, writable, and none of the inputs (which are never overwritten)."""
  inputs = {p.resolve() for image, mask, _ in triples for p in (image, mask)}
  extensions = Image.registered_extensions()
  for _, _, out in triples:
    if out.resolve() in inputs:
      raise ValueError(f'--out {out} is one of the input files; choose another path (inputs are never overwritten)')
    if out.suffix.lower() not in extensions or extensions[out.suffix.lower()] not in Image.SAVE:
      raise ValueError(f'--out {out}: unknown image file extension {out.suffix!r}; use .png (lossless)')
    if out.is_dir():
      raise ValueError(f'--out {out} is a directory; pass a file name such as {out / "filled.png"}')
  for directory in {out.parent for _, _, out in triples} | ({pathlib.Path(edges_out)} if edges_out else set()):
    existing = next(p for p in (directory, *directory.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
      raise ValueError(f'cannot write to {directory}: {existing} is not a writable directory')


def main(argv: list[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  prog = 'jaxinpaint.inpaint'
  max_megapixels = args.max_megapixels or (MAX_PIXELS if args.method else MAX_MODEL_PIXELS) / 1e6
  read = dict(hole_value=args.mask_hole_value, resize_mask=args.resize_mask, max_pixels=int(max_megapixels * 1e6))
  try:
    # Every input is checked before a model loads or anything compiles; nothing is written until then.
    triples = _pairs(pathlib.Path(args.image), pathlib.Path(args.mask), pathlib.Path(args.out))
    _check_outputs(triples, args.edges_out)
    for image_path, mask_path, _ in triples:
      for line in _read_pair(image_path, mask_path, **read)[2]:
        print(f'{prog}: warning: {line}', file=sys.stderr)
    if args.method:
      inpainter = Inpainter.from_method(args.method)
    else:
      from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
      absl_logging.set_verbosity(absl_logging.ERROR)  # orbax's read-only-manager notices are not for users
      if args.workdir or args.checkpoint:
        inpainter = Inpainter.from_checkpoint(args.workdir or args.checkpoint, bucket=args.bucket)
      else:
        inpainter = Inpainter.from_pretrained(args.pretrained or pretrained.DEFAULT, bucket=args.bucket)
      print(f'{prog}: loaded {inpainter.name} step {inpainter.info["step"]} from {inpainter.info["checkpoint"]}',
            file=sys.stderr)
    if args.edges_out and not inpainter.predicts_edges:
      raise ValueError(f'--edges-out needs an EdgeConnect checkpoint (a model that predicts edge maps); '
                       f'{inpainter.name!r} predicts none')
    for image_path, mask_path, out_path in triples:
      image, hole, _ = _read_pair(image_path, mask_path, **read)  # decoded again: memory stays one pair
      try:
        result = inpainter.inpaint(image, hole)
      except ValueError as e:
        raise ValueError(f'{image_path} / {mask_path}: {e}') from None
      out_path.parent.mkdir(parents=True, exist_ok=True)
      if out_path.suffix.lower() in _LOSSY_EXTENSIONS:
        print(f'{prog}: warning: {out_path.suffix} is lossy; known pixels will not be exact (use .png)',
              file=sys.stderr)
      Image.fromarray(result.image).save(out_path)
      if args.edges_out and result.edge is not None:
        edge_dir = pathlib.Path(args.edges_out)
        edge_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.rint(result.edge * 255).astype(np.uint8)).save(edge_dir / (image_path.stem + '.png'))
      print(out_path)
  except (FileNotFoundError, ValueError, ImportError) as e:
    print(f'{prog}: error: {" ".join(str(e).split())}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
