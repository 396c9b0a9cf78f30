"""`python -m jaxinpaint.pretrained {export,list,card}`: make, list and describe the shipped models."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from jaxinpaint import pretrained

PROG = 'python -m jaxinpaint.pretrained'


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog=PROG, description='Shipped models: trained networks stored in the package and loaded by name '
                             '(Inpainter.from_pretrained(NAME), python -m jaxinpaint.inpaint --pretrained NAME).',
      epilog=f'Example:\n  {PROG} export --workdir runs/pconv_cpu_hour_ft --name pconv_cpu_hour '
             '--eval-results results/pconv_cpu_hour/results.json',
      formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = parser.add_subparsers(dest='command', required=True, metavar='{export,list,card}')
  export = sub.add_parser(
      'export', help='write NAME.npz + NAME.md from the latest checkpoint of a training workdir',
      description='Restores the latest checkpoint of --workdir, keeps the inference weights (no optimiser state, '
                  'no discriminators), stores them in --dtype, measures the effect of that on a fixed input, '
                  'records the outputs fingerprint and writes NAME.npz and the model card NAME.md atomically.')
  export.add_argument('--workdir', required=True, help='training workdir (or a checkpoints/<step> directory)')
  export.add_argument('--name', required=True, help='model name, e.g. pconv_cpu_hour (letters, digits, _)')
  export.add_argument('--eval-results', help='results.json (or its folder) from evaluate.py on this checkpoint; '
                      'fills the evaluation table of the card')
  export.add_argument('--dtype', default='float16', choices=pretrained.STORAGE_DTYPES,
                      help='storage dtype of the weights (default float16; loaded as float32)')
  export.add_argument('--recipe', action='append', default=[],
                      help='a command that trained the model, for the card (repeat, in order)')
  export.add_argument('--out-dir', help='where to write (default: the package directory, i.e. shipped)')
  sub.add_parser('list', help='the shipped models, their kind, step and storage dtype',
                 description='Lists the shipped models found on the search path '
                             f'(${pretrained.ENV_VAR} if set, else the package directory).')
  card = sub.add_parser('card', help='print the model card of a shipped model',
                        description='Prints the model card (Markdown) of a shipped model.')
  card.add_argument('name', help='a shipped model name (see the list command)')
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  try:
    if args.command == 'export':
      from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
      from jaxinpaint.pretrained import export  # pylint: disable=import-outside-toplevel
      absl_logging.set_verbosity(absl_logging.ERROR)  # orbax's read-only-manager notices
      written = export.export(args.workdir, name=args.name, out_dir=args.out_dir, dtype=args.dtype,
                              eval_results=args.eval_results, recipe=args.recipe)
      meta = written['meta']
      effect = ', '.join(f'{k} max |diff| {v["max_abs"]:.3g}' for k, v in meta['storage_effect'].items())
      print(f'wrote {written["npz"]} ({written["npz"].stat().st_size / 2**20:.1f} MiB, {meta["model"]} step '
            f'{meta["step"]}, {meta["storage_dtype"]}: {effect}) and {written["card"]}')
    elif args.command == 'list':
      shown = pretrained.names()
      if not shown:
        print(f'no shipped models in {", ".join(map(str, pretrained.search_path()))}')
      for name in shown:
        meta = pretrained.metadata(name)
        print(f'{name}\t{meta["model"]}\tstep {meta["step"]}\t{meta["storage_dtype"]}\t{pretrained.path(name)}')
    else:
      print(pretrained.card(args.name), end='')
  except (FileNotFoundError, ValueError) as e:
    print(f'{PROG}: error: {e}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
