"""Exports a training workdir as a shipped model: `NAME.npz` (inference weights + metadata) and `NAME.md` (card).

  python -m jaxinpaint.pretrained export --workdir runs/pconv_cpu_hour_ft --name pconv_cpu_hour \\
      --eval-results results/pconv_cpu_hour/results.json

`export(...)` restores the latest checkpoint (`jaxinpaint.predictor.from_checkpoint`), keeps
`task.inference_state` (no optimiser state, no discriminators), casts the floating leaves to the storage
dtype, measures what that costs (max / mean |output difference| between the float32 checkpoint and the stored
weights on `pretrained.fixed_input`), records the stored model's fingerprint on the same input, reads the
written file back and checks that it reproduces the fingerprint exactly, and writes both files atomically
(temporary files renamed into place only once both are complete: a failed export leaves nothing behind).
Paths in the metadata and the card (checkpoint, training images, `init_from`) are relative to the directory
the export runs in -- the repository root for the shipped models --, never the exporting machine's absolute
paths.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import re
from typing import Any, Sequence

import jax
import numpy as np

from jaxinpaint import evaluation
from jaxinpaint import predictor
from jaxinpaint import pretrained

# The card's data terms when the training images have no SOURCES.md beside them.
_NO_SOURCES = ('No SOURCES.md was found beside the training images, so their provenance and terms are not '
               'recorded here; state them before distributing this model.')


def _storage_effect(reference: dict[str, np.ndarray], stored: dict[str, np.ndarray],
                    masks: np.ndarray) -> dict[str, Any]:
  """Per output key: max and mean |difference| of the raw outputs, and the max inside the holes (what a
  composite shows)."""
  hole = masks[..., 0] < 0.5
  out = {}
  for key in sorted(reference):
    diff = np.abs(reference[key] - stored[key])
    out[key] = {'max_abs': float(diff.max()), 'mean_abs': float(diff.mean(dtype=np.float64)),
                'max_abs_in_holes': float(diff[hole].max())}
  return out


def _round_up(x: float, digits: int = 2) -> float:
  """`x` rounded up to `digits` significant digits (a bound that stays a bound when printed)."""
  if x <= 0.0:
    return 0.0
  quantum = 10.0 ** (math.floor(math.log10(x)) - digits + 1)
  return float(f'{math.ceil(x / quantum) * quantum:.{digits}g}')


def _portable(value: Any) -> Any:
  """`value` with every absolute path string made relative to the working directory (recursing into dicts and
  lists): a shipped model records where it came from as the recipe's commands name it (`runs/...`,
  `../shared/data/...`), not as the exporting machine's absolute paths."""
  if isinstance(value, dict):
    return {k: _portable(v) for k, v in value.items()}
  if isinstance(value, list):
    return [_portable(v) for v in value]
  if isinstance(value, str) and os.path.isabs(value):
    try:
      return os.path.relpath(value)
    except ValueError:  # another drive (Windows): no relative form
      return value
  return value


def _parameter_count(state: Any) -> tuple[int, int]:
  """(trainable parameters: leaves under a 'params' collection, all stored values)."""
  arrays = pretrained.flatten(state)
  params = sum(a.size for k, a in arrays.items() if 'params' in k.split('/'))
  return int(params), int(sum(a.size for a in arrays.values()))


def _training_chain(config: Any) -> list[str]:
  """The training runs the model descends from: this config's workdir chain through `init_from`."""
  chain = []
  seen = set()
  source = config.get('init_from') or ''
  while source and source not in seen and len(chain) < 10:
    seen.add(source)
    try:
      parent = predictor.from_checkpoint(source)
    except (FileNotFoundError, ValueError) as e:
      chain.append(f'`{_portable(source)}` (not readable here: {e})')
      break
    chain.append(f'`{_portable(source)}`: step {parent.info["step"]}, image size {parent.info["image_size"]}')
    source = parent.info['config'].get('init_from') or ''
  return chain


def _data_sources(images_spec: str) -> str:
  """The SOURCES.md beside the training images (the folder or one of its parents, up to two levels)."""
  if not images_spec or ':' in images_spec.split('/')[0]:
    return ''
  folder = pathlib.Path(images_spec).expanduser()
  for candidate in (folder, folder.parent, folder.parent.parent):
    if (candidate / 'SOURCES.md').is_file():
      return (candidate / 'SOURCES.md').read_text().strip()
  return ''


def _evaluation_section(results: dict[str, Any] | None, where: str | None, *, step: int, kind: str,
                        name: str) -> str:
  if results is None:
    return ('Not evaluated at export (pass `--eval-results OUT/results.json` from `evaluate.py`). Evaluate with:\n\n'
            f'    python evaluate.py --method {kind} --checkpoint {name} --images DIR --masks DIR --size 256 '
            '--out OUT\n')
  rows = [r for r in results.get('rows', []) if r.get('border', evaluation.ALL) == evaluation.ALL]
  if not rows:
    raise ValueError(f'--eval-results {where}: no result rows (expected a results.json written by evaluate.py)')
  setup = results.get('setup') or {}
  lines = [f'From `{where}` (`evaluate.py`; scores on the composite, known pixels are the ground truth).']
  if setup:
    lines.append('')
    lines.append('    ' + evaluation.command_line(setup))
    if setup.get('method') not in (None, kind):
      raise ValueError(f'--eval-results {where} scored method {setup["method"]!r}, but the exported model is {kind!r}')
    model_step = (setup.get('model') or {}).get('step')
    if model_step is not None and int(model_step) != int(step):
      raise ValueError(f'--eval-results {where} scored step {model_step}, but the exported checkpoint is step {step}')
  lines += ['', evaluation.markdown_table(rows)]
  return '\n'.join(lines) + '\n'


def _card(*, name: str, loaded: predictor.Loaded, meta: dict[str, Any], state: Any, recipe: Sequence[str],
          evaluation_text: str) -> str:
  task, info = loaded.task, loaded.info
  config = info['config']
  params, values = _parameter_count(state)
  arch = config.get(task.name)  # the model's own config section, if it has one
  arch_text = json.dumps(arch.to_dict() if hasattr(arch, 'to_dict') else arch, indent=2, sort_keys=True)
  images_spec = str(config.get('images', ''))
  sources = _data_sources(images_spec) or _NO_SOURCES
  images_spec = _portable(images_spec)
  chain = _training_chain(config)
  effect_rows = ['| output | max abs difference | mean abs difference | max abs difference in the holes |',
                 '|---|---|---|---|']
  for key, e in meta['storage_effect'].items():
    effect_rows.append(f'| {key} | {e["max_abs"]:.3g} | {e["mean_abs"]:.3g} | {e["max_abs_in_holes"]:.3g} |')
  fp = meta['fingerprint']
  tolerance = pretrained.fingerprint_tolerance(meta)
  bf16_note = ', the bound for bfloat16 compute' if tolerance == pretrained.FINGERPRINT_ATOL_BF16 else ''
  fp_text = '\n'.join(f'- {key}: mean {v["mean"]:.6f}, std {v["std"]:.6f}, min {v["min"]:.6f}, max {v["max"]:.6f}'
                      for key, v in fp.items())
  recipe_text = '\n'.join(f'    {line}' for line in recipe) if recipe else (
      '    (the commands were not given to the export; the training config is below)')
  sections = [
      f'# {name}: {info["label"]}\n',
      f'A `{task.name}` model trained with jaxinpaint: `Inpainter.from_pretrained({name!r})`, '
      f'`python -m jaxinpaint.inpaint --pretrained {name} ...`, or '
      f'`python evaluate.py --method {task.name} --checkpoint {name} ...`.\n',
      '## Model\n',
      f'- Architecture: {info["label"]} (`config.model = {task.name!r}`), input height and width multiples of '
      f'{info["required_multiple"]} (other sizes are padded by `Inpainter`).',
      f'- Parameters: {params:,} trainable ({values:,} stored values with the normalisation statistics).',
      f'- Trained at {info["image_size"]} x {info["image_size"]} for {info["step"]} steps (this run).',
      f'- Exported from: `{meta["source_checkpoint"]}` (step {meta["step"]}).\n',
      f'Network configuration (`config.{task.name}`):\n',
      '```json\n' + arch_text + '\n```\n',
      '## Training data\n',
      f'- Images: `{images_spec}`',
      f'- Masks: `{config.get("masks", "")}`',
      f'- Held-out images for the validation loss: `{config.get("eval_images", "")}`\n',
      'The weights are derived from these photographs and inherit their terms (research / non-commercial '
      'use where the data says so):\n',
      '\n'.join('> ' + line if line else '>' for line in sources.splitlines()) + '\n',
      '## Training recipe\n',
      recipe_text + '\n',
      ('Runs this model continues (`config.init_from`):\n\n' + '\n'.join(f'- {c}' for c in chain) + '\n') if chain
      else '',
      '<details><summary>Full training config</summary>\n',
      '```json\n' + json.dumps(meta['config'], indent=2, sort_keys=True) + '\n```\n',
      '</details>\n',
      '## Evaluation\n',
      evaluation_text,
      '## Storage\n',
      f'Weights stored as {meta["storage_dtype"]} (loaded as float32). Effect on the outputs against the float32 '
      f'checkpoint, on the fixed input of `jaxinpaint.pretrained.fixed_input` ({meta["fixed_input"]}), values '
      'in [0, 1]:\n',
      '\n'.join(effect_rows) + '\n',
      f'Tolerance: outputs of this file are within {meta["tolerance"]:g} of the float32 checkpoint on that input.\n',
      '## Fingerprint\n',
      'The stored model\'s outputs on the fixed input (`tests/test_pretrained.py` recomputes them, tolerance '
      f'{tolerance:g}{bf16_note}):\n',
      fp_text + '\n',
  ]
  return '\n'.join(s for s in sections if s != '')


def _check_name(name: str) -> None:
  if not pretrained.is_name(name) or not re.match(r'^[A-Za-z0-9_]+$', name):
    raise ValueError(f'--name must be letters, digits and underscores (e.g. {pretrained.DEFAULT!r}), got {name!r}')


def _replace_all(pairs: list[tuple[pathlib.Path, pathlib.Path]]) -> None:
  for tmp, final in pairs:
    os.replace(tmp, final)


def export(workdir: str | os.PathLike, *, name: str, out_dir: str | os.PathLike | None = None,
           dtype: str = 'float16', eval_results: str | os.PathLike | None = None,
           recipe: Sequence[str] = ()) -> dict[str, Any]:
  """Writes `out_dir/NAME.npz` and `out_dir/NAME.md` from the latest checkpoint of `workdir`.

  Args:
    workdir: training workdir (or a checkpoints/<step> directory).
    name: the model's name (letters, digits, underscores).
    out_dir: where to write (default: the package's directory, i.e. shipped with the package).
    dtype: storage dtype of the floating weights: float16 (default), bfloat16 or float32.
    eval_results: a results.json (or its folder) from `evaluate.py` on this model; fills the card's table.
    recipe: the commands that trained the model, shown in the card.

  Returns:
    {'npz': path, 'card': path, 'meta': the metadata stored in the .npz}.

  Raises:
    FileNotFoundError / ValueError: bad workdir, name, dtype or evaluation results (one line each).
  """
  _check_name(name)
  if dtype not in pretrained.STORAGE_DTYPES:
    raise ValueError(f'--dtype must be one of {", ".join(pretrained.STORAGE_DTYPES)}, got {dtype!r}')
  results = evaluation.load_results(eval_results) if eval_results else None
  out_dir = pathlib.Path(out_dir) if out_dir is not None else pretrained.PACKAGE_DIR
  if not out_dir.is_dir():
    raise FileNotFoundError(f'--out-dir {out_dir} is not a directory')
  loaded = predictor.from_checkpoint(workdir)
  task = loaded.task
  state32 = jax.device_get(task.inference_state(loaded.state))
  arrays32 = pretrained.flatten(state32)
  encoded = pretrained.encode(arrays32, dtype)
  like = pretrained.abstract_inference_state(task)
  stored_state = pretrained.unflatten(pretrained.decode(encoded, dtype), like, where=f'the {dtype} weights')

  images, masks = pretrained.fixed_input(task.required_multiple())
  reference = pretrained.outputs(task, state32, images, masks)
  stored = pretrained.outputs(task, stored_state, images, masks)
  effect = _storage_effect(reference, stored, masks)
  tolerance = _round_up(max(e['max_abs'] for e in effect.values()))
  step = int(loaded.info['step'])
  meta = {
      'format': pretrained.FORMAT, 'name': name, 'model': task.name, 'label': task.label, 'step': step,
      'source_checkpoint': _portable(str(loaded.info['checkpoint'])), 'storage_dtype': dtype,
      'config': _portable(json.loads(task.config.to_json_best_effort())),
      'fixed_input': f'{images.shape[0]} images of {images.shape[1]}x{images.shape[2]}',
      'storage_effect': effect, 'tolerance': tolerance, 'fingerprint': pretrained.fingerprint(stored),
  }
  evaluation_text = _evaluation_section(results, str(eval_results) if eval_results else None, step=step,
                                       kind=task.name, name=name)
  card = _card(name=name, loaded=loaded, meta=meta, state=state32, recipe=recipe, evaluation_text=evaluation_text)

  final_npz, final_md = out_dir / f'{name}.npz', out_dir / f'{name}.md'
  tmp_npz = out_dir / f'.{name}.npz.tmp{os.getpid()}'
  tmp_md = out_dir / f'.{name}.md.tmp{os.getpid()}'
  try:
    with open(tmp_npz, 'wb') as f:  # a file object: np.savez would append .npz to a path
      np.savez(f, **encoded, **{pretrained.META_KEY: np.asarray(json.dumps(meta))})
    tmp_md.write_text(card)
    # The file as written must reproduce the fingerprint exactly (same weights, input and computation).
    difference = pretrained.fingerprint_difference(*pretrained.recompute_fingerprint(tmp_npz))
    if difference != 0.0:
      raise ValueError(f'{name}: the written file does not reproduce its fingerprint (difference {difference:g})')
    _replace_all([(tmp_npz, final_npz), (tmp_md, final_md)])
  finally:
    tmp_npz.unlink(missing_ok=True)
    tmp_md.unlink(missing_ok=True)
  return {'npz': final_npz, 'card': final_md, 'meta': meta}
