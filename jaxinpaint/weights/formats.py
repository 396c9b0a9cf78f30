"""Reading PyTorch ``state_dict`` files, and writing our torch-free ``.npz``.

Three file formats hold the same thing, a ``state_dict`` (parameter name -> array in torch layout):

* ``.pth``/``.pt``/``.bin``: what ``torch.save(model.state_dict())`` writes (torchvision's VGG files,
  pytorch-fid's Inception file). Reading it needs PyTorch, an optional dependency; only plain tensors
  are loaded (``torch.load(weights_only=True)``), never pickled code.
* ``.safetensors``: read with the ``safetensors`` NumPy API, no torch needed. torchvision naming
  (``features.N.weight``) and timm / Hugging Face naming (the same keys plus classifier keys, which the
  porting step ignores) both work.
* ``.npz``: our own format (`save_npz`): torch names and layouts, float32, of exactly the parameters a
  network uses, plus an ``__arch__`` entry; loading it needs neither torch nor safetensors.

Every reader returns ``{name: float32 numpy array}`` with ``module.``/``model.`` prefixes stripped.
"""

from __future__ import annotations

import os
import pathlib
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

PathLike = str | os.PathLike

SUPPORTED_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".npz")
ARCH_KEY = "__arch__"
# DataParallel (``module.``) and timm/Hugging Face (``model.``) wrappers around the real names.
_STRIPPED_PREFIXES = ("module.", "model.")


def load_state_dict(path: PathLike) -> dict[str, np.ndarray]:
  """Reads a state_dict from ``.pth``/``.pt``/``.bin``, ``.safetensors`` or our ``.npz``.

  Args:
    path: the weights file.

  Returns:
    ``{torch parameter name: numpy array in torch layout}``; floating arrays are float32. Classifier
    keys are kept (the porting step ignores them); ``module.``/``model.`` prefixes are stripped. For
    ``.npz`` files written by `save_npz` the ``__arch__`` entry is kept as a 0-d string array.

  Raises:
    FileNotFoundError: ``path`` does not exist.
    ValueError: unsupported suffix, or the file is truncated/corrupt/not a state_dict.
    ImportError: a ``.pth`` file but PyTorch is not installed.
  """
  path = pathlib.Path(path).expanduser()
  if not path.exists():
    raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
  if not path.is_file():
    raise ValueError(f"weights path {str(path)!r} is not a file")
  suffix = path.suffix.lower()
  if suffix in (".pth", ".pt", ".bin"):
    raw = _read_pth(path)
  elif suffix == ".safetensors":
    raw = _read_safetensors(path)
  elif suffix == ".npz":
    raw = _read_npz(path)
  else:
    raise ValueError(f"weights file {str(path)!r}: unsupported suffix {suffix!r}; expected {EXPECTED_FORMATS}")
  return _normalise_keys(raw, f"weights file {str(path)!r}")


def as_numpy_state_dict(state_dict: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """An in-memory state_dict (torch tensors or arrays, e.g. ``model.state_dict()``) as `load_state_dict`
  returns it: numpy arrays, floats in float32, ``module.``/``model.`` prefixes stripped.

  Torch tensors are read without importing torch (``.detach().cpu().numpy()``); the arrays may share
  memory with them, which `jaxinpaint.weights.port_state_dict` never passes on (it copies).
  """
  return _normalise_keys({str(k): _tensor_to_numpy(v) for k, v in state_dict.items()}, "state_dict")


def _tensor_to_numpy(value: Any) -> np.ndarray:
  if hasattr(value, "detach"):  # a torch.Tensor
    value = value.detach().cpu()
    if value.is_floating_point():
      value = value.float()  # bfloat16/float16 have no (or a lossy) numpy path
    return value.numpy()
  return np.asarray(value)


EXPECTED_FORMATS = ("a PyTorch state_dict (.pth/.pt/.bin), a .safetensors file, or an .npz written by "
                    "`python -m jaxinpaint.weights convert`")


def _corrupt(path: pathlib.Path, kind: str, err: BaseException) -> ValueError:
  reason = str(err).splitlines()[0] if str(err).strip() else type(err).__name__
  if "allow_pickle" in reason:  # numpy's advice to unpickle: we never load pickled objects
    reason = "it holds pickled Python objects, which are never loaded"
  return ValueError(f"could not read weights file {str(path)!r} as {kind} (truncated or corrupt "
                    f"download?): {reason}; expected {EXPECTED_FORMATS}")


def _looks_like_torch_save(path: pathlib.Path) -> bool:
  """`torch.save` writes a zip archive (torch >= 1.6) or a pickle stream (protocol 2+ starts with 0x80)."""
  if zipfile.is_zipfile(path):
    return True
  with open(path, "rb") as f:
    return f.read(1) == b"\x80"


def _read_pth(path: pathlib.Path) -> dict[str, np.ndarray]:
  if not _looks_like_torch_save(path):  # checked first: no need to install torch to learn that
    raise _corrupt(path, "a PyTorch .pth file", ValueError("not a zip archive or a pickle stream"))
  try:
    import torch  # pylint: disable=import-outside-toplevel  # optional dependency
  except ImportError as err:
    raise ImportError(
        f"reading {str(path)!r} needs PyTorch (an optional dependency): `pip install torch` (the CPU "
        "build is enough), or convert the file once on a machine that has torch with "
        f"`python -m jaxinpaint.weights convert {path.name} {path.stem}.npz` and use the .npz") from err
  try:
    obj = torch.load(str(path), map_location="cpu", weights_only=True)
  except Exception as err:  # torch raises RuntimeError/UnpicklingError/EOFError/... for bad files.
    if "weights_only" in str(err) or "Unsupported global" in str(err):
      raise ValueError(
          f"weights file {str(path)!r} is a pickled Python object, not a plain state_dict; save "
          "`model.state_dict()` instead (we never unpickle arbitrary code)") from err
    raise _corrupt(path, "a PyTorch .pth file", err) from err
  # Training checkpoints often wrap the weights: {'state_dict': {...}} or {'model': {...}}.
  if isinstance(obj, Mapping):
    for key in ("state_dict", "model", "model_state_dict", "params"):
      if key in obj and isinstance(obj[key], Mapping) and not any(
          isinstance(v, torch.Tensor) for v in obj.values()):
        obj = obj[key]
        break
  if not isinstance(obj, Mapping):
    raise ValueError(f"weights file {str(path)!r} holds a {type(obj).__name__}, expected a state_dict "
                     "(a mapping from parameter names to tensors)")
  # Non-tensor entries (version counters, metadata next to the tensors) are skipped.
  return {str(k): _tensor_to_numpy(v) for k, v in obj.items() if isinstance(v, torch.Tensor)}


def _read_safetensors(path: pathlib.Path) -> dict[str, np.ndarray]:
  from safetensors.numpy import load_file  # pylint: disable=import-outside-toplevel  # only when used
  try:
    return dict(load_file(str(path)))
  except Exception as err:  # SafetensorError, ValueError (bf16 has no numpy dtype), OSError.
    raise _corrupt(path, "a .safetensors file", err) from err


def _read_npz(path: pathlib.Path) -> dict[str, np.ndarray]:
  if not zipfile.is_zipfile(path):  # np.load would try it as a pickle and advise allow_pickle
    raise _corrupt(path, "a .npz file", ValueError("not a zip archive"))
  try:
    with np.load(path, allow_pickle=False) as data:
      return {k: np.asarray(data[k]) for k in data.files}
  except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as err:
    raise _corrupt(path, "a .npz file", err) from err


def _normalise_keys(raw: Mapping[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
  out = {}
  for name, value in raw.items():
    for prefix in _STRIPPED_PREFIXES:
      if name.startswith(prefix):
        name = name[len(prefix):]
        break
    value = np.asarray(value)
    if value.dtype.kind == "f" and value.dtype != np.float32:
      value = value.astype(np.float32)
    out[name] = value
  if not out:
    raise ValueError(f"{where} contains no tensors")
  return out


def file_arch(state_dict: Mapping[str, np.ndarray]) -> str | None:
  """The ``__arch__`` recorded by `save_npz` in an ``.npz`` file, or None."""
  value = state_dict.get(ARCH_KEY)
  return None if value is None else str(np.asarray(value))


def npz_path(dst: PathLike) -> pathlib.Path:
  """``dst`` as a path, checked to end in ``.npz`` (raises ValueError otherwise)."""
  dst = pathlib.Path(dst).expanduser()
  if dst.suffix.lower() != ".npz":
    raise ValueError(f"output path {str(dst)!r} must end in .npz")
  return dst


def save_npz(arrays: Mapping[str, np.ndarray], dst: PathLike, *, arch: str) -> None:
  """Writes ``arrays`` (torch names and layouts) as float32 plus ``__arch__`` to ``dst``, atomically.

  Raises:
    ValueError: ``dst`` does not end in ``.npz``.
  """
  dst = npz_path(dst)
  out = {name: np.asarray(value, np.float32) for name, value in arrays.items()}
  out[ARCH_KEY] = np.array(arch)
  dst.parent.mkdir(parents=True, exist_ok=True)
  tmp = dst.with_name(dst.name + ".tmp.npz")  # np.savez appends .npz to other names
  np.savez(tmp, **out)
  os.replace(tmp, dst)
