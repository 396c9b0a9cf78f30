"""Tests for jaxinpaint.training and the PConv task: sharding equivalence, multi-process, kill/resume,
phase-2 freezing, overfitting, bad configs, restore_predictor, observability.

Runs that need a different device or process count are subprocesses (`tests/training_worker.py` or
`train.py`) on the tiny config (`configs/pconv_tiny.py`: 32x32, 3 levels, built-in photos).
"""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
WORKER = REPO / 'tests' / 'training_worker.py'
PY = sys.executable

pytestmark = pytest.mark.slow


def _env(devices: int | None = None, **extra) -> dict:
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONUNBUFFERED='1', **extra)
  flags = [f for f in env.get('XLA_FLAGS', '').split() if 'xla_force_host_platform_device_count' not in f]
  if devices:
    flags.append(f'--xla_force_host_platform_device_count={devices}')
  env['XLA_FLAGS'] = ' '.join(flags)
  return env


def _popen(args, env, **kw) -> subprocess.Popen:
  return subprocess.Popen([PY, *map(str, args)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, **kw)


def _finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
  out, err = proc.communicate(timeout=timeout)
  return proc.returncode, out, err


def _run_worker(workdir, out, *overrides, env=None) -> tuple[int, str, str]:
  return _finish(_popen([WORKER, 'train', workdir, out, *overrides], env or _env()))


def _load(path) -> dict:
  with np.load(path) as f:
    return {k: f[k] for k in f.files}


def _steps(workdir) -> list[int]:
  d = pathlib.Path(workdir) / 'checkpoints'
  return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit())


# ------------------------------------------------------------------ a reference run shared by several tests

@pytest.fixture(scope='module')
def reference_run(tmp_path_factory):
  """10 steps of the tiny config, checkpoints at 4, 8, 10 (uninterrupted)."""
  root = tmp_path_factory.mktemp('reference')
  rc, out, err = _run_worker(root / 'wd', root / 'final.npz', '--config.checkpoint_every=4')
  assert rc == 0, err[-3000:]
  return root / 'wd', _load(root / 'final.p0.npz')


# ------------------------------------------------------------------ data parallelism

def test_four_devices_match_one_device(tmp_path):
  """One step on a global batch of 8: 4 CPU devices (batch sharded) == 1 device, params and BN stats."""
  procs = {n: _popen([WORKER, 'onestep', tmp_path / f'd{n}.npz'], _env(devices=n)) for n in (1, 4)}
  for n, p in procs.items():
    rc, _, err = _finish(p)
    assert rc == 0, err[-3000:]
  one, four = _load(tmp_path / 'd1.npz'), _load(tmp_path / 'd4.npz')
  assert int(one['devices']) == 1 and int(four['devices']) == 4
  assert set(one) == set(four)
  stats = [k for k in one if k.startswith('batch_stats/')]
  assert stats, 'no BatchNorm statistics found'
  for k in one:
    if k in ('devices', 'step'):
      continue
    np.testing.assert_allclose(four[k], one[k], atol=1e-5, rtol=1e-5, err_msg=k)
  # The step changed the running statistics (so the comparison above is not trivially of initial values).
  assert any(np.abs(one[k]).max() > 0 for k in stats if k.endswith('/mean'))


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def test_two_processes_end_with_identical_params(tmp_path):
  """jax.distributed on localhost (gloo CPU collectives): 2 processes x 1 device, 2 steps."""
  addr = f'localhost:{_free_port()}'
  common = ['--config.num_steps=2', '--config.num_processes=2', f'--config.coordinator_address={addr}',
            '--config.checkpoint_every=2', '--config.eval_images=']
  procs = [_popen([WORKER, 'train', tmp_path / 'wd', tmp_path / 'final.npz', *common, f'--config.process_id={i}'],
                  _env(devices=1)) for i in range(2)]
  results = [_finish(p, timeout=240) for p in procs]
  for rc, out, err in results:
    assert rc == 0, err[-3000:]
    assert 'STATUS done 2' in out
  p0, p1 = _load(tmp_path / 'final.p0.npz'), _load(tmp_path / 'final.p1.npz')
  assert int(p0['step']) == 2
  for k in p0:
    np.testing.assert_array_equal(p0[k], p1[k], err_msg=k)
  assert _steps(tmp_path / 'wd') == [2]


# ------------------------------------------------------------------ checkpoints: kill and resume

def test_checkpoint_retention_keeps_latest_and_best(tmp_path):
  """keep=2 latest plus keep_best=1 lowest validation loss; the state round-trips."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from jaxinpaint import checkpoint as ckpt  # pylint: disable=import-outside-toplevel
  manager = ckpt.create_manager(tmp_path, keep=2, keep_best=1)
  for step, val in zip(range(1, 6), [3.0, 1.0, 2.0, 4.0, 5.0]):
    state = {'w': jnp.full((3,), float(step)), 'step': jnp.asarray(step)}
    ckpt.save(manager, step, state, data_state={'pos': step}, config={'model': 'x'}, val_loss=val)
  assert list(manager.all_steps()) == [2, 4, 5]
  import jax  # pylint: disable=import-outside-toplevel
  abstract = jax.eval_shape(lambda: {'w': jnp.zeros((3,)), 'step': jnp.asarray(0)})
  state, data_state = ckpt.restore(manager, 2, abstract, jax.sharding.SingleDeviceSharding(jax.devices()[0]))
  np.testing.assert_array_equal(state['w'], [2.0, 2.0, 2.0])
  assert data_state == {'pos': 2} and ckpt.read_config(manager, 4) == {'model': 'x'}
  manager.close()



def test_reading_a_workdir_logs_no_orbax_warnings(tmp_path, caplog):
  """A read-only manager (evaluation, inference) loads without orbax's per-load warnings; errors still pass."""
  import logging  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from jaxinpaint import checkpoint as ckpt  # pylint: disable=import-outside-toplevel
  writer = ckpt.create_manager(tmp_path, keep=2, keep_best=0)
  ckpt.save(writer, 1, {'w': jnp.ones((2,))}, data_state=None, config={'model': 'x'})
  writer.close()
  with caplog.at_level(logging.INFO, logger='absl'):
    reader = ckpt.create_manager(tmp_path, read_only=True, keep_best=0)
  assert reader.latest_step() == 1 and ckpt.read_config(reader, 1) == {'model': 'x'}
  reader.close()
  assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [r.getMessage() for r in caplog.records]
  logging.getLogger('absl').error('still shown')  # the filter is gone after construction
  assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == ['still shown']

def test_sigkill_between_checkpoints_then_resume(tmp_path, reference_run, kill_when_hanging):
  ref_dir, ref = reference_run
  wd, out = tmp_path / 'wd', tmp_path / 'final.npz'
  cmd = [WORKER, 'train', wd, out, '--config.checkpoint_every=4', '--config.eval_images=']
  proc = _popen(cmd + ['--hang-at-step=6'], _env())  # the input pipeline blocks before step 6
  kill_when_hanging(proc, timeout=240, exit_timeout=30)
  assert proc.returncode == -signal.SIGKILL
  assert _steps(wd) == [4], 'only the step-4 checkpoint should exist after the kill at step 6'

  # The same training command again, on 4 devices this time: the 1-device checkpoint restores onto the
  # 4-device mesh.
  rc, stdout, err = _finish(_popen(cmd, _env(devices=4)))
  assert rc == 0, err[-3000:]
  assert 'resuming from' in stdout and '(step 4)' in stdout
  resumed = _load(tmp_path / 'final.p0.npz')
  assert int(resumed['step']) == 10
  # Same params/BN stats as the uninterrupted 1-device run: step counter, optimiser state and data position
  # resumed (tolerance: sharded reductions sum in another order).
  for k in ref:
    np.testing.assert_allclose(resumed[k], ref[k], atol=2e-5, rtol=1e-4, err_msg=k)
  assert _steps(wd) == _steps(ref_dir) == [8, 10]
  assert not [p for p in (wd / 'checkpoints').iterdir() if 'tmp' in p.name], 'temporary checkpoint dirs left'
  records = [json.loads(l) for l in (wd / 'metrics.jsonl').read_text().splitlines()]
  train_steps = [r['step'] for r in records if r['split'] == 'train']
  assert train_steps == list(range(1, 11)), train_steps  # history rewound to step 4, no duplicates

  # A finished run re-run does nothing but say so.
  before = sorted(str(p) for p in wd.rglob('*'))
  rc, stdout, err = _finish(_popen(cmd, _env()))
  assert rc == 0, err[-3000:]
  assert 'already done' in stdout and 'STATUS already_done 10' in stdout
  assert sorted(str(p) for p in wd.rglob('*')) == before


# ------------------------------------------------------------------ phase 2

def test_phase2_from_phase1_freezes_encoder_bn(tmp_path, reference_run):
  ref_dir, ref = reference_run
  rc, out, err = _run_worker(tmp_path / 'ft', tmp_path / 'ft.npz', '--phase2', f'--config.init_from={ref_dir}',
                             '--config.num_steps=3', '--config.eval_images=')
  assert rc == 0, err[-3000:]
  assert 'initialised from' in out
  ft = _load(tmp_path / 'ft.p0.npz')
  enc_bn = [k for k in ref if '/' in k and k.split('/')[1].startswith('enc') and '/bn/' in k]
  dec_bn = [k for k in ref if '/' in k and k.split('/')[1].startswith('dec') and '/bn/' in k]
  assert {k.split('/')[0] for k in enc_bn} == {'params', 'batch_stats'} and dec_bn
  for k in enc_bn:  # scale, bias, running mean and var: bit-identical to phase 1's final values
    np.testing.assert_array_equal(ft[k], ref[k], err_msg=k)
  for k in dec_bn:
    assert not np.allclose(ft[k], ref[k]), f'{k} did not change in phase 2'
  assert int(ft['step']) == 3


# ------------------------------------------------------------------ learning

def test_overfits_one_batch():
  """200 Adam steps on one fixed batch: the hole L1 falls by at least 5x (about 30x in practice)."""
  import jax  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, str(REPO / 'tests'))
  import training_worker  # pylint: disable=import-outside-toplevel
  from jaxinpaint import tasks  # pylint: disable=import-outside-toplevel
  from jaxinpaint.training import loop, mesh as mesh_lib  # pylint: disable=import-outside-toplevel
  task = tasks.build(training_worker.apply_overrides(training_worker.tiny_config(), ['--config.learning_rate=0.003']))
  mesh = mesh_lib.create_mesh()
  batch = mesh_lib.put_global_batch(training_worker.fixed_batch(), mesh)
  state = loop.create_train_state(task, jax.random.PRNGKey(0), batch, mesh_lib.replicated(mesh))
  step = loop.make_train_step(task, mesh)
  holes = []
  for _ in range(200):
    state, metrics = step(state, batch)
    holes.append(metrics['hole'])
  holes = np.asarray(jax.device_get(holes))
  assert np.all(np.isfinite(holes))
  assert holes[:5].mean() / holes[-5:].mean() >= 5.0, (holes[:5], holes[-5:])


def test_learning_rate_schedules_match_formula():
  """'constant' (paper) and 'cosine': linear warm-up to lr, then lr * (f + (1 - f) (1 + cos(pi t)) / 2)."""
  import ml_collections  # pylint: disable=import-outside-toplevel
  from jaxinpaint.tasks import pconv  # pylint: disable=import-outside-toplevel
  lr, warm, total, frac = 2e-3, 10, 110, 0.05
  config = ml_collections.ConfigDict(dict(learning_rate=lr, warmup_steps=warm, num_steps=total,
                                          lr_schedule='cosine', lr_final_fraction=frac))
  steps = np.array([0, 5, 10, 35, 60, 85, 110, 200])
  t = np.clip((steps - warm) / (total - warm), 0, 1)
  want = np.where(steps < warm, lr * steps / warm, lr * (frac + (1 - frac) * 0.5 * (1 + np.cos(np.pi * t))))
  got = np.array([float(pconv.learning_rate_schedule(config)(s)) for s in steps])
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-12)
  config.lr_schedule = 'constant'
  got = np.array([float(pconv.learning_rate_schedule(config)(s)) for s in steps])
  np.testing.assert_allclose(got, np.minimum(steps / warm, 1) * lr, rtol=1e-6)
  # Drops multiply either shape by the factor once per boundary passed (optax: from the boundary step on).
  config.lr_drop_steps, config.lr_drop_factor = (35, 85), 0.1
  drop = 0.1 ** ((steps >= 35).astype(int) + (steps >= 85).astype(int))
  got = np.array([float(pconv.learning_rate_schedule(config)(s)) for s in steps])
  np.testing.assert_allclose(got, np.minimum(steps / warm, 1) * lr * drop,
                             rtol=1e-5)
  config.lr_schedule = 'cosine'
  got = np.array([float(pconv.learning_rate_schedule(config)(s)) for s in steps])
  np.testing.assert_allclose(got, want * drop, rtol=1e-5, atol=1e-12)


def test_edgeconnect_optimizers_follow_the_shared_schedule():
  """EdgeConnect's Adam(b1=0, b2=0.9) under a constant gradient moves each parameter by exactly lr(t) per step
  (m = g and the bias-corrected v = g^2), so the steps it takes are the schedule: G at lr, D at d2g_lr x lr."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  from configs import edgeconnect_quickstart  # pylint: disable=import-outside-toplevel
  from jaxinpaint.tasks import edgeconnect  # pylint: disable=import-outside-toplevel
  config = edgeconnect_quickstart.get_config('stage2')
  config.unlock()
  lr, warm, total = 1e-3, 4, 20
  config.update(dict(learning_rate=lr, warmup_steps=warm, num_steps=total, lr_schedule='cosine',
                     lr_final_fraction=0.0, lr_drop_steps=(12,), lr_drop_factor=0.5, d2g_lr=0.1))
  steps = np.arange(total)
  t = np.clip((steps - warm) / (total - warm), 0, 1)
  want = np.where(steps < warm, lr * steps / warm, lr * 0.5 * (1 + np.cos(np.pi * t))) * np.where(steps >= 12, 0.5, 1)
  for name, scale in (('g2', 1.0), ('d2', 0.1)):
    opt = edgeconnect.make_optimizers(config)[name]
    params, grad = jnp.full((3,), 2.0), jnp.array([1.0, -3.0, 0.5])
    state, moved = opt.init(params), []
    for _ in steps:
      upd, state = opt.update(grad, state, params)
      moved.append(np.abs(np.asarray(upd)))
      params = optax.apply_updates(params, upd)
    moved = np.asarray(moved)
    np.testing.assert_allclose(moved.min(1), moved.max(1), rtol=1e-4, atol=1e-9)  # sign steps: |g| drops out
    moved = moved.max(1)
    np.testing.assert_allclose(moved, scale * want, rtol=1e-4, atol=1e-9, err_msg=name)


# ------------------------------------------------------------------ bad configs

@pytest.mark.parametrize('override,devices,expected', [
    ('--config.batch_sizee=8', 1, 'Did you mean "batch_size"'),
    ('--config.batch_size=6', 4, 'divisible by the number of devices (4)'),
    ('--config.image_size=36', 1, 'divisible by 2**config.pconv.num_levels=8'),
    ('--config.images=/nonexistent/photos', 1, "config.images='/nonexistent/photos': no such file"),
    ('--config.lr_schedule=linear', 1, "config.lr_schedule must be 'constant' or 'cosine', got 'linear'"),
    ('--config.masks=center', 1, "config.masks='center': masks spec 'center' is neither a known generator"),
    ('--config.crop=middle', 1, "config.crop: crop must be one of"),
    ('--config.shorter_side=8', 1, "config.shorter_side: shorter_side must be 0 (crop at native resolution) or"),
    ('--config.mask_size=8', 1, "config.mask_size: mask_size must be 0 (masks drawn at the crop size) or an int"),
    ('--config.min_mask_size=64', 1, "config.min_mask_size: min_mask_size=64 needs mask_size > 0"),
])
def test_bad_config_one_clear_line_before_compile(tmp_path, override, devices, expected):
  proc = _popen([REPO / 'train.py', '--config', REPO / 'configs' / 'pconv_tiny.py', '--workdir', tmp_path / 'wd',
                 override], _env(devices=devices))
  rc, out, err = _finish(proc, timeout=120)
  assert rc != 0
  lines = [l for l in err.splitlines() if l.strip()]
  assert len(lines) == 1, err
  assert lines[0].startswith('train.py: error:') and expected in lines[0], lines[0]
  assert 'Traceback' not in err + out
  assert not (tmp_path / 'wd').exists()  # failed before creating anything


def test_missing_vgg_weights_refused_unless_opted_out():
  from jaxinpaint import training  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, str(REPO / 'tests'))
  import training_worker  # pylint: disable=import-outside-toplevel
  config = training_worker.apply_overrides(training_worker.tiny_config(), ['--config.loss.allow_missing_vgg=False'])
  with pytest.raises(training.ConfigError, match='vgg_weights'):
    training.validate_config(config, num_devices=1)
  config = training_worker.apply_overrides(config, ['--config.loss.perceptual=0.0', '--config.loss.style=0.0'])
  training.validate_config(config, num_devices=1)  # no VGG terms -> no weights needed


def test_pconv_task_loss_reads_the_extra_terms_from_config_loss():
  """`config.loss.ssim` and `config.loss.mse` (not in the paper) reach `losses.pconv_loss` with their weights."""
  from jaxinpaint import losses  # pylint: disable=import-outside-toplevel
  from jaxinpaint.tasks import pconv  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, str(REPO / 'tests'))
  import training_worker  # pylint: disable=import-outside-toplevel
  config = training_worker.apply_overrides(
      training_worker.tiny_config(), ['--config.loss.perceptual=0.0', '--config.loss.style=0.0',
                                      '--config.loss.ssim=2.0', '--config.loss.mse=30.0'])
  rng = np.random.default_rng(0)
  out, gt = (rng.uniform(size=(2, 16, 16, 3)).astype(np.float32) for _ in range(2))
  mask = (rng.uniform(size=(2, 16, 16, 1)) > 0.5).astype(np.float32)
  total, terms = pconv.loss_fn(config, out, gt, mask)
  comp = mask * gt + (1 - mask) * out
  np.testing.assert_allclose(terms['mse'], np.mean(np.square(comp - gt)), rtol=1e-5)
  np.testing.assert_allclose(terms['ssim'], losses.dssim(comp, gt), rtol=1e-5)
  l = config.loss
  np.testing.assert_allclose(total, l.valid * terms['valid'] + l.hole * terms['hole'] + l.tv * terms['tv']
                             + 2.0 * terms['ssim'] + 30.0 * terms['mse'], rtol=1e-5)

# ------------------------------------------------------------------ observability and inference

def test_observability_files(reference_run):
  wd, _ = reference_run
  records = [json.loads(l) for l in (wd / 'metrics.jsonl').read_text().splitlines()]
  train = [r for r in records if r['split'] == 'train']
  assert {'loss', 'valid', 'hole', 'tv', 'lr', 'grad_norm'} <= set(train[-1])
  assert any('images_per_sec' in r for r in train)
  assert [r['step'] for r in records if r['split'] == 'eval'] == [4, 5, 8, 10]  # checkpoints + eval_every=5
  from PIL import Image  # pylint: disable=import-outside-toplevel
  grid = np.asarray(Image.open(wd / 'samples' / 'latest.png'))
  assert grid.shape[1] > 4 * 32 and grid.shape[2] == 3  # four panels side by side
  assert (wd / 'loss_curve.png').stat().st_size > 1000
  assert json.loads((wd / 'config.json').read_text())['model'] == 'pconv'


def test_restore_predictor(tmp_path, reference_run):
  from jaxinpaint.training import restore_predictor  # pylint: disable=import-outside-toplevel
  wd, _ = reference_run
  predict, info = restore_predictor(wd)
  assert info['model'] == 'pconv' and info['step'] == 10 and info['required_multiple'] == 8
  rng = np.random.default_rng(0)
  images = rng.random((3, 32, 32, 3), dtype=np.float32)
  masks = (rng.random((3, 32, 32, 1)) > 0.5).astype(np.float32)
  out = predict(images, masks)
  assert out.shape == (3, 32, 32, 3) and out.dtype == np.float32 and np.all(np.isfinite(out))
  # The same checkpoint by step directory gives the same numbers; a larger batch is chunked.
  predict8, info8 = restore_predictor(wd / 'checkpoints' / '8')
  assert info8['step'] == 8
  np.testing.assert_allclose(predict(np.concatenate([images] * 4), np.concatenate([masks] * 4))[:3], out, atol=1e-6)
  with pytest.raises(FileNotFoundError, match='not a jaxinpaint checkpoint'):
    restore_predictor(tmp_path)
  with pytest.raises(ValueError, match="expected 'edgeconnect'"):
    restore_predictor(wd, model='edgeconnect')
  with pytest.raises(ValueError, match='masks'):
    predict(images, masks[:, :16])


def test_evaluate_checkpoint_writes_results(reference_run):
  """The quickstart's end-of-training evaluation, on the tiny run: held-out photos, generated masks."""
  sys.path.insert(0, str(REPO / 'tests'))
  import training_worker  # pylint: disable=import-outside-toplevel
  from jaxinpaint import training  # pylint: disable=import-outside-toplevel
  wd, _ = reference_run
  out = training.evaluate_checkpoint(training_worker.tiny_config(), wd)
  ev = json.loads(pathlib.Path(out['eval_path']).read_text())
  assert ev['num_images'] >= 1 and ev['checkpoint'].endswith('checkpoints/10')
  assert 0 < ev['l1_percent'] < 100 and np.isfinite(ev['psnr']) and ev['psnr'] > 5
  assert pathlib.Path(out['eval_sample_path']).is_file()


def test_vgg_weights_enable_perceptual_and_style_terms(tmp_path):
  """With config.vgg_weights set (random VGG-16 weights here), the loss has the perceptual/style terms."""
  import jax  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, str(REPO / 'tests'))
  import training_worker  # pylint: disable=import-outside-toplevel
  from jaxinpaint import tasks, training  # pylint: disable=import-outside-toplevel
  from jaxinpaint.models import vgg  # pylint: disable=import-outside-toplevel
  from jaxinpaint.training import loop, mesh as mesh_lib  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  state = {}
  for name, spec in vgg.param_specs(depth=16).items():
    shape = spec.shape if len(spec.shape) == 1 else (spec.shape[3], spec.shape[2], 3, 3)  # torch OIHW
    state[name] = (0.05 * rng.standard_normal(shape)).astype(np.float32)
  np.savez(tmp_path / 'vgg16.npz', **state)
  config = training_worker.apply_overrides(training_worker.tiny_config(), [
      '--config.loss.allow_missing_vgg=False', f'--config.vgg_weights={tmp_path / "vgg16.npz"}'])
  task = training.validate_config(config, num_devices=1)
  assert task.name == 'pconv' and tasks.build(config).name == 'pconv'
  mesh = mesh_lib.create_mesh()
  batch = mesh_lib.put_global_batch(training_worker.fixed_batch(), mesh)
  train_state = loop.create_train_state(task, jax.random.PRNGKey(0), batch, mesh_lib.replicated(mesh))
  _, metrics = loop.make_train_step(task, mesh)(train_state, batch)
  metrics = jax.device_get(metrics)
  assert {'perceptual', 'style_out', 'style_comp'} <= set(metrics)
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert float(metrics['perceptual']) > 0


# ------------------------------------------------------------------ inference and pictures without training

def _initialised_pconv_workdir(root: pathlib.Path) -> pathlib.Path:
  """A freshly initialised tiny PConv state saved the way the trainer saves one (no training step)."""
  import jax  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, str(REPO / 'tests'))
  import training_worker  # pylint: disable=import-outside-toplevel
  from jaxinpaint import checkpoint as ckpt, tasks  # pylint: disable=import-outside-toplevel
  config = training_worker.tiny_config()
  task = tasks.build(config)
  state = jax.jit(task.init_state)(jax.random.PRNGKey(0), task.example_batch(1))
  manager = ckpt.create_manager(root, keep_best=0)
  ckpt.save(manager, 1, state, data_state={}, config=json.loads(config.to_json_best_effort()))
  manager.close()
  return root


@pytest.fixture(scope='module')
def edgeconnect_workdir(request, tmp_path_factory):
  sys.path.insert(0, str(REPO / 'tests'))
  import test_inpaint  # pylint: disable=import-outside-toplevel
  return test_inpaint.make_tiny_edgeconnect(test_inpaint._cache_root(request, tmp_path_factory))  # pylint: disable=protected-access


def test_restore_predictor_with_edges_and_required_multiple(tmp_path, edgeconnect_workdir):
  from jaxinpaint import tasks  # pylint: disable=import-outside-toplevel
  from jaxinpaint.training import restore_predictor  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  images = rng.random((5, 32, 32, 3), dtype=np.float32)
  masks = np.ones((5, 32, 32, 1), np.float32)
  masks[:, 8:24, 6:20] = 0.0
  # PConv: the multiple comes from the task (2**num_levels), and it has no edge map to return.
  pconv_wd = _initialised_pconv_workdir(tmp_path / 'pconv')
  _, info = restore_predictor(pconv_wd)
  assert info['model'] == 'pconv' and info['required_multiple'] == 8
  with pytest.raises(ValueError, match='with_edges=True.*pconv'):
    restore_predictor(pconv_wd, with_edges=True)
  # EdgeConnect: a dict of numpy arrays, chunked/padded (5 images, batch 2) like the image-only predictor.
  predict_e, info_e = restore_predictor(edgeconnect_workdir, with_edges=True, batch_size=2)
  out = predict_e(images * masks, masks)
  assert set(out) == {'image', 'edge'}
  assert out['image'].shape == (5, 32, 32, 3) and out['edge'].shape == (5, 32, 32, 1)
  assert out['image'].dtype == np.float32 and isinstance(out['edge'], np.ndarray)
  predict_i, _ = restore_predictor(edgeconnect_workdir, batch_size=8)
  np.testing.assert_allclose(out['image'], predict_i(images * masks, masks), atol=1e-5)
  # The edge map is the composite: known-region Canny outside the hole (what G2 was conditioned on).
  single = predict_e(images[3:4] * masks[3:4], masks[3:4])
  np.testing.assert_allclose(single['edge'], out['edge'][3:4], atol=1e-5)
  assert np.all((out['edge'][masks[..., 0] > 0.5] == 0) | (out['edge'][masks[..., 0] > 0.5] == 1))
  assert info_e['required_multiple'] == tasks.build(info_e['config']).required_multiple()


def test_edgeconnect_required_multiple_is_4(edgeconnect_workdir):
  from jaxinpaint.training import restore_predictor  # pylint: disable=import-outside-toplevel
  _, info = restore_predictor(edgeconnect_workdir)
  assert info['required_multiple'] == 4  # two stride-2 convolutions in G1/G2


def test_sample_grid_columns_in_display_order():
  """jit returns dicts with sorted keys; the grid must still be masked input | output | composite | truth."""
  import jax  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, str(REPO / 'tests'))
  import training_worker  # pylint: disable=import-outside-toplevel
  from jaxinpaint import tasks  # pylint: disable=import-outside-toplevel
  from jaxinpaint.training import loop, mesh as mesh_lib, observe  # pylint: disable=import-outside-toplevel
  task = tasks.build(training_worker.tiny_config())
  mesh = mesh_lib.create_mesh()
  batch = training_worker.fixed_batch(n=8)
  put = mesh_lib.put_global_batch(batch, mesh)
  state = loop.create_train_state(task, jax.random.PRNGKey(0), put, mesh_lib.replicated(mesh))
  panels = loop.make_sample(task, mesh)(state, put)  # as train_and_evaluate draws them
  assert list(panels) == ['masked input', 'output', 'composite', 'ground truth']
  grid = observe.image_grid(panels, max_rows=2, pad=2)
  u8 = lambda x: (np.clip(x, 0, 1) * 255.0 + 0.5).astype(np.uint8)  # image_grid's quantisation
  masked = batch['image'] * batch['mask'] + (1 - batch['mask'])
  for col, want in enumerate([masked, None, None, batch['image']]):
    if want is not None:
      x0 = 2 + col * 34
      np.testing.assert_array_equal(grid[2:34, x0:x0 + 32], u8(want[0]), err_msg=f'column {col}')


def test_vgg_banners_come_from_the_tasks(capsys):
  """Each task's warnings name its own VGG (PConv: VGG-16, EdgeConnect: VGG-19); validation prints nothing."""
  sys.path.insert(0, str(REPO / 'tests'))
  import training_worker  # pylint: disable=import-outside-toplevel
  from configs import edgeconnect_quickstart as module  # pylint: disable=import-outside-toplevel
  from jaxinpaint import tasks, training  # pylint: disable=import-outside-toplevel
  pconv_config = training_worker.tiny_config()
  assert any('VGG-16' in w for w in tasks.build(pconv_config).warnings())
  config = module.get_config('stage4')
  assert config.loss.allow_missing_vgg and not config.get('vgg_weights') and config.loss.perceptual > 0
  warnings = tasks.build(config).warnings()
  assert warnings and all('VGG-19' in w and 'VGG-16' not in w for w in warnings)
  assert tasks.build(module.get_config('stage1')).warnings() == []  # the edge model has no VGG terms
  training.validate_config(pconv_config, num_devices=1)
  training.validate_config(config, num_devices=1)
  captured = capsys.readouterr()
  assert captured.out + captured.err == ''


def test_sample_grid_labels_and_distinct_rows():
  """Column names drawn above the tiles (the tiles themselves unchanged); repeated pairs shown once."""
  from jaxinpaint.training import observe  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  three = rng.random((3, 64, 64, 3)).astype(np.float32)
  padded = {'masked input': three[[0, 1, 2, 0, 1, 2, 0, 1]], 'ground truth': three[[0, 1, 2, 0, 1, 2, 0, 1]]}
  rows = observe.distinct_rows(padded)
  np.testing.assert_array_equal(rows['masked input'], three)
  np.testing.assert_array_equal(rows['ground truth'], three)
  plain = observe.image_grid(rows, pad=2)
  labelled = observe.image_grid(rows, pad=2, labels=True)
  top = labelled.shape[0] - plain.shape[0] + 2  # the strip replaces the grid's top padding
  assert top > 8 and labelled.shape[1] == plain.shape[1]
  np.testing.assert_array_equal(labelled[top:], plain[2:])
  strip = labelled[:top]
  for c in range(2):  # ink (dark text pixels) above each column, within its span
    x0 = 2 + c * 66
    assert (strip[:, x0:x0 + 64] < 128).any(), f'no label above column {c}'
  assert (strip[:, 0:2] == 255).all()


def test_eval_sample_pairs_round_robin_over_photos():
  from jaxinpaint import data  # pylint: disable=import-outside-toplevel
  from jaxinpaint.training import report  # pylint: disable=import-outside-toplevel
  z = np.zeros((2, 2, 3), np.float32)
  pairs = [data.EvalPair(image=z, mask=z[..., 0], bucket='b', border=None, image_path=f'photo{p}',
                         mask_path=f'mask{p}{m}') for p in range(3) for m in range(8)]  # photo-major, as listed
  shown = report.sample_pairs(pairs, 8)
  assert [(s.image_path, s.mask_path) for s in shown] == [
      ('photo0', 'mask00'), ('photo1', 'mask10'), ('photo2', 'mask20'), ('photo0', 'mask01'),
      ('photo1', 'mask11'), ('photo2', 'mask21'), ('photo0', 'mask02'), ('photo1', 'mask12')]
