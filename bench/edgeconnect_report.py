"""Regenerates the EdgeConnect evidence of docs/edgeconnect_quality.md from the four stage workdirs.

  python bench/edgeconnect_report.py            # defaults: runs/edgeconnect_cpu_s1..s4, the shipped PConv

What it does (evaluations already in --eval_dir are reused, so a re-run only redraws; one whose settings
differ, whose checkpoint files changed (e.g. after retraining a workdir) or that is of another workdir of
the same name is evaluated again):
  1. writes EVAL_DIR/eval.flist: every photo of ../shared/data/places and ../shared/data/psv (27, sorted);
  2. evaluates at 256x256 with the 300 NVIDIA test masks, every photo paired with --masks_per_image
     different masks (27 x 11 = 297 pairs, the pairs of docs/quality.md): EdgeConnect at the last
     checkpoint of every stage, the PConv model (--pconv, default the shipped pconv_cpu_hour), and the
     classical methods; the methods without an edge model with `--canny_edges` (edge precision/recall/F1
     of the Canny edges of their result: the trivial baseline of EdgeConnect's edge model G1);
  3. prints (and with --table writes) two tables: L1/PSNR/SSIM per hole-ratio bucket, and edge
     precision/recall/F1 inside the holes, plus which buckets EdgeConnect wins;
  4. draws OUT_DIR/edgeconnect_curves.png: the training metrics of the four stages against wall-clock
     minutes (metrics.jsonl of each workdir);
  5. draws OUT_DIR/edgeconnect_comparison.png: six evaluation pairs across the buckets (picked by
     `jaxinpaint.figures.select_cases` without looking at any output), columns input | known-region Canny |
     G1 edges | EdgeConnect | PConv | Telea | ground truth.

Each evaluation equals this evaluate.py command (same pairs, same numbers), e.g.
  python evaluate.py --method edgeconnect --workdir runs/edgeconnect_cpu_s4 --images EVAL_DIR/eval.flist \\
      --masks ../shared/data/masks_nvidia_test300 --size 256 --masks_per_image 11 --out EVAL_DIR/edgeconnect_s4
  python evaluate.py --method telea --canny_edges --images EVAL_DIR/eval.flist ... --out EVAL_DIR/telea
"""

from __future__ import annotations

import json
import pathlib
import sys

from absl import app
from absl import flags
from absl import logging

import _common
from jaxinpaint import cli

_REPO = pathlib.Path(__file__).resolve().parents[1]
_DATA = _REPO.parent / 'shared' / 'data'

_WORKDIRS = flags.DEFINE_list('workdirs', [str(_REPO / 'runs' / f'edgeconnect_cpu_s{s}') for s in (1, 2, 3, 4)],
                              'The EdgeConnect workdirs of stages 1-4, in training order.')
_PCONV = flags.DEFINE_string('pconv', 'pconv_cpu_hour', 'PConv model to compare with: a shipped model name or a '
                             'workdir.')
_EVAL_DIR = flags.DEFINE_string('eval_dir', '/tmp/edgeconnect_eval', 'Cache of evaluate.py results (one folder '
                                'per method / stage); existing results.json files are reused unless stale.')
_OUT_DIR = flags.DEFINE_string('out_dir', str(_REPO / 'docs'), 'Where the two PNGs are written.')
(_IMAGE_FOLDERS, _MASKS, _SIZE, _MASKS_PER_IMAGE, _SEED, _LIMIT,
 _BASELINES) = _common.define_evaluation_pair_flags(_DATA)
flags.adopt_module_key_flags(_common)  # listed by --help with this script's own flags
_NUM_CASES = flags.DEFINE_integer('num_cases', 6, 'Rows of the comparison figure.')
_TABLE = flags.DEFINE_string('table', None, 'Also write the two markdown tables here.')
_NO_EVAL = flags.DEFINE_bool('no_eval', False, 'Only use results already in --eval_dir (fail on missing ones).')

_TITLES = {'telea': 'Telea', 'ns': 'NS', 'patchmatch': 'PatchMatch', 'pconv': 'PConv'}
# Buckets the comparison is about: hole ratios from (0.2, 0.3] up.
_LARGE_FROM = 0.2


def ensure_eval(method: str, out: pathlib.Path, flist: pathlib.Path, *, checkpoint: str | None = None,
                canny_edges: bool = False) -> dict:
  """results.json of `method` on the standard pairs, computed unless `out` caches it (and it is current)."""
  results = _common.evaluated(method, out, checkpoint=checkpoint, no_eval=_NO_EVAL.value, images=str(flist),
                              masks=_MASKS.value, size=_SIZE.value, seed=_SEED.value, limit=_LIMIT.value,
                              masks_per_image=_MASKS_PER_IMAGE.value, canny_edges=canny_edges)
  if results is None:
    raise FileNotFoundError(f'--no_eval: {str(out / "results.json")!r} does not exist or is stale')
  return results


def labelled(results: dict, name: str) -> dict:
  return {**results, 'method': name}


def wins(model: dict, others: dict[str, dict]) -> list[str]:
  """One line per bucket from (0.2, 0.3] up: does `model` beat every one of `others` on PSNR and SSIM?"""
  from jaxinpaint import figures  # pylint: disable=import-outside-toplevel
  rows = figures.load_rows(model)
  other_rows = {k: figures.load_rows(v) for k, v in others.items()}
  lines = []
  for b in sorted((b for b in rows if b != figures.ALL), key=figures.bucket_key):
    if figures.bucket_key(b) < _LARGE_FROM:  # the lower end of the bucket
      continue
    best = {m: max(other_rows[k][b][m] for k in other_rows) for m in ('psnr', 'ssim')}
    verdict = ['PSNR ' + ('won' if rows[b]['psnr'] > best['psnr'] else 'lost') +
               f" ({rows[b]['psnr'] - best['psnr']:+.2f} dB)",
               'SSIM ' + ('won' if rows[b]['ssim'] > best['ssim'] else 'lost') +
               f" ({rows[b]['ssim'] - best['ssim']:+.4f})"]
    lines.append(f'  {b}: ' + ', '.join(verdict) + f' against the best of {", ".join(others)}')
  return lines


def curves(workdirs: list[pathlib.Path], out: pathlib.Path) -> None:
  from jaxinpaint import figures  # pylint: disable=import-outside-toplevel
  stages = []
  for k, w in enumerate(workdirs, start=1):
    path = w / 'metrics.jsonl'
    if not path.is_file():
      raise FileNotFoundError(f'--workdirs: {str(path)!r} does not exist (expected a train.py workdir)')
    stages.append((f'stage {k}', [json.loads(line) for line in path.read_text().splitlines() if line.strip()]))
  panels = [('G1: edge precision / recall in the holes', ['edge_precision', 'edge_recall']),
            ('G1: adversarial / feature matching', ['g1_adv', 'g1_fm']),
            ('G2: L1 (paper) and hole L1', ['g2_l1', 'g2_hole']),
            ('G2: 1 - SSIM and adversarial', ['g2_ssim', 'g2_adv'])]
  figures.stage_curves(stages, panels, out, smooth=5,
                       title='EdgeConnect CPU recipe: training batches (stages 1-2: 64x64 crops, 3-4: 128x128), '
                             'moving average of 5 logs')
  print(f'wrote {out}')


def comparison(ec_workdir: pathlib.Path, flist: pathlib.Path, final_eval: dict, out: pathlib.Path) -> None:
  import numpy as np  # pylint: disable=import-outside-toplevel
  from jaxinpaint import edges, evaluation, figures  # pylint: disable=import-outside-toplevel
  cases = _common.ComparisonCases(flist, masks=_MASKS.value, size=_SIZE.value, seed=_SEED.value, limit=_LIMIT.value,
                                  masks_per_image=_MASKS_PER_IMAGE.value, per_image=final_eval['per_image'],
                                  model_name='EdgeConnect', num=_NUM_CASES.value)
  images, masks = cases.images, cases.masks
  inputs = images * masks  # holes zeroed, as scored
  ec_predict, _ = evaluation.load_predictor('edgeconnect', checkpoint=str(ec_workdir), seed=_SEED.value)
  ec = ec_predict(inputs, masks)
  pconv_predict, _ = evaluation.load_predictor('pconv', checkpoint=_PCONV.value, seed=_SEED.value)
  telea_predict, _ = evaluation.load_predictor('telea', seed=_SEED.value)
  known = edges.canny_batch(images, sigma=2.0, masks=masks)
  cols = [[figures.holed(im, m) for im, m in zip(images, masks)],
          [figures.edge_picture(e, m) for e, m in zip(known, masks)],
          [figures.edge_picture(e, m) for e, m in zip(np.asarray(ec['edge']), masks)],
          cases.composites(ec['image']), cases.composites(pconv_predict(inputs, masks)),
          cases.composites(telea_predict(inputs, masks)), list(images)]
  columns = ['input', 'known-region Canny', 'G1 edges (red)', 'EdgeConnect', 'PConv', 'Telea', 'ground truth']
  cases.draw(cols, columns, out)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.ERROR)
  from jaxinpaint import evaluation  # pylint: disable=import-outside-toplevel
  workdirs = [pathlib.Path(w).absolute() for w in _WORKDIRS.value]
  eval_dir = pathlib.Path(_EVAL_DIR.value)
  out_dir = pathlib.Path(_OUT_DIR.value)
  try:
    if len(workdirs) != 4:
      raise ValueError(f'--workdirs: expected the 4 stage workdirs, got {len(workdirs)}')
    for w in workdirs:
      _common.checkpoint_steps(w)  # a clear error for a missing or empty workdir
    flist = _common.write_flist(_IMAGE_FOLDERS.value, eval_dir / 'eval.flist')
    stages = {k: ensure_eval('edgeconnect', eval_dir / f'edgeconnect_{w.name}', flist, checkpoint=str(w))
              for k, w in enumerate(workdirs, start=1)}
    pconv = ensure_eval('pconv', eval_dir / f'pconv_{pathlib.Path(_PCONV.value).name}', flist,
                        checkpoint=_PCONV.value, canny_edges=True)
    classical = {b: ensure_eval(b, eval_dir / b, flist, canny_edges=True) for b in _BASELINES.value}

    final = stages[4]
    image_table = evaluation.comparison_table(
        [labelled(stages[s], f'EdgeConnect stage {s}') for s in (2, 3, 4)]
        + [labelled(pconv, 'PConv')] + [labelled(v, _TITLES.get(k, k)) for k, v in classical.items()])
    edge_table = evaluation.comparison_table(
        [labelled(stages[s], f'EdgeConnect G1 after stage {s}') for s in (1, 4)]
        + [labelled(pconv, 'Canny of PConv')] + [labelled(v, f'Canny of {_TITLES.get(k, k)}')
                                                 for k, v in classical.items()],
        metrics_keys=('edge_precision', 'edge_recall', 'edge_f1'))
    verdict = wins(final, {_TITLES.get(k, k): v for k, v in classical.items()})
    verdict_pconv = wins(final, {'PConv': pconv})
    text = (f'{image_table}\n{edge_table}\nEdgeConnect (stage 4) against the classical methods:\n'
            + '\n'.join(verdict) + '\nEdgeConnect (stage 4) against PConv:\n' + '\n'.join(verdict_pconv) + '\n')
    print(text)
    if _TABLE.value:
      pathlib.Path(_TABLE.value).write_text(text)
    curves(workdirs, out_dir / 'edgeconnect_curves.png')
    comparison(workdirs[-1], flist, final, out_dir / 'edgeconnect_comparison.png')
  except (ValueError, FileNotFoundError, ImportError) as e:
    print(f'edgeconnect_report.py: error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  cli.exit_with_help_if_asked(sys.argv, __doc__)
  app.run(main)
