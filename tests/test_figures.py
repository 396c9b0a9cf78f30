"""Tests for jaxinpaint.figures on tiny fake inputs (no JAX, no real data, a few hundred ms)."""

import json
import os

import numpy as np
import pytest

from jaxinpaint import figures


def _rows(psnr0, ssim0):
  buckets = ['(0.01,0.1]', '(0.1,0.2]', '(0.2,0.3]']
  rows = [{'bucket': b, 'border': 'all', 'count': 2, 'l1': 1.0 + i, 'psnr': psnr0 - 3 * i, 'ssim': ssim0 - 0.1 * i}
          for i, b in enumerate(buckets)]
  rows.append({'bucket': 'all', 'border': 'all', 'count': 6, 'l1': 2.0, 'psnr': psnr0 - 3, 'ssim': ssim0 - 0.1})
  # Border-split rows must be ignored by load_rows.
  rows.append({'bucket': '(0.1,0.2]', 'border': 'border', 'count': 1, 'l1': 9.0, 'psnr': 1.0, 'ssim': 0.0})
  return {'method': 'x', 'rows': rows, 'per_image': []}


def test_bucket_key_orders_numerically_and_all_last():
  labels = ['all', '(0.5,0.6]', '(0.01,0.1]', '(0.1,0.2]']
  assert sorted(labels, key=figures.bucket_key) == ['(0.01,0.1]', '(0.1,0.2]', '(0.5,0.6]', 'all']


def test_load_rows_keeps_all_border_rows(tmp_path):
  (tmp_path / 'results.json').write_text(json.dumps(_rows(30.0, 0.9)))
  rows = figures.load_rows(tmp_path)
  assert set(rows) == {'(0.01,0.1]', '(0.1,0.2]', '(0.2,0.3]', 'all'}
  assert rows['(0.1,0.2]']['psnr'] == 27.0  # the border-split row (psnr 1.0) was not taken
  with pytest.raises(FileNotFoundError, match='results'):
    figures.load_rows(tmp_path / 'nope')
  with pytest.raises(ValueError, match='rows'):
    figures.load_rows({'method': 'x'})


def test_training_minutes_wall_and_cpu(tmp_path):
  recs = [{'step': 10, 'split': 'train', 'time': 1000.0 + 60.0}, {'step': 20, 'split': 'train', 'time': 1000.0 + 180.0},
          {'step': 20, 'split': 'eval', 'time': 1000.0 + 190.0}]
  (tmp_path / 'metrics.jsonl').write_text('\n'.join(json.dumps(r) for r in recs) + '\n')
  cfg = tmp_path / 'config.json'
  cfg.write_text('{}')
  os.utime(cfg, (1000.0, 1000.0))
  assert figures.training_minutes(tmp_path) == pytest.approx({10: 1.0, 20: 190.0 / 60.0})
  # CPU log: 2 cores busy from t=1000 -> cpu seconds grow at 2/s; interpolated at each record's time.
  log = tmp_path / 'cpu.log'
  log.write_text('1000.0 0.0\n1100.0 200.0\n1200.0 400.0\n')
  assert figures.training_minutes(tmp_path, cpu_log=log) == pytest.approx({10: 120.0 / 60.0, 20: 380.0 / 60.0})
  with pytest.raises(FileNotFoundError, match='metrics.jsonl'):
    figures.training_minutes(tmp_path / 'missing')


def test_select_cases_spreads_over_buckets_and_images():
  buckets = ['(0.1,0.2]', '(0.01,0.1]', '(0.01,0.1]', '(0.1,0.2]', '(0.2,0.3]', '(0.2,0.3]']
  images = ['a', 'a', 'b', 'b', 'a', 'c']
  # One per bucket first: bucket (0.01,0.1] -> pair 1 (image a), (0.1,0.2] -> pair 3 (b is fresh; pair 0 is a),
  # (0.2,0.3] -> pair 5 (c fresh); then a second round takes the remaining pairs.
  assert figures.select_cases(buckets, images, num=3) == [1, 3, 5]
  assert figures.select_cases(buckets, images, num=6) == [1, 2, 0, 3, 4, 5]
  assert figures.select_cases(buckets, images, num=10) == [1, 2, 0, 3, 4, 5]
  with pytest.raises(ValueError, match='same length'):
    figures.select_cases(buckets, images[:2])


def test_holed_whitens_holes():
  image = np.full((2, 2, 3), 0.25, np.float32)
  mask = np.array([[1, 0], [0, 1]], np.float32)
  out = figures.holed(image, mask)
  np.testing.assert_allclose(out[..., 0], [[0.25, 1.0], [1.0, 0.25]])


def test_learning_curve_png(tmp_path):
  import matplotlib.image as mpimg
  curve = [(5.0, figures.load_rows(_rows(25.0, 0.8))), (1.0, figures.load_rows(_rows(22.0, 0.7)))]
  base = {'Telea': figures.load_rows(_rows(24.0, 0.85)), 'NS': figures.load_rows(_rows(23.5, 0.84))}
  path = figures.learning_curve(curve, base, tmp_path / 'sub' / 'curve.png')
  img = mpimg.imread(path)
  assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 300
  assert img[..., :3].std() > 0.01  # something was drawn
  with pytest.raises(ValueError, match='curve'):
    figures.learning_curve([], base, tmp_path / 'x.png')


def test_comparison_grid_png(tmp_path):
  import matplotlib.image as mpimg
  rng = np.random.default_rng(0)
  rows = [[rng.random((8, 8, 3)).astype(np.float32) for _ in range(6)] for _ in range(2)]
  cols = ['input', 'Telea', 'NS', 'PatchMatch', 'PConv', 'ground truth']
  path = figures.comparison_grid(rows, cols, tmp_path / 'grid.png', row_labels=['a', 'b'])
  img = mpimg.imread(path)
  assert img.shape[1] > img.shape[0]  # 6 columns, 2 rows: wider than tall
  with pytest.raises(ValueError, match=r'rows\[1\]'):
    figures.comparison_grid([rows[0], rows[1][:5]], cols, tmp_path / 'bad.png')
  with pytest.raises(ValueError, match='row_labels'):
    figures.comparison_grid(rows, cols, tmp_path / 'bad.png', row_labels=['a'])


def test_stage_curves_png(tmp_path):
  import matplotlib.image as mpimg
  s1 = [{'split': 'train', 'step': 50 * i, 'time': 1000.0 + 30 * i, 'edge_precision': 0.1 + 0.01 * i}
        for i in range(12)]
  s2 = [{'split': 'train', 'step': 50 * i, 'time': 5000.0 + 60 * i, 'g2_l1': 1.0 / (i + 1)} for i in range(12)]
  panels = [('edge model', ['edge_precision']), ('completion', ['g2_l1'])]
  path = figures.stage_curves([('stage 1', s1), ('stage 2', s2)], panels, tmp_path / 'c.png', smooth=3)
  img = mpimg.imread(path)
  assert img.shape[1] > img.shape[0] and img[..., :3].std() > 0.01
  with pytest.raises(ValueError, match='stages'):
    figures.stage_curves([], panels, tmp_path / 'x.png')
  with pytest.raises(ValueError, match=r'stages\[0\]'):
    figures.stage_curves([('s', [{'split': 'eval', 'step': 1}])], panels, tmp_path / 'x.png')


def test_edge_picture_colours():
  edges = np.zeros((4, 4), np.float32)
  edges[0, 0] = edges[3, 3] = 1.0
  mask = np.ones((4, 4, 1), np.float32)
  mask[2:, 2:] = 0.0  # hole at the bottom right
  pic = figures.edge_picture(edges, mask)
  np.testing.assert_array_equal(pic[0, 0], [0, 0, 0])             # known edge: black
  np.testing.assert_allclose(pic[3, 3], [0.85, 0.1, 0.1])          # hole edge: red
  np.testing.assert_allclose(pic[2, 2], [0.9, 0.9, 0.9])           # hole without edge: grey
  np.testing.assert_array_equal(pic[0, 1], [1, 1, 1])             # known, no edge: white
