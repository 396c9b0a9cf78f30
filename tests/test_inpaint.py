"""Tests for jaxinpaint.inpaint: the mask rule, padding/cropping/bucketing, exact known pixels, the CLI.

References: padding is checked against `np.pad(..., mode='reflect')` seen by a recording stand-in model,
the trained path against `jaxinpaint.predictor.restore_predictor` (the batched predictor the evaluator
uses) on the same padded input, and the classical path against `jaxinpaint.baselines` composited by hand.
"""

import hashlib
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from jaxinpaint import inpaint
from jaxinpaint.inpaint import Inpainter

REPO = pathlib.Path(__file__).resolve().parents[1]
# Everything a tiny checkpoint depends on: a change in any of these retrains it.
_TINY_SOURCES = ('configs/pconv_tiny.py', 'configs/pconv_places2.py', 'train.py', 'jaxinpaint/layers.py',
                 'jaxinpaint/convs.py', 'jaxinpaint/models/pconv_unet.py', 'jaxinpaint/checkpoint.py')


def _training_sources() -> list[pathlib.Path]:
  return sorted((REPO / 'jaxinpaint/training').glob('*.py')) + sorted((REPO / 'jaxinpaint/tasks').glob('*.py'))


def _cached_workdir(cache_root: pathlib.Path, prefix: str, sources: list[pathlib.Path]) -> pathlib.Path:
  """`cache_root/<prefix><hash>`: the hash is of the contents of `sources` (missing files are skipped)."""
  digest = hashlib.sha256()
  for f in sources:
    if f.is_file():
      digest.update(f.read_bytes())
  return cache_root / f'{prefix}{digest.hexdigest()[:16]}'


def train_tiny_pconv(cache_root: pathlib.Path) -> pathlib.Path:
  """Trains configs/pconv_tiny.py for 2 steps (cached by a hash of the sources); returns the workdir."""
  if not (REPO / 'configs/pconv_tiny.py').is_file() or not (REPO / 'train.py').is_file():
    pytest.skip('train.py + configs/pconv_tiny.py are not in this checkout; cannot make a tiny checkpoint')
  workdir = _cached_workdir(cache_root, 'tiny_pconv_', [REPO / f for f in _TINY_SOURCES] + _training_sources())
  if (workdir / 'checkpoints' / '2').is_dir():
    return workdir
  tmp = cache_root / f'{workdir.name}.tmp{os.getpid()}'
  shutil.rmtree(tmp, ignore_errors=True)
  cmd = [sys.executable, str(REPO / 'train.py'), '--config', str(REPO / 'configs/pconv_tiny.py'), '--workdir',
         str(tmp), '--config.num_steps=2', '--config.checkpoint_every=2', '--config.eval_every=2',
         '--config.sample_every=2', '--noprogress']
  proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, f'tiny training failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}'
  try:
    tmp.rename(workdir)  # atomic: parallel test processes never see half a checkpoint
  except OSError:
    shutil.rmtree(tmp, ignore_errors=True)
  _prune(cache_root, workdir, 'tiny_pconv_')
  return workdir


def _prune(cache_root: pathlib.Path, keep: pathlib.Path, prefix: str) -> None:
  """Removes checkpoints cached for older sources (other hashes)."""
  for old in cache_root.glob(prefix + '*'):
    if old != keep and '.tmp' not in old.name:
      shutil.rmtree(old, ignore_errors=True)


def make_tiny_edgeconnect(cache_root: pathlib.Path) -> pathlib.Path:
  """An untrained (freshly initialised) narrow EdgeConnect checkpoint saved the way the trainer saves one.

  Training even one EdgeConnect step compiles four GAN updates (minutes on 2 shared cores); inference only
  needs a restorable checkpoint of the right structure, so the state is initialised and saved directly.
  """
  import json
  if not (REPO / 'configs/edgeconnect_quickstart.py').is_file():
    pytest.skip('configs/edgeconnect_quickstart.py is not in this checkout')
  workdir = _cached_workdir(cache_root, 'tiny_edgeconnect_', [
      REPO / 'configs/edgeconnect_quickstart.py', REPO / 'configs/edgeconnect_places2.py',
      REPO / 'jaxinpaint/models/edgeconnect.py', REPO / 'jaxinpaint/checkpoint.py'] + _training_sources())
  if (workdir / 'checkpoints' / '1').is_dir():
    return workdir
  import jax
  from jaxinpaint import checkpoint as ckpt
  from jaxinpaint import tasks
  from configs import edgeconnect_quickstart
  config = edgeconnect_quickstart.get_config('stage4')
  config.unlock()
  config.image_size = 32
  config.edgeconnect.features = 8
  config.edgeconnect.residual_blocks = 1
  config.edgeconnect.d_features = 8
  config.lock()
  task = tasks.build(config)
  state = jax.jit(task.init_state)(jax.random.PRNGKey(0), task.example_batch(1))
  tmp = cache_root / f'{workdir.name}.tmp{os.getpid()}'
  manager = ckpt.create_manager(tmp, keep_best=0)
  ckpt.save(manager, 1, state, data_state={}, config=json.loads(config.to_json_best_effort()))
  manager.close()
  try:
    tmp.rename(workdir)
  except OSError:  # another process made it first
    shutil.rmtree(tmp, ignore_errors=True)
  _prune(cache_root, workdir, 'tiny_edgeconnect_')
  return workdir


def _cache_root(request, tmp_path_factory) -> pathlib.Path:
  cache = getattr(request.config, 'cache', None)
  return pathlib.Path(cache.mkdir('jaxinpaint_checkpoints') if cache is not None else tmp_path_factory.mktemp('ckpt'))


@pytest.fixture(scope='module')
def tiny_workdir(request, tmp_path_factory) -> pathlib.Path:
  return train_tiny_pconv(_cache_root(request, tmp_path_factory))


@pytest.fixture(scope='module')
def tiny_edgeconnect_workdir(request, tmp_path_factory) -> pathlib.Path:
  return make_tiny_edgeconnect(_cache_root(request, tmp_path_factory))


@pytest.fixture(scope='module')
def tiny(tiny_workdir) -> Inpainter:
  return Inpainter.from_workdir(tiny_workdir)


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:h, 0:w]
  base = np.stack([x / w, y / h, 0.5 + 0.5 * np.sin(x / 7.0)], -1)
  return np.clip(np.rint(255 * (0.8 * base + 0.2 * rng.random((h, w, 3)))), 0, 255).astype(np.uint8)


def _holes(h: int, w: int) -> np.ndarray:
  hole = np.zeros((h, w), bool)
  hole[h // 4:h // 2, w // 3:w // 2 + 5] = True
  hole[-7:, :9] = True  # touches the bottom-left corner (reflect padding reflects it)
  return hole


class Recorder:
  """Stand-in model: records what it is given and returns a constant grey (independent of the inputs)."""

  def __init__(self, value: float = 0.5, edge: bool = False):
    self.calls = []
    self.value = value
    self.edge = edge

  def __call__(self, images, masks):
    self.calls.append((images.copy(), masks.copy()))
    out = {'image': np.full(images.shape, self.value, np.float32)}
    if self.edge:
      out['edge'] = np.broadcast_to((np.arange(images.shape[2], dtype=np.float32) / images.shape[2])[:, None],
                                    masks.shape).copy()
    return out


# --------------------------------------------------------------------------------------------- masks

def test_hole_mask_rule():
  pic = np.array([[0, 255], [127, 128]], np.uint8)
  np.testing.assert_array_equal(inpaint.hole_mask(pic), [[False, True], [False, True]])
  np.testing.assert_array_equal(inpaint.hole_mask(pic, hole_value=0), [[True, False], [True, False]])
  np.testing.assert_array_equal(inpaint.hole_mask(Image.fromarray(pic)), [[False, True], [False, True]])
  np.testing.assert_array_equal(inpaint.hole_mask(pic[..., None]), [[False, True], [False, True]])
  np.testing.assert_array_equal(inpaint.hole_mask(np.repeat(pic[..., None], 3, -1)), [[False, True], [False, True]])
  # The package's own float masks (1 = valid) are black-is-hole pictures.
  valid = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
  np.testing.assert_array_equal(inpaint.hole_mask(valid, hole_value=0), [[False, True], [True, False]])
  # Booleans are True = hole whatever hole_value says.
  b = np.array([[True, False], [False, False]])
  np.testing.assert_array_equal(inpaint.hole_mask(b, hole_value=0), b)
  np.testing.assert_array_equal(inpaint.hole_mask(b, hole_value=255), b)


def test_hole_mask_errors_and_resize():
  with pytest.raises(ValueError, match='hole_value'):
    inpaint.hole_mask(np.zeros((2, 2), np.uint8), hole_value=1)
  with pytest.raises(ValueError, match=r'mask size 3x2 \(WxH\) differs from the image size 4x4'):
    inpaint.hole_mask(np.zeros((2, 3), np.uint8), shape=(4, 4))
  with pytest.raises(ValueError, match=r'\[0, 255\]'):
    inpaint.hole_mask(np.full((2, 2), 300, np.int32))
  small = np.array([[0, 255], [255, 0]], np.uint8)
  with pytest.warns(UserWarning, match='nearest neighbour'):
    big = inpaint.hole_mask(small, shape=(4, 4), resize=True)
  np.testing.assert_array_equal(big, np.kron(small == 255, np.ones((2, 2), bool)))


# ------------------------------------------------------------------------------ padding and composite

@pytest.mark.parametrize('h,w', [(199, 265), (64, 64), (1, 70), (65, 3)])
def test_padding_crop_and_exact_known_pixels(h, w):
  image = _photo(h, w)
  hole = np.zeros((h, w), bool)
  hole[h // 2, w // 2] = True
  hole[:1, :1] = True
  rec = Recorder(0.5)
  inp = Inpainter(rec, name='fake', multiple=8, bucket=64)
  out = inp(image, hole)
  assert out.dtype == np.uint8 and out.shape == image.shape
  np.testing.assert_array_equal(out[~hole], image[~hole])
  assert np.all(out[hole] == 128)  # rint(0.5 * 255)
  (seen_image, seen_mask), = rec.calls
  ph, pw = -(-h // 64) * 64, -(-w // 64) * 64
  assert seen_image.shape == (1, ph, pw, 3) and seen_mask.shape == (1, ph, pw, 1)
  valid = (~hole).astype(np.float32)
  x = image.astype(np.float32) / 255 * valid[..., None]  # holes zeroed: nothing of them reaches the model
  ref_image = np.pad(x, ((0, ph - h), (0, pw - w), (0, 0)), mode='reflect')
  ref_mask = np.pad(valid, ((0, ph - h), (0, pw - w)), mode='reflect')
  np.testing.assert_array_equal(seen_image[0], ref_image)
  np.testing.assert_array_equal(seen_mask[0, ..., 0], ref_mask)


def test_types_are_preserved():
  image = _photo(30, 41)
  hole = _holes(30, 41)
  inp = Inpainter(Recorder(0.25, edge=True), name='fake', multiple=4, bucket=None)
  # float64 in [0, 1] -> float64, known pixels bit-identical
  f = image.astype(np.float64) / 255.0
  out = inp(f, hole)
  assert out.dtype == np.float64
  np.testing.assert_array_equal(out[~hole], f[~hole])
  np.testing.assert_array_equal(out[hole], 0.25)
  # PIL in -> PIL out, same size
  pil = inp(Image.fromarray(image), Image.fromarray(hole.astype(np.uint8) * 255))
  assert isinstance(pil, Image.Image) and pil.size == (41, 30)
  np.testing.assert_array_equal(np.asarray(pil)[~hole], image[~hole])
  # edges are cropped back to the image size
  res = inp.inpaint(image, hole)
  assert res.edge.shape == (30, 41)
  np.testing.assert_allclose(res.edge[0], np.arange(41) / 44, rtol=1e-6)  # padded width 44
  # no holes -> the input back, the model is not called
  rec = Recorder()
  np.testing.assert_array_equal(Inpainter(rec, name='fake')(image, np.zeros((30, 41), bool)), image)
  assert not rec.calls


def test_bad_inputs():
  inp = Inpainter(Recorder(), name='fake', multiple=4)
  image = _photo(8, 8)
  with pytest.raises(ValueError, match='every pixel is a hole'):
    inp(image, np.ones((8, 8), bool))
  with pytest.raises(ValueError, match=r'image: expected an RGB array of shape \(H, W, 3\)'):
    inp(image[..., 0], np.zeros((8, 8), bool))
  with pytest.raises(ValueError, match=r'in \[0, 1\]'):
    inp(image.astype(np.float32), np.zeros((8, 8), bool))
  with pytest.raises(ValueError, match='uint8 or float'):
    inp(image.astype(np.int64), np.zeros((8, 8), bool))
  with pytest.raises(ValueError, match='differs from the image size'):
    inp(image, np.zeros((8, 9), bool))
  with pytest.raises(ValueError, match='method must be one of'):
    Inpainter.from_method('magic')


def test_classical_matches_baseline():
  from jaxinpaint import baselines
  image = _photo(37, 51)
  hole = _holes(37, 51)
  out = Inpainter.from_method('telea')(image, hole)
  ref = baselines.telea(image / 255.0, (~hole).astype(np.float32))
  ref = np.where(hole[..., None], np.rint(ref * 255).astype(np.uint8), image)
  np.testing.assert_array_equal(out, ref)
  assert (out[hole] != image[hole]).any()


# -------------------------------------------------------------------------------------- trained model

def test_checkpoint_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match='does not exist'):
    Inpainter.from_workdir(tmp_path / 'nothing')
  with pytest.raises(FileNotFoundError, match='not a jaxinpaint checkpoint'):
    Inpainter.from_workdir(tmp_path)


def test_tiny_pconv_matches_restore_predictor(tiny, tiny_workdir):
  from jaxinpaint.predictor import restore_predictor
  assert tiny.name == 'pconv' and tiny.multiple == 8
  with pytest.raises(ValueError, match="expected 'edgeconnect'"):
    Inpainter.from_workdir(tiny_workdir, model='edgeconnect')
  h, w = 199, 265
  image = _photo(h, w, seed=1).astype(np.float32) / 255.0
  hole = _holes(h, w)
  out = tiny(image, hole)
  assert out.shape == (h, w, 3) and out.dtype == np.float32
  np.testing.assert_array_equal(out[~hole], image[~hole])
  # Reference: the batched predictor on the same reflect-padded input (bucket 64 -> 256x320), cropped.
  predict, _ = restore_predictor(tiny_workdir, batch_size=1)
  valid = (~hole).astype(np.float32)
  pad = ((0, 256 - h), (0, 320 - w))
  ref = predict(np.pad(image * valid[..., None], pad + ((0, 0),), mode='reflect')[None],
                np.pad(valid, pad, mode='reflect')[None, ..., None])[0, :h, :w]
  np.testing.assert_allclose(out[hole], ref[hole], atol=1e-5)
  # What was in the hole does not matter.
  scribbled = image.copy()
  scribbled[hole] = 1.0
  np.testing.assert_array_equal(tiny(scribbled, hole), out)


def test_one_compilation_per_bucket(tiny_workdir):
  inp = Inpainter.from_workdir(tiny_workdir, bucket=64)
  for h, w in [(100, 90), (128, 65), (70, 127)]:  # all pad to 128x128
    out = inp(_photo(h, w), _holes(h, w))
    assert out.shape == (h, w, 3)
  assert inp.num_compilations == 1
  inp(_photo(130, 60), _holes(130, 60))  # 192x64: a new bucket
  assert inp.num_compilations == 2
  assert inp.padded_shape(130, 60) == (192, 64)


def test_edgeconnect_inpainter_returns_edges(tiny_edgeconnect_workdir):
  inp = Inpainter.from_checkpoint(tiny_edgeconnect_workdir / 'checkpoints' / '1')
  assert inp.name == 'edgeconnect' and inp.multiple == 4 and inp.predicts_edges
  h, w = 37, 45
  image, hole = _photo(h, w, seed=2), _holes(h, w)
  res = inp.inpaint(image, hole)
  assert res.image.shape == (h, w, 3) and res.image.dtype == np.uint8
  np.testing.assert_array_equal(res.image[~hole], image[~hole])
  assert res.edge.shape == (h, w) and res.edge.dtype == np.float32
  assert 0.0 <= res.edge.min() and res.edge.max() <= 1.0
  # Outside the holes the edge map is Canny's (binary); G1's soft predictions only fill the holes.
  assert set(np.unique(res.edge[~hole])) <= {0.0, 1.0}
  assert inp.padded_shape(h, w) == (64, 64)
  with pytest.raises(ValueError, match="expected 'pconv'"):
    Inpainter.from_workdir(tiny_edgeconnect_workdir, model='pconv')


# ----------------------------------------------------------------------------------------------- CLI

def _run_cli(*args):
  return subprocess.run([sys.executable, '-m', 'jaxinpaint.inpaint', *map(str, args)], cwd=REPO,
                        capture_output=True, text=True, timeout=600)


def _check_round_trip(images_dir, masks_dir, out_dir, *, hole_value=255):
  count = 0
  for image_path in sorted(images_dir.glob('*.png')):
    image = np.asarray(Image.open(image_path).convert('RGB'))
    m = np.asarray(Image.open(masks_dir / image_path.name).convert('L'))
    hole = m >= 128 if hole_value == 255 else m < 128
    out = np.asarray(Image.open(out_dir / image_path.name))
    assert out.shape == image.shape, image_path.name
    np.testing.assert_array_equal(out[~hole], image[~hole], err_msg=image_path.name)
    assert (out[hole] != image[hole]).any(), f'{image_path.name}: nothing was filled'
    count += 1
  return count


def test_cli_round_trip_edgeconnect_examples(shared_data, tmp_path):
  root = shared_data / 'edgeconnect_examples'
  for subset in ('places2', 'psv'):  # places2 includes the 600x512 example
    proc = _run_cli('--method', 'telea', '--image', root / subset / 'images', '--mask', root / subset / 'masks',
                    '--out', tmp_path / subset)
    assert proc.returncode == 0, proc.stderr
    n = _check_round_trip(root / subset / 'images', root / subset / 'masks', tmp_path / subset)
    assert n == len(list((root / subset / 'images').glob('*.png'))) and n >= 5


def test_cli_tiny_checkpoint_on_examples(shared_data, tiny_workdir, tmp_path):
  root = shared_data / 'edgeconnect_examples' / 'celeba'
  # --mask-hole-value 0 with inverted masks must give the same holes as the white-is-hole originals.
  inverted = tmp_path / 'inverted'
  inverted.mkdir()
  for p in (root / 'masks').glob('*.png'):
    Image.fromarray(255 - np.asarray(Image.open(p).convert('L'))).save(inverted / p.name)
  proc = _run_cli('--workdir', tiny_workdir, '--image', root / 'images', '--mask', inverted,
                  '--mask-hole-value', 0, '--out', tmp_path / 'out')
  assert proc.returncode == 0, proc.stderr
  assert 'loaded pconv step 2' in proc.stderr
  assert _check_round_trip(root / 'images', root / 'masks', tmp_path / 'out') == 5


@pytest.mark.parametrize('method', ['ns', 'tiny'])
def test_cli_odd_size(method, tmp_path, request):
  h, w = 199, 265
  image, hole = _photo(h, w, seed=3), _holes(h, w)
  Image.fromarray(image).save(tmp_path / 'odd.png')
  Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / 'odd_mask.png')
  source = ['--method', 'ns'] if method == 'ns' else ['--workdir', request.getfixturevalue('tiny_workdir')]
  code = inpaint.main([str(a) for a in [*source, '--image', tmp_path / 'odd.png', '--mask', tmp_path / 'odd_mask.png',
                                          '--out', tmp_path / 'res.png']])
  assert code == 0
  out = np.asarray(Image.open(tmp_path / 'res.png'))
  assert out.shape == (h, w, 3)
  np.testing.assert_array_equal(out[~hole], image[~hole])


def test_cli_edgeconnect_edges_out(tiny_edgeconnect_workdir, tiny_workdir, tmp_path, capsys):
  h, w = 50, 33
  image, hole = _photo(h, w, seed=4), _holes(h, w)
  Image.fromarray(image).save(tmp_path / 'e.png')
  Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / 'e_mask.png')
  args = ['--image', tmp_path / 'e.png', '--mask', tmp_path / 'e_mask.png', '--out', tmp_path / 'e_out.png',
          '--edges-out', tmp_path / 'edges']
  assert inpaint.main([str(a) for a in ['--workdir', tiny_edgeconnect_workdir, *args]]) == 0
  out = np.asarray(Image.open(tmp_path / 'e_out.png'))
  np.testing.assert_array_equal(out[~hole], image[~hole])
  edge = np.asarray(Image.open(tmp_path / 'edges' / 'e.png'))
  assert edge.shape == (h, w) and edge.dtype == np.uint8
  capsys.readouterr()
  assert inpaint.main([str(a) for a in ['--workdir', tiny_workdir, *args]]) == 2
  assert '--edges-out needs an EdgeConnect checkpoint' in capsys.readouterr().err


def test_cli_errors(tmp_path, capsys):
  image = _photo(20, 30)
  Image.fromarray(image).save(tmp_path / 'a.png')
  Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / 'small_mask.png')
  (tmp_path / 'imgs').mkdir()
  (tmp_path / 'masks').mkdir()
  Image.fromarray(image).save(tmp_path / 'imgs' / 'x.png')
  Image.fromarray(image).save(tmp_path / 'imgs' / 'y.jpg')
  Image.fromarray(np.zeros((20, 30), np.uint8)).save(tmp_path / 'masks' / 'x.png')
  (tmp_path / 'not_an_image.png').write_text('hello')

  def run(*args):
    code = inpaint.main([str(a) for a in args])
    return code, capsys.readouterr().err

  code, err = run('--method', 'telea', '--image', tmp_path / 'missing.png', '--mask', tmp_path / 'small_mask.png',
                  '--out', tmp_path / 'o.png')
  assert code == 2 and 'no such file or directory' in err and 'missing.png' in err
  code, err = run('--method', 'telea', '--image', tmp_path / 'a.png', '--mask', tmp_path / 'small_mask.png',
                  '--out', tmp_path / 'o.png')
  assert code == 2 and 'mask size 10x10 (WxH) differs from the image size 30x20' in err and '--resize-mask' in err
  assert not (tmp_path / 'o.png').exists()
  # With --resize-mask the size is accepted (with a warning), but a mask without holes is an error.
  code, err = run('--method', 'telea', '--image', tmp_path / 'a.png', '--mask', tmp_path / 'small_mask.png',
                  '--out', tmp_path / 'o.png', '--resize-mask')
  assert code == 2 and 'is empty' in err and '--mask-hole-value 0' in err
  assert not (tmp_path / 'o.png').exists()
  code, err = run('--method', 'telea', '--image', tmp_path / 'imgs', '--mask', tmp_path / 'masks',
                  '--out', tmp_path / 'outdir')
  assert code == 2 and 'y.jpg' in err and 'no mask with the same file name' in err
  code, err = run('--method', 'telea', '--image', tmp_path / 'not_an_image.png', '--mask', tmp_path / 'small_mask.png',
                  '--out', tmp_path / 'o2.png')
  assert code == 2 and 'cannot decode image file' in err
  code, err = run('--method', 'telea', '--image', tmp_path / 'imgs', '--mask', tmp_path / 'small_mask.png',
                  '--out', tmp_path / 'o3')
  assert code == 2 and 'is a directory' in err
  Image.fromarray(np.pad(np.full((4, 4), 255, np.uint8), ((8, 8), (13, 13)))).save(tmp_path / 'a_mask.png')
  code, err = run('--workdir', tmp_path / 'nope', '--image', tmp_path / 'a.png', '--mask', tmp_path / 'a_mask.png',
                  '--out', tmp_path / 'o4.png')
  assert code == 2 and 'does not exist' in err
  with pytest.raises(SystemExit):
    inpaint.main(['--method', 'telea', '--workdir', 'x', '--image', 'a', '--mask', 'b', '--out', 'c'])
  assert 'not allowed with' in capsys.readouterr().err


def test_cli_help():
  proc = _run_cli('--help')
  assert proc.returncode == 0
  for word in ('--workdir', '--mask-hole-value', '--method', 'telea', 'patchmatch', 'configs/quickstart.py'):
    assert word in proc.stdout
