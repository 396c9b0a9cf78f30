"""The quality reports' evaluation cache (bench/_common.py): a cached results.json answers a report only when
it was computed with the settings asked for and from the files of the workdir's current latest checkpoint."""

from __future__ import annotations

import json
import pathlib
import shutil
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[1] / 'bench'
sys.path.insert(0, str(BENCH))
import _common  # noqa: E402  pylint: disable=wrong-import-position

SETUP = dict(images='eval.flist', masks='masks', size=256, seed=0, limit=None, masks_per_image=11,
             canny_edges=False)


def _workdir(root: pathlib.Path, step: int, weights: str = 'weights') -> pathlib.Path:
  ckpt = root / 'checkpoints' / str(step)
  ckpt.mkdir(parents=True)
  (ckpt / 'params').write_text(weights)
  return root


def _evaluated(tmp_path: pathlib.Path, model: dict | None) -> pathlib.Path:
  """A cache folder as a report leaves it after evaluating `model` (what evaluate.py records as setup.model)."""
  out = tmp_path / 'eval' / 'edgeconnect_wd'
  out.mkdir(parents=True)
  (out / 'results.json').write_text(json.dumps({'method': 'x', 'setup': {**SETUP, 'method': 'x', 'model': model},
                                                'rows': []}))
  _common.record_fingerprint(out)
  return out


def _model(workdir: pathlib.Path, step: int) -> dict:
  return {'source': str(workdir), 'step': step, 'checkpoint': str(workdir / 'checkpoints' / str(step))}


def test_current_results_are_reused(tmp_path):
  wd = _workdir(tmp_path / 'wd', 300)
  assert _common.cached_results(_evaluated(tmp_path, _model(wd, 300)), **SETUP)['method'] == 'x'
  classical = _evaluated(tmp_path / 'c', None)
  assert _common.cached_results(classical, **SETUP)['method'] == 'x'
  shipped = _evaluated(tmp_path / 's', {'source': 'pconv_cpu_hour', 'step': 10000,
                                        'checkpoint': 'pretrained model pconv_cpu_hour (/x/pconv_cpu_hour.npz)'})
  assert _common.cached_results(shipped, **SETUP)['method'] == 'x'
  assert _common.cached_results(tmp_path / 'missing', **SETUP) is None


@pytest.mark.parametrize('key,value', [('masks_per_image', 5), ('size', 128), ('canny_edges', True),
                                       ('limit', 20), ('masks', 'other_masks')])
def test_other_settings_are_stale(tmp_path, capsys, key, value):
  out = _evaluated(tmp_path, None)
  assert _common.cached_results(out, **{**SETUP, key: value}) is None
  assert f'{key} was {SETUP[key]!r}, now {value!r}; evaluating again' in capsys.readouterr().out


def test_a_workdir_trained_again_or_swapped_in_under_the_same_name_is_stale(tmp_path, capsys):
  wd = _workdir(tmp_path / 'wd', 300)
  out = _evaluated(tmp_path, _model(wd, 300))
  (wd / 'checkpoints' / '300' / 'params').write_text('retrained weights')  # the same step, other files
  assert _common.cached_results(out, **SETUP) is None
  assert 'are not those evaluated' in capsys.readouterr().out
  # An older run moved back to the evaluated name: its files predate the results, still not those evaluated.
  shutil.rmtree(wd)
  _workdir(tmp_path / 'older', 300, weights='older weights').rename(wd)
  assert _common.cached_results(out, **SETUP) is None
  # Renaming keeps the fingerprint: the evaluated run moved away and back is current.
  shutil.rmtree(wd)
  wd = _workdir(tmp_path / 'wd', 300)
  _common.record_fingerprint(out)
  wd.rename(tmp_path / 'aside')
  (tmp_path / 'aside').rename(wd)
  assert _common.cached_results(out, **SETUP) is not None


def test_a_workdir_with_a_later_checkpoint_or_none_is_stale(tmp_path):
  wd = _workdir(tmp_path / 'wd', 300)
  out = _evaluated(tmp_path, _model(wd, 300))
  results = json.loads((out / 'results.json').read_text())
  assert _common.stale_reason(results, out, **SETUP) is None
  later = wd / 'checkpoints' / '400'
  later.mkdir()
  assert _common.stale_reason(results, out, **SETUP) == f'{wd} now ends at step 400, the results are of step 300'
  later.rmdir()
  shutil.rmtree(wd / 'checkpoints' / '300')
  assert 'no longer exists' in _common.stale_reason(results, out, **SETUP)


def test_results_without_a_recorded_fingerprint_are_stale(tmp_path):
  wd = _workdir(tmp_path / 'wd', 300)
  out = _evaluated(tmp_path, _model(wd, 300))
  (out / 'checkpoint_fingerprint.json').unlink()
  assert 'are not those evaluated' in _common.stale_reason(json.loads((out / 'results.json').read_text()), out,
                                                           **SETUP)


def test_results_of_another_workdir_with_the_same_name_are_stale(tmp_path, capsys):
  """A report keys its cache by the workdir's name: runs/a/s3 must not be answered by runs/b/s3's results."""
  evaluated_wd = _workdir(tmp_path / 'b' / 's3', 300)
  asked_wd = _workdir(tmp_path / 'a' / 's3', 300)
  out = _evaluated(tmp_path, _model(evaluated_wd, 300))
  assert _common.cached_results(out, model=str(evaluated_wd), **SETUP) is not None
  assert _common.cached_results(out, model=str(tmp_path / 'b' / '.' / 's3'), **SETUP) is not None  # same path
  assert _common.cached_results(out, model=str(asked_wd), **SETUP) is None
  assert f"they are of {str(evaluated_wd)!r}, not of {str(asked_wd)!r}; evaluating again" in capsys.readouterr().out
  shipped = _evaluated(tmp_path / 's', {'source': 'pconv_cpu_hour', 'step': 10000,
                                        'checkpoint': 'pretrained model pconv_cpu_hour (/x/pconv_cpu_hour.npz)'})
  assert _common.cached_results(shipped, model='pconv_cpu_hour', **SETUP) is not None
  assert _common.cached_results(shipped, model=str(asked_wd), **SETUP) is None
