"""Porting a PyTorch ``state_dict`` into Flax variables, with every parameter validated.

A network declares what it needs as a table ``{torch name: ParamSpec}`` (the model modules build
theirs: `jaxinpaint.models.vgg.param_specs`, `jaxinpaint.models.inception.param_specs`,
`jaxinpaint.models.edgeconnect.param_specs`); `port_state_dict` checks a state_dict against it (missing,
mis-shaped, non-floating, non-finite and unexpected parameters, each error naming the file, the parameter
and the expected shape) and converts torch layouts to Flax ones. This module knows the file-level
naming of the pretrained feature networks (`detect_arch`), not the networks themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from jaxinpaint.weights import formats

# The architectures `detect_arch` recognises from parameter names.
ARCHS = ("vgg16", "vgg19", "inception_fid")
# Classifier heads and training-only buffers that feature extraction never uses.
_IGNORED_PREFIXES = ("classifier.", "pre_logits.", "head.", "fc.", "AuxLogits.")
_IGNORED_SUFFIXES = (".num_batches_tracked",)


class ParamSpec(NamedTuple):
  """Where one torch parameter goes.

  Attributes:
    path: keys of the Flax variable in the nested dict `port_state_dict` returns (a collection first
      when the table covers several collections, e.g. ``('params', 'enc1', 'kernel')``).
    shape: the Flax shape; a 4-D kernel is HWIO, (kh, kw, C_in, C_out).
    transposed: the torch tensor is a ``ConvTranspose2d`` weight, (C_in, C_out, kh, kw), rather than a
      ``Conv2d`` weight, (C_out, C_in, kh, kw).
  """
  path: tuple[str, ...]
  shape: tuple[int, ...]
  transposed: bool = False


def torch_shape(spec: ParamSpec) -> tuple[int, ...]:
  """Torch layout of a Flax shape: kernels HWIO -> OIHW (IOHW when transposed), others unchanged."""
  if len(spec.shape) == 4:
    h, w, i, o = spec.shape
    return (i, o, h, w) if spec.transposed else (o, i, h, w)
  return tuple(spec.shape)


def _where(source: formats.PathLike | None) -> str:
  return "state_dict" if source is None else f"weights file {str(source)!r}"


def detect_arch(state_dict: Mapping[str, np.ndarray], *,
                source: formats.PathLike | None = None) -> str:
  """Which network a state_dict belongs to: ``'vgg16'``, ``'vgg19'`` or ``'inception_fid'``.

  An ``__arch__`` entry (our ``.npz``) wins. Otherwise VGG depth is the number of ``features.N.weight``
  tensors of rank 4 (13 for VGG-16, 16 for VGG-19), as in torchvision's ``cfgs``; the FID Inception has
  ``Conv2d_1a_3x3.conv.weight`` and a 1008-way ``fc`` without ``AuxLogits`` (torchvision's ImageNet
  Inception-v3, ``'inception_torchvision'``, has the same trunk but other weights).

  Raises:
    ValueError: the keys match none of them (the message names ``source``).
  """
  recorded = formats.file_arch(state_dict)
  if recorded is not None:
    return recorded
  where = _where(source)
  keys = [k for k in state_dict if k != formats.ARCH_KEY]
  if any(k.startswith("Conv2d_1a_3x3.") for k in keys):
    fc = state_dict.get("fc.weight")
    if any(k.startswith("AuxLogits.") for k in keys) or (fc is not None and np.shape(fc)[0] != 1008):
      return "inception_torchvision"
    return "inception_fid"
  conv = [k for k in keys if k.startswith("features.") and k.endswith(".weight")
          and np.ndim(state_dict[k]) == 4]
  if any(k.startswith("features.") and k.endswith(".running_mean") for k in keys):
    raise ValueError(f"{where} is a VGG with batch normalisation (vgg*_bn); the perceptual losses "
                     "use plain VGG-16/19 (torchvision's vgg16-397923af.pth / vgg19-dcbb9e9d.pth)")
  if len(conv) == 13:
    return "vgg16"
  if len(conv) == 16:
    return "vgg19"
  if conv:
    raise ValueError(f"{where} has {len(conv)} convolution weights under 'features.'; expected 13 "
                     "(VGG-16) or 16 (VGG-19)")
  sample = ", ".join(sorted(keys)[:5])
  raise ValueError(f"{where} is not a torchvision VGG-16/19 or pytorch-fid Inception-v3 state_dict "
                   f"(first keys: {sample})")


def describe_arch(arch: str) -> str:
  """A readable name for an architecture of `detect_arch` (other names are returned unchanged)."""
  return {"vgg16": "VGG-16", "vgg19": "VGG-19", "inception_fid": "pytorch-fid Inception-v3",
          "inception_torchvision": "torchvision's ImageNet Inception-v3 (not the FID network; "
                                   "FID needs pt_inception-2015-12-05-6726825d.pth)"}.get(arch, arch)


def check_arch(state_dict: Mapping[str, np.ndarray], expected: str, *,
               source: formats.PathLike | None) -> None:
  """Raises ValueError when the state_dict is for another network than ``expected``."""
  found = detect_arch(state_dict, source=source)
  if found != expected:
    hint = ""
    if {found, expected} == {"vgg16", "vgg19"}:
      hint = f" (pass depth={found[3:]} to use it, or give a {describe_arch(expected)} file)"
    raise ValueError(f"{_where(source)} holds {describe_arch(found)} weights, expected "
                     f"{describe_arch(expected)}{hint}")


def port_state_dict(state_dict: Mapping[str, np.ndarray], specs: Mapping[str, ParamSpec], *,
                    source: formats.PathLike | None, arch: str, check: bool = True) -> dict[str, Any]:
  """Validates a torch state_dict against a parameter table and converts it into nested Flax variables.

  Kernels are permuted to HWIO: ``Conv2d`` weights OIHW -> HWIO (``w.permute(2, 3, 1, 0)``),
  ``ConvTranspose2d`` weights IOHW -> HWIO (``w.permute(2, 3, 0, 1)``); other tensors are copied.

  Args:
    state_dict: from `jaxinpaint.weights.load_state_dict` or `as_numpy_state_dict`.
    specs: ``{torch name: ParamSpec}`` for every parameter the network needs.
    source: the file name for error messages (None: an in-memory state_dict).
    arch: the network's name: an architecture of `detect_arch`, or any description.
    check: first check with `check_arch` that the file holds ``arch`` (for the pretrained feature
      networks; off for networks `detect_arch` does not know).

  Returns:
    The nested variables given by the specs' paths, as new float32 numpy arrays (never views of
    ``state_dict``'s arrays, which may share memory with live torch tensors).

  Raises:
    ValueError: wrong architecture, missing parameter, wrong shape, non-floating or non-finite values,
      or unexpected extra parameters (classifier heads and ``num_batches_tracked`` are ignored); each
      names the file, the parameter and the expected shape.
  """
  if check:
    check_arch(state_dict, arch, source=source)
  where, network = _where(source), describe_arch(arch)
  out: dict[str, Any] = {}
  for name, spec in specs.items():
    expected = torch_shape(spec)
    if name not in state_dict:
      raise ValueError(f"{where} is missing parameter {name!r} (expected shape {expected}) for {network}")
    value = np.asarray(state_dict[name])
    if value.shape != expected:
      raise ValueError(f"{where}: parameter {name!r} has shape {value.shape}, expected {expected} for "
                       f"{network}")
    if value.dtype.kind != "f":
      raise ValueError(f"{where}: parameter {name!r} has dtype {value.dtype}, expected floating point")
    if not np.all(np.isfinite(value)):
      raise ValueError(f"{where}: parameter {name!r} (shape {expected}) contains NaN or infinite values "
                       "(corrupt file?)")
    if value.ndim == 4:
      value = value.transpose((2, 3, 0, 1) if spec.transposed else (2, 3, 1, 0))
    node = out
    for part in spec.path[:-1]:
      node = node.setdefault(part, {})
    node[spec.path[-1]] = np.array(value, dtype=np.float32, order="C")  # always a copy
  extra = sorted(k for k in state_dict if k not in specs and k != formats.ARCH_KEY and not _ignored(k))
  if extra:
    raise ValueError(f"{where} has unexpected parameters for {network}: {', '.join(extra[:5])}"
                     f"{' ...' if len(extra) > 5 else ''}")
  return out


def _ignored(name: str) -> bool:
  return name.startswith(_IGNORED_PREFIXES) or name.endswith(_IGNORED_SUFFIXES)
