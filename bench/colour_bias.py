"""Colour bias of trained models' fills: mean (output - ground truth) per RGB channel inside the holes.

  python bench/colour_bias.py --workdir runs/quickstart[,runs/other] --images DIR_OR_FLIST \
      --masks ../shared/data/masks_nvidia_test300 [--size 256] [--masks_per_image 3]

Each photo is centre-cropped to a square and resized to `--size`; each gets `--masks_per_image` masks drawn
with a fixed seed from the mask folder (white = hole), the same pairs for every workdir. Prints per workdir
the hole bias per channel (negative = too dark in that channel), its chroma part (bias minus its channel
mean: a colour cast), and the composite's mean PSNR.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from PIL import Image

from jaxinpaint import data, masks
from jaxinpaint.inpaint import Inpainter


def centre_square(image: np.ndarray, size: int) -> np.ndarray:
  return data.preprocess(image, image_size=size, crop='center')


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--workdir', required=True, help='comma-separated training workdirs')
  parser.add_argument('--images', required=True, help='image folder or .flist')
  parser.add_argument('--masks', required=True, help='mask folder (white = hole)')
  parser.add_argument('--size', type=int, default=256)
  parser.add_argument('--masks_per_image', type=int, default=3)
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args(argv)
  source = data.open_source(args.images)
  mask_files = masks.find_images(args.masks)
  if not mask_files:
    parser.error(f'--masks {args.masks}: no mask images found')
  rng = np.random.default_rng(args.seed)
  images = [centre_square(source.load(i), args.size) for i in range(len(source))]
  pairs = [(i, mask_files[j]) for i in range(len(images))
           for j in rng.choice(len(mask_files), args.masks_per_image, replace=False)]
  for workdir in args.workdir.split(','):
    inpainter = Inpainter.from_workdir(workdir)
    bias, psnr = [], []
    for i, mask_file in pairs:
      hole = np.asarray(Image.open(mask_file).convert('L').resize((args.size,) * 2, Image.NEAREST)) > 127
      out = np.asarray(inpainter(images[i], hole), np.float64)
      bias.append((out - images[i])[hole].mean(0))
      psnr.append(10 * np.log10(1.0 / np.mean((out - images[i]) ** 2)))
    b = np.mean(bias, 0)
    print(f'{workdir}: {len(pairs)} pairs, hole bias RGB {np.round(b, 4).tolist()}, '
          f'chroma {np.round(b - b.mean(), 4).tolist()}, PSNR {np.mean(psnr):.2f} dB')
  return 0


if __name__ == '__main__':
  sys.exit(main())
