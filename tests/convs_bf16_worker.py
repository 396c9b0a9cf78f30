"""Checks every bf16 convolution building block in a fresh process (tests/test_convs.py runs it).

XLA reads XLA_FLAGS once per process, so the oneDNN setting is tested by running this file with the flags
in its environment. Every check prints one JSON line; the test asserts on them:

  {"check": "stage", "case": ..., "stage": ..., "impl": ..., "error": e, "tolerance": t}
      one implementation of one stage forced on a bf16 convolution, against float64 NumPy sums of the same
      bf16 inputs: e = max |got - want| / max |want|;
  {"check": "block", ...}      conv_transpose2d / upsample2x_conv (planned) against their float32 'xla' form;
  {"check": "routing", "case": ..., "onednn": n, "native": m}
      oneDNN custom calls and convolutions left to XLA's own kernels in the compiled forward + backward;
  {"check": "target", ...}     the process's `convs.current_target()`.

With `--wrong-weight-grad` a deliberately wrong weight gradient (XLA's, taps mirrored: what a kernel-layout
mix-up in a library's weight-gradient path produces) is registered as `WEIGHT_GRAD["mirrored"]` and
checked like the others, to show the checks catch a wrong gradient that raises no error.
"""

from __future__ import annotations

import json
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np

from jaxinpaint import convs

TOLERANCE = 1e-2  # bf16 keeps 8 significant bits: one rounding is <= 2^-9 relative
BF16 = jnp.bfloat16

# (name, input hw, cin, cout, k, stride, padding, dilation): the EdgeConnect / PConv layer kinds, tiny.
CASES = [
    ("3x3", (9, 8), 8, 8, 3, 1, 1, 1),
    ("3x3_dilated2", (10, 9), 8, 8, 3, 1, 2, 2),
    ("7x7_few_in", (12, 12), 4, 8, 7, 1, 3, 1),
    ("7x7_few_out", (12, 12), 8, 3, 7, 1, 3, 1),
    ("4x4_stride2", (8, 8), 16, 8, 4, 2, 1, 1),
    ("5x5_stride2_odd", (9, 11), 16, 8, 5, 2, 2, 1),
    ("4x4_last_patchgan", (7, 7), 16, 1, 4, 1, 1, 1),
]


def emit(**record):
  print(json.dumps(record), flush=True)


def bf16_round(a):
  return np.asarray(jnp.asarray(a, BF16).astype(jnp.float32), np.float64)


def numpy_conv(x, w, s, p, d):
  """y[n, i, j, o] = sum x_pad[n, s*i + d*a, s*j + d*b, c] w[a, b, c, o] (float64)."""
  xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  k = w.shape[0]
  ho, wo = ((size - d * (k - 1) - 1) // s + 1 for size in xp.shape[1:3])
  return sum(xp[:, d * a:d * a + s * (ho - 1) + 1:s, d * b:d * b + s * (wo - 1) + 1:s] @ w[a, b]
             for a in range(k) for b in range(k))


def numpy_input_grad(dy, w, x_shape, s, p, d):
  """dx = the transpose of numpy_conv: scatter dy[n, i, j] @ w[a, b]^T to x_pad[n, s*i + d*a, s*j + d*b]."""
  k = w.shape[0]
  ho, wo = dy.shape[1:3]
  dxp = np.zeros((x_shape[0], x_shape[1] + 2 * p, x_shape[2] + 2 * p, x_shape[3]))
  for a in range(k):
    for b in range(k):
      dxp[:, d * a:d * a + s * (ho - 1) + 1:s, d * b:d * b + s * (wo - 1) + 1:s] += dy @ w[a, b].T
  return dxp[:, p:p + x_shape[1], p:p + x_shape[2]]


def numpy_weight_grad(x, dy, k, s, p, d):
  xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  ho, wo = dy.shape[1:3]
  return np.stack([np.stack([np.einsum("nijc,nijo->co", xp[:, d * a:d * a + s * (ho - 1) + 1:s,
                                                           d * b:d * b + s * (wo - 1) + 1:s], dy)
                             for b in range(k)]) for a in range(k)])


def relative_error(got, want) -> float:
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))


def onednn_routing(fn, *args) -> tuple[int, int]:
  text = jax.jit(fn).lower(*args).compile().as_text()
  onednn = len(re.findall(r'custom_call_target="__onednn\$convolution"', text))
  native = len(re.findall(r"= \S+ convolution\(", text))
  return onednn, native


def check_stages(rng):
  for name, (h, w_), cin, cout, k, s, p, d in CASES:
    x = bf16_round(rng.standard_normal((2, h, w_, cin)))
    kernel = bf16_round(rng.standard_normal((k, k, cin, cout)) / np.sqrt(k * k * cin))
    y = numpy_conv(x, kernel, s, p, d)
    dy = bf16_round(rng.standard_normal(y.shape))
    want = {"forward": y, "input_grad": numpy_input_grad(dy, kernel, x.shape, s, p, d),
            "weight_grad": numpy_weight_grad(x, dy, k, s, p, d)}
    xb, kb, dyb = (jnp.asarray(a, BF16) for a in (x, kernel, dy))
    g = convs.ConvGeometry.of(xb, kb, convs._padding(p), (s, s), (d, d))
    conv = lambda x, w: convs.conv2d(x, w, strides=s, padding=p, dilation=d, impl="fast")
    for stage, table in convs.STAGES.items():
      for impl, spec in table.items():
        if not spec.applies(g):
          continue
        with convs.forced_plan(**{stage: impl}):
          # A new function object: jit caches traces per Python function, and the plan is read when tracing.
          y_got, vjp = jax.vjp(jax.jit(lambda x, w: conv(x, w)), xb, kb)
          got = {"forward": y_got, "input_grad": vjp(dyb)[0], "weight_grad": vjp(dyb)[1]}[stage]
        assert got.dtype == BF16, (name, stage, impl, got.dtype)
        emit(check="stage", case=name, stage=stage, impl=impl, strides=s, error=relative_error(got, want[stage]),
             tolerance=TOLERANCE)
    emit(check="routing", case=f"conv2d_{name}", **dict(zip(("onednn", "native"), onednn_routing(
        lambda x, w, dy: (lambda y, vjp: (y,) + vjp(dy))(*jax.vjp(conv, x, w)), xb, kb, dyb))))


def check_blocks(rng):
  blocks = {
      "conv_transpose2d_4x4_stride2": (lambda x, w, impl: convs.conv_transpose2d(x, w, strides=2, padding=1, impl=impl),
                                       (2, 5, 6, 16), (4, 4, 16, 8)),
      "upsample2x_conv_3x3": (lambda x, w, impl: convs.upsample2x_conv(x, w, impl=impl), (2, 5, 4, 16), (3, 3, 16, 8)),
  }
  for name, (fn, x_shape, k_shape) in blocks.items():
    x = bf16_round(rng.standard_normal(x_shape))
    kernel = bf16_round(rng.standard_normal(k_shape) / np.sqrt(np.prod(k_shape[:3])))
    ref = lambda x, w: fn(x, w, "xla")
    y_ref, vjp_ref = jax.vjp(ref, jnp.asarray(x, jnp.float32), jnp.asarray(kernel, jnp.float32))
    dy = bf16_round(rng.standard_normal(y_ref.shape))
    want = (y_ref,) + vjp_ref(jnp.asarray(dy, jnp.float32))
    fast = lambda x, w: fn(x, w, "fast")
    xb, kb, dyb = (jnp.asarray(a, BF16) for a in (x, kernel, dy))
    y, vjp = jax.vjp(jax.jit(fast), xb, kb)
    for stage, got, w in zip(("forward", "input_grad", "weight_grad"), (y,) + vjp(dyb), want):
      emit(check="block", case=name, stage=stage, impl="planned", error=relative_error(got, w), tolerance=TOLERANCE)
    emit(check="routing", case=name, **dict(zip(("onednn", "native"), onednn_routing(
        lambda x, w, dy: (lambda y, vjp: (y,) + vjp(dy))(*jax.vjp(fast, x, w)), xb, kb, dyb))))


def main(argv):
  target = convs.current_target()
  emit(check="target", jax=jax.__version__, library=target.conv_library("bfloat16"), **target.__dict__)
  if "--wrong-weight-grad" in argv:
    def mirrored(x, kernel, dy, g):
      return convs.WEIGHT_GRAD["xla"].fn(x, kernel, dy, g)[::-1, ::-1]
    convs.WEIGHT_GRAD["mirrored"] = convs.Implementation(mirrored, lambda g: g.kernel_shape[0] > 1)
  rng = np.random.default_rng(0)
  check_stages(rng)
  check_blocks(rng)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
