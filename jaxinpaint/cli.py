"""What the absl command-line scripts (train.py, evaluate.py, bench/*_report.py) share."""

from __future__ import annotations

import sys

from absl import flags

HELP_FLAGS = ('-h', '-?', '--help', '--helpshort', '--helpfull')


def exit_with_help_if_asked(argv: list[str], doc: str) -> None:
  """On `--help` (or -h, --helpshort, ...): print the script's docstring and its flags, exit with status 0.

  absl's own --help prints the flags only and exits with status 1, which shells and CI read as a failure.
  Flags that the script adopted from another module (`flags.adopt_module_key_flags`) are listed too.

  Args:
    argv: the command line (`sys.argv`).
    doc: the script's module docstring.
  """
  if not any(a in HELP_FLAGS for a in argv[1:]):
    return
  flags.FLAGS.mark_as_parsed()  # so that the flag values (the defaults) can be read; no validation
  print(f'{doc.strip()}\n\nFlags:\n{flags.FLAGS.main_module_help()}')
  sys.exit(0)
