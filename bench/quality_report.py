"""Regenerates the quality evidence of docs/quality.md from a PConv training workdir.

  python bench/quality_report.py --workdir runs/pconv_cpu_hour --eval_dir /tmp/quality_eval --out_dir docs
  python bench/quality_report.py --workdir runs/pconv_cpu_hour,runs/pconv_cpu_hour_ft ...   # phase 1 + 2

What it does (evaluations already in --eval_dir are reused, so a re-run only redraws; one whose settings
differ, whose checkpoint files changed (e.g. after retraining a workdir) or that is of another workdir of
the same name is evaluated again):
  1. writes EVAL_DIR/eval.flist: every photo of ../shared/data/places and ../shared/data/psv (27, sorted);
  2. runs evaluate.py's evaluation (`jaxinpaint.evaluation.run`) at 256x256 with the 300 NVIDIA test masks,
     every photo paired with --masks_per_image different masks (27 x 11 = 297 pairs, ~50 per bucket, each
     mask used at most once; the same pairs for every method) for telea, ns, patchmatch and for every kept
     checkpoint of each --workdir (EVAL_DIR/<method>, EVAL_DIR/pconv_<workdir name>_step<N>);
  3. draws OUT_DIR/quality_curve.png: PSNR and SSIM per hole-ratio bucket against training minutes of
     every checkpoint, baselines as horizontal lines (CPU-minutes when --cpu_log is given, else wall clock);
  4. draws OUT_DIR/quality_comparison.png: six evaluation pairs across the buckets (picked by
     `jaxinpaint.figures.select_cases` without looking at any output), columns
     input | Telea | NS | PatchMatch | PConv | ground truth, using the latest checkpoint;
  5. prints (and with --table writes) the per-bucket markdown table of the final checkpoint and baselines.

Each evaluation equals this evaluate.py command (same pairs, same numbers):
  python evaluate.py --method pconv --checkpoint WORKDIR/checkpoints/STEP --images EVAL_DIR/eval.flist \\
      --masks ../shared/data/masks_nvidia_test300 --size 256 --masks_per_image 11 --out EVAL_DIR/pconv_WORKDIRNAME_stepSTEP
"""

from __future__ import annotations

import pathlib
import sys

from absl import app
from absl import flags
from absl import logging

import _common
from jaxinpaint import cli

_REPO = pathlib.Path(__file__).resolve().parents[1]
_DATA = _REPO.parent / 'shared' / 'data'

_WORKDIR = flags.DEFINE_list('workdir', None, 'PConv training workdir(s) (train.py --workdir), in training order: '
                             'phase 1 then phase 2 (init_from). The last checkpoint of the last one is the final model.')
_EVAL_DIR = flags.DEFINE_string('eval_dir', '/tmp/quality_eval', 'Cache of evaluate.py results (one folder per '
                                'method / checkpoint); existing results.json files are reused unless stale.')
_OUT_DIR = flags.DEFINE_string('out_dir', str(_REPO / 'docs'), 'Where quality_curve.png and '
                               'quality_comparison.png are written.')
(_IMAGE_FOLDERS, _MASKS, _SIZE, _MASKS_PER_IMAGE, _SEED, _LIMIT,
 _BASELINES) = _common.define_evaluation_pair_flags(_DATA)
flags.adopt_module_key_flags(_common)  # listed by --help with this script's own flags
_CHECKPOINTS = flags.DEFINE_list('checkpoints', ['all'], "Checkpoint steps for the curve ('all' = every kept one).")
_CPU_LOG = flags.DEFINE_list('cpu_log', None, "Optional 'unix_time cpu_seconds' logs of the trainer processes, one "
                             'per --workdir (x axis in CPU-minutes instead of wall-clock minutes).')
_NUM_CASES = flags.DEFINE_integer('num_cases', 6, 'Rows of the comparison figure.')
_TABLE = flags.DEFINE_string('table', None, 'Also write the final per-bucket markdown table here.')
_NAME = flags.DEFINE_string('name', 'pconv_cpu_hour', 'Model name in the table and legends.')
_NO_EVAL = flags.DEFINE_bool('no_eval', False, 'Only use results already in --eval_dir (skip missing ones).')
_MAKE_TRAIN_MASKS = flags.DEFINE_string(
    'make_train_masks', None, 'Instead of a report: write the TRAINING mask tiles of configs/pconv_cpu_hour.py to '
    'this folder and exit (see `make_train_masks`).')
_TILE = flags.DEFINE_integer('tile', 64, 'Side of the training mask tiles (--make_train_masks).')
_NUM_SOURCE_MASKS = flags.DEFINE_integer('num_source_masks', 400, 'Procedural 256x256 masks cut into tiles.')


def make_train_masks(folder: str, *, tile: int = 64, num: int = 400, size: int = 256, seed: int = 0) -> int:
  """Writes tile x tile crops of procedural size x size irregular masks (white = hole) to `folder`.

  Why: the irregular generator scales its strokes with the mask side, so masks drawn at the 64-pixel
  training crop have holes 4x thinner (in pixels) than the same masks at the 256x256 evaluation size. Cutting
  256x256 generator masks (`jaxinpaint.masks.irregular`, hole fraction U(0.01, 0.6]) into 64x64 tiles keeps
  the evaluation's hole scale in pixels while training on cheap 64x64 crops. Tiles with a hole fraction
  outside (0.01, 0.7] are dropped. Only our own generator is used, never the NVIDIA test masks. The trainer
  then applies the paper's mask augmentation (dilation, rotation, crop, flips) to these files.

  Returns:
    The number of tiles written (deterministic for a seed).
  """
  import cv2  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from jaxinpaint import masks  # pylint: disable=import-outside-toplevel
  out = pathlib.Path(folder)
  out.mkdir(parents=True, exist_ok=True)
  written = 0
  for i in range(num):
    m = masks.irregular(np.random.default_rng([seed, i]), (size, size))
    for y in range(0, size - tile + 1, tile):
      for x in range(0, size - tile + 1, tile):
        t = m[y:y + tile, x:x + tile]
        frac = float(np.mean(t < 0.5))
        if 0.01 < frac <= 0.7:
          cv2.imwrite(str(out / f'{i:05d}_{y:03d}_{x:03d}.png'), np.where(t < 0.5, 255, 0).astype(np.uint8))
          written += 1
  return written

_TITLES = {'telea': 'Telea', 'ns': 'NS', 'patchmatch': 'PatchMatch'}


def ensure_eval(method: str, out: pathlib.Path, flist: pathlib.Path, checkpoint: str | None = None) -> dict | None:
  """results.json of `method` on the standard pairs, computed unless `out` caches it (and it is current);
  None with --no_eval when it does not."""
  return _common.evaluated(method, out, checkpoint=checkpoint, no_eval=_NO_EVAL.value, images=str(flist),
                           masks=_MASKS.value, size=_SIZE.value, seed=_SEED.value, limit=_LIMIT.value,
                           masks_per_image=_MASKS_PER_IMAGE.value, canny_edges=False)


def markdown(final: tuple[str, dict], baselines: dict[str, dict]) -> str:
  from jaxinpaint import figures  # pylint: disable=import-outside-toplevel
  methods = {final[0]: figures.load_rows(final[1]), **{k: figures.load_rows(v) for k, v in baselines.items()}}
  buckets = sorted({b for rows in methods.values() for b in rows if b != figures.ALL}, key=figures.bucket_key)
  buckets.append(figures.ALL)
  lines = ['| hole ratio | pairs | method | PSNR (dB) ↑ | SSIM ↑ | L1 (%) ↓ |', '|---|---|---|---|---|---|']
  for b in buckets:
    for name, rows in methods.items():
      if b in rows:
        r = rows[b]
        best_psnr = max(m[b]['psnr'] for m in methods.values() if b in m)
        best_ssim = max(m[b]['ssim'] for m in methods.values() if b in m)
        psnr = f"{r['psnr']:.2f}" + (' **best**' if r['psnr'] == best_psnr else '')
        ssim = f"{r['ssim']:.4f}" + (' **best**' if r['ssim'] == best_ssim else '')
        lines.append(f"| {b} | {r['count']} | {name} | {psnr} | {ssim} | {r['l1']:.2f} |")
  return '\n'.join(lines)


def comparison(workdir: pathlib.Path, flist: pathlib.Path, final_eval: dict, out: pathlib.Path) -> None:
  from jaxinpaint import evaluation, figures  # pylint: disable=import-outside-toplevel
  cases = _common.ComparisonCases(flist, masks=_MASKS.value, size=_SIZE.value, seed=_SEED.value, limit=_LIMIT.value,
                                  masks_per_image=_MASKS_PER_IMAGE.value, per_image=final_eval['per_image'],
                                  model_name='PConv', num=_NUM_CASES.value)
  columns, cols = ['input'], [[figures.holed(im, m) for im, m in zip(cases.images, cases.masks)]]
  methods = [(b, None) for b in _BASELINES.value] + [('pconv', str(workdir))]
  for method, ckpt in methods:
    predict, _ = evaluation.load_predictor(method, checkpoint=ckpt, seed=_SEED.value)
    cols.append(cases.composites(predict(cases.images * cases.masks, cases.masks)))  # holes zeroed, as scored
    columns.append(_TITLES.get(method, 'PConv (ours)' if method == 'pconv' else method))
  cols.append(list(cases.images))
  columns.append('ground truth')
  cases.draw(cols, columns, out)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.ERROR)
  if _MAKE_TRAIN_MASKS.value:
    n = make_train_masks(_MAKE_TRAIN_MASKS.value, tile=_TILE.value, num=_NUM_SOURCE_MASKS.value, seed=_SEED.value)
    print(f'wrote {n} training mask tiles to {_MAKE_TRAIN_MASKS.value}')
    return
  if not _WORKDIR.value:
    raise app.UsageError('--workdir is required (unless --make_train_masks)')
  from jaxinpaint import figures  # pylint: disable=import-outside-toplevel
  workdirs = [pathlib.Path(w).absolute() for w in _WORKDIR.value]
  eval_dir = pathlib.Path(_EVAL_DIR.value)
  out_dir = pathlib.Path(_OUT_DIR.value)
  try:
    cpu_logs = _CPU_LOG.value or [None] * len(workdirs)
    if len(cpu_logs) != len(workdirs):
      raise ValueError(f'--cpu_log has {len(cpu_logs)} entries for {len(workdirs)} --workdir entries')
    flist = _common.write_flist(_IMAGE_FOLDERS.value, eval_dir / 'eval.flist')
    baselines = {}
    for b in _BASELINES.value:
      res = ensure_eval(b, eval_dir / b, flist)
      if res is not None:
        baselines[b] = res
    curve, points, offset, final = [], [], 0.0, None
    for k, (workdir, cpu_log) in enumerate(zip(workdirs, cpu_logs)):
      steps = _common.checkpoint_steps(workdir)
      if not steps:
        raise FileNotFoundError(f'--workdir {str(workdir)!r} has no checkpoints')
      if _CHECKPOINTS.value != ['all']:
        steps = sorted({int(s) for s in _CHECKPOINTS.value if int(s) in steps} | {steps[-1]})
      minutes = figures.training_minutes(workdir, cpu_log=cpu_log)
      # Named after the workdir even for one: a cache folder named by step alone would be reused for
      # another run's checkpoint of the same step.
      tag = f'pconv_{workdir.name}'
      for s in steps:
        res = ensure_eval('pconv', eval_dir / f'{tag}_step{s}', flist, str(workdir / 'checkpoints' / str(s)))
        if res is not None and s in minutes:
          curve.append((offset + minutes[s], figures.load_rows(res)))
          points.append((workdir.name, s, offset + minutes[s], figures.load_rows(res)[figures.ALL]))
        if res is not None and k == len(workdirs) - 1 and s == steps[-1]:
          final = (workdir, s, res)
      offset += max(minutes.values())  # a later phase starts where this one ended
    if final is None:
      raise FileNotFoundError(f'no evaluation of the final checkpoint in {eval_dir} (--no_eval)')
    xlabel = ('training CPU-minutes (trainer process, user+sys)' if _CPU_LOG.value
              else 'training minutes (wall clock)')
    path = figures.learning_curve(
        curve, {_TITLES.get(k, k): figures.load_rows(v) for k, v in baselines.items()},
        out_dir / 'quality_curve.png', model_name=_NAME.value, xlabel=xlabel,
        title=f'{_NAME.value} checkpoints vs classical inpainting\n{len(final[2]["per_image"])} '
              f'Places2 / Paris StreetView pairs at {_SIZE.value}x{_SIZE.value}, NVIDIA test masks')
    print(f'wrote {path}')
    comparison(final[0], flist, final[2], out_dir / 'quality_comparison.png')
    table = markdown((_NAME.value, final[2]), baselines)
    print(f'\nfinal checkpoint ({final[0]} step {final[1]}):\n{table}')
    if _TABLE.value:
      pathlib.Path(_TABLE.value).write_text(table + '\n')
    print('\nlearning curve points (workdir, step, minutes, all-pairs PSNR / SSIM):')
    for name, s, m, r in points:
      print(f'  {name} {s:6d} {m:7.1f} {r["psnr"]:.2f} {r["ssim"]:.4f}')
  except (ValueError, FileNotFoundError, ImportError) as e:
    print(f'quality_report.py: error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  cli.exit_with_help_if_asked(sys.argv, __doc__)
  app.run(main)
