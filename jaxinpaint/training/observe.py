"""What a person watching a run sees: progress bar, metrics.jsonl, TensorBoard, PNG grids, loss curve.

Only process 0 writes. Files in the workdir:
  * `metrics.jsonl`: one JSON object per line, `{"step", "split": "train"|"eval", <every loss term>,
    "lr", "images_per_sec", ...}`;
  * `tensorboard/` scalars when the `tensorboard` package is importable (written through
    `torch.utils.tensorboard` or, failing that, `tf.summary`); nothing otherwise;
  * `samples/step_XXXXXXX.png` and `samples/latest.png`: the panels the task draws (masked input | output |
    composite | ground truth), their names above the columns, one row per distinct held-out pair (or
    training example when there is no held-out set);
  * `loss_curve.png`: training (and validation) loss against step, log scale.
"""

from __future__ import annotations

import json
import pathlib
import sys
import time
from typing import Any, Mapping, Sequence

import numpy as np


def _tensorboard_writer(logdir: pathlib.Path):
  """A SummaryWriter-like object when TensorBoard is installed, else None."""
  try:
    import tensorboard  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
  except ImportError:
    return None
  try:
    from torch.utils.tensorboard import SummaryWriter  # pylint: disable=import-outside-toplevel
    return SummaryWriter(str(logdir))
  except Exception:  # pylint: disable=broad-except
    pass
  try:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    writer = tf.summary.create_file_writer(str(logdir))

    class _TFWriter:
      def add_scalar(self, tag, value, step):
        with writer.as_default():
          tf.summary.scalar(tag, value, step=step)

      def flush(self):
        writer.flush()

      def close(self):
        writer.close()

    return _TFWriter()
  except Exception:  # pylint: disable=broad-except
    return None


def distinct_rows(panels: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """`panels` without the examples that repeat an earlier one in every panel.

  Held-out batches are padded to the batch size by repeating their pairs (three held-out photos fill a
  batch of 8); a picture shows each pair once.
  """
  arrays = {k: np.asarray(v) for k, v in panels.items()}
  n = next(iter(arrays.values())).shape[0]
  seen, keep = set(), []
  for i in range(n):
    key = b''.join(np.ascontiguousarray(a[i]).tobytes() for a in arrays.values())
    if key not in seen:
      seen.add(key)
      keep.append(i)
  return {k: a[keep] for k, a in arrays.items()}


def _wrap(draw, text: str, font, width: int) -> list[str]:
  lines: list[str] = []
  for word in text.split():
    if lines and draw.textlength(f'{lines[-1]} {word}', font=font) <= width:
      lines[-1] += f' {word}'
    else:
      lines.append(word)
  return lines


def _column_labels(names: Sequence[str], *, width: int, col: int, pad: int) -> np.ndarray:
  """A white strip with each name centred above its column (words wrapped to the column's width)."""
  from PIL import Image, ImageDraw, ImageFont  # pylint: disable=import-outside-toplevel
  font = ImageFont.load_default()
  probe = ImageDraw.Draw(Image.new('RGB', (1, 1)))
  wrapped = [_wrap(probe, name, font, col) for name in names]
  line_h = int(font.getbbox('Ag')[3]) + 2
  strip = Image.new('RGB', (width, max(map(len, wrapped)) * line_h + 2 * pad), 'white')
  draw = ImageDraw.Draw(strip)
  for c, lines in enumerate(wrapped):
    centre = pad + c * (col + pad) + col / 2
    for i, line in enumerate(lines):
      draw.text((centre - draw.textlength(line, font=font) / 2, pad + i * line_h), line, fill='black', font=font)
  return np.asarray(strip)


def image_grid(panels: Mapping[str, np.ndarray], *, max_rows: int = 8, pad: int = 2,
               labels: bool = False) -> np.ndarray:
  """Tiles `panels` (name -> NHWC in [0, 1], same shape) into a uint8 image: one row per example.

  Grayscale (C=1) panels are repeated to RGB so edge maps sit next to colour images. `labels=True` adds a
  strip above the tiles with each panel's name over its column.
  """
  arrays = []
  for name, x in panels.items():
    x = np.asarray(x, np.float32)
    if x.ndim != 4:
      raise ValueError(f'panel {name!r} must be NHWC, got shape {x.shape}')
    if x.shape[-1] == 1:
      x = np.repeat(x, 3, axis=-1)
    arrays.append(np.clip(np.nan_to_num(x), 0.0, 1.0))
  n = min(max_rows, arrays[0].shape[0])
  h, w = arrays[0].shape[1:3]
  cols = len(arrays)
  grid = np.ones((n * (h + pad) + pad, cols * (w + pad) + pad, 3), np.float32)
  for r in range(n):
    for c, a in enumerate(arrays):
      y0, x0 = pad + r * (h + pad), pad + c * (w + pad)
      grid[y0:y0 + h, x0:x0 + w] = a[r]
  grid = (grid * 255.0 + 0.5).astype(np.uint8)
  if labels:
    grid = np.concatenate([_column_labels(list(panels), width=grid.shape[1], col=w, pad=pad), grid[pad:]])
  return grid


def save_png(path: pathlib.Path, image: np.ndarray) -> None:
  from PIL import Image  # pylint: disable=import-outside-toplevel
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_suffix('.tmp.png')
  Image.fromarray(image).save(tmp)
  tmp.replace(path)  # atomic: a viewer never sees half a PNG


def plot_loss_curve(records: Sequence[Mapping[str, Any]], path: pathlib.Path) -> None:
  """Writes a log-scale loss-vs-step PNG from metrics.jsonl records (matplotlib, Agg backend)."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
  for split, style in (('train', '-'), ('eval', 'o-')):
    pts = [(r['step'], r['loss']) for r in records
           if r.get('split') == split and 'loss' in r and np.isfinite(r['loss']) and r['loss'] > 0]
    if pts:
      steps, losses = zip(*pts)
      ax.plot(steps, losses, style, label=f'{split} loss', markersize=3)
  ax.set_xlabel('step')
  ax.set_ylabel('loss')
  ax.set_yscale('log')
  ax.grid(True, alpha=0.3)
  if ax.get_legend_handles_labels()[0]:
    ax.legend()
  fig.tight_layout()
  tmp = path.with_suffix('.tmp.png')
  fig.savefig(tmp)
  plt.close(fig)
  tmp.replace(path)


class Observer:
  """Progress bar + metrics.jsonl + TensorBoard + PNGs for one run (no-op writes on non-zero processes)."""

  def __init__(self, workdir: str | pathlib.Path, *, total_steps: int, initial_step: int,
               is_primary: bool = True, progress: bool = True):
    self.workdir = pathlib.Path(workdir)
    self.is_primary = is_primary
    self.records: list[dict[str, Any]] = []
    self._bar = None
    self._tb = None
    if not is_primary:
      return
    self.workdir.mkdir(parents=True, exist_ok=True)
    self.metrics_path = self.workdir / 'metrics.jsonl'
    if self.metrics_path.exists():  # resumed run: keep history up to the restored step only
      for line in self.metrics_path.read_text().splitlines():
        try:
          rec = json.loads(line)
        except json.JSONDecodeError:
          continue  # a line cut by a kill
        if rec.get('step', 0) <= initial_step:
          self.records.append(rec)
      self.metrics_path.write_text(''.join(json.dumps(r) + '\n' for r in self.records))
    self._tb = _tensorboard_writer(self.workdir / 'tensorboard')
    if progress:
      from tqdm import tqdm  # pylint: disable=import-outside-toplevel
      self._bar = tqdm(total=total_steps, initial=initial_step, desc='train', unit='step',
                       dynamic_ncols=True, file=sys.stderr, mininterval=1.0)

  @property
  def tensorboard_enabled(self) -> bool:
    return self._tb is not None

  def write(self, step: int, split: str, metrics: Mapping[str, float]) -> None:
    if not self.is_primary:
      return
    rec = {'step': int(step), 'split': split, 'time': time.time(),
           **{k: float(v) for k, v in metrics.items()}}
    self.records.append(rec)
    with open(self.metrics_path, 'a') as f:
      f.write(json.dumps(rec) + '\n')
    if self._tb is not None:
      for k, v in metrics.items():
        self._tb.add_scalar(f'{split}/{k}', float(v), int(step))
      self._tb.flush()

  def progress(self, step: int, loss: float | None = None, images_per_sec: float | None = None) -> None:
    if self._bar is None:
      return
    self._bar.n = int(step)
    post = {}
    if loss is not None:
      post['loss'] = f'{loss:.4g}'
    if images_per_sec is not None:
      post['img/s'] = f'{images_per_sec:.1f}'
    if post:
      self._bar.set_postfix(post, refresh=False)
    self._bar.refresh()

  def samples(self, step: int, panels: Mapping[str, np.ndarray]) -> pathlib.Path | None:
    if not self.is_primary:
      return None
    grid = image_grid(distinct_rows(panels), labels=True)
    path = self.workdir / 'samples' / f'step_{int(step):07d}.png'
    save_png(path, grid)
    save_png(self.workdir / 'samples' / 'latest.png', grid)
    return path

  def loss_curve(self) -> pathlib.Path | None:
    if not self.is_primary:
      return None
    path = self.workdir / 'loss_curve.png'
    plot_loss_curve(self.records, path)
    return path

  def log(self, msg: str) -> None:
    if not self.is_primary:
      return
    if self._bar is not None:
      self._bar.write(msg, file=sys.stderr)
    else:
      print(msg, file=sys.stderr, flush=True)

  def close(self) -> None:
    if self._bar is not None:
      self._bar.close()
      self._bar = None
    if self._tb is not None:
      self._tb.close()
      self._tb = None
