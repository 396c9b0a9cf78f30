"""Benchmark EdgeConnect's stage-2 train step (G2 + D2) against PyTorch (a script, not a test).

  python bench/bench_edgeconnect.py                       # 256x256, batch 4, with and without VGG-19 terms
  python bench/bench_edgeconnect.py --size 128 --steps 3 --vgg without
  python bench/bench_edgeconnect.py --dtype bfloat16 --torch-python /path/to/venv-with-torch/bin/python

Ours: the EdgeConnect task's `train_step` (`jaxinpaint.tasks.edgeconnect`, jitted, the same function train.py
runs), paper widths.
PyTorch: the authors' published layers (knazeri/edge-connect `InpaintGenerator`, `Discriminator`, the
`InpaintingModel.process` + `backward` sequence: D real/fake, D Adam step, G loss with L1 + adversarial
[+ VGG-19 perceptual + style], G Adam step), rebuilt here from torch.nn. VGG-19 weights are random on both
sides (timing only; no download). Each side runs in its own worker process (PyTorch's possibly with another
interpreter, `--torch-python`); after a first call and a warm-up the parent times them interleaved
(A B A B ...) and prints medians, images/s and the speed-up (ours / PyTorch).

`--dtype bfloat16`: ours builds G2 and D2 with `dtype=jnp.bfloat16` (bf16 convolutions and activations,
float32 parameters, instance-norm statistics, spectral norm and losses; the VGG-19 of the losses stays
float32, `jaxinpaint.models.vgg` has no compute dtype); PyTorch runs the networks (VGG-19 included) under
`torch.autocast('cpu', bfloat16)` with channels_last models and inputs, the losses in float32.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

import numpy as np

import _common

REPO = pathlib.Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------- PyTorch side

def torch_step_fn(size: int, batch: int, with_vgg: bool, dtype: str = 'float32'):
  import torch  # pylint: disable=import-outside-toplevel
  nn = torch.nn
  torch.set_num_threads(_common.torch_threads())
  fmt = torch.channels_last if dtype == 'bfloat16' else torch.contiguous_format
  amp = lambda: torch.autocast('cpu', dtype=torch.bfloat16, enabled=dtype == 'bfloat16')
  sn = nn.utils.spectral_norm

  class Res(nn.Module):
    def __init__(self, dim):
      super().__init__()
      self.conv_block = nn.Sequential(
          nn.ReflectionPad2d(2), nn.Conv2d(dim, dim, 3, dilation=2), nn.InstanceNorm2d(dim), nn.ReLU(True),
          nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim))

    def forward(self, x):
      return x + self.conv_block(x)

  g = nn.Sequential(
      nn.ReflectionPad2d(3), nn.Conv2d(4, 64, 7), nn.InstanceNorm2d(64), nn.ReLU(True),
      nn.Conv2d(64, 128, 4, 2, 1), nn.InstanceNorm2d(128), nn.ReLU(True),
      nn.Conv2d(128, 256, 4, 2, 1), nn.InstanceNorm2d(256), nn.ReLU(True),
      *[Res(256) for _ in range(8)],
      nn.ConvTranspose2d(256, 128, 4, 2, 1), nn.InstanceNorm2d(128), nn.ReLU(True),
      nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.InstanceNorm2d(64), nn.ReLU(True),
      nn.ReflectionPad2d(3), nn.Conv2d(64, 3, 7))

  class Dis(nn.Module):
    def __init__(self):
      super().__init__()
      ch = [3, 64, 128, 256, 512, 1]
      self.convs = nn.ModuleList(sn(nn.Conv2d(ch[i], ch[i + 1], 4, (2, 2, 2, 1, 1)[i], 1, bias=False))
                                 for i in range(5))

    def forward(self, x):
      feats = []
      for i, c in enumerate(self.convs):
        x = c(x)
        if i < 4:
          x = nn.functional.leaky_relu(x, 0.2)
        feats.append(x)
      return torch.sigmoid(x), feats

  d = Dis()
  vgg_cfg = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512, 512, 512, 512]
  layers, cin = [], 3
  for v in vgg_cfg:
    if v == 'M':
      layers.append(nn.MaxPool2d(2))
    else:
      layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU()]
      cin = v
  vgg = nn.Sequential(*layers).eval()
  for p in vgg.parameters():
    p.requires_grad_(False)
  # Indices (in `layers`) of relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 and relu2_2, relu3_4, relu4_4, relu5_2.
  perc_idx, style_idx = {1, 6, 11, 20, 29}, {8, 17, 26, 31}

  def vgg_feats(x):
    out = {}
    for i, layer in enumerate(vgg):
      x = layer(x)
      if i in perc_idx or i in style_idx:
        out[i] = x
      if i >= 31:
        break
    return out

  def gram(f):
    b, c, h, w = f.shape
    f = f.reshape(b, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)

  g, d, vgg = (m.to(memory_format=fmt) for m in (g, d, vgg))
  g_opt = torch.optim.Adam(g.parameters(), lr=1e-4, betas=(0.0, 0.9))
  d_opt = torch.optim.Adam(d.parameters(), lr=1e-5, betas=(0.0, 0.9))
  bce, l1 = nn.BCELoss(), nn.L1Loss()
  images = torch.rand(batch, 3, size, size).contiguous(memory_format=fmt)
  edges = (torch.rand(batch, 1, size, size) > 0.9).float().contiguous(memory_format=fmt)
  holes = (torch.rand(batch, 1, size, size) > 0.7).float().contiguous(memory_format=fmt)
  f32 = lambda feats: {i: f.float() for i, f in feats.items()}

  def step():
    g_opt.zero_grad()
    d_opt.zero_grad()
    with amp():  # the networks; the losses below in float32
      out = (torch.tanh(g(torch.cat([images * (1 - holes) + holes, edges], 1)).float()) + 1) / 2
      dr, _ = d(images)
      df, _ = d(out.detach())
      gf, _ = d(out)
      if with_vgg:
        fo, fi = f32(vgg_feats(out)), f32(vgg_feats(images))
        so, si = f32(vgg_feats(out * holes)), f32(vgg_feats(images * holes))
    dr, df, gf = dr.float(), df.float(), gf.float()
    d_loss = (bce(dr, torch.ones_like(dr)) + bce(df, torch.zeros_like(df))) / 2
    g_loss = 0.1 * bce(gf, torch.ones_like(gf)) + l1(out, images) / torch.mean(holes)
    if with_vgg:
      g_loss = g_loss + 0.1 * sum(l1(fo[i], fi[i].detach()) for i in perc_idx)
      g_loss = g_loss + 250 * sum(l1(gram(so[i]), gram(si[i]).detach()) for i in style_idx)
    # The reference steps D before G's backward (modern torch rejects that in-place order); computing both
    # gradients first and then stepping is the same arithmetic (G's loss used the pre-update D).
    d_grads = torch.autograd.grad(d_loss, list(d.parameters()))
    g_loss.backward(inputs=list(g.parameters()))
    for prm, grd in zip(d.parameters(), d_grads):
      prm.grad = grd
    d_opt.step()
    g_opt.step()
    return float(g_loss.detach())

  return step


# ------------------------------------------------------------------------------------------- JAX side

def jax_step_fn(size: int, batch: int, with_vgg: bool, dtype: str = 'float32'):
  import jax  # pylint: disable=import-outside-toplevel
  from jaxinpaint import tasks  # pylint: disable=import-outside-toplevel
  from jaxinpaint.models import vgg  # pylint: disable=import-outside-toplevel
  from jaxinpaint.tasks import edgeconnect as tec  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, str(REPO))  # the configs package
  from configs import common  # pylint: disable=import-outside-toplevel
  config = common.edgeconnect(2)  # configs/edgeconnect_places2.py:stage2, unlocked
  config.dtype = dtype
  config.image_size, config.batch_size = size, batch
  config.loss.allow_missing_vgg = True
  if with_vgg:  # random VGG-19 weights: same FLOPs as the real ones, no download
    config.vgg_weights = 'random-for-benchmark'
    # In the model's compute dtype, as the task builds it (bf16 convolutions under mixed precision).
    fn = vgg.from_params(vgg.init_random_params(jax.random.PRNGKey(0), depth=19), depth=19, dtype=dtype)
    tec.feature_fn = lambda c: fn
  rng = np.random.default_rng(0)
  b = {'image': rng.random((batch, size, size, 3), np.float32),
       'mask': (rng.random((batch, size, size, 1)) > 0.3).astype(np.float32),
       'gray': rng.random((batch, size, size, 1), np.float32),
       'edge': (rng.random((batch, size, size, 1)) > 0.9).astype(np.float32)}
  task = tasks.build(config)
  state = task.init_state(jax.random.PRNGKey(0), b)
  step = jax.jit(task.train_step, donate_argnums=(0,))
  holder = {'state': state}

  def run():
    holder['state'], metrics = step(holder['state'], b)
    return float(jax.block_until_ready(metrics['loss']))

  return run


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--size', type=int, default=256)
  p.add_argument('--batch', type=int, default=4)
  p.add_argument('--steps', type=int, default=3, help='interleaved timed steps per side after the warm-up')
  p.add_argument('--vgg', choices=('both', 'with', 'without'), default='both')
  p.add_argument('--only', choices=('both', 'jax', 'torch'), default='both')
  p.add_argument('--dtype', choices=('float32', 'bfloat16'), default='float32')
  p.add_argument('--torch-python', help='interpreter for the PyTorch worker (default: this one)')
  p.add_argument('--worker', choices=('jax', 'torch'), help=argparse.SUPPRESS)
  p.add_argument('--with-vgg', action='store_true', help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  if args.worker:
    make = jax_step_fn if args.worker == 'jax' else torch_step_fn
    _common.serve(lambda: make(args.size, args.batch, args.with_vgg, args.dtype))
    return 0

  print(f'EdgeConnect stage 2 (G2 + D2) train step, {args.size}x{args.size}, batch {args.batch}, {args.dtype}, '
        f'{os.cpu_count()} CPU threads, load average {os.getloadavg()[0]:.1f}', flush=True)
  names = [n for n in ('jax', 'torch') if args.only in ('both', n)]
  for with_vgg in {'both': (False, True), 'with': (True,), 'without': (False,)}[args.vgg]:
    workers = {}
    for name in names:  # one at a time, so compilation is not slowed by the other
      python = args.torch_python if name == 'torch' and args.torch_python else sys.executable
      cmd = [python, os.path.abspath(__file__), '--worker', name, '--size', str(args.size), '--batch',
             str(args.batch), '--dtype', args.dtype] + (['--with-vgg'] if with_vgg else [])
      workers[name] = _common.Worker(name, cmd, cwd=str(REPO))
      info = workers[name].ready()
      print(f'  {"with" if with_vgg else "without"} VGG-19  {name:5s}: first step incl. compile '
            f'{info["first_call_s"]:.1f} s', flush=True)
    times = _common.interleaved_timers({n: w.run for n, w in workers.items()}, repeats=args.steps)
    rows = {}
    for name, worker in workers.items():
      rss = worker.quit()
      per_step = _common.median(times[name])
      rows[name] = args.batch / per_step
      print(f'  {"with" if with_vgg else "without"} VGG-19  {name:5s}: {rows[name]:.3f} images/s '
            f'({per_step:.2f} s/step, median of {args.steps}; peak RSS {rss:.0f} MB)', flush=True)
    if len(rows) == 2:
      print(f'  speed-up (ours / PyTorch): {rows["jax"] / rows["torch"]:.2f}x', flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
