"""How deep a PConv U-Net must be for its holes: hole pixels the encoder's mask update never reaches.

  python bench/mask_reach.py --masks ../shared/data/masks_nvidia_test300 --size 256 --levels 5,6,7

Every partial convolution marks an output valid when its window sees a valid pixel (paper eq. 2), so each
encoder level shrinks the holes by its kernel radius at its resolution. A hole pixel whose bottleneck cell
is still a hole gets no information from the encoder at all; only the decoder's 3x3 partial convolutions
can fill it. For each depth (the first L of the paper's kernel sizes 7, 5, 5, 3, 3, 3, 3, 3) this prints the
share of hole pixels, over all masks resized to --size x --size (nearest neighbour, as the evaluation does),
whose bottleneck cell is a hole, and in how many masks that happens. Only the masks enter (the mask
update does not depend on weights or widths), so it runs in seconds.
"""

from __future__ import annotations

import argparse
import sys

import jax
import jax.numpy as jnp
import numpy as np

from jaxinpaint import masks
from jaxinpaint.models.pconv_unet import PAPER_KERNEL_SIZES, PConvUNet


def bottleneck_valid(valid: np.ndarray, num_levels: int) -> np.ndarray:
  """(N, H, W) {0, 1} masks -> (N, H, W) bool: is the pixel's bottleneck cell valid after `num_levels`."""
  net = PConvUNet(num_levels=num_levels, features=(1,) * num_levels, kernel_sizes=PAPER_KERNEL_SIZES)
  mask = jnp.asarray(valid[..., None], jnp.float32)
  image = jnp.zeros(mask.shape[:3] + (3,), jnp.float32)
  # Jitted: op-by-op dispatch of the whole U-Net costs ~3x the compilation.
  variables = jax.jit(net.init)(jax.random.PRNGKey(0), image[:1], mask[:1])
  apply = jax.jit(lambda v, x, m: net.apply(v, x, m, capture_intermediates=True, mutable=['intermediates']))
  _, state = apply(variables, image, mask)
  # EncoderBlock returns (features, updated mask); the last block's mask is the bottleneck's.
  cell = np.asarray(state['intermediates'][f'enc{num_levels}']['__call__'][0][1])[..., 0] > 0
  scale = 2 ** num_levels
  return np.repeat(np.repeat(cell, scale, axis=1), scale, axis=2)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--masks', required=True, help='folder of mask files (white = hole)')
  parser.add_argument('--size', type=int, default=256, help='side the masks are resized to (default 256)')
  parser.add_argument('--levels', default='5,6,7', help='comma-separated encoder depths to check')
  args = parser.parse_args(argv)
  try:
    levels = [int(v) for v in args.levels.split(',')]
  except ValueError:
    parser.error(f'--levels: expected comma-separated integers, got {args.levels!r}')
  bad = [level for level in levels if not 1 <= level <= len(PAPER_KERNEL_SIZES)]
  if bad:
    parser.error(f'--levels: depths must be in 1..{len(PAPER_KERNEL_SIZES)}, got {bad}')
  if any(args.size % 2 ** level for level in levels):
    parser.error(f'--size {args.size} must be divisible by 2**L for every L in --levels {args.levels}')
  try:
    files = masks.list_mask_files(args.masks)
  except (FileNotFoundError, NotADirectoryError) as e:
    parser.error(f'--masks: {e}')
  if not files:
    parser.error(f'--masks {args.masks}: no mask files found')
  valid = np.stack([masks.load(f, shape=(args.size, args.size)) for f in files])
  hole = valid < 0.5
  print(f'{len(files)} masks at {args.size}x{args.size}, {int(hole.sum())} hole pixels')
  for level in levels:
    unreached = hole & ~bottleneck_valid(valid, level)
    per_mask = unreached.reshape(len(files), -1).any(axis=1)
    kernels = ', '.join(str(k) for k in PAPER_KERNEL_SIZES[:level])
    print(f'{level} levels (kernels {kernels}): {100 * unreached.sum() / hole.sum():.2f}% of hole pixels '
          f'unreached at the bottleneck, in {int(per_mask.sum())} of {len(files)} masks')
  return 0


if __name__ == '__main__':
  sys.exit(main())
