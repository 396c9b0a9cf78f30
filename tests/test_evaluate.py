"""Tests for jaxinpaint.evaluation and evaluate.py: composite scoring, buckets, tables, end to end."""

import json
import os
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from jaxinpaint import evaluation

REPO = pathlib.Path(__file__).resolve().parents[1]
SIZE = 64
BUCKETS = ("(0.01,0.1]", "(0.1,0.2]", "(0.2,0.3]", "(0.3,0.4]", "(0.4,0.5]", "(0.5,0.6]")


class Pair:
  """Minimal stand-in for jaxinpaint.data.EvalPair (no dependency on the data pipeline here)."""

  def __init__(self, image, mask, bucket=None, border=None, image_path="", mask_path=""):
    self.image, self.mask, self.bucket, self.border = image, mask, bucket, border
    self.image_path, self.mask_path = image_path, mask_path


def _reference_scores(target, comp):
  """Independent per-image reference: NumPy L1, scikit-image PSNR/SSIM (float64)."""
  t, c = target.astype(np.float64), comp.astype(np.float64)
  return {
      "l1": 100 * np.abs(t - c).mean(),
      "psnr": peak_signal_noise_ratio(t, c, data_range=1),
      "ssim": structural_similarity(t, c, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                    data_range=1, channel_axis=-1),
  }


@pytest.fixture(scope="module")
def pairs(shared_data):
  """6 real photos, each with a real NVIDIA test mask from a different bucket; borders alternate."""
  photos = sorted(p for p in (shared_data / "places").rglob("*") if p.suffix.lower() in (".png", ".jpg"))[:6]
  # Masks 00000..11999 of the NVIDIA set are sorted by bucket, 2000 per bucket.
  mask_files = [shared_data / "masks_nvidia_test300" / f"{2000 * b + 40 * (b % 2):05d}.png" for b in range(6)]
  out = []
  for b, (p, m) in enumerate(zip(photos, mask_files)):
    image = np.asarray(Image.open(p).convert("RGB").resize((SIZE, SIZE), Image.BICUBIC), np.float32) / 255
    mask = (np.asarray(Image.open(m).convert("L").resize((SIZE, SIZE), Image.NEAREST)) < 128).astype(np.float32)
    out.append(Pair(image, mask, bucket=BUCKETS[b], border=("holes_off_border", "holes_may_touch_border")[b % 2],
                    image_path=str(p), mask_path=str(m)))
  return out


def _blur_predictor(calls=None):
  """A deterministic stand-in network: a blurred, brightened version of the (holed) input."""
  def predict(images, masks):
    if calls is not None:
      calls.append((images.copy(), masks.copy()))
    return np.clip(cv2.GaussianBlur(images.reshape(-1, *images.shape[2:]), (5, 5), 2).reshape(images.shape) + 0.1,
                   0, 1).astype(np.float32)
  return predict


def test_scores_are_on_the_composite_and_match_skimage(pairs):
  calls = []
  res = evaluation.evaluate(_blur_predictor(calls), pairs, batch_size=4, progress=False)
  # The predictor never sees ground truth in the hole, and always gets full batches.
  for images, masks in calls:
    assert images.shape == (4, SIZE, SIZE, 3) and masks.shape == (4, SIZE, SIZE, 1)
    assert np.all(images[np.broadcast_to(masks, images.shape) == 0] == 0)
  assert len(calls) == 2
  predict = _blur_predictor()
  for rec, p in zip(res.per_image, pairs):
    m = p.mask[..., None]
    out = predict((p.image * m)[None], m[None])[0]
    ref = _reference_scores(p.image, m * p.image + (1 - m) * out)
    for key in ("l1", "psnr", "ssim"):
      np.testing.assert_allclose(rec[key], ref[key], atol=1e-4, err_msg=key)
    assert rec["bucket"] == p.bucket and rec["border"] == p.border
    np.testing.assert_allclose(rec["hole_ratio"], 1 - p.mask.mean())


def test_known_pixels_are_never_scored_from_the_output(pairs):
  targets = np.stack([p.image for p in pairs])
  masks = np.stack([p.mask for p in pairs])[..., None]
  # Perfect inside the hole, garbage on the known pixels: the composite is the ground truth.
  good_hole = lambda images, m: np.where(m > 0.5, 1.0 - targets, targets).astype(np.float32)
  res = evaluation.evaluate(good_hole, pairs, batch_size=len(pairs), progress=False)
  row = res.row()
  assert row["l1"] == 0 and row["ssim"] == pytest.approx(1.0, abs=1e-6) and np.isinf(row["psnr"])
  # Garbage inside the hole is scored: only hole pixels differ, and they all do.
  bad_hole = lambda images, m: np.where(m > 0.5, targets, 1.0 - targets).astype(np.float32)
  res = evaluation.evaluate(bad_hole, pairs, batch_size=len(pairs), progress=False)
  want = [100 * np.abs(np.where(m > 0.5, t, 1 - t) - t).mean() for t, m in zip(targets, masks)]
  np.testing.assert_allclose([r["l1"] for r in res.per_image], want, rtol=1e-5)


def test_output_is_clipped_before_scoring(pairs):
  over = evaluation.evaluate(lambda i, m: np.full_like(i, 3.0), pairs, batch_size=6, progress=False)
  white = evaluation.evaluate(lambda i, m: np.ones_like(i), pairs, batch_size=6, progress=False)
  assert [r["l1"] for r in over.per_image] == [r["l1"] for r in white.per_image]


def test_rows_group_by_bucket_and_border(pairs):
  res = evaluation.evaluate(_blur_predictor(), pairs, batch_size=3, progress=False)
  main = [r for r in res.rows if r["border"] == "all"]
  assert [r["bucket"] for r in main] == list(BUCKETS) + ["all"]
  assert res.row()["count"] == 6 and all(r["count"] == 1 for r in main[:-1])
  off = res.row("all", "holes_off_border")
  assert off["count"] == 3
  np.testing.assert_allclose(off["psnr"], np.mean([r["psnr"] for r in res.per_image[0::2]]))
  np.testing.assert_allclose(res.row()["ssim"], np.mean([r["ssim"] for r in res.per_image]))
  # Batch size (and the padding of the last batch) does not change the numbers.
  res1 = evaluation.evaluate(_blur_predictor(), pairs, batch_size=1, progress=False)
  np.testing.assert_allclose([r["psnr"] for r in res1.per_image], [r["psnr"] for r in res.per_image], rtol=1e-6)


def test_bucket_from_mask_when_pairs_have_none(pairs):
  bare = [Pair(p.image, p.mask) for p in pairs]
  res = evaluation.evaluate(_blur_predictor(), bare, batch_size=6, progress=False)
  assert not res.has_border
  from jaxinpaint import masks as masks_lib
  assert [r["bucket"] for r in res.per_image] == [masks_lib.hole_ratio_bucket(p.mask) for p in pairs]


def test_fid_column(pairs):
  def features(x):  # a cheap deterministic "network": 4x4 average-pooled pixels, 48-d
    x = np.asarray(x)
    return x.reshape(len(x), 4, x.shape[1] // 4, 4, x.shape[2] // 4, 3).mean(axis=(2, 4)).reshape(len(x), -1)
  predict = _blur_predictor()
  res = evaluation.evaluate(predict, pairs, batch_size=4, feature_fn=features, progress=False)
  targets = np.stack([p.image for p in pairs])
  masks = np.stack([p.mask for p in pairs])[..., None]
  comp = masks * targets + (1 - masks) * predict(targets * masks, masks)
  from jaxinpaint import metrics
  np.testing.assert_allclose(res.row()["fid"], metrics.fid(features(comp), features(targets)), rtol=1e-6)
  assert res.row()["fid"] > 0
  assert res.row(BUCKETS[0])["fid"] is None  # one image: no covariance
  assert "FID" in res.to_markdown()


def test_edge_precision_recall_inside_the_hole(pairs):
  from jaxinpaint import edges
  targets = np.stack([p.image for p in pairs])
  gt = np.stack([edges.canny(edges.rgb_to_gray(t), sigma=2.0) for t in targets])[..., None]
  masks = np.stack([p.mask for p in pairs])[..., None]
  # Perfect edges: precision = recall = 1.
  res = evaluation.evaluate(lambda i, m: {"image": i, "edge": gt}, pairs, batch_size=6, progress=False)
  assert res.row()["edge_precision"] == 1.0 and res.row()["edge_recall"] == 1.0
  # Edges everywhere: recall 1, precision = gt edge density inside the holes.
  res = evaluation.evaluate(lambda i, m: {"image": i, "edge": np.ones_like(gt)}, pairs, batch_size=6,
                            progress=False)
  hole = masks < 0.5
  np.testing.assert_allclose(res.row()["edge_precision"], gt[hole].sum() / hole.sum())
  assert res.row()["edge_recall"] == 1.0
  assert "edge recall" in res.to_markdown()
  # F1 = harmonic mean of the pooled precision and recall.
  prec = gt[hole].sum() / hole.sum()
  np.testing.assert_allclose(res.row()["edge_f1"], 2 * prec / (prec + 1.0), rtol=1e-9)
  assert "edge F1" in res.to_markdown()


def test_canny_edges_scores_canny_of_the_composite(pairs):
  """The trivial edge baseline: Canny (sigma 2) of the composite, scored against Canny of the ground truth."""
  from jaxinpaint import edges
  targets = np.stack([p.image for p in pairs])
  masks = np.stack([p.mask for p in pairs])[..., None]
  hole = masks < 0.5

  def counts(pred, gt):
    tp = np.sum((pred > 0.5) & (gt > 0.5) & hole)
    return tp, np.sum((pred > 0.5) & hole), np.sum((gt > 0.5) & hole)

  def canny(x):
    return np.stack([edges.canny(edges.rgb_to_gray(t), sigma=2.0) for t in x])[..., None]

  gt = canny(targets)
  flat = lambda i, m: np.full_like(i, 0.5)  # a flat grey fill: its composite has edges only at hole borders
  res = evaluation.evaluate(flat, pairs, batch_size=6, progress=False, canny_edges=True)
  tp, sel, rel = counts(canny(masks * targets + (1 - masks) * 0.5), gt)
  row = res.row()
  np.testing.assert_allclose([row["edge_precision"], row["edge_recall"], row["edge_f1"]],
                             [tp / sel, tp / rel, 2 * tp / (sel + rel)], rtol=1e-9)
  assert 0 < row["edge_recall"] < 1
  # Without the flag a method without an edge model reports no edge columns.
  assert "edge_f1" not in evaluation.evaluate(flat, pairs, batch_size=6, progress=False).row()
  # The ground truth itself as the fill reproduces its edges inside the hole exactly.
  res = evaluation.evaluate(lambda i, m: targets, pairs, batch_size=6, progress=False, canny_edges=True)
  assert res.row()["edge_f1"] == 1.0


def test_bad_input(pairs):
  p = pairs[0]
  with pytest.raises(ValueError, match="same size"):
    evaluation.evaluate(_blur_predictor(), [Pair(p.image, p.mask[:32], mask_path="m.png")], progress=False)
  with pytest.raises(ValueError, match="all pairs must have the same size"):
    evaluation.evaluate(_blur_predictor(), [p, Pair(p.image[:32, :32], p.mask[:32, :32])], progress=False)
  with pytest.raises(ValueError, match="predictor returned images of shape"):
    evaluation.evaluate(lambda i, m: i[:, :8], [p], progress=False)
  with pytest.raises(ValueError, match="NaN/inf"):
    evaluation.evaluate(lambda i, m: i * np.nan, [p], progress=False)
  with pytest.raises(ValueError, match="pairs is empty"):
    evaluation.evaluate(_blur_predictor(), [], progress=False)
  with pytest.raises(ValueError, match="method must be one of"):
    evaluation.load_predictor("deepfill")
  with pytest.raises(ValueError, match="takes no checkpoint"):
    evaluation.load_predictor("telea", checkpoint="/tmp/x")
  with pytest.raises(ValueError, match="needs a trained model"):
    evaluation.load_predictor("pconv")
  with pytest.raises(FileNotFoundError, match="does-not-exist"):
    evaluation.load_predictor("pconv", checkpoint="/tmp/does-not-exist")


def test_write_results(pairs, tmp_path):
  res = evaluation.evaluate(_blur_predictor(), pairs, batch_size=6, num_cases=2, progress=False, method="blur")
  paths = evaluation.write_results(res, tmp_path)
  data = json.loads(paths["json"].read_text())
  assert data["method"] == "blur" and len(data["per_image"]) == 6
  md = paths["markdown"].read_text()
  assert f"| all | 6 | {res.row()['l1']:.2f} | {res.row()['psnr']:.2f} | {res.row()['ssim']:.4f} |" in md
  grid = np.asarray(Image.open(paths["worst"]))
  assert grid.shape == (2 * (SIZE + 2) + 2, 3 * (SIZE + 2) + 2, 3)
  worst_psnr = [c["psnr"] for c in res.cases["worst"]]
  assert worst_psnr == sorted(r["psnr"] for r in res.per_image)[:2]
  # The grid's middle panel of the first row is the composite of the worst pair.
  w = res.cases["worst"][0]
  np.testing.assert_array_equal(grid[2:2 + SIZE, SIZE + 4:2 * SIZE + 4], np.rint(w["output"] * 255).astype(np.uint8))


# ------------------------------------------------------------------------------------------ end to end


def _run_cli(*args):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, str(REPO / "evaluate.py"), *args], capture_output=True, text=True,
                        env=env, cwd=REPO, timeout=600)


def _check_table_against_recomputation(out_dir, pairs, fill):
  """The JSON rows and the Markdown cells equal a direct recomputation from the same pairs."""
  data = json.loads((out_dir / "results.json").read_text())
  md = (out_dir / "results.md").read_text()
  rows = {(r["bucket"], r["border"]): r for r in data["rows"]}
  assert {b for b, border in rows if border == "all"} == set(BUCKETS) | {"all"}
  scores = []
  for p in pairs:
    m = p.mask[..., None]
    scores.append((p.bucket, _reference_scores(p.image, m * p.image + (1 - m) * fill(p.image, p.mask))))
  for bucket in BUCKETS + ("all",):
    sel = [s for b, s in scores if bucket in ("all", b)]
    row = rows[(bucket, "all")]
    assert row["count"] == len(sel) > 0
    want = {k: float(np.mean([s[k] for s in sel])) for k in ("l1", "psnr", "ssim")}
    for k in want:
      np.testing.assert_allclose(row[k], want[k], atol=1e-4, err_msg=f"{bucket} {k}")
    assert (f"| {bucket} | {len(sel)} | {want['l1']:.2f} | {want['psnr']:.2f} | {want['ssim']:.4f} |" in md), bucket


@pytest.mark.slow
def test_evaluate_py_telea_on_places_end_to_end(shared_data, tmp_path):
  from jaxinpaint import data
  images, masks = str(shared_data / "places"), str(shared_data / "masks_nvidia_test300")
  proc = _run_cli("--method", "telea", "--images", images, "--masks", masks, "--size", str(SIZE),
                  "--out", str(tmp_path), "--noprogress")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "| all |" in proc.stdout
  for name in ("results.md", "results.json", "worst.png", "best.png"):
    assert (tmp_path / name).is_file()
  pairs = data.create_eval_pairs(images=images, masks=masks, image_size=SIZE, seed=0)

  def telea(image, mask):  # OpenCV directly; holes pre-filled with the mean known colour (documented)
    known = mask > 0.5
    filled = np.where(known[..., None], image, image[known].astype(np.float64).mean(axis=0))
    u8 = np.clip(np.rint(filled * 255), 0, 255).astype(np.uint8)
    return cv2.inpaint(u8, (~known).astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA).astype(np.float32) / 255

  _check_table_against_recomputation(tmp_path, pairs, telea)


def test_evaluate_py_help_and_bad_input(tmp_path):
  proc = _run_cli("--help")
  assert proc.returncode == 0, proc.stderr
  assert "--method" in proc.stdout and "--masks" in proc.stdout and "Traceback" not in proc.stderr
  proc = _run_cli("--method", "telea", "--images", str(tmp_path / "no-such-images"), "--masks", "irregular",
                  "--size", "32", "--out", str(tmp_path / "out"))
  assert proc.returncode != 0
  assert "no-such-images" in proc.stderr and "Traceback" not in proc.stderr
  proc = _run_cli("--method", "pconv", "--images", "builtin", "--masks", "irregular", "--out", str(tmp_path))
  assert proc.returncode != 0 and "--workdir" in proc.stderr and "Traceback" not in proc.stderr
  proc = _run_cli("--method", "telea", "--images", "builtin", "--masks", "irregular", "--out", str(tmp_path),
                  "--fid-weights", str(tmp_path / "no-inception.npz"))
  assert proc.returncode == 2 and "no-inception.npz" in proc.stderr and "Traceback" not in proc.stderr


def test_evaluate_py_unreadable_files(shared_data, tmp_path):
  images, masks = tmp_path / "images", tmp_path / "masks"
  images.mkdir()
  masks.mkdir()
  for p in sorted((shared_data / "places" / "gmcnn_places2_256x256").glob("*.png"))[:2]:
    (images / p.name).write_bytes(p.read_bytes())
  for name in ("00000.png", "06000.png"):
    (masks / name).write_bytes((shared_data / "masks_nvidia_test300" / name).read_bytes())
  (images / "zz_broken.png").write_bytes(b"not a png")
  args = ["--method", "telea", "--images", str(images), "--masks", str(masks), "--size", "32", "--noprogress"]
  proc = _run_cli(*args, "--out", str(tmp_path / "a"))
  assert proc.returncode == 2 and "zz_broken.png" in proc.stderr and "Traceback" not in proc.stderr
  proc = _run_cli(*args, "--out", str(tmp_path / "b"), "--skip_unreadable")
  assert proc.returncode == 0 and "zz_broken.png" in proc.stderr
  assert len(json.loads((tmp_path / "b" / "results.json").read_text())["per_image"]) == 2
  (masks / "99999.png").write_bytes(b"not a png")
  proc = _run_cli(*args, "--out", str(tmp_path / "c"))
  assert proc.returncode == 2 and "99999.png" in proc.stderr and "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def tiny_pconv_workdir(tmp_path_factory):
  """A tiny PConv U-Net trained for 10 steps by the trainer (configs/pconv_tiny.py)."""
  from configs import pconv_tiny
  from jaxinpaint import training
  workdir = tmp_path_factory.mktemp("tiny_pconv")
  training.train_and_evaluate(pconv_tiny.get_config(), str(workdir), progress=False)
  return workdir


@pytest.mark.slow
def test_evaluate_py_trained_pconv_end_to_end(shared_data, tiny_pconv_workdir, tmp_path):
  from jaxinpaint import data, training
  size = 32  # the tiny model's training size (3 levels: multiple of 8)
  images, masks = str(shared_data / "places"), str(shared_data / "masks_nvidia_test300")
  proc = _run_cli("--method", "pconv", "--workdir", str(tiny_pconv_workdir), "--images", images, "--masks", masks,
                  "--size", str(size), "--out", str(tmp_path), "--noprogress", "--batch_size", "8")
  assert proc.returncode == 0, proc.stderr[-3000:]
  pairs = data.create_eval_pairs(images=images, masks=masks, image_size=size, seed=0)
  predict, _ = training.restore_predictor(str(tiny_pconv_workdir))

  def pconv(image, mask):
    m = mask[None, ..., None]
    return predict(image[None] * m, m)[0]

  _check_table_against_recomputation(tmp_path, pairs, pconv)


@pytest.mark.slow
def test_evaluate_py_refuses_a_checkpoint_of_another_model(tiny_pconv_workdir, tmp_path):
  proc = _run_cli("--method", "edgeconnect", "--workdir", str(tiny_pconv_workdir), "--images", "builtin",
                  "--masks", "irregular", "--size", "32", "--out", str(tmp_path))
  assert proc.returncode == 2 and "Traceback" not in proc.stderr
  assert "'pconv'" in proc.stderr and str(tiny_pconv_workdir) in proc.stderr


def test_masks_per_image_uses_every_nvidia_mask_once(shared_data, tmp_path):
  res = evaluation.run(method="telea", images=str(shared_data / "places"),
                       masks=str(shared_data / "masks_nvidia_test300"), out=str(tmp_path), size=32,
                       masks_per_image=15, progress=False, batch_size=50)
  assert len(res.per_image) == 300
  assert len({r["mask_path"] for r in res.per_image}) == 300
  assert [res.row(b)["count"] for b in BUCKETS] == [50] * 6
  assert res.row("all", "holes_off_border")["count"] == 150
  # Each photo is used 15 times, with masks from several buckets.
  per_photo = {}
  for r in res.per_image:
    per_photo.setdefault(r["image_path"], set()).add(r["bucket"])
  assert len(per_photo) == 20 and all(len(b) >= 3 for b in per_photo.values())


@pytest.fixture(scope="module")
def random_inception_npz(tmp_path_factory):
  """pytorch-fid Inception-v3 weights with random (He-initialised) convolutions, in the .npz layout."""
  inception = pytest.importorskip("jaxinpaint.models.inception")
  from jaxinpaint import weights
  rng = np.random.default_rng(0)
  state = {}
  for name, spec in inception.param_specs().items():
    shape = weights.torch_shape(spec)
    if name.endswith("running_var") or (name.endswith(".weight") and len(shape) == 1):
      state[name] = np.ones(shape, np.float32)
    elif len(shape) == 4:
      state[name] = (rng.normal(size=shape) * np.sqrt(2 / np.prod(shape[1:]))).astype(np.float32)
    else:
      state[name] = np.zeros(shape, np.float32)
  path = tmp_path_factory.mktemp("inception") / "random_inception.npz"
  np.savez(path, **state)
  return path


@pytest.mark.slow
def test_run_with_fid_weights(shared_data, random_inception_npz, tmp_path):
  # In-process (the Inception compile is the expensive part; the CLI flag is covered by the bad-input test).
  from jaxinpaint import baselines, data, metrics
  from jaxinpaint.models import inception
  images, masks = str(shared_data / "places"), str(shared_data / "masks_nvidia_test300")
  res = evaluation.run(method="telea", images=images, masks=masks, out=str(tmp_path), size=32, limit=6,
                       batch_size=3, fid_weights=str(random_inception_npz), progress=False)
  assert "FID" in (tmp_path / "results.md").read_text()
  pairs = data.create_eval_pairs(images=images, masks=masks, image_size=32, seed=0, limit=6)
  targets = np.stack([p.image for p in pairs])
  m = np.stack([p.mask for p in pairs])[..., None]
  comp = m * targets + (1 - m) * baselines.telea(targets * m, m)
  features = inception.pretrained(random_inception_npz)
  # Same call shape as the evaluator (6 images), so the compiled function is reused.
  f_comp = np.concatenate([np.asarray(features(np.concatenate([comp[i:i + 3], targets[i:i + 3]])))[:3]
                           for i in (0, 3)])
  f_gt = np.concatenate([np.asarray(features(np.concatenate([comp[i:i + 3], targets[i:i + 3]])))[3:]
                         for i in (0, 3)])
  want = metrics.fid(f_comp, f_gt)
  assert want > 0
  np.testing.assert_allclose(res.row()["fid"], want, rtol=1e-6)


def test_comparison_table(pairs, tmp_path):
  a = evaluation.evaluate(_blur_predictor(), pairs, batch_size=6, progress=False, method="blur")
  b = evaluation.evaluate(lambda i, m: i, pairs, batch_size=6, progress=False, method="zeros")
  evaluation.write_results(b, tmp_path)
  table = evaluation.comparison_table([a, evaluation.load_results(tmp_path)])
  lines = table.splitlines()
  assert lines[0] == "|  | method | " + " | ".join(BUCKETS) + " | all |"
  assert lines[2] == "| pairs | | 1 | 1 | 1 | 1 | 1 | 1 | 6 |"
  assert f"| PSNR (dB) ↑ | zeros | {b.row(BUCKETS[0])['psnr']:.2f} |" in table
  assert f"| SSIM ↑ | blur | {a.row(BUCKETS[0])['ssim']:.4f} |" in table
  c = evaluation.evaluate(_blur_predictor(), pairs[:5], batch_size=6, progress=False, method="fewer")
  with pytest.raises(ValueError, match="same image/mask pairs"):
    evaluation.comparison_table([a, c])
  with pytest.raises(FileNotFoundError, match="no evaluation results"):
    evaluation.load_results(tmp_path / "nothing")


@pytest.fixture(scope="module")
def tiny_edgeconnect_workdir(request, tmp_path_factory):
  """An initialised (untrained) narrow EdgeConnect checkpoint, made as tests/test_inpaint.py makes it."""
  sys.path.insert(0, str(REPO / "tests"))
  import test_inpaint  # pylint: disable=import-outside-toplevel
  return test_inpaint.make_tiny_edgeconnect(test_inpaint._cache_root(request, tmp_path_factory))  # pylint: disable=protected-access


def test_evaluate_py_edgeconnect_edge_precision_recall(shared_data, tiny_edgeconnect_workdir, tmp_path):
  """evaluate.py --method edgeconnect reports edge precision/recall in the hole, equal to a recomputation
  from the restored model's composite edge map and Canny (sigma 2) of the full ground truth."""
  from jaxinpaint import data, edges, training
  size, limit = 32, 6
  images, masks = str(shared_data / "places"), str(shared_data / "masks_nvidia_test300")
  proc = _run_cli("--method", "edgeconnect", "--checkpoint", str(tiny_edgeconnect_workdir), "--images", images,
                  "--masks", masks, "--size", str(size), "--limit", str(limit), "--out", str(tmp_path),
                  "--noprogress", "--batch_size", "4")
  assert proc.returncode == 0, proc.stderr[-3000:]
  res = json.loads((tmp_path / "results.json").read_text())
  rows = {(r["bucket"], r["border"]): r for r in res["rows"]}
  assert "edge precision" in (tmp_path / "results.md").read_text()

  pairs = data.create_eval_pairs(images=images, masks=masks, image_size=size, seed=0, limit=limit)
  predict, _ = training.restore_predictor(str(tiny_edgeconnect_workdir), with_edges=True, batch_size=4)
  targets = np.stack([p.image for p in pairs]).astype(np.float32)
  m = np.stack([p.mask for p in pairs]).astype(np.float32)[..., None]
  pred = predict(targets * m, m)
  assert set(pred) == {"image", "edge"} and pred["edge"].shape == m.shape
  gt = np.stack([edges.canny(edges.rgb_to_gray(t), sigma=2.0) for t in targets])[..., None] > 0.5
  sel, hole = pred["edge"] > 0.5, m <= 0.5
  tp, n_sel, n_rel = [np.sum(x & hole, axis=(1, 2, 3)) for x in (gt & sel, sel, gt)]
  assert n_sel.sum() > 0 and n_rel.sum() > 0  # the check below compares real numbers, not None
  for bucket in {p.bucket for p in pairs} | {"all"}:
    idx = [i for i, p in enumerate(pairs) if bucket in ("all", p.bucket)]
    row = rows[(bucket, "all")]
    want_p = tp[idx].sum() / n_sel[idx].sum() if n_sel[idx].sum() else None
    want_r = tp[idx].sum() / n_rel[idx].sum() if n_rel[idx].sum() else None
    for got, want in ((row["edge_precision"], want_p), (row["edge_recall"], want_r)):
      if want is None:
        assert got is None, bucket
      else:
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=bucket)
