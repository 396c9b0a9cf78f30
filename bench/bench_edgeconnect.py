"""Benchmark EdgeConnect's stage-2 train step (G2 + D2) against PyTorch (a script, not a test).

  python bench/bench_edgeconnect.py                       # 256x256, batch 4, with and without VGG-19 terms
  python bench/bench_edgeconnect.py --size 128 --steps 3 --vgg without

Ours: `jaxinpaint.training.edgeconnect.train_step` (jitted, the same function train.py runs), paper widths.
PyTorch: the authors' published layers (knazeri/edge-connect `InpaintGenerator`, `Discriminator`, the
`InpaintingModel.process` + `backward` sequence: D real/fake, D Adam step, G loss with L1 + adversarial
[+ VGG-19 perceptual + style], G Adam step), rebuilt here from torch.nn. VGG-19 weights are random on both
sides (timing only; no download). Prints images/s side by side and the speed-up (ours / PyTorch).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pathlib
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------- PyTorch side

def torch_step_fn(size: int, batch: int, with_vgg: bool):
  import torch  # pylint: disable=import-outside-toplevel
  nn = torch.nn
  torch.set_num_threads(os.cpu_count() or 1)
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

  g_opt = torch.optim.Adam(g.parameters(), lr=1e-4, betas=(0.0, 0.9))
  d_opt = torch.optim.Adam(d.parameters(), lr=1e-5, betas=(0.0, 0.9))
  bce, l1 = nn.BCELoss(), nn.L1Loss()
  images = torch.rand(batch, 3, size, size)
  edges = (torch.rand(batch, 1, size, size) > 0.9).float()
  holes = (torch.rand(batch, 1, size, size) > 0.7).float()

  def step():
    g_opt.zero_grad()
    d_opt.zero_grad()
    out = (torch.tanh(g(torch.cat([images * (1 - holes) + holes, edges], 1))) + 1) / 2
    dr, _ = d(images)
    df, _ = d(out.detach())
    d_loss = (bce(dr, torch.ones_like(dr)) + bce(df, torch.zeros_like(df))) / 2
    gf, _ = d(out)
    g_loss = 0.1 * bce(gf, torch.ones_like(gf)) + l1(out, images) / torch.mean(holes)
    if with_vgg:
      fo, fi = vgg_feats(out), vgg_feats(images)
      g_loss = g_loss + 0.1 * sum(l1(fo[i], fi[i].detach()) for i in perc_idx)
      so, si = vgg_feats(out * holes), vgg_feats(images * holes)
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

def jax_step_fn(size: int, batch: int, with_vgg: bool):
  import jax  # pylint: disable=import-outside-toplevel
  from jaxinpaint.models import vgg  # pylint: disable=import-outside-toplevel
  from jaxinpaint.training import edgeconnect as tec  # pylint: disable=import-outside-toplevel
  spec = importlib.util.spec_from_file_location('ec', REPO / 'configs' / 'edgeconnect_places2.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.base_config(2)
  config.image_size, config.batch_size = size, batch
  config.loss.allow_missing_vgg = True
  if with_vgg:  # random VGG-19 weights: same FLOPs as the real ones, no download
    config.vgg_weights = 'random-for-benchmark'
    fn = vgg.from_params(vgg.init_random_params(jax.random.PRNGKey(0), depth=19), depth=19)
    tec.feature_fn = lambda c: fn
  rng = np.random.default_rng(0)
  b = {'image': rng.random((batch, size, size, 3), np.float32),
       'mask': (rng.random((batch, size, size, 1)) > 0.3).astype(np.float32),
       'gray': rng.random((batch, size, size, 1), np.float32),
       'edge': (rng.random((batch, size, size, 1)) > 0.9).astype(np.float32)}
  state = tec.init_state(config, jax.random.PRNGKey(0), b)
  step = jax.jit(lambda s, x: tec.train_step(config, s, x), donate_argnums=(0,))
  holder = {'state': state}

  def run():
    holder['state'], metrics = step(holder['state'], b)
    return float(jax.block_until_ready(metrics['loss']))

  return run


def timed(fn, steps: int, warmup: int) -> tuple[float, float]:
  t0 = time.perf_counter()
  for _ in range(warmup):
    fn()
  first = time.perf_counter() - t0
  t0 = time.perf_counter()
  for _ in range(steps):
    fn()
  return first, (time.perf_counter() - t0) / steps


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--size', type=int, default=256)
  p.add_argument('--batch', type=int, default=4)
  p.add_argument('--steps', type=int, default=3)
  p.add_argument('--warmup', type=int, default=1)
  p.add_argument('--vgg', choices=('both', 'with', 'without'), default='both')
  p.add_argument('--only', choices=('both', 'jax', 'torch'), default='both')
  args = p.parse_args()
  variants = {'both': (False, True), 'with': (True,), 'without': (False,)}[args.vgg]
  print(f'EdgeConnect stage 2 (G2 + D2) train step, {args.size}x{args.size}, batch {args.batch}, '
        f'{os.cpu_count()} CPU threads')
  for with_vgg in variants:
    rows = {}
    for name, make in (('jaxinpaint', jax_step_fn), ('pytorch', torch_step_fn)):
      if args.only not in ('both', 'jax' if name == 'jaxinpaint' else 'torch'):
        continue
      first, per_step = timed(make(args.size, args.batch, with_vgg), args.steps, args.warmup)
      rows[name] = args.batch / per_step
      print(f'  {"with" if with_vgg else "without"} VGG-19  {name:10s}: {rows[name]:.3f} images/s '
            f'({per_step:.2f} s/step; first step incl. compile {first:.1f} s)', flush=True)
    if len(rows) == 2:
      print(f'  speed-up (ours / PyTorch): {rows["jaxinpaint"] / rows["pytorch"]:.2f}x', flush=True)


if __name__ == '__main__':
  main()
