"""bench/mask_reach.py: the encoder's mask update against NumPy written from paper eq. 2."""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest
from PIL import Image

BENCH = pathlib.Path(__file__).resolve().parents[1] / 'bench'
sys.path.insert(0, str(BENCH))
import mask_reach  # noqa: E402  pylint: disable=wrong-import-position

KERNELS = (7, 5, 5, 3)


def _numpy_bottleneck_valid(valid: np.ndarray, num_levels: int) -> np.ndarray:
  """Eq. 2 per level: an output is valid iff its k x k window (stride 2, zero padding k // 2) holds a valid pixel."""
  m = valid > 0.5
  for k in KERNELS[:num_levels]:
    p = k // 2
    padded = np.pad(m, ((0, 0), (p, p), (p, p)))
    h, w = m.shape[1] // 2, m.shape[2] // 2
    out = np.zeros((m.shape[0], h, w), bool)
    for i in range(h):
      for j in range(w):
        out[:, i, j] = padded[:, 2 * i:2 * i + k, 2 * j:2 * j + k].any(axis=(1, 2))
    m = out
  scale = 2 ** num_levels
  return np.repeat(np.repeat(m, scale, axis=1), scale, axis=2)


@pytest.mark.parametrize('num_levels', [1, 2, 4])
def test_bottleneck_valid_matches_numpy_mask_update(num_levels):
  rng = np.random.default_rng(num_levels)
  valid = np.ones((3, 64, 64), np.float32)
  valid[0, 4:62, 2:60] = 0       # one large hole: 4 levels reach 3 + 4 + 8 + 8 = 23 px into it, not its middle
  valid[1] = rng.random((64, 64)) > 0.95  # scattered valid pixels
  valid[2, 10:14, :] = 0         # a band
  got = mask_reach.bottleneck_valid(valid, num_levels)
  want = _numpy_bottleneck_valid(valid, num_levels)
  assert got.shape == valid.shape
  np.testing.assert_array_equal(got, want)
  assert not want[0].all()  # the large hole is not reached everywhere at these depths


def test_main_reports_the_unreached_share(tmp_path, capsys):
  hole = np.zeros((32, 32), np.uint8)
  hole[4:30, 2:28] = 255  # white = hole
  Image.fromarray(hole).save(tmp_path / 'a.png')
  assert mask_reach.main(['--masks', str(tmp_path), '--size', '32', '--levels', '2']) == 0
  valid = 1.0 - hole[None] / 255.0
  unreached = (valid < 0.5) & ~_numpy_bottleneck_valid(valid, 2)
  share = 100 * unreached.sum() / (valid < 0.5).sum()
  assert share > 0
  assert f'{share:.2f}% of hole pixels unreached at the bottleneck, in 1 of 1 masks' in capsys.readouterr().out


def test_bad_arguments_name_the_flag(tmp_path, capsys):
  with pytest.raises(SystemExit):
    mask_reach.main(['--masks', str(tmp_path), '--levels', '5,x'])
  assert '--levels' in capsys.readouterr().err
  with pytest.raises(SystemExit):
    mask_reach.main(['--masks', str(tmp_path / 'missing')])
  assert '--masks' in capsys.readouterr().err
