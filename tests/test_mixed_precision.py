"""`config.dtype = 'bfloat16'`: one train step of each model in bf16 against the same step in float32.

The precision policy (jaxinpaint.tasks.base.compute_dtype): bf16 convolutions and activations; float32
parameters, optimiser state, losses and normalisation statistics. From the same float32 state and batch, a
bf16 step must give the float32 step's losses within bf16 rounding, keep every state leaf float32, and move
the parameters the same way.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import common
from jaxinpaint import tasks


def tiny_config(model: str, stage: int, dtype: str):
  if model == 'pconv':
    config = common.pconv(stage)
    common.pconv_unet(config, features=(8, 16, 16), kernel_sizes=(5, 3, 3))
    config.loss.perceptual = config.loss.style = 0.0
  else:
    config = common.edgeconnect(stage)
    config.edgeconnect.features = 8
    config.edgeconnect.residual_blocks = 2
    config.edgeconnect.d_features = 8
    config.loss.allow_missing_vgg = True
  config.image_size, config.batch_size = 32, 2
  config.dtype = dtype
  return config


def random_batch(rng, size=32, batch=2):
  image = rng.random((batch, size, size, 3), np.float32)
  mask = np.ones((batch, size, size, 1), np.float32)
  mask[:, 8:20, 10:24] = 0.0
  gray = image.mean(-1, keepdims=True)
  edge = (rng.random((batch, size, size, 1)) > 0.85).astype(np.float32)
  return {'image': image, 'mask': mask, 'gray': gray, 'edge': edge}


@pytest.mark.parametrize('model, stage', [('pconv', 1), ('edgeconnect', 1), ('edgeconnect', 2)])
def test_bfloat16_train_step_matches_float32(model, stage):
  batch = random_batch(np.random.default_rng(0))
  f32, bf16 = (tasks.build(tiny_config(model, stage, d)) for d in ('float32', 'bfloat16'))
  bf16.validate()
  state = f32.init_state(jax.random.PRNGKey(0), batch)
  # The bf16 task initialises the same float32 state (parameters never live in bf16).
  same = bf16.init_state(jax.random.PRNGKey(0), batch)
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(same)):
    assert a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)

  (new_f32, m_f32), (new_bf16, m_bf16) = (jax.jit(t.train_step)(state, batch) for t in (f32, bf16))
  losses = [k for k in m_f32 if 'loss' in k]
  assert 'loss' in losses
  differs = False
  for key in losses:
    got, want = float(m_bf16[key]), float(m_f32[key])
    assert np.isfinite(got) and jnp.asarray(m_bf16[key]).dtype == jnp.float32, key
    # bf16 keeps 8 mantissa bits (relative rounding 2**-9 per operation); a few % over a whole network.
    assert abs(got - want) <= 0.05 * abs(want) + 1e-3, (key, got, want)
    differs |= got != want
  assert differs  # the bf16 step did compute in bf16

  for a, b, old in zip(jax.tree.leaves(new_bf16), jax.tree.leaves(new_f32), jax.tree.leaves(state)):
    assert a.dtype == b.dtype == old.dtype
  # Parameter updates point the float32 step's way (Adam's first step is ~lr * sign(grad), so compare the
  # whole update vector).
  update = lambda new: np.concatenate([np.ravel(n - o) for n, o in zip(
      jax.tree.leaves(getattr(new, 'params', None) or new.nets), jax.tree.leaves(
          getattr(state, 'params', None) or state.nets)) if n.dtype == jnp.float32])
  u_bf16, u_f32 = update(new_bf16), update(new_f32)
  assert np.linalg.norm(u_f32) > 0
  cosine = float(u_bf16 @ u_f32 / (np.linalg.norm(u_bf16) * np.linalg.norm(u_f32)))
  assert cosine > 0.9, cosine


@pytest.mark.parametrize('model, stage', [('pconv', 1), ('edgeconnect', 2)])
def test_unknown_dtype_is_one_line_error(model, stage):
  task = tasks.build(tiny_config(model, stage, 'float16'))
  with pytest.raises(ValueError, match=r"config\.dtype='float16': expected one of float32, bfloat16"):
    task.validate()
