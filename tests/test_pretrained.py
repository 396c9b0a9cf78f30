"""Tests for jaxinpaint.pretrained: the export command, loading by name/path, the defaults, the shipped files.

References: stored weights are checked against numpy's own float16 / ml_dtypes bfloat16 casts of the float32
checkpoint, outputs against the float32 checkpoint restored by `jaxinpaint.predictor.from_checkpoint`, the
parameter count against a sum over the checkpoint's 'params' leaves, the card's evaluation table against the
numbers in the results.json it was given. Tiny models are exported into temporary directories put on the
search path with JAXINPAINT_PRETRAINED_PATH, never into the package.
"""

import json
import pathlib
import re
import subprocess
import sys
import tomllib

import jax
import ml_dtypes
import numpy as np
import pytest
from PIL import Image

from jaxinpaint import evaluation
from jaxinpaint import inpaint
from jaxinpaint import predictor
from jaxinpaint import pretrained
from jaxinpaint.demo import DemoApp
from jaxinpaint.inpaint import Inpainter
from jaxinpaint.pretrained import __main__ as cli
from jaxinpaint.pretrained import export

import test_inpaint

REPO = pathlib.Path(__file__).resolve().parents[1]

# The models the package ships (`python -m jaxinpaint.pretrained export` on the trained workdirs). A name
# listed here whose .npz or .md is missing fails the test below.
EXPECTED_SHIPPED: list[str] = ['edgeconnect_cpu', 'pconv_cpu_hour']

SECTIONS = ('## Model', '## Training data', '## Training recipe', '## Evaluation', '## Storage', '## Fingerprint')


def _package_models() -> list[str]:
  return sorted(p.stem for p in pretrained.PACKAGE_DIR.glob('*.npz'))


@pytest.fixture(scope='module')
def workdirs(request, tmp_path_factory):
  cache = test_inpaint._cache_root(request, tmp_path_factory)  # pylint: disable=protected-access
  return {'pconv': test_inpaint.train_tiny_pconv(cache), 'edgeconnect': test_inpaint.make_tiny_edgeconnect(cache)}


@pytest.fixture(scope='module')
def models_dir(workdirs, tmp_path_factory):
  """Tiny models exported under the shipped names: pconv_cpu_hour (float16, with evaluation results) and
  edgeconnect_cpu (bfloat16)."""
  out = tmp_path_factory.mktemp('models')
  results = evaluation.run(method='pconv', images='builtin:heldout', masks='irregular', out=str(out / 'eval'),
                           size=32, checkpoint=str(workdirs['pconv']), limit=4, batch_size=4, progress=False)
  assert results.setup['model']['step'] == 2
  export.export(workdirs['pconv'], name='pconv_cpu_hour', out_dir=out, eval_results=out / 'eval' / 'results.json',
                recipe=['python train.py --config configs/pconv_tiny.py --workdir W'])
  export.export(workdirs['edgeconnect'], name='edgeconnect_cpu', out_dir=out, dtype='bfloat16')
  return out


@pytest.fixture
def on_path(models_dir, monkeypatch):
  monkeypatch.setenv(pretrained.ENV_VAR, str(models_dir))
  return models_dir


def _checkpoint_arrays(workdir) -> tuple[predictor.Loaded, dict]:
  loaded = predictor.from_checkpoint(workdir)
  return loaded, pretrained.flatten(jax.device_get(loaded.task.inference_state(loaded.state)))


# ------------------------------------------------------------------------------------- export + load

def test_export_writes_the_inference_weights_in_float16(on_path, workdirs):
  assert sorted(p.name for p in on_path.iterdir() if p.is_file()) == [
      'edgeconnect_cpu.md', 'edgeconnect_cpu.npz', 'pconv_cpu_hour.md', 'pconv_cpu_hour.npz']  # no temp files
  loaded, reference = _checkpoint_arrays(workdirs['pconv'])
  with np.load(on_path / 'pconv_cpu_hour.npz', allow_pickle=False) as npz:
    stored = {k: npz[k] for k in npz.files if k != '__meta__'}
  assert stored.keys() == reference.keys()
  assert all(k.split('/')[0] in ('params', 'batch_stats') for k in stored)  # no optimiser state, step or rng
  for k, a in reference.items():
    assert stored[k].dtype == np.float16, k
    np.testing.assert_array_equal(stored[k], a.astype(np.float16), err_msg=k)
  meta = pretrained.metadata('pconv_cpu_hour')
  assert (meta['model'], meta['step'], meta['storage_dtype']) == ('pconv', 2, 'float16')
  # Recorded relative to the working directory, never as the exporting machine's absolute path.
  assert not pathlib.Path(meta['source_checkpoint']).is_absolute()
  assert pathlib.Path(meta['source_checkpoint']).resolve() == pathlib.Path(loaded.info['checkpoint']).resolve()
  assert meta['config'] == json.loads(loaded.task.config.to_json_best_effort())


def test_export_records_paths_relative_to_the_working_directory(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path / '.')
  config = {'images': str(tmp_path / 'data' / 'natural'), 'init_from': str(tmp_path.parent / 'runs' / 's1'),
            'masks': 'mix:irregular=3,block=1', 'eval_images': 'builtin:heldout', 'batch_size': 8,
            'pconv': {'features': [32, 64]}, 'list': [str(tmp_path / 'a'), 'b']}
  assert export._portable(config) == {  # pylint: disable=protected-access
      'images': 'data/natural', 'init_from': '../runs/s1', 'masks': 'mix:irregular=3,block=1',
      'eval_images': 'builtin:heldout', 'batch_size': 8, 'pconv': {'features': [32, 64]}, 'list': ['a', 'b']}


def test_shipped_models_record_no_absolute_paths():
  for name in EXPECTED_SHIPPED:
    meta = json.dumps(pretrained.metadata(pretrained.PACKAGE_DIR / f'{name}.npz'))
    card = (pretrained.PACKAGE_DIR / f'{name}.md').read_text()
    for text, where in ((meta, f'{name}.npz metadata'), (card, f'{name}.md')):
      assert not re.search(r'["`(\s]/(work|home|tmp|Users|root)/', text), where


def test_fingerprint_tolerance_follows_the_compute_dtype_and_still_sees_a_changed_layer(on_path):
  """bfloat16 compute gets the looser bound (XLA versions round different intermediates), which a changed layer
  still exceeds: the completion network's last convolution negated moves the fingerprint far past it."""
  assert pretrained.fingerprint_tolerance({'config': {'dtype': 'bfloat16'}}) == pretrained.FINGERPRINT_ATOL_BF16
  assert pretrained.fingerprint_tolerance({'config': {'dtype': 'float32'}}) == pretrained.FINGERPRINT_ATOL
  assert pretrained.FINGERPRINT_ATOL < pretrained.FINGERPRINT_ATOL_BF16
  task, state, meta = pretrained.read('edgeconnect_cpu')
  images, masks = pretrained.fixed_input(task.required_multiple())
  assert pretrained.fingerprint_difference(meta['fingerprint'], pretrained.fingerprint(
      pretrained.outputs(task, state, images, masks))) == 0.0
  flat = pretrained.flatten(jax.device_get(state))
  last = 'nets/g2/params/net/dec3/kernel'  # the output convolution
  flat[last] = -flat[last]
  changed = pretrained.unflatten(flat, state, where='test')
  difference = pretrained.fingerprint_difference(meta['fingerprint'], pretrained.fingerprint(
      pretrained.outputs(task, changed, images, masks)))
  assert difference > 5 * pretrained.FINGERPRINT_ATOL_BF16, (last, difference)


def test_edgeconnect_keeps_only_the_generators_as_bfloat16(on_path, workdirs):
  _, reference = _checkpoint_arrays(workdirs['edgeconnect'])
  assert {k.split('/')[1] for k in reference} == {'g1', 'g2'}
  with np.load(on_path / 'edgeconnect_cpu.npz', allow_pickle=False) as npz:
    for k, a in reference.items():
      assert npz[k].dtype == np.uint16, k  # bfloat16 bit patterns
      np.testing.assert_array_equal(npz[k].view(ml_dtypes.bfloat16), a.astype(ml_dtypes.bfloat16), err_msg=k)


@pytest.mark.parametrize('kind,name', [('pconv', 'pconv_cpu_hour'), ('edgeconnect', 'edgeconnect_cpu')])
def test_loaded_model_matches_the_float32_checkpoint_within_the_stated_tolerance(on_path, workdirs, kind, name):
  by_name = predictor.load(name)
  by_path = predictor.load(on_path / f'{name}.npz')
  assert by_name.info['pretrained'] == by_path.info['pretrained'] == name
  assert by_name.info['model'] == kind and by_name.info['step'] == pretrained.metadata(name)['step']
  checkpoint = predictor.from_checkpoint(workdirs[kind])
  images, masks = pretrained.fixed_input(checkpoint.task.required_multiple())
  reference = pretrained.outputs(checkpoint.task, checkpoint.state, images, masks)
  for loaded in (by_name, by_path):
    assert all(leaf.dtype == np.float32 for leaf in jax.tree.leaves(loaded.state))
    got = pretrained.outputs(loaded.task, loaded.state, images, masks)
    stated = float(re.search(r'within (\S+) of the float32 checkpoint', pretrained.card(name)).group(1))
    for key in reference:
      assert np.max(np.abs(got[key] - reference[key])) <= stated, key
  # The batched predictor (evaluate.py, the demo) takes a shipped model like a checkpoint.
  predict, info = predictor.restore_predictor(name, model=kind, batch_size=2)
  assert info['storage_dtype'] == pretrained.metadata(name)['storage_dtype']
  np.testing.assert_allclose(predict(images, masks), pretrained.outputs(by_name.task, by_name.state, images, masks)['image'],
                             atol=1e-6)


def test_inference_state_is_what_predict_reads(workdirs):
  for workdir in workdirs.values():
    loaded = predictor.from_checkpoint(workdir)
    small = loaded.task.inference_state(loaded.state)
    assert small.opt_state is None and small.rng is None and small.step is None
    assert len(jax.tree.leaves(small)) < len(jax.tree.leaves(loaded.state))
    images, masks = pretrained.fixed_input(loaded.task.required_multiple())
    full = pretrained.outputs(loaded.task, loaded.state, images, masks)
    for key, value in pretrained.outputs(loaded.task, small, images, masks).items():
      np.testing.assert_array_equal(value, full[key])


def test_card_has_every_section_and_the_evaluation_table(on_path, workdirs):
  text = pretrained.card('pconv_cpu_hour')
  for section in SECTIONS:
    assert section in text, section
  results = evaluation.load_results(on_path / 'eval')
  overall = next(r for r in results['rows'] if r['bucket'] == 'all' and r['border'] == 'all')
  assert f'| all | {overall["count"]} | {overall["l1"]:.2f} | {overall["psnr"]:.2f} | {overall["ssim"]:.4f} |' in text
  assert evaluation.command_line(results['setup']) in text
  assert 'python train.py --config configs/pconv_tiny.py --workdir W' in text
  loaded = predictor.from_checkpoint(workdirs['pconv'])
  params = sum(np.size(a) for a in jax.tree.leaves(loaded.state.params))
  assert f'Parameters: {params:,} trainable' in text
  assert '`builtin:train`' in text  # the training images of configs/pconv_tiny.py
  ec = pretrained.card('edgeconnect_cpu')
  assert all(section in ec for section in SECTIONS) and 'Not evaluated at export' in ec
  assert '| edge |' in ec and '| image |' in ec and 'bfloat16' in ec


def test_eval_results_of_another_step_are_refused(workdirs, models_dir, tmp_path):
  results = json.loads((models_dir / 'eval' / 'results.json').read_text())
  results['setup']['model']['step'] = 7
  (tmp_path / 'results.json').write_text(json.dumps(results))
  with pytest.raises(ValueError, match='scored step 7, but the exported checkpoint is step 2'):
    export.export(workdirs['pconv'], name='x', out_dir=tmp_path, eval_results=tmp_path / 'results.json')
  results['setup']['method'] = 'telea'
  (tmp_path / 'results.json').write_text(json.dumps(results))
  with pytest.raises(ValueError, match="scored method 'telea', but the exported model is 'pconv'"):
    export.export(workdirs['pconv'], name='x', out_dir=tmp_path, eval_results=tmp_path / 'results.json')
  assert sorted(p.name for p in tmp_path.iterdir()) == ['results.json']


def test_a_failed_export_leaves_no_partial_file(workdirs, tmp_path, monkeypatch):
  (tmp_path / 'm.npz').write_bytes(b'previous version')

  def broken_savez(file, **arrays):
    file.write(b'PK\x03\x04 half a zip')
    raise OSError('disk full')

  monkeypatch.setattr(export.np, 'savez', broken_savez)
  with pytest.raises(OSError, match='disk full'):
    export.export(workdirs['pconv'], name='m', out_dir=tmp_path)
  assert sorted(p.name for p in tmp_path.iterdir()) == ['m.npz']
  assert (tmp_path / 'm.npz').read_bytes() == b'previous version'


# ---------------------------------------------------------------------------------------- errors

def test_unknown_names_and_missing_files(on_path, tmp_path, capsys, monkeypatch):
  with pytest.raises(FileNotFoundError, match=r"'nope' is not installed.*shipped: edgeconnect_cpu, pconv_cpu_hour"):
    Inpainter.from_pretrained('nope')
  with pytest.raises(FileNotFoundError, match=r"'nope' is no checkpoint path, and pretrained model 'nope'"):
    predictor.load('nope')
  with pytest.raises(FileNotFoundError, match='does not exist'):
    predictor.from_pretrained(tmp_path / 'missing.npz')
  (tmp_path / 'fake.npz').write_bytes(b'not a zip')
  with pytest.raises(ValueError, match='is not a jaxinpaint pretrained model file'):
    predictor.load(tmp_path / 'fake.npz')
  with pytest.raises(ValueError, match='holds a .edgeconnect. checkpoint, expected .pconv.'):
    predictor.load('edgeconnect_cpu', model='pconv')
  # The same, one line each, from the command lines.
  assert cli.main(['card', 'nope']) == 2
  err = capsys.readouterr().err
  assert err.count('\n') == 1 and "pretrained model 'nope' is not installed" in err
  image = np.zeros((16, 16, 3), np.uint8)
  Image.fromarray(image).save(tmp_path / 'a.png')
  hole = np.zeros((16, 16), np.uint8)
  hole[4:8, 4:8] = 255  # a valid mask: the inputs pass, the model name is what fails
  Image.fromarray(hole).save(tmp_path / 'm.png')
  assert inpaint.main(['--pretrained', 'nope', '--image', str(tmp_path / 'a.png'), '--mask', str(tmp_path / 'm.png'),
                       '--out', str(tmp_path / 'o.png')]) == 2
  err = capsys.readouterr().err
  assert err.count('\n') == 1 and "'nope' is not installed" in err
  # A .npz without its card.
  np.savez(tmp_path / 'lonely.npz', **{'__meta__': np.asarray(json.dumps({'format': pretrained.FORMAT}))})
  monkeypatch.setenv(pretrained.ENV_VAR, str(tmp_path))
  with pytest.raises(FileNotFoundError, match='model card .*lonely.md is missing'):
    pretrained.card('lonely')


def test_export_command_line(workdirs, tmp_path, capsys, monkeypatch):
  for command in ([], ['export'], ['list'], ['card']):
    with pytest.raises(SystemExit) as exit_info:
      cli.main(command + ['--help'])
    assert exit_info.value.code == 0
  out = capsys.readouterr().out
  assert '--eval-results' in out and '--dtype' in out and 'model card' in out
  assert cli.main(['export', '--workdir', str(tmp_path / 'none'), '--name', 'x', '--out-dir', str(tmp_path)]) == 2
  assert 'does not exist' in capsys.readouterr().err
  assert cli.main(['export', '--workdir', str(workdirs['pconv']), '--name', 'bad/name', '--out-dir', str(tmp_path)]) == 2
  assert '--name must be letters, digits and underscores' in capsys.readouterr().err
  assert cli.main(['export', '--workdir', str(workdirs['pconv']), '--name', 'tiny', '--out-dir', str(tmp_path),
                   '--dtype', 'float32']) == 0
  assert 'wrote' in capsys.readouterr().out
  assert pretrained.metadata(tmp_path / 'tiny.npz')['storage_effect']['image']['max_abs'] == 0.0  # float32 is exact
  monkeypatch.setenv(pretrained.ENV_VAR, str(tmp_path))
  assert cli.main(['list']) == 0
  assert re.search(r'^tiny\tpconv\tstep 2\tfloat32\t', capsys.readouterr().out, re.M)


# -------------------------------------------------------------------------------------- defaults

def test_inpaint_cli_without_a_model_flag_uses_the_shipped_pconv(on_path, tmp_path, capsys):
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
  hole = np.zeros((40, 50), bool)
  hole[10:25, 12:30] = True
  Image.fromarray(image).save(tmp_path / 'a.png')
  Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / 'm.png')
  assert inpaint.main(['--image', str(tmp_path / 'a.png'), '--mask', str(tmp_path / 'm.png'),
                       '--out', str(tmp_path / 'o.png')]) == 0
  assert 'loaded pconv step 2 from pretrained model pconv_cpu_hour' in capsys.readouterr().err
  out = np.asarray(Image.open(tmp_path / 'o.png'))
  np.testing.assert_array_equal(out[~hole], image[~hole])
  expected = Inpainter.from_pretrained('pconv_cpu_hour')(image, hole)
  np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize('method,name', [('pconv', 'pconv_cpu_hour'), ('edgeconnect', 'edgeconnect_cpu')])
def test_evaluate_without_workdir_uses_the_shipped_model_of_the_method(on_path, tmp_path, method, name):
  proc = subprocess.run([sys.executable, str(REPO / 'evaluate.py'), '--method', method, '--images', 'builtin:heldout',
                         '--masks', 'irregular', '--size', '32', '--limit', '2', '--out', str(tmp_path), '--noprogress'],
                        cwd=REPO, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr
  setup = evaluation.load_results(tmp_path)['setup']
  assert setup['model']['pretrained'] == name and setup['model']['step'] == (2 if method == 'pconv' else 1)
  assert evaluation.command_line(setup).startswith(f'python evaluate.py --method {method} --checkpoint {name} ')


def test_demo_offers_the_shipped_models(on_path, workdirs):
  app = DemoApp()
  for kind, name in (('pconv', 'pconv_cpu_hour'), ('edgeconnect', 'edgeconnect_cpu')):
    method = app.methods[kind]
    assert method.available and f'shipped model {name}' in method.label and str(on_path / f'{name}.npz') in method.note
  assert app.has_model and app.info()['default_method'] == 'pconv'
  without = DemoApp(use_pretrained=False)
  assert not without.methods['pconv'].available and not without.has_model
  # A --workdir model replaces the shipped one of its kind and is the default choice.
  own = DemoApp(workdirs=[str(workdirs['edgeconnect'])])
  assert 'shipped' not in own.methods['edgeconnect'].label and 'shipped' in own.methods['pconv'].label
  assert own.info()['default_method'] == 'edgeconnect'


# --------------------------------------------------------------------------------- the shipped files

def test_expected_models_are_shipped():
  shipped = _package_models()
  for name in EXPECTED_SHIPPED:
    assert name in shipped, f'{name}.npz is not in {pretrained.PACKAGE_DIR}'
    assert (pretrained.PACKAGE_DIR / f'{name}.md').is_file(), f'{name}.md (its card) is missing'
  package_data = tomllib.loads((REPO / 'pyproject.toml').read_text())['tool']['setuptools']['package-data']
  assert {'*.npz', '*.md'} <= set(package_data['jaxinpaint.pretrained'])


@pytest.mark.parametrize('name', _package_models())
def test_shipped_model_reproduces_its_fingerprint(name, monkeypatch):
  monkeypatch.delenv(pretrained.ENV_VAR)
  assert pretrained.search_path() == [pretrained.PACKAGE_DIR]
  stored, now = pretrained.recompute_fingerprint(name)
  meta = pretrained.metadata(name)
  assert pretrained.fingerprint_difference(stored, now) <= pretrained.fingerprint_tolerance(meta)
  text = pretrained.card(name)
  assert all(section in text for section in SECTIONS)
  training_data = text.split('## Training data', 1)[1].split('## Training recipe', 1)[0]
  assert f'`{meta["config"]["images"]}`' in training_data
  assert export._NO_SOURCES not in training_data  # pylint: disable=protected-access  (provenance recorded)
  assert 'Not evaluated at export' not in text
