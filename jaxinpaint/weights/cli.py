"""``python -m jaxinpaint.weights``: convert, inspect and download the pretrained feature networks' weights.

  python -m jaxinpaint.weights convert vgg16-397923af.pth vgg16.npz
  python -m jaxinpaint.weights info vgg16.npz
  python -m jaxinpaint.weights download vgg16      # online machines only; fails fast offline

The entry point of the weights tools, and the one place that maps an architecture name to the model
module declaring its parameter table (the weights building blocks below know no model).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import numpy as np

from jaxinpaint.models import inception, vgg
from jaxinpaint.weights import fetch, formats, porting

ARCH_SPECS: dict[str, Callable[[], dict[str, porting.ParamSpec]]] = {
    "vgg16": lambda: vgg.param_specs(depth=16),
    "vgg19": lambda: vgg.param_specs(depth=19),
    "inception_fid": inception.param_specs,
}


def specs_for(arch: str) -> dict[str, porting.ParamSpec]:
  """The parameter table of one architecture of `jaxinpaint.weights.ARCHS`."""
  if arch not in ARCH_SPECS:
    raise ValueError(f"no parameter table for {porting.describe_arch(arch)}; expected one of "
                     f"{', '.join(ARCH_SPECS)}")
  return ARCH_SPECS[arch]()


def convert(src: formats.PathLike, dst: formats.PathLike, *, arch: str | None = None) -> str:
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
  dst = formats.npz_path(dst)  # before the (slow) read
  state_dict = formats.load_state_dict(src)
  arch = arch or porting.detect_arch(state_dict, source=src)
  specs = specs_for(arch)
  porting.port_state_dict(state_dict, specs, source=src, arch=arch)  # validates everything first
  formats.save_npz({name: state_dict[name] for name in specs}, dst, arch=arch)
  return arch


def _build_parser() -> argparse.ArgumentParser:
  cache = fetch.cache_dir()
  known = ", ".join(fetch.KNOWN_WEIGHTS)
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
  conv.add_argument("--arch", choices=tuple(ARCH_SPECS), default=None,
                    help="architecture; detected from the parameter names by default")
  info = sub.add_parser("info", help="print the architecture and parameter count of a weights file",
                        description="Validate a weights file and print its architecture, tensor count "
                                    "and the number of parameters the feature network uses.")
  info.add_argument("path", help="weights file: .pth (needs torch), .safetensors or .npz")
  dl = sub.add_parser("download", help="download an official weights file into the cache",
                      description=f"Known names: {known}. Cache: {cache}.")
  dl.add_argument("name", help=known)
  dl.add_argument("--dir", default=None, help=f"cache directory (default: {cache})")
  dl.add_argument("--timeout", type=float, default=10.0, help="network timeout in seconds")
  dl.add_argument("--convert", default=None, metavar="DST.npz",
                  help="also convert the downloaded file to this .npz")
  return parser


def _print_progress(done: int, total: int | None) -> None:
  if total:
    step = max(total // 20, 1)  # every 5 %
    if done == total or done // step != (done - (1 << 20)) // step:
      print(f"\r{done / 2**20:8.1f} / {total / 2**20:.1f} MiB", end="\n" if done == total else "",
            file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
  """Runs ``python -m jaxinpaint.weights`` on ``argv``; returns the process exit code."""
  args = _build_parser().parse_args(argv)
  try:
    if args.command == "convert":
      arch = convert(args.src, args.dst, arch=args.arch)
      print(f"wrote {args.dst} ({porting.describe_arch(arch)}, {len(specs_for(arch))} tensors)")
    elif args.command == "info":
      state_dict = formats.load_state_dict(args.path)
      arch = porting.detect_arch(state_dict, source=args.path)
      specs = specs_for(arch)
      porting.port_state_dict(state_dict, specs, source=args.path, arch=arch)
      count = sum(int(np.prod(porting.torch_shape(s))) for s in specs.values())
      print(f"{args.path}: {porting.describe_arch(arch)}, {len(specs)} tensors, {count:,} parameters used")
    elif args.command == "download":
      path = fetch.download(args.name, directory=args.dir, timeout=args.timeout,
                                   progress=_print_progress)
      print(path)
      if args.convert:
        arch = convert(path, args.convert)
        print(f"wrote {args.convert} ({porting.describe_arch(arch)})")
  except (FileNotFoundError, ValueError, ImportError, fetch.DownloadError) as err:
    # One line naming the file and what was expected. Exit 2 = bad input (as argparse's usage errors),
    # 1 = a download that failed.
    print(f"python -m jaxinpaint.weights: error: {' '.join(str(err).split())}", file=sys.stderr)
    return 1 if isinstance(err, fetch.DownloadError) else 2
  return 0
