"""Fetching the official weights files of the pretrained feature networks, with a SHA-256 check.

`download` stores a file in the cache directory (`cache_dir`) and returns it; a cached copy with the right
digest is reused. Offline it fails within its timeout (name resolution included) with a `DownloadError`
that says how to fetch the file elsewhere. Nothing here reads or ports the file
(`jaxinpaint.weights.formats` and `jaxinpaint.weights.porting` do).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import pathlib
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import NamedTuple

from jaxinpaint.weights.formats import PathLike


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


def cache_dir() -> pathlib.Path:
  """Where downloads are cached: ``$JAXINPAINT_CACHE``, else ``$XDG_CACHE_HOME/jaxinpaint``, else
  ``~/.cache/jaxinpaint``."""
  if os.environ.get("JAXINPAINT_CACHE"):
    return pathlib.Path(os.environ["JAXINPAINT_CACHE"]).expanduser()
  base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
  return pathlib.Path(base).expanduser() / "jaxinpaint"


def sha256_file(path: PathLike, *, chunk: int = 1 << 20) -> str:
  """Hex SHA-256 of a file, read in chunks."""
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
