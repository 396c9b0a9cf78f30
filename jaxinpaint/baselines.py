"""Classical inpainting baselines the learned models are compared with (as in the papers' tables).

* Telea 2004 fast-marching inpainting and Bertalmio et al. 2001 Navier-Stokes inpainting, both through
  OpenCV's `cv2.inpaint` (diffusion-based, the "previous methods" of Liu et al. 2018 / Nazeri et al. 2019);
* PatchMatch (Barnes et al. 2009) through the optional `pypatchmatch` package (`pip install pypatchmatch`,
  or this project's `[patchmatch]` extra); it runs offline.

Every baseline is a predictor with the evaluator's signature `predict(images, masks) -> outputs`:
`images` float (N, H, W, 3) in [0, 1], `masks` (N, H, W, 1) with 1 = known, 0 = hole (HWC / HW single
images are accepted too); outputs float32 like `images`. The images are converted to uint8 only at the
OpenCV / PatchMatch boundary (`round(255 x)`), so known pixels come back quantized; the evaluator always
composites, which restores them exactly. Hole pixels are replaced by the mean known colour before the
library call (OpenCV reads unfilled hole pixels at the image border), so a baseline never depends on what
the caller left in the hole.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = [
    "METHODS",
    "LABELS",
    "TELEA_RADIUS",
    "PATCHMATCH_PATCH_SIZE",
    "telea",
    "navier_stokes",
    "patchmatch",
    "get_predictor",
]

# Radius (pixels) of the neighbourhood each filled pixel is computed from, for both OpenCV methods:
# 3 is the value of OpenCV's inpainting tutorial and of the reference comparisons; larger radii blur more.
TELEA_RADIUS = 3
# Radius of PatchMatch's compared patches ((2 * 3 + 1)^2 = 7x7 pixels), the value pypatchmatch's examples
# use; the package default (15) is ~5x slower and worse on the large holes of the NVIDIA test masks.
PATCHMATCH_PATCH_SIZE = 3

# The classical methods by their evaluate.py / inpaint / demo name, with a human label.
LABELS = {"telea": "Telea (fast marching)", "ns": "Navier-Stokes", "patchmatch": "PatchMatch"}
METHODS = tuple(LABELS)

Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _prepare(images, masks, fn: str) -> tuple[np.ndarray, np.ndarray, bool]:
  """Validates inputs; returns uint8 NHWC images, uint8 NHW hole masks (255 = hole), single flag."""
  images = np.asarray(images)
  masks = np.asarray(masks)
  single = images.ndim == 3
  if single:
    images = images[None]
    masks = masks[None]
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f"{fn}: images must be (N, H, W, 3) RGB (or (H, W, 3)), got shape {images.shape}")
  if masks.ndim == 4 and masks.shape[-1] == 1:
    masks = masks[..., 0]
  if masks.shape != images.shape[:3]:
    raise ValueError(f"{fn}: masks must be (N, H, W, 1) matching images {images.shape}, got shape {masks.shape}")
  known = masks >= 0.5
  # OpenCV's Telea/NS read not-yet-filled hole pixels next to the image border (clamped gradient
  # stencils), so whatever the caller left in the hole would leak into the result -- the ground truth,
  # if it was not erased. Pre-filling the hole with the mean known colour makes every baseline a function
  # of the known pixels only.
  images = images.astype(np.float64)
  count = np.maximum(known.sum(axis=(1, 2)), 1)[:, None]
  mean = (images * known[..., None]).sum(axis=(1, 2)) / count
  images = np.where(known[..., None], images, mean[:, None, None, :])
  # uint8 only at the library boundary: OpenCV and PatchMatch work on 8-bit images.
  images_u8 = np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)
  holes_u8 = np.where(known, 0, 255).astype(np.uint8)
  return images_u8, holes_u8, single


def _finish(out_u8: np.ndarray, single: bool) -> np.ndarray:
  out = out_u8.astype(np.float32) / 255.0
  return out[0] if single else out


def _opencv(images, masks, *, flag_name: str, radius: int, fn: str) -> np.ndarray:
  import cv2  # pylint: disable=g-import-not-at-top

  images_u8, holes_u8, single = _prepare(images, masks, fn)
  flag = getattr(cv2, flag_name)
  out = np.stack([cv2.inpaint(img, hole, float(radius), flag) for img, hole in zip(images_u8, holes_u8)])
  return _finish(out, single)


# The Args/Returns of both OpenCV methods (they take the same arguments and differ only in the cv2 flag).
_OPENCV_ARGS = """

  Args:
    images: float (N, H, W, 3) in [0, 1] (or one (H, W, 3) image).
    masks: (N, H, W, 1) or (N, H, W), 1 = known, 0 = hole.
    radius: neighbourhood radius in pixels (`inpaintRadius`).

  Returns:
    float32 images like `images`, holes filled.
  """


def _opencv_args_doc(fn):
  """Appends `_OPENCV_ARGS` to the one-line docstring of an OpenCV method (none under `python -OO`)."""
  if fn.__doc__ is not None:
    fn.__doc__ += _OPENCV_ARGS
  return fn


@_opencv_args_doc
def telea(images, masks, *, radius: int = TELEA_RADIUS) -> np.ndarray:
  """Fast-marching inpainting (Telea 2004) via `cv2.inpaint(..., cv2.INPAINT_TELEA)`."""
  return _opencv(images, masks, flag_name="INPAINT_TELEA", radius=radius, fn="telea")


@_opencv_args_doc
def navier_stokes(images, masks, *, radius: int = TELEA_RADIUS) -> np.ndarray:
  """Navier-Stokes based inpainting (Bertalmio, Bertozzi & Sapiro 2001) via `cv2.INPAINT_NS`."""
  return _opencv(images, masks, flag_name="INPAINT_NS", radius=radius, fn="navier_stokes")


def _import_patchmatch():
  try:
    import patchmatch as pm  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(
        "the PatchMatch baseline needs the optional 'pypatchmatch' package: "
        "pip install pypatchmatch  (or pip install -e '.[patchmatch]')") from e
  if not getattr(pm, "patchmatch_available", True):
    raise ImportError("pypatchmatch is installed but its native library failed to load; "
                      "reinstall it with pip install --force-reinstall pypatchmatch")
  return pm


def patchmatch(images, masks, *, patch_size: int = PATCHMATCH_PATCH_SIZE, seed: int = 0) -> np.ndarray:
  """PatchMatch inpainting (Barnes et al. 2009) via pypatchmatch's `patchmatch.inpaint`.

  Args:
    images: float (N, H, W, 3) in [0, 1] (or one (H, W, 3) image).
    masks: (N, H, W, 1) or (N, H, W), 1 = known, 0 = hole.
    patch_size: patch radius; patches span (2 * patch_size + 1)^2 pixels.
    seed: seed of the randomized search, reset before every image so results are reproducible.

  Returns:
    float32 images like `images`, holes filled.

  Raises:
    ImportError: pypatchmatch is not installed (the message says how to install it).
  """
  pm = _import_patchmatch()
  images_u8, holes_u8, single = _prepare(images, masks, "patchmatch")
  outs = []
  for img, hole in zip(images_u8, holes_u8):
    pm.set_random_seed(seed)
    outs.append(pm.inpaint(img, hole, patch_size=patch_size))
  return _finish(np.stack(outs), single)


def get_predictor(name: str, **kwargs) -> Predictor:
  """Returns the baseline predictor `predict(images, masks) -> outputs` named `telea`, `ns` or `patchmatch`.

  Keyword arguments are forwarded (`radius` for telea/ns; `patch_size`, `seed` for patchmatch). Asking
  for `patchmatch` without pypatchmatch installed raises ImportError right away, not at the first batch.
  """
  if name == "telea":
    return lambda images, masks: telea(images, masks, **kwargs)
  if name in ("ns", "navier_stokes"):
    return lambda images, masks: navier_stokes(images, masks, **kwargs)
  if name == "patchmatch":
    _import_patchmatch()
    return lambda images, masks: patchmatch(images, masks, **kwargs)
  raise ValueError(f"unknown baseline {name!r}; expected one of {METHODS}")
