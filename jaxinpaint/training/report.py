"""The end-of-training report: the final checkpoint scored on held-out images, as `evaluate.py` scores it.

`evaluate_checkpoint(config, workdir)` restores the latest checkpoint (`jaxinpaint.predictor`), pairs the
held-out images with masks (`jaxinpaint.data.create_eval_pairs`; `config.final_eval_repeats` masks per
image), scores the composite per hole-ratio bucket (`jaxinpaint.evaluation`) and writes:

  * `workdir/eval/`: results.md, results.json, worst.png, best.png (the evaluator's files);
  * `workdir/eval_results.json`: the overall L1 (%), PSNR and SSIM (and, with
    `config.final_eval_baseline`, a classical method's on the same pairs);
  * `workdir/eval_samples.png`: masked input | output | composite | ground truth (labelled columns), one
    row per pair, taken round-robin over the held-out photos (`sample_pairs`).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxinpaint import baselines
from jaxinpaint import data
from jaxinpaint import evaluation
from jaxinpaint import losses
from jaxinpaint import predictor
from jaxinpaint.training import observe

Config = ml_collections.ConfigDict


def _overall(results: evaluation.EvalResults) -> dict[str, float]:
  row = results.row()
  return {'l1_percent': float(row['l1']), 'psnr': float(row['psnr']), 'ssim': float(row['ssim'])}


def sample_pairs(pairs: list[data.EvalPair], n: int) -> list[data.EvalPair]:
  """Up to `n` pairs for a picture, round-robin over the images: each photo's first mask, then each one's
  second, ... (evaluation pairs list one photo's masks in a row, so a prefix would show one photo)."""
  seen: dict[str, int] = {}
  rank = []  # (how many earlier pairs share this pair's photo, position)
  for i, pair in enumerate(pairs):
    rank.append((seen.get(pair.image_path, 0), i))
    seen[pair.image_path] = rank[-1][0] + 1
  return [pairs[i] for _, i in sorted(rank)[:n]]


def evaluate_checkpoint(config: Config, workdir: str | pathlib.Path) -> dict[str, Any]:
  """Evaluates the latest checkpoint of `workdir` on `config.eval_images` (see the module docstring).

  Returns:
    {'eval': the eval_results.json dict, 'eval_path', 'eval_sample_path', 'eval_table_path'}.
  """
  workdir = pathlib.Path(workdir)
  batch_size = int(config.batch_size)
  predict, info = predictor.restore_predictor(workdir, batch_size=batch_size)
  images_spec = config.eval_images
  repeats = int(config.get('final_eval_repeats') or 1)
  if repeats > 1:  # few held-out photos: each one with several different masks
    images_spec = evaluation.repeated_source(config.eval_images, repeats)
  pairs = data.create_eval_pairs(images=images_spec, masks=config.get('eval_masks') or config.masks,
                                 image_size=config.image_size, seed=int(config.seed) + 1,
                                 limit=config.get('final_eval_limit'))
  res = evaluation.evaluate(predict, pairs, batch_size=batch_size, progress=False, method=info['model'])
  results: dict[str, Any] = {'checkpoint': info['checkpoint'], 'num_images': len(pairs),
                             'hole_fraction': float(np.mean([1.0 - np.mean(p.mask) for p in pairs])),
                             **_overall(res)}
  if config.get('final_eval_baseline'):  # a classical method on the same pairs, for scale
    name = str(config.final_eval_baseline)
    base = evaluation.evaluate(baselines.get_predictor(name), pairs, batch_size=batch_size, progress=False,
                               method=name)
    results[f'baseline_{name}'] = _overall(base)
  out: dict[str, Any] = {'eval': results, 'eval_path': str(workdir / 'eval_results.json'),
                         'eval_sample_path': str(workdir / 'eval_samples.png')}
  if jax.process_index() == 0:
    out['eval_table_path'] = str(evaluation.write_results(res, workdir / 'eval')['markdown'])
    pathlib.Path(out['eval_path']).write_text(json.dumps(results, indent=2))
    shown = sample_pairs(pairs, 8)
    images = np.stack([p.image for p in shown]).astype(np.float32)
    masks = np.stack([p.mask for p in shown]).astype(np.float32)[..., None]
    outputs = np.clip(predict(images * masks, masks), 0.0, 1.0)
    grid = observe.image_grid({'masked input': images * masks + (1.0 - masks), 'output': outputs,
                               'composite': np.asarray(losses.composite(outputs, images, masks)),
                               'ground truth': images}, labels=True)
    observe.save_png(pathlib.Path(out['eval_sample_path']), grid)
  return out
