"""Tests for the EdgeConnect task (jaxinpaint.tasks.edgeconnect): one step of every stage on 2 CPU devices
with a sharded batch, the generator loss uses the pre-update discriminator, stage 3 freezes G1 and stage 4
trains it, a short run on one batch drives the stage-2 hole L1 down >= 3x, kill -9 + resume for every stage.

Runs that need 2 devices or a killable process re-invoke this file as a subprocess (`python
tests/test_edgeconnect_training.py WORKER ARGS`). Compilation dominates the cost, so every subprocess runs on the
same 2-device mesh with the same tiny configs and shares one persistent XLA compilation cache (a module-scoped
tmp dir): the kill/resume runs reuse the train steps compiled by the 2-device stage check, and each stage's
killed, resumed and reference runs compile once between them.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
THIS = pathlib.Path(__file__).resolve()
PY = sys.executable


# ------------------------------------------------------------------------------------------- helpers

def tiny_config(stage_: int, /, **overrides):
  from configs import edgeconnect_quickstart  # pylint: disable=import-outside-toplevel
  config = edgeconnect_quickstart.get_config(f'stage{stage_}')
  config.unlock()
  config.image_size = 32
  config.batch_size = 4
  config.edgeconnect.features = 8
  config.edgeconnect.residual_blocks = 1
  config.edgeconnect.d_features = 8
  config.eval_images = ''
  config.evaluate_at_end = False
  config.log_every = 1
  for key, value in overrides.items():
    node = config
    *parents, leaf = key.split('.')
    for p in parents:
      node = node[p]
    node[leaf] = value
  config.lock()
  return config


def fixed_batch(n: int = 4, size: int = 32) -> dict[str, np.ndarray]:
  """Smooth synthetic photos with a square hole each, plus gray and full-image Canny edges."""
  from jaxinpaint import edges  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  yy, xx = np.mgrid[:size, :size] / size
  image = np.stack([np.stack([np.sin(6 * xx + i), np.cos(5 * yy - i), (xx > 0.4 + 0.05 * i) * yy], -1)
                    for i in range(n)])
  image = (0.5 + 0.45 * image).astype(np.float32)
  mask = np.ones((n, size, size, 1), np.float32)
  for i in range(n):
    y, x = rng.integers(2, size // 2, 2)
    mask[i, y:y + size // 3, x:x + size // 3] = 0.0
  gray = edges.rgb_to_gray(image)
  edge = np.stack([edges.canny(g, sigma=1.0) for g in gray])
  return {'image': image, 'mask': mask, 'gray': gray[..., None], 'edge': edge[..., None].astype(np.float32)}


def _flat(tree) -> dict[str, np.ndarray]:
  import jax  # pylint: disable=import-outside-toplevel
  return {'/'.join(str(getattr(k, 'key', k)) for k in path): np.asarray(jax.device_get(leaf))
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _env(devices: int | None = None, cache: pathlib.Path | None = None, **extra) -> dict:
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONUNBUFFERED='1', **extra)
  if cache is not None:  # persistent compilation cache shared by the subprocesses: cache every program
    env.update(JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES='-1')
  flags = [f for f in env.get('XLA_FLAGS', '').split() if 'xla_force_host_platform_device_count' not in f]
  if devices:
    flags.append(f'--xla_force_host_platform_device_count={devices}')
  env['XLA_FLAGS'] = ' '.join(flags)
  return env


def _popen(args, env) -> subprocess.Popen:
  return subprocess.Popen([PY, str(THIS), *map(str, args)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, timeout: float = 2400) -> tuple[int, str, str]:
  out, err = proc.communicate(timeout=timeout)
  return proc.returncode, out, err


# ------------------------------------------------------------------------------------------- workers

def worker_stages(out: str) -> None:
  """One jitted, sharded train step of every stage via the loop's own step factory; which nets moved."""
  import jax  # pylint: disable=import-outside-toplevel
  from jaxinpaint import training  # pylint: disable=import-outside-toplevel
  from jaxinpaint.training import loop, mesh as mesh_lib  # pylint: disable=import-outside-toplevel
  mesh = mesh_lib.create_mesh()
  batch = fixed_batch()
  result = {'devices': jax.device_count()}
  for stage in (1, 2, 3, 4):
    task = training.validate_config(tiny_config(stage))
    gbatch = mesh_lib.put_global_batch(batch, mesh)
    state = loop.create_train_state(task, jax.random.PRNGKey(stage), gbatch, mesh_lib.replicated(mesh))
    before = _flat(state.nets)
    host_state = jax.device_get(state) if stage == 4 else None  # the step donates `state`
    step = loop.make_train_step(task, mesh)
    new_state, metrics = step(state, gbatch)
    after = _flat(new_state.nets)
    moved = {}
    for name in ('g1', 'd1', 'g2', 'd2'):
      keys = [k for k in before if k.startswith(name + '/')]
      moved[name] = any(not np.array_equal(before[k], after[k]) for k in keys)
      moved[name + '_params'] = any(not np.array_equal(before[k], after[k]) for k in keys if '/params/' in k)
    metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
    result[str(stage)] = {'moved': moved, 'metrics': metrics,
                          'batch_devices': len(gbatch['image'].sharding.device_set),
                          'step': int(jax.device_get(new_state.step))}
    if stage == 4:  # the same step on one device (no sharding) gives the same parameters
      single = jax.jit(task.train_step)
      state1 = jax.device_put(host_state, jax.devices()[0])  # the same initial state (an eager init costs ~25 s)
      s1, m1 = single(state1, jax.device_put(batch, jax.devices()[0]))
      one = _flat(s1.nets)
      result['metric_rel_diff_2dev_vs_1dev'] = max(
          abs(float(v) - metrics[k]) / max(abs(metrics[k]), 1e-6) for k, v in jax.device_get(m1).items())
      # Adam's first step is ~ -lr * sign(g): params whose gradient is rounding noise (biases before an
      # instance norm) may flip; everything else must agree.
      diffs = np.concatenate([np.ravel(np.abs(one[k] - after[k])) for k in one])
      result['frac_params_differing'] = float(np.mean(diffs > 1e-6))
  pathlib.Path(out).write_text(json.dumps(result))


def worker_train(workdir: str, stage: str, init_from: str, out: str, *hang: str) -> None:
  """`train_and_evaluate` on the built-in photos (pipeline with edges); writes the final nets to OUT.npz.

  `--hang-at-step=N` blocks the input pipeline before step N (`training_worker.hang_at_step`).
  """
  from jaxinpaint import training  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, str(REPO / 'tests'))
  import training_worker  # pylint: disable=import-outside-toplevel
  for arg in hang:
    training_worker.hang_at_step(int(arg.removeprefix('--hang-at-step=')))
  config = tiny_config(int(stage), num_steps=4, checkpoint_every=2, init_from=init_from if init_from != '-' else '')
  summary = training.train_and_evaluate(config, workdir, progress=False)
  print(f'STATUS {summary["status"]} {summary["step"]}', flush=True)
  if summary['state'] is not None:
    np.savez(out, step=np.asarray(summary['state'].step), **_flat(summary['state'].nets))


# ------------------------------------------------------------------------------------------- tests

DEVICES = 2  # every subprocess: the same mesh, so they all share the compiled programs


@pytest.fixture(scope='module')
def xla_cache(tmp_path_factory) -> pathlib.Path:
  return tmp_path_factory.mktemp('xla_cache')


@pytest.mark.slow
def test_one_step_each_stage_on_two_devices(tmp_path, xla_cache):
  out = tmp_path / 'stages.json'
  rc, _, err = _finish(_popen(['stages', out], _env(devices=DEVICES, cache=xla_cache)))
  assert rc == 0, err[-4000:]
  r = json.loads(out.read_text())
  assert r['devices'] == 2
  for stage in ('1', '2', '3', '4'):
    s = r[stage]
    assert s['batch_devices'] == 2 and s['step'] == 1
    assert all(np.isfinite(v) for v in s['metrics'].values()), s['metrics']
  m = {k: r[k]['moved'] for k in '1234'}
  assert m['1']['g1_params'] and m['1']['d1_params'] and not m['1']['g2'] and not m['1']['d2']
  assert m['2']['g2_params'] and m['2']['d2_params'] and not m['2']['g1'] and not m['2']['d1']
  # Stage 3: G1 (params AND spectral-norm vectors) bit-for-bit unchanged; G2 trains.
  assert not m['3']['g1'] and not m['3']['d1'] and m['3']['g2_params'] and m['3']['d2_params']
  assert all(m['4'][n + '_params'] for n in ('g1', 'd1', 'g2', 'd2'))
  assert r['metric_rel_diff_2dev_vs_1dev'] < 1e-4
  assert r['frac_params_differing'] < 0.01


@pytest.fixture(scope='module')
def stage4_state():
  """(batch, stage-4 state) of the tiny nets; initialising the four nets costs ~25 CPU s (even jitted), so the
  in-process tests share them and derive other stages' states with `_for_stage`."""
  import jax  # pylint: disable=import-outside-toplevel
  from jaxinpaint import tasks  # pylint: disable=import-outside-toplevel
  batch = {k: jax.numpy.asarray(v) for k, v in fixed_batch().items()}
  return batch, jax.jit(tasks.build(tiny_config(4)).init_state)(jax.random.PRNGKey(0), batch)


def _for_stage(config, state):
  """`state`'s nets with fresh optimisers for `config` (what `init_state` would give for the same nets)."""
  from jaxinpaint.tasks import edgeconnect as tec  # pylint: disable=import-outside-toplevel
  return state.replace(opt_state={k: tx.init(state.nets[k]['params']) for k, tx in tec.make_optimizers(config).items()})


def test_stage4_g2_loss_reaches_g1(stage4_state):
  """Stage 4's G1 gradient includes G2's loss (through the composite edges); stage 3's G2 input does not."""
  import jax  # pylint: disable=import-outside-toplevel
  from jaxinpaint.tasks import edgeconnect as tec  # pylint: disable=import-outside-toplevel
  config = tiny_config(4)
  batch, state = stage4_state
  models = tec.build_models(config)

  def g2_only(g1_params):
    outs, _ = tec._generators(config, models, state.nets, {'g1': g1_params, 'g2': state.nets['g2']['params']},
                              batch, train=True)
    return jax.numpy.mean(jax.numpy.abs(outs['image'] - batch['image']))

  grad = jax.jit(jax.grad(g2_only))(state.nets['g1']['params'])
  assert float(max(jax.numpy.max(jax.numpy.abs(g)) for g in jax.tree_util.tree_leaves(grad))) > 0


def test_generator_loss_uses_pre_update_discriminator(stage4_state):
  """Stage 1 with a large D lr: the reported G loss and the G1 update equal those computed independently with
  the discriminator's parameters from before the step (and differ from the post-update ones)."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from jaxinpaint import losses  # pylint: disable=import-outside-toplevel
  from jaxinpaint import tasks  # pylint: disable=import-outside-toplevel
  from jaxinpaint.models import edgeconnect as nets  # pylint: disable=import-outside-toplevel
  config = tiny_config(1, d2g_lr=100.0)  # D lr 0.1: one D step changes the D loss a lot
  batch, state = stage4_state
  state = _for_stage(config, state)
  assert set(state.opt_state) == {'g1', 'd1'}
  new_state, metrics = jax.jit(tasks.build(config).train_step)(state, batch)

  g1, d1 = nets.EdgeGenerator(features=8, residual_blocks=1), nets.PatchDiscriminator(features=8)
  sn = nets.SPECTRAL
  real = jnp.concatenate([batch['gray'], batch['edge']], -1)

  def g_loss(g1_params, d_params, d_spec):
    e, _ = g1.apply({'params': g1_params, sn: state.nets['g1'][sn]},
                    nets.edge_generator_inputs(batch['gray'], batch['edge'], batch['mask']), train=True, mutable=[sn])
    fake = jnp.concatenate([batch['gray'], e], -1)
    # The reference's D calls in one iteration: real, fake (D update), then the generator's fake.
    (_, real_feats), u = d1.apply({'params': d_params, sn: d_spec}, real, train=True, mutable=[sn])
    _, u = d1.apply({'params': d_params, sn: u[sn]}, jax.lax.stop_gradient(fake), train=True, mutable=[sn])
    (logits, feats), _ = d1.apply({'params': d_params, sn: u[sn]}, fake, train=True, mutable=[sn])
    return (losses.adversarial(logits, is_real=True, is_discriminator=False)
            + 10.0 * losses.feature_matching(jax.lax.stop_gradient(real_feats), feats))

  old_d, new_d = state.nets['d1']['params'], new_state.nets['d1']['params']
  spec0 = state.nets['d1'][sn]
  g_loss_and_grad = jax.jit(jax.value_and_grad(g_loss))  # one compile for both (eager costs more)
  loss_old, grad_old = g_loss_and_grad(state.nets['g1']['params'], old_d, spec0)
  loss_new, grad_new = g_loss_and_grad(state.nets['g1']['params'], new_d, spec0)
  assert abs(float(loss_new) - float(loss_old)) > 1e-3, 'the D update is too small to tell them apart'
  np.testing.assert_allclose(float(metrics['loss']), float(loss_old), rtol=1e-5)
  # First Adam step with b1=0: update = -lr * g / (|g| + eps) (bias corrections cancel).
  lr = config.learning_rate
  checked = 0
  for path, p0 in jax.tree_util.tree_leaves_with_path(state.nets['g1']['params']):
    p1 = dict(jax.tree_util.tree_leaves_with_path(new_state.nets['g1']['params']))[path]
    g_old = dict(jax.tree_util.tree_leaves_with_path(grad_old))[path]
    want = p0 - lr * g_old / (jnp.abs(g_old) + 1e-8)
    # Biases feeding an instance norm have (numerically) zero gradient: their Adam step is rounding noise.
    solid = np.abs(np.asarray(g_old)) > 1e-6
    np.testing.assert_allclose(np.asarray(p1)[solid], np.asarray(want)[solid], atol=0.05 * lr)
    checked += int(solid.sum())
  assert checked > 0.9 * sum(x.size for x in jax.tree_util.tree_leaves(grad_old))
  g_o = np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(grad_old)])
  g_n = np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(grad_new)])
  assert np.mean(np.sign(g_o) != np.sign(g_n)) > 0.01  # the post-update D would have given another step


def test_stage2_short_run_on_one_batch_reduces_hole_l1_3x(stage4_state):
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from jaxinpaint import tasks  # pylint: disable=import-outside-toplevel
  config = tiny_config(2, learning_rate=2e-3)  # width 8 reaches 3x by ~50 steps, ~6x by 150
  task = tasks.build(config)
  batch, state = stage4_state
  state = _for_stage(config, state)
  step = jax.jit(task.train_step)

  outputs = jax.jit(lambda s: task.eval_outputs(s, batch)['image'])

  def hole_l1(s):
    out = outputs(s)
    hole = 1.0 - batch['mask']
    return float(jnp.sum(jnp.abs(out - batch['image']) * hole) / (3 * jnp.sum(hole)))

  start = hole_l1(state)
  for _ in range(150):
    state, metrics = step(state, batch)
  end = hole_l1(state)
  assert np.isfinite(float(metrics['loss']))
  assert end * 3 <= start, (start, end)


def test_optional_hole_and_ssim_terms_add_to_the_g2_loss(stage4_state):
  """`loss.hole` and `loss.ssim` (not in the paper) add w x L_hole(output) and w x (1 - SSIM(composite)) in NumPy."""
  import jax  # pylint: disable=import-outside-toplevel
  from skimage.metrics import structural_similarity  # pylint: disable=import-outside-toplevel
  from jaxinpaint import tasks  # pylint: disable=import-outside-toplevel
  batch, state = stage4_state
  plain = tiny_config(2)
  extra = tiny_config(2, **{'loss.hole': 3.0, 'loss.ssim': 2.0})
  state = _for_stage(plain, state)
  _, m0 = jax.jit(tasks.build(plain).train_step)(state, batch)
  _, m1 = jax.jit(tasks.build(extra).train_step)(state, batch)
  assert 'g2_hole' not in m0 and 'g2_ssim' not in m0
  out = np.asarray(tasks.build(extra).eval_outputs(state, batch)['image'], np.float64)  # same G2 forward
  gt, mask = np.asarray(batch['image'], np.float64), np.asarray(batch['mask'], np.float64)
  hole = np.mean(np.abs((1 - mask) * (out - gt)))  # [Liu2018] L_hole: mean over N x C x H x W
  comp = mask * gt + (1 - mask) * out
  ssim = np.mean([structural_similarity(c, g, channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False) for c, g in zip(comp, gt)])
  np.testing.assert_allclose(float(m1['g2_hole']), hole, rtol=2e-3)
  np.testing.assert_allclose(float(m1['g2_ssim']), 1.0 - ssim, rtol=2e-3, atol=1e-4)
  np.testing.assert_allclose(float(m1['loss']), float(m0['loss']) + 3.0 * hole + 2.0 * (1.0 - ssim), rtol=2e-3)


def test_predict_pipeline_and_edge_metrics(stage4_state):
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from jaxinpaint import edges, metrics, tasks  # pylint: disable=import-outside-toplevel
  task = tasks.build(tiny_config(4))
  assert task.predicts_edges
  b = fixed_batch()
  state = stage4_state[1]
  out = jax.jit(task.predict)(state, b['image'], b['mask'])
  assert out['image'].shape == b['image'].shape and out['edge'].shape == b['mask'].shape
  assert float(out['image'].min()) >= 0 and float(out['image'].max()) <= 1
  # Outside the hole the edge map G2 sees is the Canny of the known region (never the hole's content).
  known = np.stack([edges.canny(edges.rgb_to_gray(b['image'][i]), sigma=2.0, mask=b['mask'][i, ..., 0])
                    for i in range(4)])[..., None]
  np.testing.assert_array_equal(np.asarray(out['edge']) * b['mask'], known * b['mask'])
  np.testing.assert_allclose(np.asarray(task.predict(state, b['image'], b['mask'])['image']),
                             np.asarray(out['image']), atol=1e-5)
  # EdgeAccuracy semantics inside the hole (the metrics the task logs).
  mask = jnp.zeros((1, 2, 2, 1))
  target = jnp.asarray([1.0, 1.0, 0.0, 0.0]).reshape(1, 2, 2, 1)
  pred = jnp.asarray([0.9, 0.2, 0.7, 0.1]).reshape(1, 2, 2, 1)
  p, r = metrics.edge_precision_recall(*metrics.edge_counts(pred, target, mask))
  assert float(p) == pytest.approx(0.5) and float(r) == pytest.approx(0.5)
  p, r = metrics.edge_precision_recall(*metrics.edge_counts(pred * 0, target * 0, mask))
  assert float(p) == 1.0 and float(r) == 1.0


def test_generator_moving_average_follows_its_formula_and_is_what_predicts(stage4_state):
  """config.ema_decay = d (not in the paper): after each update ema = d * ema + (1 - d) * params, from the
  stage's initial weights, in NumPy from the raw weights of each step; eval outputs, predict, the exported
  inference state and the next stage's init use the averages; the raw weights keep training."""
  import jax  # pylint: disable=import-outside-toplevel
  from jaxinpaint import tasks  # pylint: disable=import-outside-toplevel
  from jaxinpaint.tasks import edgeconnect as tec  # pylint: disable=import-outside-toplevel
  decay = 0.75
  config = tiny_config(4, ema_decay=decay, learning_rate=1e-3)
  task = tasks.build(config)
  task.validate()
  batch, state = stage4_state
  state = task.init_from_previous(state, state)  # fresh optimisers and averages = the current weights
  assert set(state.opt_state[tec.EMA]) == {'g1', 'g2'}
  want = {n: _flat(state.nets[n]['params']) for n in ('g1', 'g2')}
  step = jax.jit(task.train_step)
  for _ in range(3):
    state, _ = step(state, batch)
    for n in want:
      raw = _flat(state.nets[n]['params'])
      want[n] = {k: decay * want[n][k] + (1 - decay) * raw[k] for k in raw}
  for n in want:
    got = _flat(state.opt_state[tec.EMA][n])
    assert got.keys() == want[n].keys()
    for k in got:
      np.testing.assert_allclose(got[k], want[n][k], rtol=1e-5, atol=1e-7, err_msg=f'{n}/{k}')
    assert any(not np.allclose(got[k], v) for k, v in _flat(state.nets[n]['params']).items())  # raw != average

  averaged = state.replace(nets=tec.averaged_nets(state), opt_state={})
  for name, fn in (('eval_outputs', lambda s: task.eval_outputs(s, batch)['image']),
                   ('predict', lambda s: task.predict(s, batch['image'], batch['mask'])['image'])):
    np.testing.assert_array_equal(np.asarray(jax.jit(fn)(state)), np.asarray(jax.jit(fn)(averaged)), err_msg=name)
    assert not np.array_equal(np.asarray(jax.jit(fn)(state)), np.asarray(jax.jit(fn)(state.replace(opt_state={})))), name
  exported = task.inference_state(state)
  assert exported.opt_state is None
  for n in ('g1', 'g2'):
    for k, v in _flat(state.opt_state[tec.EMA][n]).items():
      np.testing.assert_array_equal(_flat(exported.nets[n]['params'])[k], v)
  # Stage 3 after it starts from the averages and averages only what it trains (G2).
  nxt = tasks.build(tiny_config(3, ema_decay=decay))
  started = nxt.init_from_previous(jax.jit(nxt.init_state)(jax.random.PRNGKey(1), batch), state)
  assert set(started.opt_state[tec.EMA]) == {'g2'}
  for n in ('g1', 'g2'):
    for k, v in _flat(state.opt_state[tec.EMA][n]).items():
      np.testing.assert_array_equal(_flat(started.nets[n]['params'])[k], v)
  # Off (the default): no averages in the state, so its checkpoint tree is the one it always was.
  assert tec.EMA not in tasks.build(tiny_config(3)).init_from_previous(started, state).opt_state
  with pytest.raises(ValueError, match=r'config.ema_decay=1.0 must be in \[0, 1\)'):
    tasks.build(tiny_config(3, ema_decay=1.0)).validate()


def test_resume_with_a_different_ema_setting_is_refused_in_one_line(tmp_path, stage4_state):
  """A workdir saved without averages and resumed with config.ema_decay > 0 (or the reverse) has a different
  checkpoint tree: the trainer says so in one line naming the checkpoint, before anything trains."""
  import jax  # pylint: disable=import-outside-toplevel
  from jaxinpaint import checkpoint as ckpt, tasks  # pylint: disable=import-outside-toplevel
  from jaxinpaint.training import ConfigError, train_and_evaluate  # pylint: disable=import-outside-toplevel
  batch, _ = stage4_state
  for saved, resumed in ((0.0, 0.5), (0.5, 0.0)):
    workdir = tmp_path / f'ema_{saved}'
    config = tiny_config(2, ema_decay=saved, num_steps=2)
    task = tasks.build(config)
    state = jax.jit(task.init_state)(jax.random.PRNGKey(0), batch)
    manager = ckpt.create_manager(workdir, keep_best=0)
    ckpt.save(manager, 1, state, data_state=None, config=json.loads(config.to_json_best_effort()))
    manager.close()
    expected = (re.escape(f'checkpoint at step 1 in {workdir / "checkpoints"} does not match this config ')
                + r'\(model settings changed\?\); use a new --workdir')
    with pytest.raises(ConfigError, match=expected):
      train_and_evaluate(tiny_config(2, ema_decay=resumed, num_steps=2), workdir, progress=False)
    reader = ckpt.create_manager(workdir, read_only=True)
    assert reader.all_steps() == [1]  # nothing written over
    reader.close()


def test_config_validation_and_vgg_requirement(capsys):
  from jaxinpaint import tasks  # pylint: disable=import-outside-toplevel
  with pytest.raises(ValueError, match='config.stage'):
    tasks.build(tiny_config(1, **{'stage': 5})).validate()
  with pytest.raises(ValueError, match='gan_type'):
    tasks.build(tiny_config(1, **{'edgeconnect.gan_type': 'wgan'})).validate()
  with pytest.raises(ValueError, match='image_size'):
    tasks.build(tiny_config(1, image_size=30)).validate()
  with pytest.raises(ValueError, match="config.lr_schedule must be 'constant' or 'cosine', got 'step'"):
    tasks.build(tiny_config(1, lr_schedule='step')).validate()
  with pytest.raises(ValueError, match='VGG-19'):
    tasks.build(tiny_config(2, **{'loss.allow_missing_vgg': False})).validate()
  tasks.build(tiny_config(1, **{'loss.allow_missing_vgg': False})).validate()  # stage 1 needs no VGG
  task3 = tasks.build(tiny_config(3))
  task3.validate()
  assert capsys.readouterr().err == ''  # validation never prints; the banner is a warning the loop prints
  assert any('WITHOUT the VGG-19' in w for w in task3.warnings())


# ------------------------------------------------------------------------------------------- kill / resume

def _kill_resume_and_reference(base: pathlib.Path, stage: int, init_from: str, cache: pathlib.Path,
                               kill_when_hanging) -> dict:
  """An uninterrupted 4-step run (the reference), then the same training killed (-9) while its input pipeline
  hangs before step 4 (checkpoint 2 on disk, step 3 lost) and re-run to completion. All three share the
  compilation cache."""
  env = _env(devices=DEVICES, cache=cache)
  r = {'ref': base / 'ref', 'wd': base / 'wd'}
  rc, out, err = _finish(_popen(['train', r['ref'], stage, init_from, base / 'ref.npz'], env))
  r['ref_run'] = (rc, out, err[-4000:])
  cmd = ['train', r['wd'], stage, init_from, base / 'final.npz']
  proc = _popen(cmd + ['--hang-at-step=3'], _env(devices=DEVICES, cache=cache))
  kill_when_hanging(proc, timeout=1500, exit_timeout=60)
  r['killed_rc'] = proc.returncode
  ckpts = r['wd'] / 'checkpoints'
  r['ckpts_after_kill'] = sorted(p.name for p in ckpts.iterdir() if p.name.isdigit()) if ckpts.is_dir() else []
  rc, out, err = _finish(_popen(cmd, env))
  r['resumed_run'] = (rc, out, err[-4000:])
  return r


@pytest.fixture(scope='module')
def kill_resume_chain(tmp_path_factory, xla_cache, kill_when_hanging):
  """`run(stage)` -> that stage's runs, each stage initialised from the previous stage's reference workdir
  (run lazily, once, so selecting one stage with -k also works)."""
  root = tmp_path_factory.mktemp('ec_chain')
  done: dict[int, dict] = {}

  def run(stage: int) -> dict:
    if stage not in done:
      init_from = str(run(stage - 1)['ref']) if stage > 1 else '-'
      done[stage] = _kill_resume_and_reference(root / f's{stage}', stage, init_from, xla_cache,
                                               kill_when_hanging)
    return done[stage]
  return run


@pytest.mark.slow
@pytest.mark.parametrize('stage', [1, 2, 3, 4])
def test_sigkill_then_resume_each_stage(kill_resume_chain, stage):
  r = kill_resume_chain(stage)
  rc, out, err = r['ref_run']
  assert rc == 0 and 'STATUS done 4' in out, err
  # A completion stage without VGG weights says so once (the loop prints the task's warnings once).
  assert out.count('WITHOUT the VGG-19') == (0 if stage == 1 else 1), out
  assert r['killed_rc'] == -signal.SIGKILL
  assert r['ckpts_after_kill'] == ['2']
  rc, out, err = r['resumed_run']
  assert rc == 0 and 'STATUS done 4' in out, err
  assert 'resuming from' in out
  wd = r['wd']
  ref = np.load(r['ref'].parent / 'ref.npz')
  got = np.load(wd.parent / 'final.npz')
  assert set(ref.files) == set(got.files) and int(got['step']) == 4
  # Same trajectory as the uninterrupted run: the per-step losses (steps 3-4 come from the resumed process,
  # so the data position, optimiser state, spectral vectors and step counter were all restored) ...
  def losses_by_step(workdir):
    rows = [json.loads(l) for l in (workdir / 'metrics.jsonl').read_text().splitlines()]
    return {r['step']: r['loss'] for r in rows if r.get('split') == 'train'}
  ref_losses, got_losses = losses_by_step(r['ref']), losses_by_step(wd)
  assert sorted(got_losses) == [1, 2, 3, 4]
  for k, v in ref_losses.items():
    assert got_losses[k] == pytest.approx(v, rel=1e-5, abs=1e-6), (k, got_losses[k], v)
  # ... and the same weights, except the generator biases that feed an instance norm: their gradient is
  # exactly zero in theory, so Adam (b1=0: steps of -lr * g / (|g| + 1e-8)) turns the float rounding noise
  # of that zero (which differs between processes) into steps of up to lr. They do not affect any output.
  checked = 0
  for k in ref.files:
    if k[:2] in ('g1', 'g2') and k.endswith('/bias') and '/dec3/' not in k:
      continue
    np.testing.assert_allclose(got[k], ref[k], atol=1e-6, rtol=1e-5, err_msg=k)
    checked += 1
  assert checked > len(ref.files) // 2
  # Across the chain (free, the files exist): stage 3 started from stage 2's nets and kept G1 (params and
  # spectral vectors) bit-for-bit over 4 steps; stage 4 moved it.
  if stage in (3, 4):
    prev = np.load(kill_resume_chain(stage - 1)['ref'].parent / 'ref.npz')
    g1 = [k for k in ref.files if k.startswith('g1/')]
    same = [np.array_equal(ref[k], prev[k]) for k in g1 if '/params/' in k]
    assert g1 and (all(np.array_equal(ref[k], prev[k]) for k in g1) if stage == 3 else not all(same))


if __name__ == '__main__':
  sys.path.insert(0, str(REPO))
  if sys.argv[1] == 'stages':
    worker_stages(sys.argv[2])
  elif sys.argv[1] == 'train':
    worker_train(*sys.argv[2:])
  else:
    raise SystemExit(f'unknown worker {sys.argv[1]}')
