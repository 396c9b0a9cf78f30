"""XLA:CPU flag combinations side by side: one worker process per `XLA_FLAGS`, timed interleaved.

XLA reads XLA_FLAGS once per process, so each combination runs in its own worker (with
JAXINPAINT_XLA_CPU_CONV=off: exactly the given flags); the parent times one workload at a time in every
worker in turn (A B C A B C ...) and prints medians. This is the measurement behind `jaxinpaint.xla_cpu`'s
settings. Workloads (batch 4 unless given):
  conv-<stage>-<dtype>      XLA's own 3x3 256->256 convolution at 64x64: forward, input or weight gradient;
  ours-<dtype>              `convs.conv2d` (planned) forward + both gradients, same shape;
  matmul-<dtype>            a 2048^2 matrix product;
  pconv-<dtype>             PConv U-Net (7 levels, --size) gradient of an L1 loss, train mode;
  g2d2-<dtype>              EdgeConnect G2 + D2 (paper widths, --size) gradient of L1 + D's logits.
<dtype> is f32 or bf16.

Usage:
  python bench/bench_xla_flags.py                     # default combinations and workloads
  python bench/bench_xla_flags.py --configs "eigen=--xla_cpu_experimental_ynn_fusion_type=-individual_convolution" \\
      "onednn=--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_custom_call=true" --workloads pconv-f32 pconv-bf16
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

import _common

YNN_OFF = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"
ONEDNN = "--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_custom_call=true"
CONFIGS = {"default": "", "ynn-off": f"{YNN_OFF} --xla_cpu_experimental_onednn_custom_call=false",
           "onednn": ONEDNN, "onednn+ynn-off": f"{ONEDNN} {YNN_OFF}"}
WORKLOADS = ["conv-forward-f32", "conv-input_grad-f32", "conv-weight_grad-f32", "conv-forward-bf16",
             "conv-input_grad-bf16", "conv-weight_grad-bf16", "ours-f32", "ours-bf16", "matmul-f32", "matmul-bf16"]


def build(name: str, size: int, batch: int):
  import jax
  import jax.numpy as jnp
  from jax import lax
  from jaxinpaint import convs
  *kind, dt = name.split("-")
  dtype = {"f32": jnp.float32, "bf16": jnp.bfloat16}[dt]
  rng = np.random.default_rng(0)
  if kind[0] == "matmul":
    a = jnp.asarray(rng.standard_normal((2048, 2048)), dtype)
    f = jax.jit(lambda a: jnp.dot(a, a, preferred_element_type=jnp.float32))
    return lambda: f(a)
  if kind[0] in ("conv", "ours"):
    x = jnp.asarray(rng.standard_normal((batch, 64, 64, 256)), dtype)
    w = jnp.asarray(rng.standard_normal((3, 3, 256, 256)) * 0.05, dtype)
    dy = jnp.asarray(rng.standard_normal((batch, 64, 64, 256)), dtype)
    if kind[0] == "ours":
      conv = lambda x, w: convs.conv2d(x, w, padding=1, impl="fast")
      f = jax.jit(lambda x, w, dy: (lambda y, vjp: (y,) + vjp(dy))(*jax.vjp(conv, x, w)))
      return lambda: f(x, w, dy)
    conv = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)),
                                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
    stage = {"forward": lambda x, w, dy: conv(x, w), "input_grad": lambda x, w, dy: jax.vjp(conv, x, w)[1](dy)[0],
             "weight_grad": lambda x, w, dy: jax.vjp(conv, x, w)[1](dy)[1]}[kind[1]]
    f = jax.jit(stage)
    return lambda: f(x, w, dy)
  if kind[0] == "pconv":
    from jaxinpaint.models.pconv_unet import PConvUNet
    model = PConvUNet(num_levels=7, dtype=dtype)
    image = jnp.asarray(rng.random((batch, size, size, 3)), jnp.float32)
    mask = jnp.asarray(rng.random((batch, size, size, 1)) > 0.3, jnp.float32)
    v = jax.jit(lambda k: model.init(k, image, mask, train=False))(jax.random.PRNGKey(0))

    def loss(p, bs):
      out, upd = model.apply({"params": p, "batch_stats": bs}, image * mask, mask, train=True,
                             mutable=["batch_stats"])
      return jnp.mean(jnp.abs(out - image)), upd
    f = jax.jit(jax.grad(loss, has_aux=True))
    return lambda: f(v["params"], v["batch_stats"])
  if kind[0] == "g2d2":
    from jaxinpaint.models import edgeconnect as ec
    g, d = ec.InpaintGenerator(dtype=dtype), ec.PatchDiscriminator(dtype=dtype)
    x = jnp.asarray(rng.random((batch, size, size, 4)), jnp.float32)
    vg = jax.jit(lambda k: g.init(k, x))(jax.random.PRNGKey(0))
    vd = jax.jit(lambda k: d.init(k, x[..., :3]))(jax.random.PRNGKey(1))

    def loss(pg, pd):
      out = g.apply(pg, x, train=True)
      logits, _ = d.apply(pd, out, train=True, mutable=[ec.SPECTRAL])[0]
      return jnp.mean(jnp.abs(out - x[..., :3])) + jnp.mean(logits)
    f = jax.jit(jax.grad(loss, argnums=(0, 1)))
    return lambda: f(vg, vd)
  raise ValueError(f"unknown workload {name!r}")


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--configs", nargs="*", help="label=XLA_FLAGS ... (default: %s)" % ", ".join(CONFIGS))
  parser.add_argument("--workloads", nargs="*", default=WORKLOADS)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--size", type=int, default=256, help="image size of the pconv / g2d2 workloads")
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--worker", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.worker:
    _common.serve(lambda: build(args.worker, args.size, args.batch))
    return 0
  configs = dict(c.split("=", 1) for c in args.configs) if args.configs else CONFIGS
  print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; medians of {args.repeats} in ms", flush=True)
  rows = []
  for workload in args.workloads:
    workers = {}
    for label, flags in configs.items():
      env = dict(os.environ, XLA_FLAGS=flags, JAXINPAINT_XLA_CPU_CONV="off")
      cmd = [sys.executable, os.path.abspath(__file__), "--worker", workload, "--size", str(args.size),
             "--batch", str(args.batch)]
      workers[label] = _common.Worker(label, cmd, env=env)
      workers[label].ready()
    times = _common.interleaved_timers({k: w.run for k, w in workers.items()}, repeats=args.repeats)
    for w in workers.values():
      w.quit()
    rows.append([workload] + [f"{1e3 * _common.median(times[k]):.1f}" for k in configs])
    print(f"{workload}: " + ", ".join(f"{k} {v}" for k, v in zip(configs, rows[-1][1:])), flush=True)
  print(_common.fmt_table(["workload"] + list(configs), rows))
  return 0


if __name__ == "__main__":
  sys.exit(main())
