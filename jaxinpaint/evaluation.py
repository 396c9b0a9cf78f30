"""Paper-style evaluation: L1 (%), PSNR, SSIM (and FID, edge precision/recall) per hole-ratio bucket.

Implements the protocol of Liu et al. 2018 (Partial Convolutions, Sec. 5.2 / Table 1) and Nazeri et al.
2019 (EdgeConnect, Table 1): every image/mask pair is completed by a predictor, the prediction is
*composited* with the ground truth (`comp = mask * target + (1 - mask) * output`, so known pixels are never
scored from the network output), and the metrics of `jaxinpaint.metrics` are averaged over the images of
each hole-to-image-area bucket (0.01,0.1], ..., (0.5,0.6] and over all images; when the mask set records
whether holes touch the image border (the NVIDIA test masks' MANIFEST.csv), also per border/no-border.

* `evaluate(predict, pairs, ...) -> EvalResults` does the work (batched, jitted metrics, tqdm progress);
* `EvalResults.to_markdown()` / `.to_json()` and `write_results(results, out_dir)` write `results.md`,
  `results.json` (rows + per-image scores) and `worst.png` / `best.png` grids (input | output | gt);
* `run(method=..., images=..., masks=..., ...)` is what `evaluate.py` calls: pairs from
  `jaxinpaint.data.create_eval_pairs`, a baseline from `jaxinpaint.baselines` or a trained model from
  `jaxinpaint.predictor`, optional FID from `jaxinpaint.models.inception.pretrained`. The methods are
  `methods()`: the registered tasks (`jaxinpaint.tasks.names()`) and the classical `baselines.METHODS`.

Predictors are `predict(images (N,H,W,3), masks (N,H,W,1)) -> outputs (N,H,W,3)` on float32 NumPy in [0, 1]
(mask 1 = known, 0 = hole), or return a dict `{'image': outputs, 'edge': (N,H,W,1) edge map in [0, 1]}`
(a task with `predicts_edges`, e.g. EdgeConnect), in which case edge precision/recall inside the hole are
reported too (`jaxinpaint.metrics.edge_counts`, pooled per row). A predictor receives
the images with hole pixels set to 0, so it cannot peek at the ground truth.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import re
import warnings
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

from jaxinpaint import baselines
from jaxinpaint import data
from jaxinpaint import edges as edges_lib
from jaxinpaint import losses
from jaxinpaint import masks as masks_lib
from jaxinpaint import metrics
from jaxinpaint import predictor
from jaxinpaint import pretrained
from jaxinpaint import tasks
from jaxinpaint.models import inception

__all__ = [
    "methods",
    "EvalResults",
    "evaluate",
    "write_results",
    "comparison_table",
    "load_results",
    "command_line",
    "markdown_table",
    "load_predictor",
    "repeated_source",
    "run",
]

ALL = "all"
# Names of the border groups in the tables (values as in the NVIDIA test set's MANIFEST.csv).
_BORDER_NAMES = {"holes_may_touch_border": "border", "holes_off_border": "no border"}

Predictor = Callable[[np.ndarray, np.ndarray], Any]
FeatureFn = Callable[[np.ndarray], Any]


# --------------------------------------------------------------------------------------------- results


@dataclasses.dataclass
class EvalResults:
  """Outcome of `evaluate`.

  Attributes:
    rows: one dict per table row: `bucket` (a hole-ratio label or 'all'), `border` ('all' or the mask
      set's border flag), `count`, `l1`, `psnr`, `ssim`, and when computed `fid`, `edge_precision`,
      `edge_recall`. Means over the images of the row (edge precision/recall pool the pixel counts of the
      row, like EdgeConnect's EdgeAccuracy pools a batch).
    per_image: one dict per pair: `index`, `image_path`, `mask_path`, `bucket`, `border`, `hole_ratio`,
      `l1`, `psnr`, `ssim` (and `edge_tp`, `edge_selected`, `edge_relevant` with edges).
    cases: {'worst': [...], 'best': [...]} lists of dicts with `index`, `psnr` and the arrays `input`
      (holes white), `output` (the composite) and `target`, ranked by PSNR.
    method: a label for the tables.
    skipped_unreadable: the undecodable images left out (`run(skip_unreadable=True)`).
    setup: how `run` made the pairs and which model it scored (`command_line(setup)` repeats it); empty
      for direct `evaluate` calls.
  """
  rows: list[dict[str, Any]]
  per_image: list[dict[str, Any]]
  cases: dict[str, list[dict[str, Any]]]
  method: str = ""
  skipped_unreadable: list[str] = dataclasses.field(default_factory=list)
  setup: dict[str, Any] = dataclasses.field(default_factory=dict)

  def row(self, bucket: str = ALL, border: str = ALL) -> dict[str, Any]:
    """The row of a bucket ('all' or e.g. '(0.1,0.2]') and border group ('all' or a border flag)."""
    for r in self.rows:
      if r["bucket"] == bucket and r["border"] == border:
        return r
    raise KeyError(f"no row for bucket={bucket!r}, border={border!r}")

  @property
  def has_border(self) -> bool:
    return any(r["border"] != ALL for r in self.rows)

  def to_json(self) -> dict[str, Any]:
    """JSON-serialisable dict: method, setup (if any), rows and per-image scores (PSNR of a perfect image is
    Infinity)."""
    cases = {k: [{key: c[key] for key in ("index", "psnr", "image_path", "mask_path")} for c in v]
             for k, v in self.cases.items()}
    setup = {"setup": self.setup} if self.setup else {}
    return {"method": self.method, **setup, "rows": self.rows, "per_image": self.per_image, "cases": cases,
            "num_skipped_unreadable": len(self.skipped_unreadable), "skipped_unreadable": self.skipped_unreadable}

  def to_markdown(self) -> str:
    """Markdown tables: one row per hole-ratio bucket plus 'all'; a second table split by border."""
    title = f"### {self.method}\n\n" if self.method else ""
    text = title + markdown_table([r for r in self.rows if r["border"] == ALL])
    if self.has_border:
      text += "\n\nBy whether holes touch the image border:\n\n"
      text += markdown_table([r for r in self.rows if r["border"] != ALL], with_border=True)
    return text + "\n"


def _fmt(value: float | None, digits: int) -> str:
  if value is None:
    return "-"
  if math.isinf(value):
    return "inf" if value > 0 else "-inf"
  return f"{value:.{digits}f}"


# Column key, header, decimals.
_COLUMNS = (("l1", "L1 (%) ↓", 2), ("psnr", "PSNR (dB) ↑", 2), ("ssim", "SSIM ↑", 4), ("fid", "FID ↓", 2),
            ("edge_precision", "edge precision ↑", 4), ("edge_recall", "edge recall ↑", 4),
            ("edge_f1", "edge F1 ↑", 4))


def markdown_table(rows: Sequence[Mapping[str, Any]], *, with_border: bool = False) -> str:
  """Formats result rows as a Markdown table (columns present in any row; L1/PSNR/FID 2 decimals, SSIM 4)."""
  cols = [c for c in _COLUMNS if any(r.get(c[0]) is not None for r in rows)]
  header = ["hole ratio"] + (["border"] if with_border else []) + ["pairs"] + [c[1] for c in cols]
  lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
  for r in rows:
    cells = [r["bucket"]] + ([_BORDER_NAMES.get(r["border"], r["border"])] if with_border else [])
    cells += [str(r["count"])] + [_fmt(r.get(key), digits) for key, _, digits in cols]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def comparison_table(results: Sequence[EvalResults | Mapping[str, Any]], *,
                     metrics_keys: Sequence[str] = ("l1", "psnr", "ssim")) -> str:
  """Several methods in the layout of Liu et al. 2018, Table 1: one row per (metric, method), one column
  per hole-ratio bucket plus 'all' (border groups are not split).

  Args:
    results: `EvalResults` or their `to_json()` dicts (e.g. several `results.json` files), evaluated on
      the same pairs.
    metrics_keys: which metrics to show, among l1, psnr, ssim, fid, edge_precision, edge_recall, edge_f1.

  Raises:
    ValueError: the results were not computed on the same pairs (same files, or same counts per bucket
      when the per-image lists are absent).
  """
  tables = [r.to_json() if isinstance(r, EvalResults) else r for r in results]
  if not tables:
    raise ValueError("results is empty: nothing to compare")
  counts = [{r["bucket"]: r["count"] for r in t["rows"] if r["border"] == ALL} for t in tables]
  pairs = [[(r.get("image_path"), r.get("mask_path")) for r in t.get("per_image", [])] for t in tables]
  for t, c, p in zip(tables[1:], counts[1:], pairs[1:]):
    if c != counts[0] or (p and pairs[0] and p != pairs[0]):
      raise ValueError(f"results of {t.get('method')!r} and {tables[0].get('method')!r} were not computed on the "
                       f"same image/mask pairs: compare methods evaluated with the same --images, --masks, "
                       f"--seed, --limit and --masks_per_image")
  buckets = sorted((b for b in counts[0] if b != ALL), key=_bucket_sort_key) + [ALL]
  header = ["", "method"] + buckets
  lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|",
           "| pairs | | " + " | ".join(str(counts[0][b]) for b in buckets) + " |"]
  columns = {key: (name, digits) for key, name, digits in _COLUMNS}
  for key in metrics_keys:
    if key not in columns:
      raise ValueError(f"unknown metric {key!r}; expected one of {sorted(columns)}")
    name, digits = columns[key]
    for t in tables:
      rows = {r["bucket"]: r for r in t["rows"] if r["border"] == ALL}
      cells = [_fmt(rows[b].get(key), digits) for b in buckets]
      lines.append(f"| {name} | {t.get('method') or '?'} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def command_line(setup: Mapping[str, Any]) -> str:
  """The `evaluate.py` command that repeats an evaluation, from `EvalResults.setup` (results.json 'setup')."""
  model = setup.get("model") or {}
  parts = ["python evaluate.py", f"--method {setup['method']}"]
  if model.get("source"):
    parts.append(f"--checkpoint {model['source']}")
  parts += [f"--images {setup['images']}", f"--masks {setup['masks']}", f"--size {setup['size']}"]
  for flag, default in (("masks_per_image", 1), ("limit", None), ("seed", 0)):
    if setup.get(flag, default) != default:
      parts.append(f"--{flag} {setup[flag]}")
  if setup.get("canny_edges"):
    parts.append("--canny_edges")
  return " ".join(parts)


def load_results(out_dir: str | os.PathLike) -> dict[str, Any]:
  """Reads `out_dir/results.json` written by `write_results` (FileNotFoundError naming it if absent)."""
  path = pathlib.Path(out_dir)
  if path.is_dir():
    path = path / "results.json"
  if not path.is_file():
    raise FileNotFoundError(f"no evaluation results at {str(path)!r} (expected a results.json from evaluate.py)")
  try:
    return json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise ValueError(f"{str(path)!r} is not a valid results.json: {e}") from None


# ------------------------------------------------------------------------------------------ evaluation


def _bucket_sort_key(label: str) -> float:
  nums = re.findall(r"[0-9.]+", label)
  return float(nums[0]) if nums else math.inf


def _bucket_of(pair, mask: np.ndarray) -> str:
  bucket = getattr(pair, "bucket", None)
  if bucket:
    return str(bucket)
  return masks_lib.hole_ratio_bucket(mask)


def _check_pair(pair, index: int, image_size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
  name = getattr(pair, "image_path", None) or f"pair {index}"
  image = np.asarray(pair.image, np.float32)
  mask = np.asarray(pair.mask, np.float32)
  if image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError(f"image of {name} must be (H, W, 3) RGB, got shape {image.shape}")
  if mask.ndim == 3 and mask.shape[-1] == 1:
    mask = mask[..., 0]
  if mask.shape != image.shape[:2]:
    raise ValueError(f"mask {getattr(pair, 'mask_path', None) or index} has size {mask.shape}, but its image "
                     f"{name} is {image.shape[:2]}: images and masks must have the same size")
  if image_size is not None and image.shape[:2] != image_size:
    raise ValueError(f"all pairs must have the same size; {name} is {image.shape[:2]}, expected {image_size}")
  # Binarise as jaxinpaint.masks does (<= 0.5 is a hole), so "known" is exact.
  return image, (mask > 0.5).astype(np.float32)


def _unpack_prediction(pred: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray | None]:
  edge = None
  if isinstance(pred, Mapping):
    if "image" not in pred:
      raise ValueError(f"a predictor returning a dict must have an 'image' entry, got keys {sorted(pred)}")
    edge = pred.get("edge")
    pred = pred["image"]
  out = np.asarray(pred, np.float32)
  if out.shape != shape:
    raise ValueError(f"predictor returned images of shape {out.shape}, expected {shape} (the input shape)")
  if edge is not None:
    edge = np.asarray(edge, np.float32)
    if edge.ndim == 3:
      edge = edge[..., None]
    if edge.shape != shape[:3] + (1,):
      raise ValueError(f"predictor returned edges of shape {edge.shape}, expected {shape[:3] + (1,)}")
  return out, edge


def _holed_input(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """The masked input as the papers draw it: holes white."""
  return mask[..., None] * image + (1.0 - mask[..., None])


def evaluate(predict: Predictor, pairs: Iterable[Any], *, batch_size: int = 8,
             feature_fn: FeatureFn | None = None, edge_sigma: float = 2.0, num_cases: int = 4,
             progress: bool = True, method: str = "", canny_edges: bool = False) -> EvalResults:
  """Scores a predictor on image/mask pairs, per hole-ratio bucket and border group.

  Args:
    predict: `predict(images (B,H,W,3), masks (B,H,W,1)) -> (B,H,W,3)` or `{'image': ..., 'edge': ...}`;
      float32 NumPy in [0, 1], masks 1 = known. Always called with full batches of `batch_size` (the last
      batch is padded by repeating its last pair) so a jitted model compiles once. Its output is clipped
      to [0, 1] before compositing; NaN/inf is an error.
    pairs: objects with `image` (H,W,3), `mask` (H,W) 1 = known, and optionally `bucket`, `border`,
      `image_path`, `mask_path` (`jaxinpaint.data.EvalPair`); all of one size. Without `bucket` the hole
      ratio of the mask decides it (`jaxinpaint.masks.hole_ratio_bucket`).
    batch_size: images per predictor call.
    feature_fn: optional `features(images (2B,H,W,3)) -> (2B, D)` (Inception pool3) for FID between the
      composites and the ground truth, per row with at least 2 images; called once per batch on the
      composites followed by the targets.
    edge_sigma: Canny sigma of the ground-truth edges for edge precision/recall (EdgeConnect uses 2).
    num_cases: how many worst and best pairs (by PSNR) to keep for pictures.
    progress: show a tqdm progress bar.
    method: label stored in the results.
    canny_edges: for a predictor that returns no edge map, score the Canny edges (sigma `edge_sigma`) of its
      composite as its edge prediction: the trivial edge baseline an edge model has to beat (e.g. Canny of
      the Telea-filled image against EdgeConnect's G1).

  Returns:
    `EvalResults`.
  """
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}")
  pairs = list(pairs)
  if not pairs:
    raise ValueError("pairs is empty: no image/mask pairs to evaluate")

  per_image: list[dict[str, Any]] = []
  feats_out: list[np.ndarray] = []
  feats_gt: list[np.ndarray] = []
  cases: list[dict[str, Any]] = []
  size = None
  bar = None
  if progress:
    bar = tqdm(total=len(pairs), desc=f"evaluate {method}".strip(), unit="img")
  try:
    for start in range(0, len(pairs), batch_size):
      chunk = pairs[start:start + batch_size]
      checked = []
      for i, p in enumerate(chunk):
        image, mask = _check_pair(p, start + i, size)
        size = image.shape[:2]
        checked.append((image, mask))
      n = len(checked)
      padded = checked + [checked[-1]] * (batch_size - n)
      targets = np.stack([c[0] for c in padded])
      masks = np.stack([c[1] for c in padded])[..., None]
      inputs = targets * masks  # holes zeroed: the predictor never sees the ground truth there
      out, edge = _unpack_prediction(predict(inputs, masks), targets.shape)
      if not np.all(np.isfinite(out[:n])):
        raise ValueError(f"predictor returned NaN/inf for pairs {start}..{start + n - 1} "
                         f"(first image {getattr(chunk[0], 'image_path', '')!r})")
      # Scored as a displayed image would be: clipped to [0, 1] (raw networks can overshoot).
      out = np.clip(out, 0.0, 1.0)
      # The composite: known pixels are the ground truth, whatever the predictor returned there.
      comp = np.asarray(losses.composite(out, targets, masks))
      if edge is None and canny_edges:
        edge = edges_lib.canny_batch(comp, sigma=edge_sigma)
      l1s = np.asarray(metrics.l1(comp, targets))[:n]
      psnrs = np.asarray(metrics.psnr(comp, targets))[:n]
      ssims = np.asarray(metrics.ssim(comp, targets))[:n]
      if feature_fn is not None:
        # One call on [composites; targets] (fixed shape 2 * batch_size: one compilation).
        f = np.asarray(feature_fn(np.concatenate([comp, targets])), np.float64)
        feats_out.append(f[:n])
        feats_gt.append(f[batch_size:batch_size + n])
      if edge is not None:  # EdgeConnect's targets: Canny of the full ground truth
        gt_edge = edges_lib.canny_batch(targets[:n], sigma=edge_sigma)
        edge_tp, edge_sel, edge_rel = (np.asarray(c) for c in metrics.edge_counts(edge[:n], gt_edge, masks[:n]))
      for i in range(n):
        p = chunk[i]
        mask = checked[i][1]
        rec = {
            "index": start + i,
            "image_path": str(getattr(p, "image_path", "") or ""),
            "mask_path": str(getattr(p, "mask_path", "") or ""),
            "bucket": _bucket_of(p, mask),
            "border": getattr(p, "border", None),
            "hole_ratio": float(np.mean(mask <= 0.5)),
            "l1": float(l1s[i]),
            "psnr": float(psnrs[i]),
            "ssim": float(ssims[i]),
        }
        if edge is not None:
          rec.update(edge_tp=int(edge_tp[i]), edge_selected=int(edge_sel[i]), edge_relevant=int(edge_rel[i]))
        per_image.append(rec)
        if num_cases > 0:
          cases.append({"index": start + i, "psnr": rec["psnr"], "image_path": rec["image_path"],
                        "mask_path": rec["mask_path"], "input": _holed_input(targets[i], mask),
                        "output": comp[i], "target": targets[i]})
      if num_cases > 0:
        # Keep only the current worst and best `num_cases` (bounded memory on large sets).
        cases.sort(key=lambda c: (c["psnr"], c["index"]))
        if len(cases) > 2 * num_cases:
          cases = cases[:num_cases] + cases[-num_cases:]
      if bar is not None:
        bar.update(n)
  finally:
    if bar is not None:
      bar.close()

  k = min(num_cases, len(cases))
  worst = cases[:k]
  best = cases[::-1][:k]
  features = (np.concatenate(feats_out), np.concatenate(feats_gt)) if feature_fn is not None else None
  rows = _aggregate(per_image, features)
  return EvalResults(rows=rows, per_image=per_image, cases={"worst": worst, "best": best}, method=method)


def _row(bucket: str, border: str, recs: list[dict[str, Any]], idx: list[int],
         features: tuple[np.ndarray, np.ndarray] | None) -> dict[str, Any]:
  row: dict[str, Any] = {"bucket": bucket, "border": border, "count": len(recs)}
  for key in ("l1", "psnr", "ssim"):
    row[key] = float(np.mean([r[key] for r in recs]))
  if features is not None:
    row["fid"] = metrics.fid(features[0][idx], features[1][idx]) if len(idx) >= 2 else None
  if recs and "edge_tp" in recs[0]:
    # Pooled counts of the row; a row without a predicted (true) edge in its holes has no precision (recall)
    # to report, so the table shows '-' where EdgeAccuracy would have reported 1.
    tp = sum(r["edge_tp"] for r in recs)
    sel = sum(r["edge_selected"] for r in recs)
    rel = sum(r["edge_relevant"] for r in recs)
    row["edge_precision"] = tp / sel if sel else None
    row["edge_recall"] = tp / rel if rel else None
    # F1 of the pooled counts, 2 TP / (selected + relevant): 0 when nothing right was predicted.
    row["edge_f1"] = 2 * tp / (sel + rel) if sel + rel else None
  return row


def _aggregate(per_image: list[dict[str, Any]], features) -> list[dict[str, Any]]:
  buckets = sorted({r["bucket"] for r in per_image}, key=_bucket_sort_key)
  borders = sorted({r["border"] for r in per_image if r["border"] is not None})
  groups: list[tuple[str, str, list[int]]] = []
  for b in buckets + [ALL]:
    idx = [i for i, r in enumerate(per_image) if b in (ALL, r["bucket"])]
    groups.append((b, ALL, idx))
  if borders:
    for b in buckets + [ALL]:
      for border in borders:
        idx = [i for i, r in enumerate(per_image) if b in (ALL, r["bucket"]) and r["border"] == border]
        if idx:
          groups.append((b, border, idx))
  return [_row(b, border, [per_image[i] for i in idx], idx, features) for b, border, idx in groups]


# ---------------------------------------------------------------------------------------------- output


def _grid(cases: Sequence[Mapping[str, Any]], pad: int = 2) -> np.ndarray:
  """Rows of input | output | target panels, white padding, uint8."""
  h, w = cases[0]["target"].shape[:2]
  grid = np.ones((len(cases) * (h + pad) + pad, 3 * (w + pad) + pad, 3), np.float32)
  for r, c in enumerate(cases):
    for j, key in enumerate(("input", "output", "target")):
      y, x = pad + r * (h + pad), pad + j * (w + pad)
      grid[y:y + h, x:x + w] = c[key]
  return np.clip(np.rint(grid * 255), 0, 255).astype(np.uint8)


def write_results(results: EvalResults, out_dir: str | os.PathLike) -> dict[str, pathlib.Path]:
  """Writes results.md, results.json and worst.png / best.png (rows: input | output | gt) to `out_dir`.

  Returns:
    {'markdown', 'json', 'worst', 'best'} -> paths written.
  """
  out = pathlib.Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  paths = {"markdown": out / "results.md", "json": out / "results.json"}
  paths["markdown"].write_text(results.to_markdown())
  with open(paths["json"], "w") as f:
    json.dump(results.to_json(), f, indent=1)
  for key in ("worst", "best"):
    if results.cases.get(key):
      paths[key] = out / f"{key}.png"
      Image.fromarray(_grid(results.cases[key])).save(paths[key])
  return paths


# ----------------------------------------------------------------------------------------- entry point


def methods() -> tuple[str, ...]:
  """The methods `load_predictor` and `run` accept: the registered tasks, then the classical baselines."""
  return tuple(tasks.names()) + baselines.METHODS


def load_predictor(method: str, *, checkpoint: str | None = None, seed: int = 0,
                   batch_size: int = 8) -> tuple[Predictor, dict]:
  """The predictor for `method`: a classical baseline, or a trained model restored from `checkpoint`.

  Args:
    method: one of `methods()`.
    checkpoint: training workdir, checkpoint directory or shipped model name (trained models only); without
      one a trained method uses the shipped model of its kind (`jaxinpaint.pretrained.default_for`).
    seed: PatchMatch's search seed.
    batch_size: the restored model's jitted batch size.

  Returns:
    `(predict, info)`; `info['model']` names the model. A model that predicts edges returns {'image',
    'edge'} (edge precision/recall are then reported).

  Raises:
    ValueError: unknown method, a missing/superfluous checkpoint, or a checkpoint of another model.
    FileNotFoundError: the checkpoint does not exist (nor names a shipped model).
  """
  if method not in methods():
    raise ValueError(f"method must be one of {methods()}, got {method!r}")
  if method in baselines.METHODS:
    if checkpoint:
      raise ValueError(f"method {method!r} is a classical baseline and takes no checkpoint (got {checkpoint!r})")
    kwargs = {"seed": seed} if method == "patchmatch" else {}
    return baselines.get_predictor(method, **kwargs), {"model": method}
  if not checkpoint:
    checkpoint = pretrained.default_for(method)
    if checkpoint is None:
      raise ValueError(f"method {method!r} needs a trained model: pass --workdir DIR or --checkpoint PATH (no "
                       f"shipped {method} model is installed; see python -m jaxinpaint.pretrained list)")
  elif not os.path.exists(checkpoint) and not pretrained.is_name(checkpoint):
    raise FileNotFoundError(f"checkpoint {checkpoint!r} does not exist")
  loaded = predictor.load(checkpoint, model=method)  # refuses a checkpoint of another model
  predict = predictor.batched_predict(loaded, batch_size=batch_size, with_edges=loaded.task.predicts_edges)
  return predict, dict(loaded.info)


def repeated_source(images: Any, times: int):
  """An image source (`jaxinpaint.data`) listing every image of `images` `times` times in a row.

  `create_eval_pairs` gives image k the k-th mask of its seeded, bucket-interleaved mask order, so with
  `times = K` each image is paired with K different masks spread over the buckets; 20 photos with K = 15
  use each of the 300 NVIDIA test masks exactly once.
  """
  base = data.open_source(images)

  class _Repeated(data.ImageSource):

    def __init__(self):
      super().__init__()
      self.spec = f"{base.spec} x{times}"
      self._cache: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
      return len(base) * times

    def name(self, index: int) -> str:
      return base.name(index // times)

    def load(self, index: int) -> np.ndarray:
      j = index // times
      if self._cache is None or self._cache[0] != j:  # consecutive repeats decode once
        self._cache = (j, base.load(j))
      return self._cache[1]

  return _Repeated()


def run(*, method: str, images: str, masks: str, out: str, size: int = 256, checkpoint: str | None = None,
        fid_weights: str | None = None, seed: int = 0, limit: int | None = None, batch_size: int = 8,
        num_cases: int = 4, progress: bool = True, masks_per_image: int = 1,
        skip_unreadable: bool = False, canny_edges: bool = False) -> EvalResults:
  """Evaluates `method` on the pairs of `images` x `masks` at `size` and writes the results to `out`.

  Args:
    method: one of `methods()`.
    images: image source spec (`jaxinpaint.data`: folder, .flist, tfds:NAME[:SPLIT], builtin...).
    masks: mask source (a mask folder such as the NVIDIA test masks, or a generator spec like `irregular`).
    out: output folder.
    size: images and masks are brought to size x size.
    checkpoint: workdir, checkpoint path or shipped model name, for trained models (default: the shipped
      model of that kind).
    fid_weights: optional Inception-v3 weights file; adds FID columns.
    seed: pairing / mask generation seed (two runs with one seed see identical pairs).
    limit: evaluate at most this many pairs.
    batch_size: images per predictor call.
    num_cases: worst/best pairs in the PNG grids.
    progress: tqdm progress bar.
    masks_per_image: pair every image with this many different masks (see `repeated_source`).
    skip_unreadable: skip undecodable images with a warning instead of failing (an evaluation should
      normally score exactly the set it was given).
    canny_edges: for a method without an edge model, report the edge precision/recall/F1 of the Canny
      edges of its composite (see `evaluate`).

  Pairing (`jaxinpaint.data.create_eval_pairs`): image k gets mask k of a seeded order that interleaves
  the (bucket, border) groups, so any prefix covers all buckets; with more pairs than masks the masks are
  reused (a warning says so); with more masks than pairs only the first masks of that order are used.

  Returns:
    The `EvalResults` (also written to `out`).
  """
  if size < 16:
    raise ValueError(f"size must be >= 16 pixels, got {size}")
  if limit is not None and limit < 1:
    raise ValueError(f"limit must be >= 1, got {limit}")
  if masks_per_image < 1:
    raise ValueError(f"masks_per_image must be >= 1, got {masks_per_image}")
  if fid_weights and not os.path.isfile(fid_weights):
    raise FileNotFoundError(f"--fid-weights file {fid_weights!r} does not exist")
  predict, info = load_predictor(method, checkpoint=checkpoint, seed=seed, batch_size=batch_size)
  multiple = info.get("required_multiple")
  if multiple and size % int(multiple):
    raise ValueError(f"size {size} must be a multiple of {multiple} for this {info.get('model')} model "
                     f"({info.get('checkpoint')}); it was trained at {info.get('image_size')}")
  source = repeated_source(images, masks_per_image) if masks_per_image > 1 else data.open_source(images)
  with warnings.catch_warnings():
    if not skip_unreadable:
      warnings.simplefilter("error", data.CorruptImageWarning)
    try:
      pairs = data.create_eval_pairs(images=source, masks=masks, image_size=size, seed=seed, limit=limit)
    except data.CorruptImageWarning as e:
      msg = str(e).replace("skipping unreadable image", "unreadable image", 1)
      raise ValueError(f"{msg}; an evaluation scores exactly the images it is given: fix or remove the file, "
                       "or pass --skip_unreadable to score the others") from None
  feature_fn = None
  if fid_weights:
    feature_fn = inception.pretrained(fid_weights)
  results = evaluate(predict, pairs, batch_size=batch_size, feature_fn=feature_fn, num_cases=num_cases,
                     progress=progress, method=method, canny_edges=canny_edges)
  results.skipped_unreadable = sorted(source.corrupt_names)
  model = {"source": checkpoint or info.get("pretrained") or info.get("checkpoint"), "step": info.get("step"),
           "checkpoint": info.get("checkpoint"), "pretrained": info.get("pretrained")}
  results.setup = {"method": method, "images": str(images), "masks": str(masks), "size": int(size), "seed": int(seed),
                   "limit": limit, "masks_per_image": int(masks_per_image), "canny_edges": bool(canny_edges),
                   "model": {k: v for k, v in model.items() if v is not None}}
  write_results(results, out)
  return results
