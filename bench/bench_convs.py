"""Times every implementation of every stage of one convolution (the candidates of `convs.plan_conv`).

For the given shape, each implementation in `jaxinpaint.convs.FORWARD`, `INPUT_GRAD` and `WEIGHT_GRAD` that
applies to it is jitted on its own (forward: y from x, W; input gradient: dx from x, W, dy; weight gradient:
dW from x, W, dy) and the implementations of a stage are timed interleaved after warm-up; medians are
printed with GFLOP/s (2 x the forward's multiply-adds per stage) and the implementation `plan_conv` picks
for this process marked with '*'. This is the measurement behind the thresholds of the planning table.

Usage:
  python bench/bench_convs.py --layer dil2_conv3x3_256            # a layer of bench_layers.py
  python bench/bench_convs.py --x 4,64,64,256 --kernel 3,3,256,256 --padding 1 [--strides 2] [--dilation 2]
  ... [--dtype bfloat16] [--repeats 5] [--stages weight_grad]
A transposed layer of bench_layers.py is timed as its first sub-pixel phase convolution.
"""

from __future__ import annotations

import argparse
import os
import sys

import _common


def _ints(text: str) -> tuple[int, ...]:
  return tuple(int(v) for v in text.split(","))


def geometry_of_layer(name: str, batch: int, dtype: str):
  import bench_layers
  from jaxinpaint import convs
  kind, cin, cout, k, stride, padding, dilation, size = bench_layers.LAYERS[name]
  if kind == "conv":
    return convs.ConvGeometry((batch, size, size, cin), (k, k, cin, cout), ((padding,) * 2,) * 2, (stride,) * 2,
                              (dilation,) * 2, dtype)
  taps, off = convs._transpose_phase_taps(k, stride, padding, 0)
  pad = (-off, off + size + len(taps) - 1 - size)
  return convs.ConvGeometry((batch, size, size, cin), (len(taps), len(taps), cin, cout), (pad, pad), (1, 1), (1, 1),
                            dtype)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--layer", help="a layer name of bench_layers.py")
  parser.add_argument("--x", type=_ints, help="N,H,W,C_in")
  parser.add_argument("--kernel", type=_ints, help="kh,kw,C_in,C_out")
  parser.add_argument("--padding", type=int, default=0)
  parser.add_argument("--strides", type=int, default=1)
  parser.add_argument("--dilation", type=int, default=1)
  parser.add_argument("--batch", type=int, default=4, help="batch of --layer")
  parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--stages", nargs="*", default=["forward", "input_grad", "weight_grad"],
                      choices=["forward", "input_grad", "weight_grad"])
  args = parser.parse_args(argv)

  import jax
  import jax.numpy as jnp
  from jaxinpaint import convs
  if args.layer:
    g = geometry_of_layer(args.layer, args.batch, args.dtype)
  elif args.x and args.kernel:
    g = convs.ConvGeometry(args.x, args.kernel, ((args.padding,) * 2,) * 2, (args.strides,) * 2,
                           (args.dilation,) * 2, args.dtype)
  else:
    parser.error("give --layer, or --x and --kernel")
  dtype = jnp.dtype(args.dtype)
  x = jnp.asarray(_common.seeded(g.x_shape, 0), dtype)
  w = jnp.asarray(_common.seeded(g.kernel_shape, 1) * 0.05, dtype)
  dy = jnp.asarray(_common.seeded((g.x_shape[0],) + g.out_hw + (g.cout,), 2), dtype)
  flops = 2.0 * g.x_shape[0] * g.out_hw[0] * g.out_hw[1] * g.taps * g.cin * g.cout
  plan = convs.plan_conv(g)
  print(f"jax {jax.__version__}, {convs.current_target()}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}, "
        f"load average {os.getloadavg()[0]:.1f}\n{g}\nplanned: {plan}", flush=True)
  rows = []
  for stage in args.stages:
    fns = {}
    for name, impl in convs.STAGES[stage].items():
      if not impl.applies(g):
        continue
      if stage == "forward":
        f = jax.jit(lambda x, w, fn=impl.fn: fn(x, w, g))
        fns[name] = lambda f=f: f(x, w)
      else:
        f = jax.jit(lambda x, w, dy, fn=impl.fn: fn(x, w, dy, g))
        fns[name] = lambda f=f: f(x, w, dy)
    times = _common.interleaved(fns, repeats=args.repeats)
    for name, ts in times.items():
      med = _common.median(ts)
      mark = "*" if getattr(plan, stage) == name else ""
      rows.append([stage, name + mark, f"{med * 1e3:.1f}", f"{flops / med / 1e9:.0f}"])
  print(_common.fmt_table(["stage", "implementation (* planned)", "median ms", "GFLOP/s"], rows))
  return 0


if __name__ == "__main__":
  sys.exit(main())
