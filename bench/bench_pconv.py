"""PConv U-Net side by side: our jitted Flax model vs a PyTorch model with the reference semantics.

256x256, 7 levels, batch 4, fp32 or bf16 (`--dtype bfloat16`: ours `PConvUNet(dtype=jnp.bfloat16)`,
float32 parameters, BatchNorm statistics and mask arithmetic; PyTorch under `torch.autocast('cpu',
bfloat16)` with channels_last model and inputs). For each implementation and mode (train step /
inference) a separate worker subprocess builds the model, compiles/warms up, then runs one timed iteration
per request from this parent, which interleaves the workers (A B A B ...) so both see the same machine
load. Each worker reports its compile (first-call) time and its peak RSS (`resource.getrusage(...).ru_maxrss`).
`--torch-python` runs the PyTorch workers with another interpreter (e.g. a venv with torch when the JAX one
has none).

Implementations:
  jax        jaxinpaint.models.PConvUNet, the package's default conv formulation for this backend
             (jaxinpaint.convs, impl 'auto' = 'fast' on CPU);
  jax-xla    the same model with JAXINPAINT_CONV_IMPL=xla (XLA's native convolutions) for comparison;
  torch      bench/torch_pconv.py: NVIDIA PartialConv2d(multi_channel=True) semantics (ones-kernel mask
             convolution over all mask channels), same layer table.
Train step: forward in train mode (BatchNorm batch statistics), loss = L1(valid) + 6 L1(hole) (the
paper's pixel terms, no VGG), backward, Adam(2e-4) update; the JAX step is one jitted function with
donated state. Inference: forward in eval mode (running statistics).

FLOP/s are the straightforward architecture's feature-convolution FLOPs (decoder convolutions at the
upsampled resolution; training = 3x forward) divided by the measured time, for both implementations,
against the measured matmul peak of the dtype (jnp.dot of 2048^2 in this process; bf16: also XLA's bf16
3x3 256->256 convolution).

Usage: python bench/bench_pconv.py [--repeats 5] [--impls jax torch] [--modes train infer] [--json F]
       [--dtype bfloat16] [--torch-python /path/to/python]
Environment: BENCH_TORCH_THREADS (default: all cores) sets torch's thread count; on a loaded machine
1 thread can be faster for torch, so measure both.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

import _common

HERE = os.path.dirname(os.path.abspath(__file__))


# ------------------------------------------------------------------------------------------------ workers

def _batch(batch: int, size: int):
  rng = np.random.default_rng(0)
  image = rng.random((batch, size, size, 3), dtype=np.float32)
  mask = np.ones((batch, size, size, 1), np.float32)
  for i in range(batch):  # rectangular holes, different per image
    y0, x0 = rng.integers(0, size // 2, 2)
    mask[i, y0:y0 + size // 3, x0:x0 + size // 4] = 0.0
  return image, mask


def forward_flops(layer_size: int = 7, size: int = 256, batch: int = 4, input_channels: int = 3,
                  features=(64, 128, 256, 512, 512, 512, 512, 512), kernel_sizes=(7, 5, 5, 3, 3, 3, 3, 3)) -> float:
  """Multiply-add FLOPs (x2) of the feature convolutions of the straightforward formulation (decoder
  convs at the upsampled resolution; the reference's mask convolutions not counted)."""
  chans = [input_channels] + list(features[:layer_size])
  total, res = 0.0, size
  for i in range(layer_size):
    res //= 2
    total += 2.0 * batch * res * res * kernel_sizes[i] ** 2 * chans[i] * chans[i + 1]
  for j in range(layer_size):
    res *= 2
    cin = chans[layer_size - j] + chans[layer_size - j - 1]
    total += 2.0 * batch * res * res * 9 * cin * chans[layer_size - j - 1]
  return total


def _jax_worker(mode: str, batch: int, size: int, levels: int, dtype: str):
  import jax
  import jax.numpy as jnp
  import optax
  from jaxinpaint.models.pconv_unet import PConvUNet

  image_np, mask_np = _batch(batch, size)
  image, mask = jnp.asarray(image_np), jnp.asarray(mask_np)
  model = PConvUNet(num_levels=levels, dtype=jnp.dtype(dtype))
  variables = jax.jit(lambda key: model.init(key, image, mask, train=False))(jax.random.PRNGKey(0))
  if mode == "infer":
    predict = jax.jit(lambda v, image, mask: model.apply(v, image * mask, mask, train=False))
    return lambda: predict(variables, image, mask)

  params, batch_stats = variables["params"], variables["batch_stats"]
  tx = optax.adam(2e-4)
  opt_state = tx.init(params)

  def loss_fn(params, batch_stats, image, mask):
    out, updates = model.apply({"params": params, "batch_stats": batch_stats}, image * mask, mask, train=True,
                               mutable=["batch_stats"])
    err = jnp.abs(out - image)
    loss = jnp.mean(mask * err) + 6.0 * jnp.mean((1.0 - mask) * err)
    return loss, updates["batch_stats"]

  def train_step(params, batch_stats, opt_state, image, mask):
    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch_stats, image, mask)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), batch_stats, opt_state, loss

  train_step = jax.jit(train_step, donate_argnums=(0, 1, 2))
  state = [params, batch_stats, opt_state]

  def run():
    *new_state, loss = train_step(*state, image, mask)
    state[:] = new_state
    return loss
  return run


def _torch_worker(mode: str, batch: int, size: int, levels: int, dtype: str):
  import torch
  sys.path.insert(0, HERE)
  import torch_pconv
  torch.set_num_threads(_common.torch_threads())
  fmt = torch.channels_last if dtype == "bfloat16" else torch.contiguous_format
  amp = lambda: torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16")
  image_np, mask_np = _batch(batch, size)
  image = torch.from_numpy(image_np).permute(0, 3, 1, 2).contiguous(memory_format=fmt)
  mask = torch.from_numpy(mask_np).permute(0, 3, 1, 2).expand(-1, 3, -1, -1).contiguous(memory_format=fmt)
  model = torch_pconv.PConvUNet(layer_size=levels).to(memory_format=fmt)
  if mode == "infer":
    model.eval()

    def run():
      with torch.no_grad(), amp():
        return model(image * mask, mask)
    return run
  model.train()
  opt = torch.optim.Adam(model.parameters(), lr=2e-4)

  def run():
    opt.zero_grad(set_to_none=True)
    with amp():
      out = model(image * mask, mask)
    err = (out.float() - image).abs()
    loss = (mask * err).mean() + 6.0 * ((1.0 - mask) * err).mean()
    loss.backward()
    opt.step()
    return loss.item()
  return run


def worker_main(impl: str, mode: str, batch: int, size: int, levels: int, dtype: str) -> None:
  if impl == "jax-xla":
    os.environ["JAXINPAINT_CONV_IMPL"] = "xla"
  _common.serve(lambda: (_torch_worker if impl == "torch" else _jax_worker)(mode, batch, size, levels, dtype))


# ------------------------------------------------------------------------------------------------ parent

def _worker(impl, mode, args) -> _common.Worker:
  python = args.torch_python if impl == "torch" and args.torch_python else sys.executable
  return _common.Worker(impl, [python, os.path.abspath(__file__), "--worker", impl, "--modes", mode, "--batch",
                               str(args.batch), "--size", str(args.size), "--levels", str(args.levels), "--dtype",
                               args.dtype], cwd=HERE)


def main(argv=None):
  parser = _common.side_by_side_parser(
      __doc__, torch_python_help="interpreter for the PyTorch workers (default: this one)")
  parser.add_argument("--impls", nargs="+", default=["jax", "torch"], choices=["jax", "jax-xla", "torch"])
  parser.add_argument("--modes", nargs="+", default=["train", "infer"], choices=["train", "infer"])
  parser.add_argument("--size", type=int, default=256)
  parser.add_argument("--levels", type=int, default=7)
  parser.add_argument("--pause", type=float, default=0.2, help="seconds between calls (lets idle threads park)")
  parser.add_argument("--worker", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.worker:
    worker_main(args.worker, args.modes[0], args.batch, args.size, args.levels, args.dtype)
    return 0

  peak = _common.describe_machine(args.dtype)
  fwd = forward_flops(args.levels, args.size, args.batch)
  print(f"PConv U-Net {args.size}x{args.size}, {args.levels} levels, batch {args.batch}: "
        f"{fwd / 1e9:.1f} GFLOP forward (straightforward formulation)", flush=True)
  results, rows = {}, []
  for mode in args.modes:
    workers = [_worker(impl, mode, args) for impl in args.impls]
    for w in workers:  # sequential start-up so compile times are not inflated by each other
      info = w.ready()
      print(f"[{mode}] {w.name}: build {info['build_s']:.1f}s, first call (compile) {info['first_call_s']:.1f}s, "
            f"peak RSS after build {info['maxrss_build_mb']:.0f} MB, after first calls "
            f"{info['maxrss_first_calls_mb']:.0f} MB", flush=True)
    times = {w.name: [] for w in workers}
    for _ in range(args.repeats):
      for w in workers:
        time.sleep(args.pause)
        times[w.name].append(w.run())
    rss = {w.name: w.quit() for w in workers}
    flops = fwd * (3 if mode == "train" else 1)
    for w in workers:
      med = _common.median(times[w.name])
      results[f"{mode}/{w.name}"] = {"median_s": med, "times": times[w.name], "images_per_s": args.batch / med,
                                     "first_call_s": w.info["first_call_s"], "maxrss_mb": rss[w.name]}
      print(f"[{mode}] {w.name}: median {med:.3f}s/step = {args.batch / med:.2f} images/s, "
            f"peak RSS {rss[w.name]:.0f} MB, times {[round(t, 3) for t in times[w.name]]}", flush=True)
    ref = results.get(f"{mode}/torch")
    for w in workers:
      r = results[f"{mode}/{w.name}"]
      rows.append([mode, w.name, r["images_per_s"],
                   r["images_per_s"] / ref["images_per_s"] if ref else float("nan"),
                   f"{flops / r['median_s'] / 1e9:.0f} ({100 * flops / r['median_s'] / peak:.0f}%)",
                   r["first_call_s"], r["maxrss_mb"],
                   r["maxrss_mb"] / ref["maxrss_mb"] if ref else float("nan")])
  print()
  print(f"PConv U-Net {args.size}^2, L={args.levels}, batch {args.batch}, {args.dtype}, median of {args.repeats} "
        f"interleaved runs; matmul peak {peak / 1e9:.0f} GFLOP/s")
  print(_common.fmt_table(["mode", "impl", "images/s", "x torch", "GFLOP/s (% peak)", "first call s",
                           "peak RSS MB", "RSS / torch"], rows))
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"peak_flops": peak, "args": vars(args), "results": results}, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
