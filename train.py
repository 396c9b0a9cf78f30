"""Train an inpainting model: thin absl entry point over `jaxinpaint.training`.

  python train.py --config configs/quickstart.py --workdir runs/quickstart
  python train.py --config configs/pconv_celeba.py --workdir runs/celeba --config.batch_size=8 \\
      --config.images=/data/celeba/train --config.vgg_weights=weights/vgg16.npz
  python train.py --config configs/pconv_celeba.py:phase2 --workdir runs/celeba_ft --config.init_from=runs/celeba

Choosing a config: --config names a recipe file in configs/ (each file's docstring gives its launch command
and cost), optionally with an argument after a colon (configs/pconv_celeba.py:phase2,
configs/edgeconnect_quickstart.py:stage3). Every config field can be overridden with --config.FIELD=VALUE
(nested fields too: --config.loss.hole=6). Re-running the same command resumes from the latest checkpoint
in --workdir (or reports that the run is finished). Configuration mistakes are reported as one line before
anything is compiled; an unreadable training image is skipped with one warning line naming it.
"""

import sys
import warnings

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from jaxinpaint import cli
from jaxinpaint import data
from jaxinpaint import training
from jaxinpaint.training import mesh

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Training config file (configs/*.py[:arg]).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, metrics, samples and eval results.')
_PROGRESS = flags.DEFINE_bool('progress', True, 'Show a progress bar.')
_VERBOSE = flags.DEFINE_bool('verbose_logs', False, 'Keep absl/orbax INFO logging.')
flags.mark_flags_as_required(['config', 'workdir'])


_unreadable: set[str] = set()  # messages of the unreadable images reported so far (one line per file)


def _show_warning(message, category, filename, lineno, file=None, line=None):
  """Unreadable images: one `train.py: warning:` line per file, whichever source met it; others as usual."""
  if not issubclass(category, data.CorruptImageWarning):
    return _default_show_warning(message, category, filename, lineno, file, line)
  if str(message) not in _unreadable:
    _unreadable.add(str(message))
    print(f'train.py: warning: {message}', file=sys.stderr, flush=True)
  return None


def _parse_flags(argv):
  """absl flag parsing, but config mistakes (unknown field, wrong type) become one line, not a traceback."""
  cli.exit_with_help_if_asked(argv, __doc__)
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    print(f'train.py: error: {e} (see --help)', file=sys.stderr)
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    inner = e.args[0] if e.args else e
    inner = inner.args[0] if isinstance(inner, KeyError) and inner.args else inner
    bad = [a for a in argv[1:] if a.startswith('--config.')]
    print(f'train.py: error: bad config override {" ".join(bad)}: {" ".join(str(inner).split())}', file=sys.stderr)
  sys.exit(2)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not _VERBOSE.value:  # orbax logs every save/restore at INFO; keep the console to our own lines
    logging.set_verbosity(logging.ERROR)
  config = _CONFIG.value
  try:
    mesh.initialize_distributed(coordinator_address=config.get('coordinator_address', ''),
                                num_processes=int(config.get('num_processes', 1)),
                                process_id=int(config.get('process_id', 0)))
    training.validate_config(config)
  except ValueError as e:
    print(f'train.py: error: {e}', file=sys.stderr)
    sys.exit(2)
  try:
    summary = training.train_and_evaluate(config, _WORKDIR.value, progress=_PROGRESS.value)
  except (training.NonFiniteLossError, training.ConfigError) as e:
    print(f'train.py: error: {e}', file=sys.stderr)
    sys.exit(1)
  if _unreadable:
    print(f'skipped {len(_unreadable)} unreadable image file(s) (named in the warnings above)')
  if summary['status'] == 'already_done':
    return
  print(f'training finished at step {summary["step"]}: {summary["workdir"]}')
  if summary.get('sample_path'):
    print(f'  sample grid (masked input | output | composite | ground truth): {summary["sample_path"]}')
  print(f'  loss curve: {summary["loss_curve"]}')
  print(f'  metrics: {summary["workdir"]}/metrics.jsonl')
  if summary.get('eval'):
    ev = summary['eval']
    shown = ', '.join(f'{k}={v:.4g}' for k, v in ev.items() if isinstance(v, float))
    print(f'  held-out evaluation ({ev["num_images"]} image/mask pairs): {shown}')
    for k, v in ev.items():
      if k.startswith('baseline_'):
        print(f'  {k[len("baseline_"):]} on the same pairs: ' + ', '.join(f'{a}={b:.4g}' for a, b in v.items()))
    print(f'  eval results: {summary["eval_path"]}; eval grid: {summary["eval_sample_path"]}')
    if summary.get('eval_table_path'):
      print(f'  per hole-ratio table: {summary["eval_table_path"]}')


if __name__ == '__main__':
  _default_show_warning, warnings.showwarning = warnings.showwarning, _show_warning
  app.run(main, flags_parser=_parse_flags)
