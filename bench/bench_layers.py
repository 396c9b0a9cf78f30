"""Layer micro-benchmarks: forward + input gradient + weight gradient, ours vs XLA native vs PyTorch.

EdgeConnect's layer shapes at 256x256, batch 4, fp32 (NHWC in JAX, NCHW in torch):
  7x7 conv 4->64 (stride 1, padding 3) at 256x256; 4x4 stride-2 convs 64->128 (256x256 input) and
  128->256 (128x128 input); dilated-2 3x3 conv 256->256 at 64x64; 4x4 stride-2 transposed convs
  256->128 (64x64 input) and 128->64 (128x128 input).

"ours" is `jaxinpaint.convs` with impl='fast', "xla" the same function with impl='xla' (XLA's native
convolution ops), "torch" is torch.nn.functional. Each call computes y, dL/dx and dL/dW for a fixed
random cotangent. Runs are interleaved (ours, xla, torch, ours, ...) after warm-up; medians are printed
with ratios (torch time / our time: > 1 means we are faster) and achieved FLOP/s (3 x the forward
multiply-adds x 2) against the measured matmul peak.

`--dtype bfloat16`: every JAX array is bf16 (ours: the bf16 plan of `jaxinpaint.convs`, e.g. XLA's oneDNN
convolutions on jaxlib 0.12 with bf16 instructions); torch runs under `torch.autocast('cpu', bfloat16)` with
channels_last tensors. Peaks printed: bf16 matmul (fp32 accumulation) and XLA's / PyTorch's bf16 3x3
256->256 convolution.

`--torch-python /path/to/python` runs the PyTorch side in a worker process with that interpreter (a venv
with torch when this one has none, e.g. jaxlib 0.12's).

Usage: python bench/bench_layers.py [--repeats 5] [--batch 4] [--only NAME ...] [--no-torch] [--no-xla]
       [--dtype bfloat16] [--torch-python PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


import _common

# name: (kind, cin, cout, k, stride, padding, dilation, input H=W)
LAYERS = {
    "conv7x7_4to64": ("conv", 4, 64, 7, 1, 3, 1, 256),
    "conv4x4s2_64to128": ("conv", 64, 128, 4, 2, 1, 1, 256),
    "conv4x4s2_128to256": ("conv", 128, 256, 4, 2, 1, 1, 128),
    "dil2_conv3x3_256": ("conv", 256, 256, 3, 1, 2, 2, 64),
    "convT4x4s2_256to128": ("convT", 256, 128, 4, 2, 1, 1, 64),
    "convT4x4s2_128to64": ("convT", 128, 64, 4, 2, 1, 1, 128),
    # Also on EdgeConnect's path: the residual blocks' undilated conv and the
    # generators' last 7x7 conv to 3 channels (few output channels: a shape CPU libraries handle badly).
    "conv3x3_256": ("conv", 256, 256, 3, 1, 1, 1, 64),
    "conv7x7_64to3": ("conv", 64, 3, 7, 1, 3, 1, 256),
}


def forward_flops(kind, cin, cout, k, stride, padding, dilation, size, batch):
  if kind == "conv":
    out = (size + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    return 2.0 * batch * out * out * k * k * cin * cout
  return 2.0 * batch * size * size * k * k * cin * cout  # transposed: every input pixel x every tap


def make_jax(spec, impl, batch, dtype="float32"):
  import jax
  from jaxinpaint import convs
  kind, cin, cout, k, stride, padding, dilation, size = spec
  x = jax.numpy.asarray(_common.seeded((batch, size, size, cin), 0), dtype)
  w = jax.numpy.asarray(_common.seeded((k, k, cin, cout), 1) * 0.05, dtype)
  if kind == "conv":
    f = lambda x, w: convs.conv2d(x, w, strides=stride, padding=padding, dilation=dilation, impl=impl)
  else:
    f = lambda x, w: convs.conv_transpose2d(x, w, strides=stride, padding=padding, impl=impl)
  y_shape = jax.eval_shape(f, x, w).shape
  g = jax.numpy.asarray(_common.seeded(y_shape, 2), dtype)

  @jax.jit
  def step(x, w, g):
    y, vjp = jax.vjp(f, x, w)
    dx, dw = vjp(g)
    return y, dx, dw

  t0 = time.perf_counter()
  jax.block_until_ready(step(x, w, g))
  compile_s = time.perf_counter() - t0
  return (lambda: step(x, w, g)), compile_s


def make_torch(spec, batch, dtype="float32"):
  import torch
  import torch.nn.functional as F
  kind, cin, cout, k, stride, padding, dilation, size = spec
  fmt = torch.channels_last if dtype == "bfloat16" else torch.contiguous_format
  amp = lambda: torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16")
  x = torch.from_numpy(_common.seeded((batch, size, size, cin), 0)).permute(0, 3, 1, 2).contiguous(
      memory_format=fmt).requires_grad_()
  if kind == "conv":
    w = torch.from_numpy(_common.seeded((k, k, cin, cout), 1) * 0.05).permute(3, 2, 0, 1).contiguous(
        memory_format=fmt).requires_grad_()
    f = lambda: F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation)
  else:
    w = torch.from_numpy(_common.seeded((k, k, cin, cout), 1) * 0.05).permute(2, 3, 0, 1).contiguous(
        memory_format=fmt).requires_grad_()
    f = lambda: F.conv_transpose2d(x, w, stride=stride, padding=padding)
  with torch.no_grad(), amp():
    y = f()
  g = torch.from_numpy(_common.seeded((y.shape[0], y.shape[2], y.shape[3], y.shape[1]), 2)).permute(
      0, 3, 1, 2).contiguous(memory_format=fmt).to(y.dtype)

  def step():
    x.grad = None
    w.grad = None
    with amp():
      y = f()
    y.backward(g)
    return y, x.grad, w.grad
  return step


def main(argv=None):
  parser = _common.side_by_side_parser(
      __doc__, torch_python_help="run PyTorch in a worker process with this interpreter")
  parser.add_argument("--only", nargs="*", choices=sorted(LAYERS), help="subset of layers")
  parser.add_argument("--no-torch", action="store_true", help="skip PyTorch")
  parser.add_argument("--no-xla", action="store_true", help="skip XLA's native formulation")
  parser.add_argument("--torch-worker", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.torch_worker:
    if args.torch_worker == (args.only or list(LAYERS))[0]:
      _common.describe_torch(args.dtype, file=sys.stderr)
    _common.serve(lambda: make_torch(LAYERS[args.torch_worker], args.batch, args.dtype))
    return 0

  peak = _common.describe_machine(args.dtype)
  use_torch = not args.no_torch and not args.torch_python
  if use_torch:
    try:
      _common.describe_torch(args.dtype)
    except ImportError:
      print("torch not installed: skipping the PyTorch column (see --torch-python)", flush=True)
      use_torch = False

  rows, results = [], {}
  for name in args.only or LAYERS:
    spec = LAYERS[name]
    fns, compile_times = {}, {}
    fns["ours"], compile_times["ours"] = make_jax(spec, "fast", args.batch, args.dtype)
    if not args.no_xla:
      fns["xla"], compile_times["xla"] = make_jax(spec, "xla", args.batch, args.dtype)
    if use_torch:
      fns["torch"] = make_torch(spec, args.batch, args.dtype)
    for fn in fns.values():  # warm-up
      _common.block(fn())
    timers = {k: (lambda fn=fn: _common.time_call(fn)) for k, fn in fns.items()}
    worker = None
    if args.torch_python and not args.no_torch:
      worker = _common.Worker("torch", [args.torch_python, os.path.abspath(__file__), "--torch-worker", name,
                                        "--batch", str(args.batch), "--dtype", args.dtype, "--only",
                                        *(args.only or list(LAYERS))])
      worker.ready()
      timers["torch"] = worker.run
    times = _common.interleaved_timers(timers, repeats=args.repeats)
    if worker is not None:
      worker.quit()
    med = {k: _common.median(v) for k, v in times.items()}
    flops = 3 * forward_flops(*spec, args.batch)
    results[name] = {"median_s": med, "compile_s": compile_times, "fwd_bwd_flops": flops}
    row = [name, med["ours"], med.get("xla", float("nan")), med.get("torch", float("nan")),
           med.get("torch", float("nan")) / med["ours"], med.get("xla", float("nan")) / med["ours"],
           f"{flops / med['ours'] / 1e9:.0f} ({100 * flops / med['ours'] / peak:.0f}%)",
           f"{flops / med['torch'] / 1e9:.0f}" if "torch" in med else "-"]
    rows.append(row)
    print(f"{name}: " + ", ".join(f"{k} {v:.3f}s" for k, v in med.items()), flush=True)

  print()
  print(f"fwd + dx + dW, batch {args.batch}, {args.dtype}, median of {args.repeats} interleaved rounds; "
        f"matmul peak {peak / 1e9:.0f} GFLOP/s")
  print(_common.fmt_table(
      ["layer", "ours s", "xla s", "torch s", "torch/ours", "xla/ours", "ours GFLOP/s (% peak)", "torch GFLOP/s"],
      rows))
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"peak_flops": peak, "dtype": args.dtype, "batch": args.batch, "repeats": args.repeats,
                 "layers": results}, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
