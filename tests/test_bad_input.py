"""Bad input to the command-line tools: one error line (exit 2, naming the file or flag and what was expected,
no traceback) or one clean warning line, and nothing overwritten.

Subprocesses where the process itself matters (exit codes, warnings printed by absl entry points); the
inpaint CLI in-process through `inpaint.main` otherwise.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from jaxinpaint import inpaint

REPO = pathlib.Path(__file__).resolve().parents[1]


def _run(*args, timeout=600):
  env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')])}
  return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True,
                        timeout=timeout, env=env)


def _lines(text: str) -> list[str]:
  return [line for line in text.splitlines() if line.strip()]


def _one_error_line(stderr: str, *needles: str) -> str:
  lines = _lines(stderr)
  assert len(lines) == 1, stderr
  assert 'Traceback' not in stderr and 'error:' in lines[0], stderr
  for needle in needles:
    assert needle in lines[0], (needle, lines[0])
  return lines[0]


def _photo(h=24, w=32, seed=0) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _stroke(h=24, w=32) -> np.ndarray:
  mask = np.zeros((h, w), np.uint8)
  mask[h // 3:h // 2, w // 4:w // 2] = 255
  return mask


@pytest.fixture
def inputs(tmp_path):
  Image.fromarray(_photo()).save(tmp_path / 'photo.png')
  Image.fromarray(_stroke()).save(tmp_path / 'holes.png')
  Image.fromarray(np.zeros((24, 32), np.uint8)).save(tmp_path / 'black.png')
  (tmp_path / 'out.png').write_bytes(b'previous result')
  return tmp_path


def _inpaint(capsys, *args):
  code = inpaint.main([str(a) for a in args])
  return code, capsys.readouterr().err


# ----------------------------------------------------------------------------------------- inpaint CLI

def test_inpaint_mask_without_hole_is_an_error_and_out_untouched(inputs, capsys):
  out = inputs / 'out.png'
  before = out.stat().st_mtime_ns
  code, err = _inpaint(capsys, '--method', 'telea', '--image', inputs / 'photo.png', '--mask', inputs / 'black.png',
                       '--out', out)
  assert code == 2
  _one_error_line(err, 'black.png', 'empty', '--mask-hole-value 0')
  assert out.read_bytes() == b'previous result' and out.stat().st_mtime_ns == before
  # An all-white mask with black = hole is the same mistake the other way round.
  Image.fromarray(np.full((24, 32), 255, np.uint8)).save(inputs / 'white.png')
  code, err = _inpaint(capsys, '--method', 'telea', '--image', inputs / 'photo.png', '--mask', inputs / 'white.png',
                       '--mask-hole-value', 0, '--out', out)
  assert code == 2
  _one_error_line(err, 'white.png', '--mask-hole-value 255')
  # The same black mask read as black = hole covers everything: refused, naming the other setting.
  code, err = _inpaint(capsys, '--method', 'telea', '--image', inputs / 'photo.png', '--mask', inputs / 'black.png',
                       '--mask-hole-value', 0, '--out', out)
  assert code == 2
  _one_error_line(err, 'covers the whole image', '--mask-hole-value 255')
  assert out.read_bytes() == b'previous result'


@pytest.mark.parametrize('case', ['out_is_image', 'out_is_mask', 'bad_extension', 'parent_is_file',
                                  'mask_size', 'image_corrupt', 'mask_corrupt', 'folder_unpaired'])
def test_inpaint_inputs_checked_before_any_model_loads(inputs, capsys, case):
  """Each bad input is refused before the (missing) model is even looked for: the error names the input,
  not the workdir, and no output is written."""
  photo, holes, out = inputs / 'photo.png', inputs / 'holes.png', inputs / 'out.png'
  (inputs / 'file').write_text('x')
  folder_images, folder_masks = inputs / 'imgs', inputs / 'masks'
  folder_images.mkdir()
  folder_masks.mkdir()
  for name in ('a.png', 'b.png'):
    Image.fromarray(_photo()).save(folder_images / name)
  Image.fromarray(_stroke()).save(folder_masks / 'a.png')
  (inputs / 'corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'junk' * 20)
  Image.fromarray(_stroke(10, 10)).save(inputs / 'small.png')
  image, mask, target, needles = {
      'out_is_image': (photo, holes, photo, ['photo.png', 'input']),
      'out_is_mask': (photo, holes, holes, ['holes.png', 'input']),
      'bad_extension': (photo, holes, inputs / 'out.xyz', ['out.xyz', '.png']),
      'parent_is_file': (photo, holes, inputs / 'file' / 'o.png', ['file', 'not a writable directory']),
      'mask_size': (photo, inputs / 'small.png', out, ['small.png', '10x10', '--resize-mask']),
      'image_corrupt': (inputs / 'corrupt.png', holes, out, ['corrupt.png', 'cannot decode']),
      'mask_corrupt': (photo, inputs / 'corrupt.png', out, ['corrupt.png', 'cannot decode mask']),
      'folder_unpaired': (folder_images, folder_masks, inputs / 'results', ['b.png', 'no mask']),
  }[case]
  snapshot = {p: p.read_bytes() for p in inputs.rglob('*') if p.is_file()}
  code, err = _inpaint(capsys, '--workdir', inputs / 'no-such-workdir', '--image', image, '--mask', mask,
                       '--out', target)
  assert code == 2
  line = _one_error_line(err, *needles)
  assert 'no-such-workdir' not in line
  assert {p: p.read_bytes() for p in inputs.rglob('*') if p.is_file()} == snapshot
  assert not (inputs / 'results').exists()


def test_inpaint_resize_mask_warns_once_and_fills(inputs, capsys):
  Image.fromarray(_stroke(12, 16)).save(inputs / 'half.png')
  code, err = _inpaint(capsys, '--method', 'telea', '--image', inputs / 'photo.png', '--mask', inputs / 'half.png',
                       '--out', inputs / 'filled.png', '--resize-mask')
  assert code == 0
  assert [line for line in _lines(err) if 'warning' in line] == [
      'jaxinpaint.inpaint: warning: half.png: resizing mask from 16x12 to 32x24 (nearest neighbour)']
  out = np.asarray(Image.open(inputs / 'filled.png'))
  hole = _stroke() > 0
  np.testing.assert_array_equal(out[~hole], _photo()[~hole])


# ------------------------------------------------------------------------------------- weights CLI

@pytest.mark.parametrize('name', ['random.npz', 'random.pth', 'random.bin', 'random.safetensors', 'weights.h5'])
def test_weights_info_on_random_bytes(tmp_path, name):
  path = tmp_path / name
  path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
  proc = _run('-m', 'jaxinpaint.weights', 'info', path)
  assert proc.returncode == 2
  line = _one_error_line(proc.stderr, name, '.pth/.pt/.bin', '.safetensors', '.npz', 'convert')
  assert 'allow_pickle' not in line and 'pickled' not in line


# ---------------------------------------------------------------------------------- train / evaluate

@pytest.mark.parametrize('script,needles', [
    ('train.py', ['--config', '--workdir', '--config.FIELD=VALUE', 'configs/', ':phase2']),
    ('evaluate.py', ['--method', '--images', '--masks', '--out', '--skip_unreadable', '--compare']),
    ('bench/quality_report.py', ['--workdir', '--eval_dir', '--masks_per_image', 'docs/quality.md']),
    ('bench/edgeconnect_report.py', ['--workdirs', '--pconv', '--masks_per_image', 'edgeconnect_quality.md']),
])
def test_help_exits_0_and_lists_the_flags(script, needles):
  for flag in ('--help', '-h'):
    proc = _run(script, flag, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for needle in needles:
      assert needle in proc.stdout, needle


def _photo_folder(root: pathlib.Path, count: int = 3) -> pathlib.Path:
  root.mkdir(parents=True)
  for i in range(count):
    Image.fromarray(_photo(40, 40, seed=i)).save(root / f'{i}.png')
  return root


def test_evaluate_unreadable_image_stops_or_is_skipped_and_counted(tmp_path):
  images = _photo_folder(tmp_path / 'images')
  (images / 'broken.png').write_bytes(b'not a png')
  args = ['evaluate.py', '--method', 'telea', '--images', images, '--masks', 'irregular', '--size', 32,
          '--noprogress', '--masks_per_image', 2]
  proc = _run(*args, '--out', tmp_path / 'a')
  assert proc.returncode == 2
  _one_error_line(proc.stderr, 'broken.png', '--skip_unreadable')
  assert not (tmp_path / 'a').exists()
  proc = _run(*args, '--out', tmp_path / 'b', '--skip_unreadable')
  assert proc.returncode == 0, proc.stderr
  warnings_ = [line for line in _lines(proc.stderr) if 'broken.png' in line]
  assert warnings_ == [f'evaluate.py: warning: skipping unreadable image {images / "broken.png"} '
                       f"(cannot identify image file '{images / 'broken.png'}')"]
  results = json.loads((tmp_path / 'b' / 'results.json').read_text())
  assert results['num_skipped_unreadable'] == 1
  assert results['skipped_unreadable'] == [str(images / 'broken.png')]
  assert len(results['per_image']) == 6  # 3 photos x 2 masks


def test_evaluate_follows_symlinked_folders(tmp_path):
  photos = _photo_folder(tmp_path / 'photos' / 'set1')
  dataset = tmp_path / 'dataset'
  dataset.mkdir()
  (dataset / 'set1').symlink_to(photos, target_is_directory=True)
  (photos / 'loop').symlink_to(dataset, target_is_directory=True)  # a cycle: each folder is read once
  proc = _run('evaluate.py', '--method', 'telea', '--images', dataset, '--masks', 'irregular', '--size', 32,
              '--noprogress', '--out', tmp_path / 'out')
  assert proc.returncode == 0, proc.stderr
  results = json.loads((tmp_path / 'out' / 'results.json').read_text())
  assert sorted(pathlib.Path(r['image_path']).name for r in results['per_image']) == ['0.png', '1.png', '2.png']


def test_train_unreadable_image_one_clean_warning_and_counted(tmp_path):
  images = _photo_folder(tmp_path / 'images')
  (images / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'junk' * 20)
  # The same folder feeds the training pipeline and the held-out batches: one warning for the file.
  proc = _run('train.py', '--config', 'configs/pconv_tiny.py', '--workdir', tmp_path / 'run', '--noprogress',
              f'--config.images={images}', f'--config.eval_images={images}', '--config.num_steps=1')
  assert proc.returncode == 0, proc.stderr
  warned = [line for line in _lines(proc.stderr) if 'broken.png' in line]
  assert len(warned) == 1, proc.stderr
  assert warned[0].startswith(f'train.py: warning: skipping unreadable image {images / "broken.png"} (')
  assert 'CorruptImageWarning' not in proc.stderr and 'data.py' not in proc.stderr
  assert 'skipped 1 unreadable image file(s)' in proc.stdout



def test_train_phase2_without_init_from_is_one_error_line_in_a_new_workdir(tmp_path):
  # A new workdir: the checkpoint manager creates its directory in a background thread, and a run that
  # stops at once must not exit under that thread (which printed an orbax traceback after the error).
  proc = _run('train.py', '--config', 'configs/pconv_tiny.py:phase2', '--workdir', tmp_path / 'new_run',
              '--noprogress')
  assert proc.returncode == 1, proc.stderr
  line = _one_error_line(proc.stderr, '--config.init_from=WORKDIR', str(tmp_path / 'new_run' / 'checkpoints'))
  assert line.startswith('train.py: error: config.phase=2 fine-tunes a phase-1 model')

# ------------------------------------------------------------------------------- every image PIL reads

def _modes(tmp_path: pathlib.Path) -> dict[str, tuple[pathlib.Path, np.ndarray, float]]:
  """name -> (file, expected float RGB in [0, 1] as a viewer shows it, tolerance), all written by PIL."""
  rng = np.random.default_rng(1)
  rgb = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
  gray16 = rng.integers(0, 65536, (6, 5), dtype=np.uint16)
  alpha = rng.integers(0, 256, (6, 5), dtype=np.uint8)
  a = alpha[..., None] / 255.0
  out = {}
  Image.fromarray(gray16).save(tmp_path / 'g16.png')
  out['16-bit PNG'] = (tmp_path / 'g16.png', np.repeat(gray16[..., None], 3, -1) / 65535.0, 1e-6)
  Image.fromarray(gray16).save(tmp_path / 'g16.tif')
  out['16-bit TIFF'] = (tmp_path / 'g16.tif', np.repeat(gray16[..., None], 3, -1) / 65535.0, 1e-6)
  Image.fromarray(rgb[..., 0]).save(tmp_path / 'gray.png')
  out['grayscale'] = (tmp_path / 'gray.png', np.repeat(rgb[..., :1], 3, -1) / 255.0, 1e-6)
  pal = Image.fromarray(rgb).quantize(8)
  pal.save(tmp_path / 'p.png')
  out['palette'] = (tmp_path / 'p.png', np.asarray(pal.convert('RGB')) / 255.0, 1e-6)
  pal.save(tmp_path / 'p_transparent.png', transparency=0)  # palette entry 0 is transparent
  shown = np.asarray(pal.convert('RGB')) / 255.0
  shown[np.asarray(pal) == 0] = 1.0
  out['palette + transparency'] = (tmp_path / 'p_transparent.png', shown, 1e-6)
  Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / 'rgba.png')
  out['RGBA'] = (tmp_path / 'rgba.png', rgb / 255.0 * a + (1 - a), 1.01 / 255)
  Image.fromarray(np.dstack([rgb[..., 0], alpha]), 'LA').save(tmp_path / 'la.png')
  out['LA'] = (tmp_path / 'la.png', np.repeat(rgb[..., :1], 3, -1) / 255.0 * a + (1 - a), 1.01 / 255)
  cmyk = Image.fromarray(rgb).convert('CMYK')
  cmyk.save(tmp_path / 'cmyk.jpg', quality=100)
  with Image.open(tmp_path / 'cmyk.jpg') as decoded:
    assert decoded.mode == 'CMYK'
    out['CMYK JPEG'] = (tmp_path / 'cmyk.jpg', np.asarray(decoded.convert('RGB')) / 255.0, 1e-6)
  return out


def test_every_pil_mode_reads_as_a_viewer_shows_it(tmp_path):
  from jaxinpaint import data, demo  # pylint: disable=import-outside-toplevel
  for name, (path, want, atol) in _modes(tmp_path).items():
    np.testing.assert_allclose(data.load_image(path), want, atol=atol, err_msg=name)
    as_uint8 = np.rint(want * 255)
    np.testing.assert_allclose(inpaint.load_image(path), as_uint8, atol=1.01, err_msg=name)
    np.testing.assert_allclose(demo.decode_image(path.read_bytes()), as_uint8, atol=1.01, err_msg=name)


def _with_orientation(img: Image.Image, path: pathlib.Path, orientation: int) -> None:
  exif = Image.Exif()
  exif[0x0112] = orientation  # Orientation tag
  img.save(path, exif=exif.tobytes())


def test_exif_rotated_photo_and_mask_are_filled_as_shown(tmp_path, capsys):
  """Orientation 6 (stored sideways, shown rotated 90 degrees clockwise) on both the JPEG photo and its mask:
  the result is written upright, holes where the user sees them, known pixels those the viewer shows."""
  stored = _photo(24, 32)
  stored_hole = np.zeros((24, 32), bool)
  stored_hole[4:10, 20:28] = True
  _with_orientation(Image.fromarray(stored), tmp_path / 'photo.jpg', 6)
  _with_orientation(Image.fromarray(stored_hole.astype(np.uint8) * 255), tmp_path / 'mask.png', 6)
  code, err = _inpaint(capsys, '--method', 'telea', '--image', tmp_path / 'photo.jpg', '--mask',
                       tmp_path / 'mask.png', '--out', tmp_path / 'filled.png')
  assert code == 0, err
  out = np.asarray(Image.open(tmp_path / 'filled.png'))
  with Image.open(tmp_path / 'photo.jpg') as img:
    shown = np.rot90(np.asarray(img.convert('RGB')), k=-1)  # what a viewer shows: 90 degrees clockwise
  hole = np.rot90(stored_hole, k=-1)
  assert out.shape == (32, 24, 3)
  np.testing.assert_array_equal(out[~hole], shown[~hole])
  assert (out[hole] != shown[hole]).any()


# --------------------------------------------------------------------------------------- large images

def test_large_images_refused_from_the_header_or_filled_under_the_cap(tmp_path, capsys):
  big = tmp_path / 'big.png'
  Image.new('1', (5000, 4000)).save(big)  # 20 megapixels, tiny on disk; refused before decoding
  Image.new('1', (5000, 4000)).save(tmp_path / 'big_mask.png')
  (tmp_path / 'out.png').write_bytes(b'previous result')
  code, err = _inpaint(capsys, '--method', 'telea', '--image', big, '--mask', tmp_path / 'big_mask.png',
                       '--out', tmp_path / 'out.png')
  assert code == 2
  _one_error_line(err, 'big.png', '5000x4000 = 20.0 megapixels', 'limit of 16', '--max-megapixels')
  assert (tmp_path / 'out.png').read_bytes() == b'previous result'
  # A trained model's default cap is lower (4 MP): refused before the (missing) workdir is looked at.
  Image.new('RGB', (2100, 2000)).save(tmp_path / 'model_big.png')
  code, err = _inpaint(capsys, '--workdir', tmp_path / 'no-such-workdir', '--image', tmp_path / 'model_big.png',
                       '--mask', tmp_path / 'big_mask.png', '--out', tmp_path / 'out.png')
  assert code == 2
  _one_error_line(err, 'model_big.png', 'limit of 4')
  # Just under a (lowered) cap: filled.
  h, w = 1000, 999
  image = np.tile(_photo(40, 37), (25, 27, 1))[:h, :w]
  mask = np.zeros((h, w), np.uint8)
  mask[400:430, 500:540] = 255
  Image.fromarray(image).save(tmp_path / 'under.png')
  Image.fromarray(mask).save(tmp_path / 'under_mask.png')
  args = ['--method', 'telea', '--image', tmp_path / 'under.png', '--mask', tmp_path / 'under_mask.png',
          '--out', tmp_path / 'under_out.png']
  code, err = _inpaint(capsys, *args, '--max-megapixels', 1.0)
  assert code == 0, err
  out = np.asarray(Image.open(tmp_path / 'under_out.png'))
  np.testing.assert_array_equal(out[mask == 0], image[mask == 0])
  code, err = _inpaint(capsys, *args, '--max-megapixels', 0.99)
  assert code == 2
  _one_error_line(err, 'under.png', '999x1000', 'limit of 0.99')
