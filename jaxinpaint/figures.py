"""Quality pictures for docs/quality.md: a learning curve and a side-by-side comparison grid.

* `learning_curve`: PSNR and SSIM per hole-ratio bucket of a model's checkpoints against training cost
  (CPU-minutes), with classical baselines (Telea, NS, PatchMatch) drawn as horizontal lines at their
  level in the same bucket. Scores come from `evaluate.py`'s results.json (`jaxinpaint.evaluation`), so
  the curve shows exactly the paper-style numbers of the table (composite, per NVIDIA bucket).
* `comparison_grid`: rows of equally sized images, one column per method (input | Telea | NS |
  PatchMatch | PConv | ground truth), with column titles and a per-row label (bucket, PSNR).
* `select_cases`: a deterministic, non-cherry-picked choice of evaluation pairs for the grid: the first
  pair of each bucket in pairing order, preferring images not shown yet.
* `stage_curves`: training metrics of consecutive runs (EdgeConnect's four stages) against cumulative
  minutes, one panel per metric, smoothed, each stage in its own colour.
* `edge_picture`: an edge map as shown in the EdgeConnect figure (known edges black, hole edges red).
* `training_minutes`: training cost per logged step from a workdir's metrics.jsonl (wall clock), or from
  a CPU-time log (`unix_time cpu_seconds` lines sampled from /proc/PID/stat while training).

Matplotlib (Agg backend) only; no JAX import, so the figures can be redrawn anywhere.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
from typing import Any, Mapping, Sequence

import numpy as np

ALL = 'all'
_BUCKET_RE = re.compile(r'^\(\s*([0-9.]+)\s*,\s*([0-9.]+)\s*\]$')


def bucket_key(label: str) -> float:
  """Sort key of a bucket label '(0.1,0.2]' (its lower bound); 'all' sorts last."""
  m = _BUCKET_RE.match(str(label))
  return float(m.group(1)) if m else float('inf')


def load_rows(results: str | os.PathLike | Mapping[str, Any]) -> dict[str, dict[str, Any]]:
  """Per-bucket rows (border = all) of an evaluate.py results.json (path, its folder, or the parsed dict).

  Returns:
    {bucket label or 'all': row dict with 'count', 'l1', 'psnr', 'ssim' (, 'fid')}.

  Raises:
    FileNotFoundError: no results.json there.
    ValueError: the JSON has no 'rows' list.
  """
  if not isinstance(results, Mapping):
    path = pathlib.Path(results)
    if path.is_dir():
      path = path / 'results.json'
    if not path.is_file():
      raise FileNotFoundError(f'results: {str(path)!r} does not exist (expected an evaluate.py results.json)')
    results = json.loads(path.read_text())
  rows = results.get('rows')
  if not isinstance(rows, list):
    raise ValueError("results: expected evaluate.py's results.json with a 'rows' list")
  return {r['bucket']: r for r in rows if r.get('border', ALL) == ALL}


def read_cpu_log(path: str | os.PathLike) -> np.ndarray:
  """(K, 2) array of (unix_time, cpu_seconds) from a monitor log ('TIME CPU_SECONDS' per line)."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f'cpu_log: {str(path)!r} does not exist')
  vals = []
  for line in path.read_text().splitlines():
    parts = line.split()
    if len(parts) == 2:
      vals.append((float(parts[0]), float(parts[1])))
  if not vals:
    raise ValueError(f'cpu_log: {str(path)!r} has no "unix_time cpu_seconds" lines')
  return np.asarray(sorted(vals), np.float64)


def training_minutes(workdir: str | os.PathLike, *, cpu_log: str | os.PathLike | None = None,
                     start_time: float | None = None) -> dict[int, float]:
  """Training cost in minutes at every step logged in `workdir/metrics.jsonl`.

  Wall clock: minutes since `start_time` (default: the mtime of `workdir/config.json`, written when the
  run starts, so compilation counts). With `cpu_log`: the trainer process' CPU time (user + sys, all
  cores) interpolated at each record's wall time, i.e. CPU-minutes, which on a shared machine measure the
  work done better than the wall clock.

  Returns:
    {step: minutes}, for the 'train' and 'eval' records (the last time seen per step).
  """
  workdir = pathlib.Path(workdir)
  metrics = workdir / 'metrics.jsonl'
  if not metrics.is_file():
    raise FileNotFoundError(f'workdir: {str(metrics)!r} does not exist (expected a train.py workdir)')
  times: dict[int, float] = {}
  for line in metrics.read_text().splitlines():
    if not line.strip():
      continue
    rec = json.loads(line)
    if 'step' in rec and 'time' in rec:
      times[int(rec['step'])] = float(rec['time'])
  if not times:
    raise ValueError(f'workdir: {str(metrics)!r} has no records with step and time')
  if cpu_log is not None:
    log = read_cpu_log(cpu_log)
    return {s: float(np.interp(t, log[:, 0], log[:, 1])) / 60.0 for s, t in sorted(times.items())}
  if start_time is None:
    cfg = workdir / 'config.json'
    start_time = cfg.stat().st_mtime if cfg.is_file() else min(times.values())
  return {s: (t - start_time) / 60.0 for s, t in sorted(times.items())}


def _buckets(*row_sets: Mapping[str, Any]) -> list[str]:
  labels = set()
  for rows in row_sets:
    labels.update(k for k in rows if k != ALL)
  return sorted(labels, key=bucket_key)


def _pyplot():
  """matplotlib.pyplot on the file-only Agg backend (imported on first use: plotting is optional)."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  return plt


def _save(fig, path: str | os.PathLike, *, title: str | None) -> pathlib.Path:
  """Titles `fig` (if `title`), writes it to `path` (creating its folder) and closes it; returns the path."""
  if title:
    fig.suptitle(title, fontsize=10)
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=110)
  _pyplot().close(fig)
  return path


def learning_curve(curve: Sequence[tuple[float, Mapping[str, Mapping[str, Any]]]],
                   baselines: Mapping[str, Mapping[str, Mapping[str, Any]]], path: str | os.PathLike, *,
                   model_name: str = 'PConv', xlabel: str = 'training CPU-minutes',
                   metrics: Sequence[str] = ('psnr', 'ssim'), title: str | None = None) -> pathlib.Path:
  """Draws the learning-curve PNG: one panel per (metric, bucket), curve vs cost, baselines as lines.

  Args:
    curve: (cost in minutes, rows from `load_rows`) per checkpoint; sorted by cost here.
    baselines: {name: rows} drawn as horizontal lines (e.g. telea, ns, patchmatch).
    path: output PNG.
    model_name: legend name of the curve.
    xlabel: x-axis label.
    metrics: row keys to plot (one figure row each).
    title: optional figure title.

  Returns:
    The written path.
  """
  plt = _pyplot()

  if not curve:
    raise ValueError('curve: expected at least one (minutes, rows) point')
  curve = sorted(curve, key=lambda p: p[0])
  buckets = _buckets(*(rows for _, rows in curve), *baselines.values()) + [ALL]
  names = {'psnr': 'PSNR (dB)', 'ssim': 'SSIM', 'l1': 'L1 (%)'}
  colors = ['tab:orange', 'tab:green', 'tab:purple', 'tab:brown', 'tab:gray']
  fig, axes = plt.subplots(len(metrics), len(buckets), figsize=(2.3 * len(buckets), 2.3 * len(metrics) + 0.6),
                           squeeze=False, constrained_layout=True)
  xs = np.asarray([p[0] for p in curve])
  for i, metric in enumerate(metrics):
    for j, b in enumerate(buckets):
      ax = axes[i, j]
      ys = np.asarray([rows.get(b, {}).get(metric, np.nan) for _, rows in curve], np.float64)
      ax.plot(xs, ys, 'o-', color='tab:blue', ms=3, lw=1.5, label=model_name)
      for k, (name, rows) in enumerate(baselines.items()):
        if b in rows and rows[b].get(metric) is not None:
          ax.axhline(float(rows[b][metric]), color=colors[k % len(colors)], ls='--', lw=1.2, label=name)
      if i == 0:
        ax.set_title(f'holes {b}' if b != ALL else 'all pairs', fontsize=9)
      if j == 0:
        ax.set_ylabel(names.get(metric, metric))
      ax.tick_params(labelsize=7)
      ax.grid(alpha=0.3)
  handles, labels = axes[0, 0].get_legend_handles_labels()
  fig.legend(handles, labels, loc='outside right upper', fontsize=8)
  fig.supxlabel(xlabel, fontsize=9)
  return _save(fig, path, title=title)


def select_cases(buckets: Sequence[str], image_ids: Sequence[Any], *, num: int = 6) -> list[int]:
  """Deterministic pick of `num` pair indices spread over the buckets (no look at any method's output).

  Round-robin over the buckets in ascending order; in each bucket the first pair (in pairing order) whose
  image was not picked yet, else the first unused pair.

  Args:
    buckets: bucket label of every pair.
    image_ids: image identity of every pair (e.g. its path).
    num: how many to pick (fewer if there are fewer pairs).

  Returns:
    Pair indices, ordered by bucket.
  """
  if len(buckets) != len(image_ids):
    raise ValueError(f'buckets and image_ids must have the same length, got {len(buckets)} and {len(image_ids)}')
  order = sorted(set(buckets), key=bucket_key)
  by_bucket = {b: [i for i, x in enumerate(buckets) if x == b] for b in order}
  chosen: list[int] = []
  seen: set[Any] = set()
  while len(chosen) < min(num, len(buckets)):
    progress = False
    for b in order:
      if len(chosen) >= num:
        break
      free = [i for i in by_bucket[b] if i not in chosen]
      if not free:
        continue
      fresh = [i for i in free if image_ids[i] not in seen]
      pick = (fresh or free)[0]
      chosen.append(pick)
      seen.add(image_ids[pick])
      progress = True
    if not progress:
      break
  return sorted(chosen, key=lambda i: (bucket_key(buckets[i]), i))


def holed(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """The masked input as shown to a user: known pixels, holes white. image HxWx3, mask HxW(x1), 1 = valid."""
  m = np.asarray(mask, np.float32).reshape(image.shape[:2] + (1,))
  return np.asarray(image, np.float32) * m + (1.0 - m)


def comparison_grid(rows: Sequence[Sequence[np.ndarray]], columns: Sequence[str], path: str | os.PathLike, *,
                    row_labels: Sequence[str] | None = None, title: str | None = None) -> pathlib.Path:
  """Draws a grid of images (rows x columns, HxWx3 float in [0, 1]) with column titles and row labels.

  Raises:
    ValueError: a row with a different number of images than `columns`.
  """
  plt = _pyplot()

  if not rows:
    raise ValueError('rows: expected at least one row of images')
  for r, row in enumerate(rows):
    if len(row) != len(columns):
      raise ValueError(f'rows[{r}] has {len(row)} images but there are {len(columns)} columns')
  if row_labels is not None and len(row_labels) != len(rows):
    raise ValueError(f'row_labels has {len(row_labels)} entries for {len(rows)} rows')
  fig, axes = plt.subplots(len(rows), len(columns), figsize=(1.9 * len(columns), 1.9 * len(rows) + 0.4),
                           squeeze=False, constrained_layout=True)
  for r, row in enumerate(rows):
    for c, img in enumerate(row):
      ax = axes[r, c]
      ax.imshow(np.clip(np.asarray(img, np.float32), 0.0, 1.0), interpolation='nearest')
      ax.set_xticks([])
      ax.set_yticks([])
      if r == 0:
        ax.set_title(columns[c], fontsize=9)
      if c == 0 and row_labels is not None:
        ax.set_ylabel(row_labels[r], fontsize=7)
  return _save(fig, path, title=title)


def stage_curves(stages: Sequence[tuple[str, Sequence[Mapping[str, Any]]]],
                 panels: Sequence[tuple[str, Sequence[str]]], path: str | os.PathLike, *, smooth: int = 5,
                 title: str | None = None) -> pathlib.Path:
  """Draws the training metrics of consecutive runs against cumulative wall-clock minutes.

  Args:
    stages: (name, metrics.jsonl records) per run, in training order; each run's minutes start where the
      previous one's ended (its own time from its first to its last record, compilation excluded).
    panels: (panel title, record keys) per panel; a key missing from a stage's records is skipped there.
    path: output PNG.
    smooth: moving-average window (in logged records) of the 'train' records; 1 = raw.
    title: optional figure title.

  Returns:
    The written path.
  """
  plt = _pyplot()
  if not stages:
    raise ValueError('stages: expected at least one (name, records) run')
  if smooth < 1:
    raise ValueError(f'smooth must be >= 1, got {smooth}')
  fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.2), squeeze=False,
                           constrained_layout=True)
  colors = ['tab:blue', 'tab:orange', 'tab:green', 'tab:red', 'tab:purple', 'tab:brown']
  styles = ['-', '--', ':', '-.']
  offset = 0.0
  for k, (name, records) in enumerate(stages):
    train = [r for r in records if r.get('split') == 'train' and 'time' in r]
    if not train:
      raise ValueError(f'stages[{k}] ({name}): no train records with a time')
    t0 = min(r['time'] for r in train)
    minutes = np.asarray([offset + (r['time'] - t0) / 60.0 for r in train])
    for ax, (_, keys) in zip(axes[0], panels):
      for j, key in enumerate(keys):
        ys = np.asarray([r.get(key, np.nan) for r in train], np.float64)
        if np.all(np.isnan(ys)):
          continue
        if smooth > 1 and len(ys) >= smooth:
          kernel = np.ones(smooth) / smooth
          ys = np.convolve(ys, kernel, mode='valid')  # a window with a missing record is a gap, not a dip
          xs = minutes[smooth - 1:]
        else:
          xs = minutes
        ax.plot(xs, ys, styles[j % len(styles)], color=colors[k % len(colors)], lw=1.3, label=f'{name}: {key}')
    offset = float(minutes[-1])
    for ax in axes[0]:
      ax.axvline(offset, color='0.7', lw=0.8)
  for ax, (panel_title, _) in zip(axes[0], panels):
    ax.set_title(panel_title, fontsize=9)
    ax.set_xlabel('training minutes (wall clock, cumulative)', fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize=6)
  return _save(fig, path, title=title)


def edge_picture(edges: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """An edge map as an RGB picture: white paper, edges of the known region black, hole grey with its edges red.

  Args:
    edges: HxW(x1) in [0, 1] (an edge is a value above 0.5, as EdgeConnect's metric binarises).
    mask: HxW(x1), 1 = known, 0 = hole.

  Returns:
    float32 HxWx3 in [0, 1].
  """
  e = np.asarray(edges, np.float32).reshape(np.shape(edges)[:2]) > 0.5
  hole = np.asarray(mask, np.float32).reshape(e.shape) <= 0.5
  out = np.ones(e.shape + (3,), np.float32)
  out[hole] = 0.9
  out[e & ~hole] = 0.0
  out[e & hole] = (0.85, 0.1, 0.1)
  return out
