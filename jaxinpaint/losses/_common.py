"""Pieces the loss families share: input checks, float promotion, feature-map pairing, the batched
feature calls, and the Gram matrix of both papers' style losses.

Shape checks run on static shapes, so under `jax.jit` they cost nothing at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Union

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
ArrayLike = Union[jax.Array, np.ndarray]
Features = Union[Mapping[str, ArrayLike], Sequence[ArrayLike]]
FeatureFn = Callable[[Array], Mapping[str, Array]]


def as_float(x: ArrayLike) -> Array:
  """At least float32, so bfloat16/float16 inputs do not lose the loss's precision."""
  x = jnp.asarray(x)
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def check_images(output: ArrayLike, target: ArrayLike, mask: ArrayLike | None = None,
                  *, names: tuple[str, str] = ("output", "target")) -> None:
  out_shape, gt_shape = np.shape(output), np.shape(target)
  if len(out_shape) != 4:
    raise ValueError(f"`{names[0]}` must be an NHWC batch (rank 4); got shape {out_shape}.")
  if out_shape != gt_shape:
    raise ValueError(f"`{names[0]}` and `{names[1]}` must have the same shape; got {out_shape} and "
                     f"{gt_shape}.")
  if mask is not None:
    check_mask(mask, out_shape)


def check_mask(mask: ArrayLike, image_shape: tuple[int, ...]) -> None:
  m_shape = np.shape(mask)
  n, h, w, c = image_shape
  if m_shape not in ((n, h, w, 1), (n, h, w, c)):
    raise ValueError(f"`mask` must have shape (N, H, W, 1) = {(n, h, w, 1)} or the image shape "
                     f"{tuple(image_shape)} (1 = valid, 0 = hole); got {m_shape}.")


def _layer_list(features: Features, layers: Sequence[str] | None, name: str) -> list[Array]:
  """Selects feature maps from a dict (by `layers`, default all keys in order) or a sequence."""
  if isinstance(features, Mapping):
    keys = list(features.keys()) if layers is None else list(layers)
    missing = [k for k in keys if k not in features]
    if missing:
      raise ValueError(f"`{name}` has no layer(s) {missing}; available: {list(features.keys())}.")
    return [jnp.asarray(features[k]) for k in keys]
  if isinstance(features, (list, tuple)):
    if layers is not None:
      raise ValueError(f"`layers` selects by name, so `{name}` must be a dict; got a {type(features)}.")
    return [jnp.asarray(f) for f in features]
  raise ValueError(f"`{name}` must be a dict name -> feature map or a list of feature maps; got "
                   f"{type(features)}.")


def paired_layers(a: Features, b: Features, layers: Sequence[str] | None,
                   names: tuple[str, str]) -> list[tuple[Array, Array]]:
  if layers is None and isinstance(a, Mapping):
    layers = tuple(a.keys())  # pair dicts by name, never by insertion order
  fa, fb = _layer_list(a, layers, names[0]), _layer_list(b, layers, names[1])
  if len(fa) != len(fb):
    raise ValueError(f"`{names[0]}` has {len(fa)} feature maps but `{names[1]}` has {len(fb)}.")
  for i, (x, y) in enumerate(zip(fa, fb)):
    if x.shape != y.shape:
      raise ValueError(f"feature map {i} of `{names[0]}` has shape {x.shape} but that of `{names[1]}` "
                       f"has {y.shape}.")
  return list(zip(fa, fb))


def l1_mean(x: Array, y: Array) -> Array:
  """torch.nn.L1Loss() (reduction='mean'): mean |x - y| over every element."""
  return jnp.mean(jnp.abs(as_float(x) - as_float(y)))


def batched_features(feature_fn: FeatureFn, images: Sequence[Array], what: str, *,
                      constant: Sequence[Array] = ()) -> list[dict[str, Array]]:
  """Features of `images` then of `constant`, one list entry per image, in that order.

  `images` (the ones gradients flow through) go through `feature_fn` in one call on their batch
  concatenation; `constant` (targets, no gradient) in a second call on their `stop_gradient`. One call per
  group is cheaper than one per image (larger matmuls per layer), but the groups must stay apart: a
  convolution's backward pass computes every batch row even where the cotangent is zero, so a target in
  the differentiated call would cost a full extra VGG backward pass (timings in bench/RESULTS.md).
  `feature_fn` treats batch elements independently, so every split equals the features of a separate call.
  """
  groups = [list(images)] + ([[jax.lax.stop_gradient(c) for c in constant]] if constant else [])
  out: list[dict[str, Array]] = []
  for group in groups:
    n = group[0].shape[0]
    feats = feature_fn(jnp.concatenate(group, axis=0) if len(group) > 1 else group[0])
    if not isinstance(feats, Mapping):
      raise ValueError(f"`feature_fn` must return a dict name -> (N, h, w, c) feature map ({what}); got "
                       f"{type(feats)}.")
    split: list[dict[str, Array]] = [{} for _ in group]
    for k, v in feats.items():
      if v.ndim < 1 or v.shape[0] != n * len(group):
        raise ValueError(f"`feature_fn` output {k!r} has shape {v.shape}; expected a leading batch "
                         f"dimension of {n * len(group)} (its input's batch size).")
      for i in range(len(group)):
        split[i][k] = v[i * n:(i + 1) * n]
    out.extend(split)
  return out


def gram_matrix(f: ArrayLike) -> Array:
  r"""Normalised Gram (auto-correlation) matrix of NHWC feature maps.

  With Psi the (H W) x C matrix of one image's features,

  .. math:: G = K \, \Psi^\top \Psi, \quad K = \frac{1}{C H W}

  i.e. ``G[n, c, d] = sum_{h,w} f[n,h,w,c] f[n,h,w,d] / (C*H*W)``. This is [Liu2018]'s K_p Psi^T Psi and
  equals EdgeConnect's ``compute_gram`` (``f f^T / (h*w*ch)``) and NVIDIA's ``gram_matrix``. Computed in
  at least float32 at the highest matmul precision (TPU/GPU default precisions would round the sums).

  Args:
    f: feature maps, (N, H, W, C).

  Returns:
    (N, C, C) Gram matrices.

  References:
    [Liu2018] K_p (Psi_p)^T (Psi_p) in L_style_out / L_style_comp; knazeri/edge-connect
    ``StyleLoss.compute_gram``.
  """
  shape = np.shape(f)
  if len(shape) != 4:
    raise ValueError(f"`f` must be NHWC feature maps (rank 4); got shape {shape}.")
  _, h, w, c = shape
  f = as_float(f)
  g = jnp.einsum("nhwc,nhwd->ncd", f, f, precision=jax.lax.Precision.HIGHEST)
  return g / (c * h * w)
