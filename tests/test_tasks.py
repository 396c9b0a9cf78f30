"""The task protocol: a third model defined here, through the registry alone, trains, resumes, evaluates and
inpaints with the library's own loop, evaluator, inference API and demo (no library module knows it).

Also: the registry's checks, the loop printing a task's warnings once, a fresh run that needs
`config.init_from` (asked of the task), a non-finite loss stopping a run, and a second kind of model source
added to the predictor as one resolver.
"""

from __future__ import annotations

import json
import pathlib

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from skimage.metrics import peak_signal_noise_ratio

from jaxinpaint import data, evaluation, predictor, tasks, training
from jaxinpaint.inpaint import Inpainter

REPO = pathlib.Path(__file__).resolve().parents[1]
NAME = 'tiny_conv'


# ------------------------------------------------------------------------------------ the third model

class TwoLayerNet(nn.Module):
  """conv 3x3 (masked image + mask -> 8) -> ReLU -> conv 3x3 -> sigmoid."""

  @nn.compact
  def __call__(self, image, mask):
    x = nn.relu(nn.Conv(8, (3, 3))(jnp.concatenate([image * mask, mask], -1)))
    return nn.sigmoid(nn.Conv(3, (3, 3))(x))


@flax.struct.dataclass
class TinyState:
  step: jax.Array
  params: dict
  opt_state: optax.OptState


class TinyTask(tasks.Task):
  """Hole L1 on a two-layer net; `config.nan_at_step` >= 0 makes the loss NaN from that step on."""

  label = 'Two-layer conv net'

  def validate(self):
    if self.config.image_size % self.required_multiple():
      raise ValueError(f'config.image_size={self.config.image_size} must be even')

  def warnings(self):
    return ['TINY TASK WARNING'] if self.config.get('warn') else []

  def required_multiple(self):
    return 2

  def example_batch(self, batch_size):
    s = self.config.image_size
    return {'image': np.zeros((batch_size, s, s, 3), np.float32), 'mask': np.ones((batch_size, s, s, 1), np.float32)}

  def init_state(self, rng, batch):
    params = TwoLayerNet().init(rng, batch['image'][:1], batch['mask'][:1])['params']
    return TinyState(step=jnp.zeros((), jnp.int32), params=params,
                     opt_state=optax.adam(self.config.learning_rate).init(params))

  def init_from_previous(self, new_state, old_state):
    return new_state.replace(params=old_state.params)

  def _loss(self, params, batch):
    out = TwoLayerNet().apply({'params': params}, batch['image'], batch['mask'])
    return jnp.mean(jnp.abs(out - batch['image']) * (1.0 - batch['mask']))

  def train_step(self, state, batch):
    loss, grads = jax.value_and_grad(self._loss)(state.params, batch)
    if self.config.nan_at_step >= 0:
      loss = jnp.where(state.step >= self.config.nan_at_step, jnp.nan, loss)
    updates, opt_state = optax.adam(self.config.learning_rate).update(grads, state.opt_state, state.params)
    new_state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                              opt_state=opt_state)
    return new_state, {'loss': loss}

  def eval_step(self, state, batch):
    return {'loss': self._loss(state.params, batch)}

  def sample(self, state, batch):
    out = self.predict(state, batch['image'], batch['mask'])['image']
    return {'masked input': batch['image'] * batch['mask'], 'output': out, 'ground truth': batch['image']}

  def predict(self, state, images, masks):
    return {'image': TwoLayerNet().apply({'params': state.params}, images, masks)}


def tiny_config(**overrides) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict(dict(
      model=NAME, seed=0, init_from='', images='builtin:train', masks='irregular', eval_images='builtin:heldout',
      eval_masks='irregular', eval_limit=4, final_eval_limit=6, final_eval_repeats=2, final_eval_baseline='telea',
      image_size=16, batch_size=4, num_workers=0, learning_rate=1e-2, num_steps=4, log_every=1, sample_every=2,
      checkpoint_every=2, eval_every=2, keep_checkpoints=2, keep_best=1, evaluate_at_end=True, num_processes=1,
      process_id=0, coordinator_address='', nan_at_step=-1, warn=False))
  config.update(overrides)
  return config


@pytest.fixture(scope='module', autouse=True)
def registered():
  tasks.register(NAME, TinyTask)  # the one registry line of a new model


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """4 steps, then the same workdir resumed to 6 steps: (workdir, first summary, resumed summary, stdout)."""
  workdir = tmp_path_factory.mktemp('tiny') / 'wd'
  first = training.train_and_evaluate(tiny_config(), workdir, progress=False)
  resumed = training.train_and_evaluate(tiny_config(num_steps=6), workdir, progress=False)
  return workdir, first, resumed


# ------------------------------------------------------------------------------------------- registry

def test_registry_builds_and_checks_the_protocol():
  task = tasks.build(tiny_config())
  assert isinstance(task, TinyTask) and task.name == NAME and task.config.image_size == 16
  assert NAME in tasks.names() and tasks.label(NAME) == 'Two-layer conv net'
  assert NAME in evaluation.methods()
  with pytest.raises(ValueError, match=r"config.model='nope' is unknown; expected one of \["):
    tasks.build(tiny_config(model='nope'))

  class Incomplete:
    def __init__(self, config):
      self.config, self.name = config, 'tiny_incomplete'
  tasks.register('tiny_incomplete', Incomplete)
  with pytest.raises(ValueError, match=r"without the protocol members \['label', 'predicts_edges', 'validate'"):
    tasks.build(tiny_config(model='tiny_incomplete'))
  tasks.register('tiny_incomplete', lambda config: TinyTask(tiny_config()))  # builds a task of another name
  with pytest.raises(ValueError, match="built a task named 'tiny_conv'"):
    tasks.build(tiny_config(model='tiny_incomplete'))
  with pytest.raises(TypeError):  # the base class refuses a task without its abstract members
    type('NoSteps', (tasks.Task,), {})(tiny_config())


def test_the_protocol_check_covers_the_documented_members():
  """`tasks.build` checks exactly the members the protocol's documentation lists."""
  import re  # pylint: disable=import-outside-toplevel
  from jaxinpaint.tasks import base  # pylint: disable=import-outside-toplevel
  documented = re.findall(r'`(\w+)(?:\(|`:)', base.__doc__)
  assert len(documented) == len(set(documented)) and set(documented) == set(tasks.PROTOCOL)
  for task in (tasks.build(tiny_config()), TinyTask(tiny_config())):
    assert all(hasattr(task, m) for m in tasks.PROTOCOL)


# ------------------------------------------------------------------------------------------- training

def test_trains_checkpoints_and_resumes(trained):
  workdir, first, resumed = trained
  assert first['status'] == 'done' and first['step'] == 4 and int(first['state'].step) == 4
  assert resumed['status'] == 'done' and int(resumed['state'].step) == 6
  steps = sorted(int(p.name) for p in (workdir / 'checkpoints').iterdir() if p.name.isdigit())
  assert steps[-1] == 6 and 4 in steps
  records = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert [r['step'] for r in records if r['split'] == 'train'] == list(range(1, 7))
  assert [r['step'] for r in records if r['split'] == 'eval'] == [2, 4, 6]
  assert (workdir / 'samples' / 'latest.png').is_file()
  # The end-of-run report: the evaluator's table and a classical method on the same pairs.
  ev = json.loads((workdir / 'eval_results.json').read_text())
  assert ev['num_images'] == 6 and ev['checkpoint'].endswith('checkpoints/6')
  assert np.isfinite(ev['psnr']) and 'baseline_telea' in ev and (workdir / 'eval' / 'results.md').is_file()
  # Re-running the finished run does nothing.
  again = training.train_and_evaluate(tiny_config(num_steps=6), workdir, progress=False)
  assert again['status'] == 'already_done' and again['step'] == 6


def test_warnings_printed_once_and_validation_silent(tmp_path, capsys):
  training.validate_config(tiny_config(warn=True))
  assert capsys.readouterr().out == ''
  training.train_and_evaluate(tiny_config(warn=True, num_steps=1, evaluate_at_end=False, eval_images=''),
                              tmp_path / 'wd', progress=False)
  assert capsys.readouterr().out.count('TINY TASK WARNING') == 1


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
  config = tiny_config(nan_at_step=6, num_steps=10, checkpoint_every=5, eval_images='', evaluate_at_end=False)
  with pytest.raises(training.NonFiniteLossError) as info:
    training.train_and_evaluate(config, tmp_path / 'wd', progress=False)
  assert 'non-finite loss at step 7' in str(info.value) and 'last good checkpoint is step 5' in str(info.value)
  assert sorted(p.name for p in (tmp_path / 'wd' / 'checkpoints').iterdir()) == ['5']


def test_fresh_run_that_needs_init_from_is_refused_before_compiling(tmp_path):
  """PConv's phase 2 needs a phase-1 workdir: the loop asks the task (`requires_init_from`)."""
  from configs import pconv_tiny as module  # pylint: disable=import-outside-toplevel
  config = module.get_config('phase2')
  assert tasks.build(config).requires_init_from() and tasks.build(module.get_config()).requires_init_from() is None
  with pytest.raises(training.ConfigError, match='config.phase=2 fine-tunes a phase-1 model: set --config.init_from'):
    training.train_and_evaluate(config, tmp_path / 'wd', progress=False)
  assert not [p for p in (tmp_path / 'wd' / 'checkpoints').iterdir() if p.name.isdigit()]


# ------------------------------------------------------------------------------ evaluation, inference

def test_evaluates_with_the_evaluator(trained, tmp_path):
  workdir = trained[0]
  res = evaluation.run(method=NAME, images='builtin:heldout', masks='irregular', out=str(tmp_path), size=16,
                       checkpoint=str(workdir), batch_size=2, progress=False)
  assert res.row()['count'] == 3 and (tmp_path / 'results.md').is_file()
  # Independent recomputation: the restored model on the same pairs, composited, scikit-image PSNR.
  predict, info = predictor.restore_predictor(workdir, batch_size=3)
  assert info['model'] == NAME and info['step'] == 6 and info['required_multiple'] == 2
  pairs = data.create_eval_pairs(images='builtin:heldout', masks='irregular', image_size=16, seed=0)
  images = np.stack([p.image for p in pairs])
  masks = np.stack([p.mask for p in pairs])[..., None]
  comp = masks * images + (1 - masks) * np.clip(predict(images * masks, masks), 0, 1)
  want = np.mean([peak_signal_noise_ratio(t.astype(np.float64), c.astype(np.float64), data_range=1)
                  for t, c in zip(images, comp)])
  np.testing.assert_allclose(res.row()['psnr'], want, rtol=1e-4)
  with pytest.raises(ValueError, match="holds a 'tiny_conv' checkpoint, expected 'pconv'"):
    evaluation.load_predictor('pconv', checkpoint=str(workdir))


def test_inpaints_from_its_workdir(trained):
  workdir = trained[0]
  inpainter = Inpainter.from_workdir(workdir, bucket=None)
  assert inpainter.name == NAME and inpainter.multiple == 2 and inpainter.is_model and not inpainter.predicts_edges
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (15, 17, 3), dtype=np.uint8)
  hole = np.zeros((15, 17), bool)
  hole[4:9, 5:12] = True
  out = inpainter(image, hole)
  np.testing.assert_array_equal(out[~hole], image[~hole])
  # Hole pixels: the network on the reflect-padded (16x18) input, as the batched predictor computes it.
  predict, _ = predictor.restore_predictor(workdir, batch_size=1)
  valid = (~hole).astype(np.float32)
  pad = ((0, 1), (0, 1))
  x = np.pad(image / np.float32(255) * valid[..., None], pad + ((0, 0),), mode='reflect')
  ref = predict(x[None], np.pad(valid, pad, mode='reflect')[None, ..., None])[0, :15, :17]
  np.testing.assert_array_equal(out[hole], np.clip(np.rint(ref[hole] * 255), 0, 255).astype(np.uint8))
  assert inpainter.num_compilations == 1


def test_demo_offers_it(trained):
  from jaxinpaint import demo  # pylint: disable=import-outside-toplevel
  app = demo.DemoApp(workdirs=[str(trained[0])])
  methods = {m['id']: m for m in app.info()['methods']}
  assert methods[NAME]['available'] and methods[NAME]['label'].startswith('Two-layer conv net, step 6')
  assert not methods['pconv']['available'] and app.has_model


def test_a_new_kind_of_source_is_one_resolver(trained, monkeypatch):
  """E.g. a model shipped with the package, loaded by name: one resolver, no change to the callers."""
  workdir = trained[0]

  def shipped(source):
    name = str(source)
    if not name.startswith('shipped:'):
      return None
    loaded = predictor.from_checkpoint(workdir)  # stands in for a file inside the package
    return predictor.Loaded(loaded.task, loaded.state, {**loaded.info, 'checkpoint': name})

  monkeypatch.setattr(predictor, 'RESOLVERS', list(predictor.RESOLVERS))
  predictor.register_resolver(shipped)
  inpainter = Inpainter.from_workdir('shipped:tiny')
  assert inpainter.name == NAME and inpainter.info['checkpoint'] == 'shipped:tiny'
  predict, info = predictor.restore_predictor('shipped:tiny', batch_size=2)
  assert info['step'] == 6 and predict(np.zeros((1, 16, 16, 3)), np.ones((1, 16, 16, 1))).shape == (1, 16, 16, 3)
  with pytest.raises(FileNotFoundError, match='does not exist'):  # other sources still reach the checkpoint resolver
    predictor.load(str(workdir / 'missing'))
