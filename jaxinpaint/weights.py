"""Porting PyTorch weights for the pretrained feature networks, and fetching the official files.

Three file formats hold the same thing, a PyTorch ``state_dict`` (parameter name -> array in torch
layout):

* ``.pth``: what ``torch.save(model.state_dict())`` writes (torchvision's VGG files, pytorch-fid's
  Inception file). Reading it needs PyTorch, which is an optional dependency.
* ``.safetensors``: read with the ``safetensors`` NumPy API, no torch needed. torchvision naming
  (``features.N.weight``) and timm / Hugging Face naming (same ``features.N`` keys plus
  ``pre_logits.*``/``head.*`` classifier keys, which we ignore) both work; ``module.``/``model.``
  prefixes are stripped.
* ``.npz``: our own format, written by ``python -m jaxinpaint.weights convert SRC DST.npz``. It keeps
  torch names and layouts (float32) of exactly the parameters we use, plus an ``__arch__`` entry, so
  users convert once (where torch is installed) and train without torch.

The model modules (`jaxinpaint.models.vgg`, `jaxinpaint.models.inception`) turn a state_dict into
Flax variables with `port_state_dict`, which validates every parameter (missing, wrong shape,
non-finite) and names the file, the parameter and the expected shape in its errors.

Command line::

  python -m jaxinpaint.weights convert vgg16-397923af.pth vgg16.npz
  python -m jaxinpaint.weights info vgg16.npz
  python -m jaxinpaint.weights download vgg16      # online machines only; fails fast offline
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import pathlib
import socket
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

PathLike = str | os.PathLike

SUPPORTED_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".npz")
ARCH_KEY = "__arch__"
ARCHS = ("vgg16", "vgg19", "inception_fid")
# Classifier heads and training-only buffers that feature extraction never uses.
_IGNORED_PREFIXES = ("classifier.", "pre_logits.", "head.", "fc.", "AuxLogits.")
_IGNORED_SUFFIXES = (".num_batches_tracked",)
_STRIPPED_PREFIXES = ("module.", "model.")


class KnownWeights(NamedTuple):
  """An official weights file: where it lives, its SHA-256 and size in bytes."""
  filename: str
  url: str
  sha256: str
  size: int
  arch: str


# The SHA-256 digests are not published by torchvision/pytorch-fid themselves (their file names carry
# the first 8 hex digits, which match); the full digests and sizes are the ones many independent
# projects pin for these exact files.
KNOWN_WEIGHTS: dict[str, KnownWeights] = {
    "vgg16": KnownWeights(
        "vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth",
        "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0", 553_433_881, "vgg16"),
    "vgg19": KnownWeights(
        "vgg19-dcbb9e9d.pth", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        "dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44", 574_673_361, "vgg19"),
    "inception_fid": KnownWeights(
        "pt_inception-2015-12-05-6726825d.pth",
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
        "pt_inception-2015-12-05-6726825d.pth",
        "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2", 95_628_359,
        "inception_fid"),
}
_NAME_ALIASES = {"inception": "inception_fid", "inception-fid": "inception_fid",
                 "pt_inception": "inception_fid"}


class DownloadError(OSError):
  """A weights file could not be fetched (offline, refused, timed out, HTTP error)."""


# ----------------------------------------------------------------------------------------- reading


def load_state_dict(path: PathLike) -> dict[str, np.ndarray]:
  """Reads a state_dict from ``.pth``/``.pt``/``.bin``, ``.safetensors`` or our ``.npz``.

  Args:
    path: the weights file.

  Returns:
    ``{torch parameter name: numpy array in torch layout}``; floating arrays are float32. Classifier
    keys are kept (the porting step ignores them); ``module.``/``model.`` prefixes are stripped. For
    ``.npz`` files written by `convert` the ``__arch__`` entry is kept as a 0-d string array.

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
    raise ValueError(f"weights file {str(path)!r}: unsupported suffix {suffix!r}; expected one of "
                     f"{', '.join(SUPPORTED_SUFFIXES)}")
  return _normalise_keys(raw, path)


def _corrupt(path: pathlib.Path, kind: str, err: BaseException) -> ValueError:
  return ValueError(f"could not read weights file {str(path)!r} as {kind} (truncated or corrupt "
                    f"download?): {type(err).__name__}: {err}")


def _read_pth(path: pathlib.Path) -> dict[str, np.ndarray]:
  try:
    import torch  # pylint: disable=import-outside-toplevel
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
  out = {}
  for name, value in obj.items():
    if not isinstance(value, torch.Tensor):
      continue  # e.g. version counters or metadata next to the tensors.
    value = value.detach().cpu()
    if value.is_floating_point():
      value = value.float()
    out[str(name)] = value.numpy()
  return out


def _read_safetensors(path: pathlib.Path) -> dict[str, np.ndarray]:
  from safetensors.numpy import load_file  # pylint: disable=import-outside-toplevel
  try:
    return dict(load_file(str(path)))
  except Exception as err:  # SafetensorError, ValueError (bf16 has no numpy dtype), OSError.
    raise _corrupt(path, "a .safetensors file", err) from err


def _read_npz(path: pathlib.Path) -> dict[str, np.ndarray]:
  try:
    with np.load(path, allow_pickle=False) as data:
      return {k: np.asarray(data[k]) for k in data.files}
  except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as err:
    raise _corrupt(path, "a .npz file", err) from err


def _normalise_keys(raw: Mapping[str, np.ndarray], path: pathlib.Path) -> dict[str, np.ndarray]:
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
    raise ValueError(f"weights file {str(path)!r} contains no tensors")
  return out


def file_arch(state_dict: Mapping[str, np.ndarray]) -> str | None:
  """The ``__arch__`` recorded by `convert` in an ``.npz`` file, or None."""
  value = state_dict.get(ARCH_KEY)
  return None if value is None else str(np.asarray(value))


def detect_arch(state_dict: Mapping[str, np.ndarray], *, source: PathLike | None = None) -> str:
  """Which network a state_dict belongs to: ``'vgg16'``, ``'vgg19'`` or ``'inception_fid'``.

  VGG depth is the number of ``features.N.weight`` tensors of rank 4 (13 for VGG-16, 16 for VGG-19),
  as in torchvision's ``cfgs``; the FID Inception has ``Conv2d_1a_3x3.conv.weight``.

  Raises:
    ValueError: the keys match none of them (the message names ``source``).
  """
  recorded = file_arch(state_dict)
  if recorded is not None:
    return recorded
  where = f"weights file {str(source)!r}" if source is not None else "state_dict"
  keys = [k for k in state_dict if k != ARCH_KEY]
  if any(k.startswith("Conv2d_1a_3x3.") for k in keys):
    # torchvision's ImageNet Inception-v3 has the same trunk shapes but other weights, an auxiliary
    # head and 1000 classes; pytorch-fid's FID file has no AuxLogits and a 1008-way fc.
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
  return {"vgg16": "VGG-16", "vgg19": "VGG-19", "inception_fid": "pytorch-fid Inception-v3",
          "inception_torchvision": "torchvision's ImageNet Inception-v3 (not the FID network; "
                                   "FID needs pt_inception-2015-12-05-6726825d.pth)"}.get(arch, arch)


def check_arch(state_dict: Mapping[str, np.ndarray], expected: str, *, source: PathLike) -> None:
  """Raises ValueError when the state_dict is for another network than ``expected``."""
  found = detect_arch(state_dict, source=source)
  if found != expected:
    hint = ""
    if {found, expected} == {"vgg16", "vgg19"}:
      hint = f" (pass depth={found[3:]} to use it, or give a {describe_arch(expected)} file)"
    raise ValueError(f"weights file {str(source)!r} holds {describe_arch(found)} weights, expected "
                     f"{describe_arch(expected)}{hint}")


# ----------------------------------------------------------------------------------------- porting


class ParamSpec(NamedTuple):
  """Where one torch parameter goes: Flax variable path (collection first) and Flax shape."""
  path: tuple[str, ...]
  shape: tuple[int, ...]


def torch_shape(spec: ParamSpec) -> tuple[int, ...]:
  """Torch layout of a Flax shape: conv kernels HWIO -> OIHW, vectors unchanged."""
  if len(spec.shape) == 4:
    h, w, i, o = spec.shape
    return (o, i, h, w)
  return tuple(spec.shape)


def port_state_dict(state_dict: Mapping[str, np.ndarray], specs: Mapping[str, ParamSpec], *,
                    source: PathLike, arch: str) -> dict[str, Any]:
  """Validates a torch state_dict and converts it into nested Flax variables.

  Conv kernels are permuted OIHW -> HWIO (``w.permute(2, 3, 1, 0)``); vectors are copied.

  Args:
    state_dict: from `load_state_dict`.
    specs: ``{torch name: ParamSpec}`` for every parameter the network needs.
    source: the file name, for error messages.
    arch: the expected architecture (see `detect_arch`).

  Returns:
    ``{collection: {module: ... {name: np.ndarray}}}`` (float32).

  Raises:
    ValueError: wrong architecture, missing parameter, wrong shape, non-finite values, or unexpected
      extra parameters; each names the file, the parameter and the expected shape.
  """
  check_arch(state_dict, arch, source=source)
  out: dict[str, Any] = {}
  for name, spec in specs.items():
    expected = torch_shape(spec)
    if name not in state_dict:
      raise ValueError(f"weights file {str(source)!r} is missing parameter {name!r} (expected shape "
                       f"{expected}) for {describe_arch(arch)}")
    value = np.asarray(state_dict[name])
    if value.shape != expected:
      raise ValueError(f"weights file {str(source)!r}: parameter {name!r} has shape {value.shape}, "
                       f"expected {expected} for {describe_arch(arch)}")
    if value.dtype.kind != "f":
      raise ValueError(f"weights file {str(source)!r}: parameter {name!r} has dtype {value.dtype}, "
                       "expected floating point")
    if not np.all(np.isfinite(value)):
      raise ValueError(f"weights file {str(source)!r}: parameter {name!r} (shape {expected}) contains "
                       "NaN or infinite values (corrupt file?)")
    if value.ndim == 4:
      value = value.transpose(2, 3, 1, 0)
    node = out
    for part in spec.path[:-1]:
      node = node.setdefault(part, {})
    node[spec.path[-1]] = np.ascontiguousarray(value, dtype=np.float32)
  extra = sorted(k for k in state_dict if k not in specs and k != ARCH_KEY and not _ignored(k))
  if extra:
    raise ValueError(f"weights file {str(source)!r} has unexpected parameters for "
                     f"{describe_arch(arch)}: {', '.join(extra[:5])}"
                     f"{' ...' if len(extra) > 5 else ''}")
  return out


def _ignored(name: str) -> bool:
  return name.startswith(_IGNORED_PREFIXES) or name.endswith(_IGNORED_SUFFIXES)


def specs_for(arch: str) -> dict[str, ParamSpec]:
  """The parameter table of one architecture (imports the model module lazily)."""
  if arch in ("vgg16", "vgg19"):
    from jaxinpaint.models import vgg  # pylint: disable=import-outside-toplevel
    return vgg.param_specs(depth=int(arch[3:]))
  if arch == "inception_fid":
    from jaxinpaint.models import inception  # pylint: disable=import-outside-toplevel
    return inception.param_specs()
  raise ValueError(f"unknown architecture {arch!r}; expected one of {', '.join(ARCHS)}")


def convert(src: PathLike, dst: PathLike, *, arch: str | None = None) -> str:
  """Converts a ``.pth``/``.safetensors``/``.npz`` weights file into our validated ``.npz``.

  The output holds exactly the parameters the feature network uses, in torch names and layouts,
  float32, plus ``__arch__``; loading it needs neither torch nor safetensors.

  Args:
    src: the source weights file.
    dst: the output path; must end in ``.npz``.
    arch: ``'vgg16'``, ``'vgg19'`` or ``'inception_fid'``; detected from the keys when None.

  Returns:
    The architecture written.
  """
  dst = pathlib.Path(dst).expanduser()
  if dst.suffix.lower() != ".npz":
    raise ValueError(f"output path {str(dst)!r} must end in .npz")
  state_dict = load_state_dict(src)
  arch = arch or detect_arch(state_dict, source=src)
  specs = specs_for(arch)
  port_state_dict(state_dict, specs, source=src, arch=arch)  # Validates everything first.
  arrays = {name: np.asarray(state_dict[name], np.float32) for name in specs}
  arrays[ARCH_KEY] = np.array(arch)
  dst.parent.mkdir(parents=True, exist_ok=True)
  tmp = dst.with_name(dst.name + ".tmp.npz")
  np.savez(tmp, **arrays)
  os.replace(tmp, dst)
  return arch


# ---------------------------------------------------------------------------------------- download


def cache_dir() -> pathlib.Path:
  """Where downloads are cached: ``$JAXINPAINT_CACHE``, else ``$XDG_CACHE_HOME/jaxinpaint``, else
  ``~/.cache/jaxinpaint``."""
  if os.environ.get("JAXINPAINT_CACHE"):
    return pathlib.Path(os.environ["JAXINPAINT_CACHE"]).expanduser()
  base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
  return pathlib.Path(base).expanduser() / "jaxinpaint"


def sha256_file(path: PathLike, *, chunk: int = 1 << 20) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    while block := f.read(chunk):
      digest.update(block)
  return digest.hexdigest()


def _manual_hint(url: str, target: pathlib.Path, sha256: str | None) -> str:
  check = f" and check `sha256sum {target.name}` prints {sha256}" if sha256 else ""
  return (f"Get the file manually: on a machine with internet access run `curl -L -o {target.name} "
          f"{url}`{check}, then copy it to {target} (or anywhere, and pass that path); optionally "
          f"convert it once with `python -m jaxinpaint.weights convert {target.name} "
          f"{pathlib.Path(target.name).stem}.npz`.")


def _resolve_host(url: str, timeout: float) -> None:
  """Resolves the URL's host under a timeout: `urlopen`'s timeout does not cover DNS, which can
  hang for a long time on machines without network. A daemon thread, so a stuck lookup never
  delays interpreter exit."""
  parsed = urllib.parse.urlparse(url)
  if parsed.scheme not in ("http", "https") or not parsed.hostname:
    return
  outcome: list[BaseException | None] = []

  def lookup() -> None:
    try:
      socket.getaddrinfo(parsed.hostname, parsed.port or 443)
      outcome.append(None)
    except OSError as err:
      outcome.append(err)

  thread = threading.Thread(target=lookup, name="jaxinpaint-dns", daemon=True)
  thread.start()
  thread.join(timeout)
  if not outcome:
    raise DownloadError(f"resolving {parsed.hostname!r} timed out after {timeout:g} s")
  if outcome[0] is not None:
    raise DownloadError(f"cannot resolve {parsed.hostname!r}: {outcome[0]}") from outcome[0]


def download(name: str, *, url: str | None = None, sha256: str | None = None,
             directory: PathLike | None = None, timeout: float = 10.0,
             progress: Callable[[int, int | None], None] | None = None) -> pathlib.Path:
  """Fetches an official weights file into the cache (or returns the cached copy) and checks it.

  Args:
    name: ``'vgg16'``, ``'vgg19'`` or ``'inception_fid'`` (see `KNOWN_WEIGHTS`), or, together with
      ``url``, any file name to store the download under.
    url: overrides the known URL (tests use a local server or ``file://``).
    sha256: overrides the known SHA-256; None with an unknown name skips the check.
    directory: cache directory; defaults to `cache_dir()`.
    timeout: seconds for name resolution, connecting and each read; offline machines fail within it.
    progress: optional ``callback(bytes_done, total_or_None)``.

  Returns:
    The path of the verified file.

  Raises:
    DownloadError: the file could not be fetched; the message says how to get it manually.
    ValueError: unknown name, or the SHA-256 of the download does not match (the file is deleted).
  """
  key = _NAME_ALIASES.get(name, name)
  known = KNOWN_WEIGHTS.get(key)
  if known is None and url is None:
    raise ValueError(f"unknown weights name {name!r}; expected one of {', '.join(KNOWN_WEIGHTS)} "
                     "(or pass url=)")
  url = url or known.url
  sha256 = (sha256 or (known.sha256 if known else None))
  sha256 = sha256.lower() if sha256 else None
  filename = known.filename if known else pathlib.Path(urllib.parse.urlparse(url).path).name or name
  target = pathlib.Path(directory).expanduser() if directory else cache_dir()
  target = target / filename

  if target.exists():
    if sha256 is None or sha256_file(target) == sha256:
      return target
    target.unlink()  # A stale or partial copy; fetch again.

  target.parent.mkdir(parents=True, exist_ok=True)
  partial = target.with_name(target.name + ".part")
  digest = hashlib.sha256()
  try:
    _resolve_host(url, timeout)
    with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
      total = response.headers.get("Content-Length") if hasattr(response, "headers") else None
      total = int(total) if total else None
      done = 0
      while block := response.read(1 << 20):
        out.write(block)
        digest.update(block)
        done += len(block)
        if progress is not None:
          progress(done, total)
  except (DownloadError, urllib.error.URLError, TimeoutError, ConnectionError,
          http.client.HTTPException) as err:
    partial.unlink(missing_ok=True)
    if isinstance(err, urllib.error.HTTPError):
      why = f"the server answered HTTP {err.code} ({err.reason})"
    else:
      reason = getattr(err, "reason", None) or err
      why = (f"{reason}; this machine seems to be offline or the server is unreachable (timeout "
             f"{timeout:g} s)")
    raise DownloadError(f"could not download {url}: {why}. "
                        f"{_manual_hint(url, target, sha256)}") from err
  got = digest.hexdigest()
  if sha256 is not None and got != sha256:
    partial.unlink(missing_ok=True)
    raise ValueError(f"SHA-256 mismatch for {url}: got {got}, expected {sha256}; the download was "
                     f"deleted. {_manual_hint(url, target, sha256)}")
  os.replace(partial, target)
  return target


# --------------------------------------------------------------------------------------------- CLI


def _build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="python -m jaxinpaint.weights",
      description="Convert PyTorch weights of the pretrained feature networks (torchvision VGG-16/19, "
                  "pytorch-fid Inception-v3) into jaxinpaint's torch-free .npz format, inspect weight "
                  "files, or download the official files (online machines only).",
      epilog="Example: python -m jaxinpaint.weights convert vgg16-397923af.pth vgg16.npz")
  sub = parser.add_subparsers(dest="command", required=True)
  conv = sub.add_parser("convert", help="convert SRC (.pth/.safetensors/.npz) into DST.npz",
                        description="Validate SRC and write the parameters the feature network uses "
                                    "to DST.npz (torch names and layouts, float32, plus __arch__).")
  conv.add_argument("src", help="source weights: .pth (needs torch), .safetensors or .npz")
  conv.add_argument("dst", help="output .npz path")
  conv.add_argument("--arch", choices=ARCHS, default=None,
                    help="architecture; detected from the parameter names by default")
  info = sub.add_parser("info", help="print the architecture and parameter count of a weights file")
  info.add_argument("path")
  dl = sub.add_parser("download", help="download an official weights file into the cache",
                      description=f"Known names: {', '.join(KNOWN_WEIGHTS)}. Cache: {cache_dir()}.")
  dl.add_argument("name", help=", ".join(KNOWN_WEIGHTS))
  dl.add_argument("--dir", default=None, help=f"cache directory (default: {cache_dir()})")
  dl.add_argument("--timeout", type=float, default=10.0, help="network timeout in seconds")
  dl.add_argument("--convert", default=None, metavar="DST.npz",
                  help="also convert the downloaded file to this .npz")
  return parser


def _print_progress(done: int, total: int | None) -> None:
  if total:
    step = max(total // 20, 1)  # Every 5 %.
    if done == total or done // step != (done - (1 << 20)) // step:
      print(f"\r{done / 2**20:8.1f} / {total / 2**20:.1f} MiB", end="\n" if done == total else "",
            file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
  """Entry point of ``python -m jaxinpaint.weights``; returns the process exit code."""
  args = _build_parser().parse_args(argv)
  try:
    if args.command == "convert":
      arch = convert(args.src, args.dst, arch=args.arch)
      print(f"wrote {args.dst} ({describe_arch(arch)}, {len(specs_for(arch))} tensors)")
    elif args.command == "info":
      state_dict = load_state_dict(args.path)
      arch = detect_arch(state_dict, source=args.path)
      specs = specs_for(arch)
      port_state_dict(state_dict, specs, source=args.path, arch=arch)
      count = sum(int(np.prod(torch_shape(s))) for s in specs.values())
      print(f"{args.path}: {describe_arch(arch)}, {len(specs)} tensors, {count:,} parameters used")
    elif args.command == "download":
      path = download(args.name, directory=args.dir, timeout=args.timeout, progress=_print_progress)
      print(path)
      if args.convert:
        arch = convert(path, args.convert)
        print(f"wrote {args.convert} ({describe_arch(arch)})")
  except (FileNotFoundError, ValueError, ImportError, DownloadError) as err:
    print(f"error: {err}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
